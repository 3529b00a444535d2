//! Alert summaries: real sentences in Vietnamese (default) or English, naming the subject,
//! the threshold and, for grouped rules, the count in digits.

use serde_json::{Value, json};

use super::Rule;
use crate::decode::{Severity, Source};
use crate::state::vc::VcThresholds;

pub use crate::config::Lang;

/// What a summary says.
pub enum Text<'a> {
    /// Overdue dossiers of an agency.
    Overdue { agency: &'a str, count: u64 },
    /// Stalled dossiers of an agency.
    Stalled {
        agency: &'a str,
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
}

fn source_name(source: Source, lang: Lang) -> &'static str {
    match (source, lang) {
        (Source::Onestop, Lang::Vi) => "Hệ thống một cửa điện tử",
        (Source::Vc, Lang::Vi) => "Hệ thống hội nghị truyền hình",
        (Source::Soc, Lang::Vi) => "Trung tâm giám sát an toàn thông tin (SOC)",
        (Source::Onestop, Lang::En) => "The one-stop system",
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
            Text::Overdue { agency, count } => json!({"agency": agency, "count": count}),
            Text::Stalled {
                agency,
                count,
                hours,
                working,
            } => {
                json!({"agency": agency, "count": count, "hours": hours, "working_hours": working})
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
        }
    }

    /// The sentence in `lang`.
    #[must_use]
    #[allow(clippy::too_many_lines)] // one table of sentences, two languages side by side
    pub fn render(&self, lang: Lang) -> String {
        match (self, lang) {
            (Text::Overdue { agency, count }, Lang::Vi) => {
                format!("Cơ quan {agency} có {count} hồ sơ đang xử lý đã quá hạn trả kết quả.")
            }
            (Text::Overdue { agency, count }, Lang::En) => format!(
                "Agency {agency} has {} in progress past {} due date.",
                counted(*count, "dossier", "dossiers"),
                if *count == 1 { "its" } else { "their" }
            ),
            (
                Text::Stalled {
                    agency,
                    count,
                    hours,
                    working,
                },
                Lang::Vi,
            ) => format!(
                "Cơ quan {agency} có {count} hồ sơ tồn đọng, không có tiến triển quá {hours} giờ{}.",
                if *working { " làm việc" } else { "" }
            ),
            (
                Text::Stalled {
                    agency,
                    count,
                    hours,
                    working,
                },
                Lang::En,
            ) => format!(
                "Agency {agency} has {} with no progress for more than {}.",
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
                "Cuộc họp {} có {count} điểm cầu chất lượng kém (mất gói trên {} %, jitter trên {} ms hoặc trễ khứ hồi trên {} ms).",
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
                "Sự cố {incident} mức {} trên hệ thống {system} chưa được xác nhận sau hơn {}.",
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
                    Rule::DossierOverdue => "đơn vị khác có hồ sơ quá hạn",
                    Rule::DossierStalled => "đơn vị khác có hồ sơ tồn đọng",
                    Rule::FeedSilent => "nguồn dữ liệu khác không gửi sự kiện",
                    Rule::EndpointMissing => "cuộc họp khác thiếu điểm cầu",
                    Rule::EndpointPoorQuality => "cuộc họp khác có điểm cầu chất lượng kém",
                    Rule::IncidentUnacknowledged => "sự cố khác chưa được xác nhận",
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
            (Text::SystemSilent { system, secs }, Lang::En) => {
                format!(
                    "System {system} has sent no alert or heartbeat for more than {}.",
                    duration(*secs, lang)
                )
            }
        }
    }
}
