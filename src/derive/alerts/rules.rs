//! The rules themselves: each turns the state at `now` into the subjects that match, with
//! their count; only the subjects that keep an alert of their own (see [`cap`]) are then
//! put into words with their members. Pure: no clock, no I/O.
//!
//! Each rule also says until when its answer holds if the state does not change (the next
//! threshold a subject crosses), so the engine asks it again only when the part of the
//! state it reads changed or that instant passed.

use super::summary::{Lang, Text};
use super::{Match, Rule};
use crate::config::{AlertSettings, RuleSettings};
use crate::decode::{Severity, Source};
use crate::state::State;
use crate::state::dossiers::Members;
use crate::state::soc::Incident;
use crate::state::vc::Meeting;
use crate::time::{Ts, whole_secs};

/// The settings of `rule`.
pub fn settings_of(s: &AlertSettings, rule: Rule) -> &RuleSettings {
    match rule {
        Rule::DossierOverdue => &s.dossier_overdue,
        Rule::DossierStalled => &s.dossier_stalled,
        Rule::FeedSilent => &s.feed_silent,
        Rule::EndpointMissing => &s.endpoint_missing,
        Rule::EndpointPoorQuality => &s.endpoint_poor_quality,
        Rule::IncidentUnacknowledged => &s.incident_unacknowledged,
        Rule::SocSystemSilent => &s.soc_system_silent,
    }
}

/// Which part of the state a rule reads, and how far it has changed: the engine evaluates
/// a rule again only when this differs from the last evaluation or its `until` passed.
#[must_use]
pub fn reads(state: &State, rule: Rule) -> u64 {
    match rule {
        Rule::DossierOverdue | Rule::DossierStalled => state.dossiers.tracker().generation(),
        // Three subjects whose silence is a matter of time: cheap to ask every tick.
        Rule::FeedSilent => u64::MAX,
        Rule::EndpointMissing | Rule::EndpointPoorQuality => state.vc.generation.get(),
        Rule::IncidentUnacknowledged | Rule::SocSystemSilent => state.soc.generation.get(),
    }
}

/// One subject a rule matches, before it is capped and put into words.
pub struct Hit<'s> {
    /// The subject id.
    pub subject: &'s str,
    /// How many members match.
    pub count: u64,
    what: What<'s>,
}

/// What a hit needs to become an alert.
enum What<'s> {
    Dossiers(&'s Members),
    Feed(Source),
    Meeting(&'s Meeting, Vec<&'s str>),
    Incident(&'s Incident, Severity),
    System,
}

/// The subjects `rule` matches at `now` (enabled rules only, at least `min_count`), and
/// the instant until which that answer holds while the state does not change.
pub fn hits<'s>(s: &AlertSettings, state: &'s State, rule: Rule, now: Ts) -> (Vec<Hit<'s>>, Ts) {
    let r = settings_of(s, rule);
    if !r.enabled {
        return (Vec::new(), Ts::MAX);
    }
    let mut out = Vec::new();
    let until = match rule {
        Rule::DossierOverdue | Rule::DossierStalled => {
            dossiers(state, rule, &mut out);
            Ts::MAX
        }
        Rule::FeedSilent => {
            feeds(state, now, &mut out);
            Ts::MIN
        }
        Rule::EndpointMissing | Rule::EndpointPoorQuality => meetings(state, rule, now, &mut out),
        Rule::IncidentUnacknowledged => incidents(s, state, now, &mut out),
        Rule::SocSystemSilent => {
            for system in state.silent_systems(now) {
                out.push(Hit {
                    subject: system,
                    count: 1,
                    what: What::System,
                });
            }
            state.next_system_silence(now).unwrap_or(Ts::MAX)
        }
    };
    out.retain(|h| h.count >= r.min_count);
    (out, until)
}

/// The subject id of a rule's roll-up alert (`{rule}:+others`), which counts the subjects
/// beyond `max_subjects_per_rule`; its `params` carry `"others": true` and no subject key.
pub const OTHERS: &str = "+others";

/// The matches of one rule from its hits: at most `max_subjects_per_rule` keep their own
/// alert, the most urgent (largest count, ties by subject id, so replicas agree); the rest
/// become one roll-up match, whose members are the other subjects, most urgent first. Only
/// the kept subjects are put into words, so the cost of the words does not grow with the
/// subjects.
pub fn cap(s: &AlertSettings, state: &State, rule: Rule, mut hits: Vec<Hit<'_>>) -> Vec<Match> {
    let n = s.max_subjects_per_rule;
    let urgent = |a: &Hit<'_>, b: &Hit<'_>| b.count.cmp(&a.count).then(a.subject.cmp(b.subject));
    let mut rest = Vec::new();
    if hits.len() > n {
        if n > 0 {
            hits.select_nth_unstable_by(n - 1, urgent);
        }
        rest = hits.split_off(n);
    }
    let mut out: Vec<Match> = hits
        .into_iter()
        .map(|h| put_into_words(s, state, rule, &h))
        .collect();
    if !rest.is_empty() {
        let count = rest.len() as u64;
        let listed = s.max_members.min(rest.len());
        if listed > 0 {
            rest.select_nth_unstable_by(listed - 1, urgent);
        }
        rest.truncate(listed);
        rest.sort_unstable_by(urgent);
        let text = Text::Others { rule, count };
        out.push(Match {
            rule,
            subject: OTHERS.to_owned(),
            count,
            members: rest.iter().map(|h| h.subject.to_owned()).collect(),
            summary: text.render(s.language),
            params: text.params(),
        });
    }
    out
}

