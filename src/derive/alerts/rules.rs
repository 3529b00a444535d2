//! The rules themselves: each says which of its subjects (agencies, sources, meetings,
//! incidents, systems) changed at `now` and how many members each matches, from the
//! tracked figures; only the subjects that keep an alert of their own are then put into
//! words with their members ([`kept`]). Pure: no clock, no I/O.

use super::summary::{Lang, Text};
use super::{Match, Rule};
use crate::config::{AlertSettings, RuleSettings};
use crate::decode::{Severity, Source};
use std::collections::BTreeSet;

use crate::derive::track::{MeetingFigures, SocTouched, SocTrack, Touched, VcTrack};
use crate::state::State;
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

/// What the rules read besides the state: the VC and SOC figures, kept per meeting,
/// system and incident by the derive stage, and what the last tick recomputed of them.
pub struct Tracked<'a> {
    /// VC figures.
    pub vc: &'a VcTrack,
    /// SOC figures.
    pub soc: &'a SocTrack,
    /// Meetings recomputed this tick.
    pub meetings: &'a Touched,
    /// Systems and incidents recomputed this tick.
    pub soc_touched: &'a SocTouched,
    /// The agency directory, for names.
    pub directory: &'a crate::directory::Directory,
}

/// How the subjects of a rule changed.
pub enum Updates {
    /// All its subjects now, with their counts (everything was recomputed).
    All(Vec<(String, u64)>),
    /// These subjects changed: their count now, `None` when they no longer match.
    Some(Vec<(String, Option<u64>)>),
}

/// The subjects of `rule` that changed at `now`. `agencies` are the agencies whose overdue
/// or stalled dossiers changed (`None`: all of them).
pub fn updates(
    s: &AlertSettings,
    state: &State,
    t: &Tracked<'_>,
    rule: Rule,
    agencies: Option<&BTreeSet<u32>>,
    now: Ts,
) -> Updates {
    match rule {
        Rule::DossierOverdue | Rule::DossierStalled => {
            let tracker = state.dossiers.tracker();
            let sets = |rule| {
                if rule == Rule::DossierOverdue {
                    tracker.overdue_of()
                } else {
                    tracker.stalled_of()
                }
            };
            let sets = sets(rule);
            match agencies {
                None => Updates::All(
                    sets.iter()
                        .enumerate()
                        .filter(|(_, m)| !m.is_empty())
                        .map(|(a, m)| (agency_name(state, a), m.len() as u64))
                        .collect(),
                ),
                Some(agencies) => Updates::Some(
                    agencies
                        .iter()
                        .map(|&a| {
                            let n = sets.get(a as usize).map_or(0, |m| m.len() as u64);
                            (agency_name(state, a as usize), (n > 0).then_some(n))
                        })
                        .collect(),
                ),
            }
        }
        Rule::FeedSilent => {
            let secs = state.params().source_silent_secs;
            Updates::All(
                Source::ALL
                    .iter()
                    .filter(|source| {
                        let since = state.last_event[source.index()].unwrap_or(state.started_at);
                        now > since.plus_secs(secs)
                    })
                    .map(|source| (source.as_str().to_owned(), 1))
                    .collect(),
            )
        }
        Rule::EndpointMissing | Rule::EndpointPoorQuality => {
            let count = |f: &MeetingFigures| {
                let n = if rule == Rule::EndpointMissing {
                    f.missing.len()
                } else {
                    f.poor.len()
                } as u64;
                (f.active.is_some() && n > 0).then_some(n)
            };
            match t.meetings {
                Touched::All => Updates::All(
                    t.vc.all()
                        .filter_map(|(id, f)| Some((id.clone(), count(f)?)))
                        .collect(),
                ),
                Touched::Some(ids) => Updates::Some(
                    ids.iter()
                        .map(|id| (id.clone(), t.vc.figures(id).and_then(count)))
                        .collect(),
                ),
            }
        }
        Rule::IncidentUnacknowledged => {
            let min = min_severity(s);
            let after = whole_secs(s.incident_unacknowledged_after);
            let matches = |id: &str| {
                let inc = state.soc.incidents.get(id)?;
                let opened = inc.opened_at()?;
                (inc.severity? >= min && inc.is_unacknowledged() && now > opened.plus_secs(after))
                    .then_some(1)
            };
            match &t.soc_touched.incidents {
                Touched::All => Updates::All(
                    state
                        .soc
                        .incidents
                        .keys()
                        .filter_map(|id| Some((id.clone(), matches(id)?)))
                        .collect(),
                ),
                Touched::Some(ids) => {
                    Updates::Some(ids.iter().map(|id| (id.clone(), matches(id))).collect())
                }
            }
        }
        Rule::SocSystemSilent => match &t.soc_touched.systems {
            Touched::All => Updates::All(t.soc.silent().iter().map(|id| (id.clone(), 1)).collect()),
            Touched::Some(ids) => Updates::Some(
                ids.iter()
                    .map(|id| (id.clone(), t.soc.silent().contains(id).then_some(1)))
                    .collect(),
            ),
        },
    }
}

