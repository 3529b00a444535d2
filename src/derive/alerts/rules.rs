//! The rules themselves: each turns the state at `now` into the subjects that match, with
//! their count, members and summary. Pure: no clock, no I/O.

use super::summary::{Lang, Text};
use super::{Match, Rule};
use crate::config::{AlertSettings, RuleSettings};
use crate::decode::{Severity, Source};
use crate::derive::view::DossierGroups;
use crate::state::State;
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

/// Every match of every enabled rule at `now`; `groups` are the overdue and stalled
/// dossiers per agency, collected by the view's pass over the dossiers at `now`.
pub fn evaluate(
    s: &AlertSettings,
    state: &State,
    groups: DossierGroups<'_>,
    now: Ts,
) -> Vec<Match> {
    let lang = s.language;
    let mut out = Vec::new();
    dossiers(s, state, groups, lang, &mut out);
    feeds(state, now, lang, &mut out);
    meetings(s, state, now, lang, &mut out);
    incidents(s, state, now, lang, &mut out);
    systems(state, now, lang, &mut out);
    out.retain(|m| {
        let r = settings_of(s, m.rule);
        r.enabled && m.count >= r.min_count
    });
    cap(s, out)
}

/// The subject id of a rule's roll-up alert (`{rule}:+others`), which counts the subjects
/// beyond `max_subjects_per_rule`; its `params` carry `"others": true` and no subject key.
pub const OTHERS: &str = "+others";

/// At most `max_subjects_per_rule` matches per rule: the most urgent (largest count, ties
/// by subject id, so replicas agree) keep their own alert; the rest become one roll-up
/// match per rule, whose members are the other subjects, most urgent first.
fn cap(s: &AlertSettings, mut out: Vec<Match>) -> Vec<Match> {
    let n = s.max_subjects_per_rule;
    let over = |rule: Rule, out: &[Match]| out.iter().filter(|m| m.rule == rule).count() > n;
    if !Rule::ALL.iter().any(|r| over(*r, &out)) {
        return out;
    }
    out.sort_by(|a, b| (a.rule, b.count, &a.subject).cmp(&(b.rule, a.count, &b.subject)));
    let mut kept = Vec::with_capacity(out.len().min(Rule::ALL.len() * (n + 1)));
    let mut rest: Vec<Match> = Vec::new();
    let flush = |rest: &mut Vec<Match>, kept: &mut Vec<Match>| {
        if let Some(first) = rest.first() {
            let rule = first.rule;
            let count = rest.len() as u64;
            let text = Text::Others { rule, count };
            kept.push(Match {
                rule,
                subject: OTHERS.to_owned(),
                count,
                members: rest
                    .iter()
                    .take(s.max_members)
                    .map(|m| m.subject.clone())
                    .collect(),
                summary: text.render(s.language),
                params: text.params(),
            });
        }
        rest.clear();
    };
    let mut rule = None;
    let mut taken = 0;
    for m in out {
        if rule != Some(m.rule) {
            flush(&mut rest, &mut kept);
            rule = Some(m.rule);
            taken = 0;
        }
        if taken < n {
            taken += 1;
            kept.push(m);
        } else {
            rest.push(m);
        }
    }
    flush(&mut rest, &mut kept);
    kept
}

/// Overdue and stalled dossiers, grouped per agency; members most urgent first (overdue by
/// earliest `due_at`, stalled by earliest latest event), ties by dossier id.
fn dossiers(
    s: &AlertSettings,
    state: &State,
    groups: DossierGroups<'_>,
    lang: Lang,
    out: &mut Vec<Match>,
) {
    let p = state.params();
    let hours = p.stalled_secs / 3600;
    let working = p.work.is_some();
    for (rule, groups) in [
        (Rule::DossierOverdue, groups.overdue),
        (Rule::DossierStalled, groups.stalled),
    ] {
        for (agency, mut members) in groups {
            members.sort_unstable();
            let agency = state.agencies.name(agency).to_owned();
            let count = members.len() as u64;
            let text = match rule {
                Rule::DossierOverdue => Text::Overdue {
                    agency: &agency,
                    count,
                },
                _ => Text::Stalled {
                    agency: &agency,
                    count,
                    hours,
                    working,
                },
            };
            out.push(Match {
                rule,
                summary: text.render(lang),
                params: text.params(),
                subject: agency.clone(),
                count,
                members: members
                    .iter()
                    .take(s.max_members)
                    .map(|(_, id)| (*id).to_owned())
                    .collect(),
            });
        }
    }
}

