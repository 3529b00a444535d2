//! Alert summaries: real sentences in Vietnamese (default) or English, naming the subject,
//! the threshold and, for grouped rules, the count in digits.

use serde_json::{Value, json};

use super::Rule;
use crate::decode::{Severity, Source};
use crate::state::vc::VcThresholds;

pub use crate::config::Lang;

/// What a summary says.
pub enum Text<'a> {
    /// Overdue dossiers of an agency (`name`: its full name, when the directory has it).
    Overdue {
        agency: &'a str,
        name: Option<&'a str>,
        count: u64,
    },
    /// Stalled dossiers of an agency.
    Stalled {
        agency: &'a str,
        name: Option<&'a str>,
        count: u64,
        hours: i64,
        working: bool,
    },
    /// A silent feed.
    FeedSilent { source: Source, secs: i64 },
    /// Missing endpoints of a meeting.
    Missing {
        meeting: &'a str,
        title: &'a str,
        count: u64,
        secs: i64,
    },
    /// Poor-quality endpoints of a meeting.
    Poor {
        meeting: &'a str,
        title: &'a str,
        count: u64,
        vc: &'a VcThresholds,
    },
    /// An unacknowledged incident.
    Unacknowledged {
        incident: &'a str,
        severity: Severity,
        system: &'a str,
        secs: i64,
    },
    /// A silent monitored system.
    SystemSilent { system: &'a str, secs: i64 },
    /// The roll-up of a rule: `count` more subjects match beyond those with their own alert.
    Others { rule: Rule, count: u64 },
    /// The province-wide digest of a dossier rule: `count` dossiers at `agencies` agencies.
    Digest {
        rule: Rule,
        count: u64,
        agencies: u64,
    },
}

fn source_name(source: Source, lang: Lang) -> &'static str {
    match (source, lang) {
        (Source::Onestop, Lang::Vi) => "Hệ thống thông tin giải quyết TTHC",
        (Source::Vc, Lang::Vi) => "Hệ thống hội nghị truyền hình",
        (Source::Soc, Lang::Vi) => "Trung tâm giám sát an toàn thông tin (SOC)",
        (Source::Onestop, Lang::En) => "The administrative procedures information system",
        (Source::Vc, Lang::En) => "The video-conferencing system",
        (Source::Soc, Lang::En) => "The security operations centre (SOC)",
    }
}

fn severity_name(s: Severity, lang: Lang) -> &'static str {
    match (s, lang) {
        (Severity::Low, Lang::Vi) => "thấp",
        (Severity::Medium, Lang::Vi) => "trung bình",
        (Severity::High, Lang::Vi) => "cao",
        (Severity::Critical, Lang::Vi) => "nghiêm trọng",
        (s, Lang::En) => s.as_str(),
    }
}

/// The agency as a sentence names it: its full name, or `Đơn vị {code}` / `Agency {code}`
/// when the directory does not know it.
fn agency_subject(agency: &str, name: Option<&str>, lang: Lang) -> String {
    match (name, lang) {
        (Some(name), _) => name.to_owned(),
        (None, Lang::Vi) => format!("Đơn vị {agency}"),
        (None, Lang::En) => format!("Agency {agency}"),
    }
}

/// `«title» (id)`, or the id alone when the title is unknown.
fn meeting_name(meeting: &str, title: &str) -> String {
    if title.is_empty() {
        meeting.to_owned()
    } else {
        format!("«{title}» ({meeting})")
    }
}