/// A kept hit as a match: its members (most urgent first, at most `max_members`) and its
/// sentence.
fn put_into_words(s: &AlertSettings, state: &State, rule: Rule, h: &Hit<'_>) -> Match {
    let p = state.params();
    let lang: Lang = s.language;
    let (text, members): (Text<'_>, Vec<String>) = match &h.what {
        What::Dossiers(members) => {
            let listed = members
                .iter()
                .take(s.max_members)
                .map(|(_, id)| id.to_string())
                .collect();
            let text = if rule == Rule::DossierOverdue {
                Text::Overdue {
                    agency: h.subject,
                    count: h.count,
                }
            } else {
                Text::Stalled {
                    agency: h.subject,
                    count: h.count,
                    hours: p.stalled_secs / 3600,
                    working: p.work.is_some(),
                }
            };
            (text, listed)
        }
        What::Feed(source) => (
            Text::FeedSilent {
                source: *source,
                secs: p.source_silent_secs,
            },
            Vec::new(),
        ),
        What::Meeting(m, members) => {
            let listed = members
                .iter()
                .take(s.max_members)
                .map(|e| (*e).to_owned())
                .collect();
            let text = if rule == Rule::EndpointMissing {
                Text::Missing {
                    meeting: h.subject,
                    title: &m.title,
                    count: h.count,
                    secs: p.vc.missing_after_secs,
                }
            } else {
                Text::Poor {
                    meeting: h.subject,
                    title: &m.title,
                    count: h.count,
                    vc: &p.vc,
                }
            };
            (text, listed)
        }
        What::Incident(inc, severity) => (
            Text::Unacknowledged {
                incident: h.subject,
                severity: *severity,
                system: &inc.system_id,
                secs: whole_secs(s.incident_unacknowledged_after),
            },
            Vec::new(),
        ),
        What::System => (
            Text::SystemSilent {
                system: h.subject,
                secs: p.system_silent_secs,
            },
            Vec::new(),
        ),
    };
    Match {
        rule,
        subject: h.subject.to_owned(),
        count: h.count,
        summary: text.render(lang),
        params: text.params(),
        members,
    }
}

/// Overdue or stalled dossiers, grouped per agency, from the tracked figures (members most
/// urgent first: overdue by earliest `due_at`, stalled by earliest latest event, ties by
/// dossier id).
fn dossiers<'s>(state: &'s State, rule: Rule, out: &mut Vec<Hit<'s>>) {
    let t = state.dossiers.tracker();
    let groups: Box<dyn Iterator<Item = (u32, &'s Members)>> = if rule == Rule::DossierOverdue {
        Box::new(t.overdue())
    } else {
        Box::new(t.stalled())
    };
    for (agency, members) in groups {
        out.push(Hit {
            subject: state.agencies.name(agency),
            count: members.len() as u64,
            what: What::Dossiers(members),
        });
    }
}

fn feeds<'s>(state: &'s State, now: Ts, out: &mut Vec<Hit<'s>>) {
    let secs = state.params().source_silent_secs;
    for source in Source::ALL {
        let since = state.last_event[source.index()].unwrap_or(state.started_at);
        if now > since.plus_secs(secs) {
            out.push(Hit {
                subject: source.as_str(),
                count: 1,
                what: What::Feed(source),
            });
        }
    }
}

/// Meetings with missing (or poor-quality) endpoints; returns when the next meeting passes
/// the "missing" threshold.
fn meetings<'s>(state: &'s State, rule: Rule, now: Ts, out: &mut Vec<Hit<'s>>) -> Ts {
    let p = state.params();
    let vc = &state.vc;
    if rule == Rule::EndpointMissing {
        for (id, m) in vc.meetings.iter().filter(|(_, m)| m.active()) {
            let mut missing: Vec<&str> = vc.missing_in(id, m, &p.vc, now).collect();
            if missing.is_empty() {
                continue;
            }
            missing.sort_unstable();
            // An endpoint listed twice in `expected_endpoints` is one endpoint.
            missing.dedup();
            out.push(Hit {
                subject: id,
                count: missing.len() as u64,
                what: What::Meeting(m, missing),
            });
        }
        return vc.next_missing(&p.vc, now).unwrap_or(Ts::MAX);
    }
    let mut poor: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    for (ep_id, e) in &vc.endpoints {
        if let Some(meeting) = e.connected_to(&vc.meetings)
            && e.poor_quality(&p.vc)
        {
            poor.entry(meeting).or_default().push(ep_id);
        }
    }
    for (id, mut members) in poor {
        let Some((id, m)) = vc.meetings.get_key_value(id) else {
            continue;
        };
        members.sort_unstable();
        out.push(Hit {
            subject: id,
            count: members.len() as u64,
            what: What::Meeting(m, members),
        });
    }
    Ts::MAX
}

/// Open incidents at or above the configured severity, unacknowledged for longer than the
/// threshold; returns when the next one passes it.
fn incidents<'s>(s: &AlertSettings, state: &'s State, now: Ts, out: &mut Vec<Hit<'s>>) -> Ts {
    let min = match s.incident_min_severity.as_str() {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "critical" => Severity::Critical,
        _ => Severity::High,
    };
    let after = whole_secs(s.incident_unacknowledged_after);
    let mut until = Ts::MAX;
    for (id, inc) in &state.soc.incidents {
        let Some(severity) = inc.severity.filter(|sev| *sev >= min) else {
            continue;
        };
        let (Some(opened), true) = (inc.opened_at(), inc.is_unacknowledged()) else {
            continue;
        };
        let due = opened.plus_secs(after);
        if now > due {
            out.push(Hit {
                subject: id,
                count: 1,
                what: What::Incident(inc, severity),
            });
        } else {
            until = until.min(Ts(due.0.saturating_add(1)));
        }
    }
    until
}