fn feeds(state: &State, now: Ts, lang: Lang, out: &mut Vec<Match>) {
    let secs = state.params().source_silent_secs;
    for source in Source::ALL {
        let since = state.last_event[source.index()].unwrap_or(state.started_at);
        if now > since.plus_secs(secs) {
            let text = Text::FeedSilent { source, secs };
            out.push(Match {
                rule: Rule::FeedSilent,
                subject: source.as_str().to_owned(),
                count: 1,
                members: Vec::new(),
                summary: text.render(lang),
                params: text.params(),
            });
        }
    }
}

fn meetings(s: &AlertSettings, state: &State, now: Ts, lang: Lang, out: &mut Vec<Match>) {
    let p = state.params();
    let vc = &state.vc;
    for (id, m) in vc.meetings.iter().filter(|(_, m)| m.active()) {
        let mut missing: Vec<String> = vc
            .missing_in(id, m, &p.vc, now)
            .map(str::to_owned)
            .collect();
        let mut poor: Vec<String> = vc
            .endpoints
            .iter()
            .filter(|(_, e)| {
                e.connected_to(&vc.meetings) == Some(id.as_str()) && e.poor_quality(&p.vc)
            })
            .map(|(ep, _)| ep.clone())
            .collect();
        for (rule, members) in [
            (Rule::EndpointMissing, &mut missing),
            (Rule::EndpointPoorQuality, &mut poor),
        ] {
            if members.is_empty() {
                continue;
            }
            members.sort_unstable();
            // An endpoint listed twice in `expected_endpoints` is one endpoint.
            members.dedup();
            let count = members.len() as u64;
            let text = match rule {
                Rule::EndpointMissing => Text::Missing {
                    meeting: id,
                    title: &m.title,
                    count,
                    secs: p.vc.missing_after_secs,
                },
                _ => Text::Poor {
                    meeting: id,
                    title: &m.title,
                    count,
                    vc: &p.vc,
                },
            };
            out.push(Match {
                rule,
                subject: id.clone(),
                count,
                summary: text.render(lang),
                params: text.params(),
                members: members.iter().take(s.max_members).cloned().collect(),
            });
        }
    }
}

fn incidents(s: &AlertSettings, state: &State, now: Ts, lang: Lang, out: &mut Vec<Match>) {
    let min = match s.incident_min_severity.as_str() {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "critical" => Severity::Critical,
        _ => Severity::High,
    };
    let after = whole_secs(s.incident_unacknowledged_after);
    for (id, inc) in &state.soc.incidents {
        let Some(severity) = inc.severity.filter(|sev| *sev >= min) else {
            continue;
        };
        let Some(opened) = inc.opened_at() else {
            continue;
        };
        if inc.is_unacknowledged() && now > opened.plus_secs(after) {
            let text = Text::Unacknowledged {
                incident: id,
                severity,
                system: &inc.system_id,
                secs: after,
            };
            out.push(Match {
                rule: Rule::IncidentUnacknowledged,
                subject: id.clone(),
                count: 1,
                members: Vec::new(),
                summary: text.render(lang),
                params: text.params(),
            });
        }
    }
}

fn systems(state: &State, now: Ts, lang: Lang, out: &mut Vec<Match>) {
    let secs = state.params().system_silent_secs;
    for system in state.silent_systems(now) {
        let text = Text::SystemSilent { system, secs };
        out.push(Match {
            rule: Rule::SocSystemSilent,
            subject: system.to_owned(),
            count: 1,
            members: Vec::new(),
            summary: text.render(lang),
            params: text.params(),
        });
    }
}