/// `1 dossier`, `2 dossiers`.
fn counted(n: impl Into<i128>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A threshold in whole minutes, or in seconds when it is not whole minutes.
fn duration(secs: i64, lang: Lang) -> String {
    match (secs % 60 == 0, lang) {
        (true, Lang::Vi) => format!("{} phút", secs / 60),
        (false, Lang::Vi) => format!("{secs} giây"),
        (true, Lang::En) => counted(secs / 60, "minute", "minutes"),
        (false, Lang::En) => counted(secs, "second", "seconds"),
    }
}

fn number(v: f64) -> String {
    let s = format!("{v}");
    s.trim_end_matches(".0").to_owned()
}

impl Text<'_> {
    /// The values the sentence is built from: the alert's `params` object (docs/alerts.md),
    /// so that a client can write the sentence in its own language. Thresholds are the
    /// configured ones; a meeting's `title` is `null` when unknown.
    #[must_use]
    pub fn params(&self) -> Value {
        let title = |t: &str| (!t.is_empty()).then(|| t.to_owned());
        match self {
            Text::Overdue {
                agency,
                name,
                count,
            } => json!({"agency": agency, "agency_name": name, "count": count}),
            Text::Stalled {
                agency,
                name,
                count,
                hours,
                working,
            } => {
                json!({"agency": agency, "agency_name": name, "count": count, "hours": hours, "working_hours": working})
            }
            Text::FeedSilent { source, secs } => {
                json!({"source": source.as_str(), "seconds": secs})
            }
            Text::Missing {
                meeting,
                title: t,
                count,
                secs,
            } => json!({"meeting": meeting, "title": title(t), "count": count, "seconds": secs}),
            Text::Poor {
                meeting,
                title: t,
                count,
                vc,
            } => json!({
                "meeting": meeting, "title": title(t), "count": count,
                "packet_loss_pct": vc.poor_packet_loss_pct, "jitter_ms": vc.poor_jitter_ms,
                "rtt_ms": vc.poor_rtt_ms,
            }),
            Text::Unacknowledged {
                incident,
                severity,
                system,
                secs,
            } => json!({
                "incident": incident, "incident_severity": severity.as_str(), "system": system,
                "seconds": secs,
            }),
            Text::SystemSilent { system, secs } => json!({"system": system, "seconds": secs}),
            Text::Others { count, .. } => json!({"count": count, "others": true}),
            Text::Digest {
                count, agencies, ..
            } => json!({"count": count, "agencies": agencies, "digest": true}),
        }
    }

    /// The sentence in `lang`.
    #[must_use]
    #[allow(clippy::too_many_lines)] // one table of sentences, two languages side by side
    pub fn render(&self, lang: Lang) -> String {
        match (self, lang) {
            (
                Text::Overdue {
                    agency,
                    name,
                    count,
                },
                Lang::Vi,
            ) => format!(
                "{} có {count} hồ sơ đang xử lý quá hạn trả kết quả.",
                agency_subject(agency, *name, lang)
            ),
            (
                Text::Overdue {
                    agency,
                    name,
                    count,
                },
                Lang::En,
            ) => format!(
                "{} has {} in progress past {} due date.",
                agency_subject(agency, *name, lang),
                counted(*count, "dossier", "dossiers"),
                if *count == 1 { "its" } else { "their" }
            ),
            (
                Text::Stalled {
                    agency,
                    name,
                    count,
                    hours,
                    working,
                },
                Lang::Vi,
            ) => format!(
                "{} có {count} hồ sơ chậm luân chuyển, không có tiến triển quá {hours} giờ{}.",
                agency_subject(agency, *name, lang),
                if *working { " làm việc" } else { "" }
            ),
            (
                Text::Stalled {
                    agency,
                    name,
                    count,
                    hours,
                    working,
                },
                Lang::En,
            ) => format!(
                "{} has {} with no progress for more than {}.",
                agency_subject(agency, *name, lang),
                counted(*count, "stalled dossier", "stalled dossiers"),
                if *working {
                    counted(*hours, "working hour", "working hours")
                } else {
                    counted(*hours, "hour", "hours")
                }
            ),
            (Text::FeedSilent { source, secs }, Lang::Vi) => format!(
                "{} không gửi sự kiện nào trong hơn {}.",
                source_name(*source, lang),
                duration(*secs, lang)
            ),
            (Text::FeedSilent { source, secs }, Lang::En) => format!(
                "{} has sent no event for more than {}.",
                source_name(*source, lang),
                duration(*secs, lang)
            ),
            (
                Text::Missing {
                    meeting,
                    title,
                    count,
                    secs,
                },
                Lang::Vi,
            ) => format!(
                "Cuộc họp {} thiếu {count} điểm cầu chưa kết nối sau hơn {} kể từ khi bắt đầu.",
                meeting_name(meeting, title),
                duration(*secs, lang)
            ),
            (
                Text::Missing {
                    meeting,
                    title,
                    count,
                    secs,
                },
                Lang::En,
            ) => format!(
                "Meeting {} is missing {} more than {} after it started.",
                meeting_name(meeting, title),
                counted(*count, "expected endpoint", "expected endpoints"),
                duration(*secs, lang)
            ),
            (
                Text::Poor {
                    meeting,
                    title,
                    count,
                    vc,
                },
                Lang::Vi,
            ) => format!(
                "Cuộc họp {} có {count} điểm cầu chất lượng kém (mất gói trên {}%, jitter trên {} ms hoặc trễ khứ hồi trên {} ms).",
                meeting_name(meeting, title),
                number(vc.poor_packet_loss_pct).replace('.', ","),
                number(vc.poor_jitter_ms).replace('.', ","),
                number(vc.poor_rtt_ms).replace('.', ",")
            ),
            (
                Text::Poor {
                    meeting,
                    title,
                    count,
                    vc,
                },
                Lang::En,
            ) => format!(
                "Meeting {} has {} with poor quality (packet loss over {}%, jitter over {} ms or round-trip time over {} ms).",
                meeting_name(meeting, title),
                counted(*count, "endpoint", "endpoints"),
                number(vc.poor_packet_loss_pct),
                number(vc.poor_jitter_ms),
                number(vc.poor_rtt_ms)
            ),
            (
                Text::Unacknowledged {
                    incident,
                    severity,
                    system,
                    secs,
                },
                Lang::Vi,
            ) => format!(
                "Sự cố {incident} mức {} trên hệ thống {system} chưa được tiếp nhận sau hơn {}.",
                severity_name(*severity, lang),
                duration(*secs, lang)
            ),
            (
                Text::Unacknowledged {
                    incident,
                    severity,
                    system,
                    secs,
                },
                Lang::En,
            ) => format!(
                "Incident {incident} ({}) on system {system} has not been acknowledged for more than {}.",
                severity_name(*severity, lang),
                duration(*secs, lang)
            ),
            (Text::SystemSilent { system, secs }, Lang::Vi) => {
                format!(
                    "Hệ thống {system} không gửi cảnh báo hay tín hiệu nào trong hơn {}.",
                    duration(*secs, lang)
                )
            }
            (Text::Others { rule, count }, Lang::Vi) => {
                let what = match rule {
                    Rule::DossierOverdue => "đơn vị khác có hồ sơ đang xử lý quá hạn",
                    Rule::DossierStalled => "đơn vị khác có hồ sơ chậm luân chuyển",
                    Rule::FeedSilent => "nguồn dữ liệu khác không gửi sự kiện",
                    Rule::EndpointMissing => "cuộc họp khác thiếu điểm cầu",
                    Rule::EndpointPoorQuality => "cuộc họp khác có điểm cầu chất lượng kém",
                    Rule::IncidentUnacknowledged => "sự cố khác chưa được tiếp nhận",
                    Rule::SocSystemSilent => "hệ thống khác không gửi tín hiệu",
                };
                format!("Và {count} {what}.")
            }
            (Text::Others { rule, count }, Lang::En) => {
                let (one, many, what) = match rule {
                    Rule::DossierOverdue => ("agency", "agencies", "with overdue dossiers"),
                    Rule::DossierStalled => ("agency", "agencies", "with stalled dossiers"),
                    Rule::FeedSilent => ("source", "sources", "silent"),
                    Rule::EndpointMissing => ("meeting", "meetings", "with missing endpoints"),
                    Rule::EndpointPoorQuality => {
                        ("meeting", "meetings", "with poor-quality endpoints")
                    }
                    Rule::IncidentUnacknowledged => ("incident", "incidents", "not acknowledged"),
                    Rule::SocSystemSilent => ("system", "systems", "silent"),
                };
                let noun = if *count == 1 { one } else { many };
                format!("And {count} more {noun} {what}.")
            }
            (
                Text::Digest {
                    rule,
                    count,
                    agencies,
                },
                Lang::Vi,
            ) => {
                let what = if *rule == Rule::DossierStalled {
                    "hồ sơ chậm luân chuyển"
                } else {
                    "hồ sơ đang xử lý quá hạn trả kết quả"
                };
                format!("Toàn tỉnh có {count} {what}, tại {agencies} đơn vị.")
            }
            (
                Text::Digest {
                    rule,
                    count,
                    agencies,
                },
                Lang::En,
            ) => {
                let what = if *rule == Rule::DossierStalled {
                    counted(*count, "stalled dossier", "stalled dossiers")
                } else {
                    counted(*count, "dossier", "dossiers") + " past due"
                };
                format!(
                    "Province-wide, {what} at {}.",
                    counted(*agencies, "agency", "agencies")
                )
            }
            (Text::SystemSilent { system, secs }, Lang::En) => {
                format!(
                    "System {system} has sent no alert or heartbeat for more than {}.",
                    duration(*secs, lang)
                )
            }
        }
    }
}