fn agency_name(state: &State, agency: usize) -> String {
    state
        .agencies
        .name(u32::try_from(agency).unwrap_or(u32::MAX))
        .to_owned()
}

fn min_severity(s: &AlertSettings) -> Severity {
    match s.incident_min_severity.as_str() {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "critical" => Severity::Critical,
        _ => Severity::High,
    }
}

/// A subject that keeps its own alert, as a match: its members (most urgent first, at most
/// `max_members`) and its sentence. `None` when the subject is gone.
pub fn kept(
    s: &AlertSettings,
    state: &State,
    t: &Tracked<'_>,
    rule: Rule,
    subject: &str,
    count: u64,
) -> Option<Match> {
    let what = match rule {
        Rule::DossierOverdue | Rule::DossierStalled => {
            let agency = state.agencies.get(subject)? as usize;
            let tracker = state.dossiers.tracker();
            let sets = if rule == Rule::DossierOverdue {
                tracker.overdue_of()
            } else {
                tracker.stalled_of()
            };
            What::Dossiers(
                state
                    .dossiers
                    .most_urgent(sets.get(agency)?, s.max_members)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            )
        }
        Rule::FeedSilent => What::Feed(*Source::ALL.iter().find(|x| x.as_str() == subject)?),
        Rule::EndpointMissing | Rule::EndpointPoorQuality => {
            let m = state.vc.meetings.get(subject)?;
            let f = t.vc.figures(subject)?;
            let mut members: Vec<&str> = if rule == Rule::EndpointMissing {
                f.missing.iter().map(String::as_str).collect()
            } else {
                f.poor.iter().map(String::as_str).collect()
            };
            members.sort_unstable();
            members.dedup();
            What::Meeting(m, members)
        }
        Rule::IncidentUnacknowledged => {
            let inc = state.soc.incidents.get(subject)?;
            What::Incident(inc, inc.severity?)
        }
        Rule::SocSystemSilent => What::System,
    };
    Some(put_into_words(
        s,
        state,
        t.directory,
        rule,
        &Hit {
            subject,
            count,
            what,
        },
    ))
}

/// The roll-up match of `rule`: `count` more subjects beyond those with their own alert,
/// `members` the most urgent of them.
pub fn others(s: &AlertSettings, rule: Rule, count: u64, members: Vec<String>) -> Match {
    let text = Text::Others { rule, count };
    Match {
        rule,
        subject: OTHERS.to_owned(),
        count,
        members,
        summary: text.render(s.language),
        summary_alt: text.render(other(s.language)),
        params: text.params(),
    }
}

/// The subject id of a dossier rule's province-wide digest.
pub const DIGEST: &str = "*";

/// The digest match of a dossier rule: `count` dossiers at `agencies` agencies, the
/// agencies with most first as members.
pub fn digest(
    s: &AlertSettings,
    rule: Rule,
    (count, agencies): (u64, u64),
    members: Vec<String>,
) -> Match {
    let text = Text::Digest {
        rule,
        count,
        agencies,
    };
    Match {
        rule,
        subject: DIGEST.to_owned(),
        count,
        members,
        summary: text.render(s.language),
        summary_alt: text.render(other(s.language)),
        params: text.params(),
    }
}

/// The other language: an alert is put into both, for notifiers that show both.
const fn other(lang: Lang) -> Lang {
    match lang {
        Lang::Vi => Lang::En,
        Lang::En => Lang::Vi,
    }
}

/// One subject a rule matches, with what it takes to put it into words.
struct Hit<'s> {
    subject: &'s str,
    count: u64,
    what: What<'s>,
}

/// What a hit needs to become an alert.
enum What<'s> {
    Dossiers(Vec<String>),
    Feed(Source),
    Meeting(&'s Meeting, Vec<&'s str>),
    Incident(&'s Incident, Severity),
    System,
}

/// The subject id of a rule's roll-up alert (`{rule}:+others`), which counts the subjects
/// beyond `max_subjects_per_rule`; its `params` carry `"others": true` and no subject key.
pub const OTHERS: &str = "+others";

/// A kept hit as a match: its members (most urgent first, at most `max_members`) and its
/// sentence.
fn put_into_words(
    s: &AlertSettings,
    state: &State,
    directory: &crate::directory::Directory,
    rule: Rule,
    h: &Hit<'_>,
) -> Match {
    let p = state.params();
    let lang: Lang = s.language;
    let (text, members): (Text<'_>, Vec<String>) = match &h.what {
        What::Dossiers(members) => {
            let listed = members.clone();
            let name = directory.get(h.subject).map(|a| &*a.name);
            let text = if rule == Rule::DossierOverdue {
                Text::Overdue {
                    agency: h.subject,
                    name,
                    count: h.count,
                }
            } else {
                Text::Stalled {
                    agency: h.subject,
                    name,
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
        summary_alt: text.render(other(lang)),
        params: text.params(),
        members,
    }
}
