//! Video conferencing: meetings and endpoints (docs/contract.md §2.5). Volumes are small (hundreds
//! of endpoints), so clarity wins over compactness here: ordering keys keep their event id.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Key;
use super::evict::{self, Caps, Kind, Oldest};
use crate::decode::{Level, LinkStats, VcEvent};
use crate::time::Ts;

/// When a connected endpoint's link is poor and an expected one missing; from `[vc]`.
#[derive(Clone, Debug, PartialEq)]
pub struct VcThresholds {
    /// Poor quality above this packet loss, in percent.
    pub poor_packet_loss_pct: f64,
    /// Poor quality above this jitter, in ms.
    pub poor_jitter_ms: f64,
    /// Poor quality above this round-trip time, in ms.
    pub poor_rtt_ms: f64,
    /// An expected endpoint is missing once its meeting is older than this, in seconds.
    pub missing_after_secs: i64,
}

/// Starts remembered per meeting; older ones are forgotten (a meeting restarted more often
/// than this is a faulty feed).
const MAX_STARTS: usize = 64;
/// Meetings remembered per endpoint for out-of-order leaves and stats.
const MAX_ENDPOINT_MEETINGS: usize = 8;

/// One meeting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    /// Title of its latest `meeting_started`.
    pub title: String,
    /// Level of its latest `meeting_started` (`unknown` before one).
    pub level: Option<Level>,
    /// Expected endpoints of its latest `meeting_started`.
    pub expected: Vec<String>,
    latest_start: Option<Key>,
    latest_end: Option<Key>,
    /// Times of `meeting_started` events, ascending.
    starts: Vec<Key>,
    /// Latest event of any type naming this meeting.
    last_event: Ts,
}

impl Meeting {
    /// Active while its latest start-or-end is a start, or when neither was seen.
    #[must_use]
    pub fn active(&self) -> bool {
        match (&self.latest_start, &self.latest_end) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(s), Some(e)) => s > e,
        }
    }

    /// Its earliest start later than its latest end, if known.
    #[must_use]
    pub fn started_at(&self) -> Option<Ts> {
        let after = self.latest_end.as_ref();
        self.starts
            .iter()
            .find(|s| after.is_none_or(|e| *s > e))
            .map(|s| s.ts)
    }

    /// Level label: `unknown` until a start says more.
    #[must_use]
    pub fn level_label(&self) -> Level {
        self.level.unwrap_or(Level::Unknown)
    }
}

/// What an endpoint did in one meeting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct InMeeting {
    meeting: String,
    left: Option<Key>,
    stats: Option<(Key, LinkStats)>,
}

/// One endpoint (a room with its equipment).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Latest `endpoint_joined`, with its meeting.
    join: Option<(Key, String)>,
    /// Agency of its latest join that named one.
    agency: Option<(Key, String)>,
    meetings: Vec<InMeeting>,
    last_event: Ts,
}

impl Endpoint {
    fn in_meeting(&mut self, meeting: &str) -> &mut InMeeting {
        if let Some(i) = self.meetings.iter().position(|m| m.meeting == meeting) {
            return &mut self.meetings[i];
        }
        if self.meetings.len() >= MAX_ENDPOINT_MEETINGS {
            // Forget the meeting with the oldest activity, never the current one.
            let current = self.join.as_ref().map(|(_, m)| m.as_str());
            if let Some(i) = self
                .meetings
                .iter()
                .enumerate()
                .filter(|(_, m)| Some(m.meeting.as_str()) != current)
                .min_by_key(|(_, m)| activity(m))
                .map(|(i, _)| i)
            {
                self.meetings.remove(i);
            }
        }
        // Kept sorted by meeting id, so the same events give the same state in any order.
        let at = self
            .meetings
            .partition_point(|m| m.meeting.as_str() < meeting);
        self.meetings.insert(
            at,
            InMeeting {
                meeting: meeting.to_owned(),
                ..InMeeting::default()
            },
        );
        &mut self.meetings[at]
    }

    /// The meeting it is connected to, if any (given which meetings are active).
    #[must_use]
    pub fn connected_to<'m>(&'m self, meetings: &HashMap<String, Meeting>) -> Option<&'m str> {
        let (join, meeting) = self.join.as_ref()?;
        if !meetings.get(meeting).is_some_and(Meeting::active) {
            return None;
        }
        let left_after = self
            .meetings
            .iter()
            .find(|m| &m.meeting == meeting)
            .and_then(|m| m.left.as_ref())
            .is_some_and(|l| l > join);
        (!left_after).then_some(meeting.as_str())
    }

    /// Whether, connected, its latest stats for its meeting since the join are poor.
    #[must_use]
    pub fn poor_quality(&self, settings: &VcThresholds) -> bool {
        let Some((join, meeting)) = &self.join else {
            return false;
        };
        self.meetings
            .iter()
            .find(|m| &m.meeting == meeting)
            .and_then(|m| m.stats.as_ref())
            .is_some_and(|(k, s)| {
                k.ts >= join.ts
                    && (s.packet_loss_pct > settings.poor_packet_loss_pct
                        || s.jitter_ms > settings.poor_jitter_ms
                        || s.rtt_ms > settings.poor_rtt_ms)
            })
    }

    /// The meeting of its latest join, connected or not.
    #[must_use]
    pub fn joined_meeting(&self) -> Option<&str> {
        self.join.as_ref().map(|(_, m)| m.as_str())
    }

    /// The agency of its latest join that named one.
    #[must_use]
    pub fn agency(&self) -> Option<&str> {
        self.agency.as_ref().map(|(_, a)| a.as_str())
    }
}

fn activity(m: &InMeeting) -> Ts {
    let left = m.left.as_ref().map_or(Ts(i64::MIN), |k| k.ts);
    let stats = m.stats.as_ref().map_or(Ts(i64::MIN), |(k, _)| k.ts);
    left.max(stats)
}

/// All video-conferencing state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VcState {
    /// Meetings by id.
    pub meetings: HashMap<String, Meeting>,
    /// Endpoints by id.
    pub endpoints: HashMap<String, Endpoint>,
    /// Meetings and endpoints in order of their latest event, for eviction at the caps.
    #[serde(skip)]
    oldest: (Oldest, Oldest),
    /// The meeting, and the endpoint, of every change (an event, an eviction, a removal):
    /// what the derive stage reads to recompute only those meetings' figures.
    #[serde(skip)]
    pub changes: super::ChangeLog<(Box<str>, Option<Box<str>>)>,
}

/// The meeting and the endpoint (if any) an event names.
fn named<'e>(e: &'e VcEvent<'_>) -> (&'e str, Option<&'e str>) {
    match e {
        VcEvent::MeetingStarted { meeting_id, .. } | VcEvent::MeetingEnded { meeting_id } => {
            (meeting_id, None)
        }
        VcEvent::EndpointJoined {
            meeting_id,
            endpoint_id,
            ..
        }
        | VcEvent::EndpointLeft {
            meeting_id,
            endpoint_id,
        }
        | VcEvent::EndpointStats {
            meeting_id,
            endpoint_id,
            ..
        } => (meeting_id, Some(endpoint_id)),
    }
}

fn keep_later<T>(slot: &mut Option<(Key, T)>, key: &Key, value: impl FnOnce() -> T) {
    if slot.as_ref().is_none_or(|(k, _)| key > k) {
        *slot = Some((key.clone(), value()));
    }
}

fn keep_later_key(slot: &mut Option<Key>, key: &Key) {
    if slot.as_ref().is_none_or(|k| key > k) {
        *slot = Some(key.clone());
    }
}

impl VcState {
    fn meeting(&mut self, id: &str, ts: Ts) -> &mut Meeting {
        if !self.meetings.contains_key(id) {
            self.oldest.0.added(id, ts, self.meetings.len());
        }
        let m = self.meetings.entry(id.to_owned()).or_default();
        m.last_event = m.last_event.max(ts);
        m
    }

    fn endpoint(&mut self, id: &str, ts: Ts) -> &mut Endpoint {
        if !self.endpoints.contains_key(id) {
            self.oldest.1.added(id, ts, self.endpoints.len());
        }
        let e = self.endpoints.entry(id.to_owned()).or_default();
        e.last_event = e.last_event.max(ts);
        e
    }

    /// Before `e` applies: at the caps, evicts the meeting or endpoint whose latest event
    /// is oldest for each new one `e` names; returns the kinds evicted.
    pub fn make_room(&mut self, e: &VcEvent<'_>, caps: &Caps) -> Vec<Kind> {
        let (meeting, endpoint) = named(e);
        let mut evicted = Vec::new();
        let last = |m: &Meeting| m.last_event;
        if let Some((id, _)) = evict::make_room(
            &mut self.meetings,
            &mut self.oldest.0,
            caps.meetings,
            meeting,
            last,
        ) {
            self.changes.push((id, None));
            evicted.push(Kind::Meeting);
        }
        let last = |e: &Endpoint| e.last_event;
        if let Some(endpoint) = endpoint
            && let Some((id, e)) = evict::make_room(
                &mut self.endpoints,
                &mut self.oldest.1,
                caps.endpoints,
                endpoint,
                last,
            )
        {
            let joined = e.joined_meeting().unwrap_or_default().into();
            self.changes.push((joined, Some(id)));
            evicted.push(Kind::Endpoint);
        }
        evicted
    }

    /// Applies one video-conferencing event.
    pub fn apply(&mut self, e: &VcEvent<'_>, key: &Key) {
        let (meeting, endpoint) = named(e);
        self.changes
            .push((meeting.into(), endpoint.map(Into::into)));
        match e {
            VcEvent::MeetingStarted {
                meeting_id,
                title,
                level,
                expected_endpoints,
            } => {
                let m = self.meeting(meeting_id, key.ts);
                if m.latest_start.as_ref().is_none_or(|k| key > k) {
                    m.latest_start = Some(key.clone());
                    m.title = title.to_string();
                    m.level = Some(*level);
                    // An endpoint listed twice is one expected endpoint; the order is kept.
                    m.expected.clear();
                    for ep in expected_endpoints.iter().flatten() {
                        if !m.expected.iter().any(|e| e == ep) {
                            m.expected.push(ep.to_string());
                        }
                    }
                }
                let at = m.starts.partition_point(|s| s < key);
                m.starts.insert(at, key.clone());
                if m.starts.len() > MAX_STARTS {
                    m.starts.remove(0);
                }
            }
            VcEvent::MeetingEnded { meeting_id } => {
                keep_later_key(&mut self.meeting(meeting_id, key.ts).latest_end, key);
            }
            VcEvent::EndpointJoined {
                meeting_id,
                endpoint_id,
                agency,
            } => {
                self.meeting(meeting_id, key.ts);
                let ep = self.endpoint(endpoint_id, key.ts);
                keep_later(&mut ep.join, key, || meeting_id.to_string());
                if let Some(agency) = agency {
                    keep_later(&mut ep.agency, key, || agency.to_string());
                }
                ep.in_meeting(meeting_id);
            }
            VcEvent::EndpointLeft {
                meeting_id,
                endpoint_id,
            } => {
                self.meeting(meeting_id, key.ts);
                let ep = self.endpoint(endpoint_id, key.ts);
                keep_later_key(&mut ep.in_meeting(meeting_id).left, key);
            }
            VcEvent::EndpointStats {
                meeting_id,
                endpoint_id,
                stats,
            } => {
                self.meeting(meeting_id, key.ts);
                let ep = self.endpoint(endpoint_id, key.ts);
                keep_later(&mut ep.in_meeting(meeting_id).stats, key, || *stats);
            }
        }
    }

    /// Forgets meetings and disconnected endpoints with no event since before `cutoff`.
    pub fn prune(&mut self, cutoff: Ts) {
        // An active meeting with no event at all for the whole retention is stale (its end
        // was lost, or a late event revived it); keeping it would show it on air forever.
        let changes = &mut self.changes;
        self.meetings.retain(|id, m| {
            let keep = m.last_event >= cutoff;
            if !keep {
                changes.push((id.as_str().into(), None));
            }
            keep
        });
        let meetings = &self.meetings;
        self.endpoints.retain(|id, e| {
            let keep = e.last_event >= cutoff || e.connected_to(meetings).is_some();
            if !keep {
                let joined = e.joined_meeting().unwrap_or_default();
                changes.push((joined.into(), Some(id.as_str().into())));
            }
            keep
        });
    }

    /// Counts at `now`: active meetings by level (central, province, commune, unknown),
    /// connected, missing and poor-quality endpoints.
    #[must_use]
    pub fn summary(&self, settings: &VcThresholds, now: Ts) -> VcSummary {
        let mut s = VcSummary::default();
        for m in self.meetings.values().filter(|m| m.active()) {
            let i = Level::MEETING
                .iter()
                .position(|l| *l == m.level_label())
                .unwrap_or(3);
            s.meetings_active[i] += 1;
        }
        for e in self.endpoints.values() {
            if e.connected_to(&self.meetings).is_some() {
                s.endpoints_connected += 1;
                if e.poor_quality(settings) {
                    s.endpoints_poor_quality += 1;
                }
            }
        }
        for (id, m) in &self.meetings {
            s.endpoints_missing += self.missing_in(id, m, settings, now).count() as u64;
        }
        s
    }

    /// Expected endpoints of meeting `id` missing at `now`.
    pub fn missing_in<'a>(
        &'a self,
        id: &'a str,
        m: &'a Meeting,
        settings: &VcThresholds,
        now: Ts,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let due = m.active()
            && m.started_at()
                .is_some_and(|t| now > t.plus_secs(settings.missing_after_secs));
        m.expected
            .iter()
            .filter(move |ep| {
                due && self
                    .endpoints
                    .get(ep.as_str())
                    .and_then(|e| e.connected_to(&self.meetings))
                    != Some(id)
            })
            .map(String::as_str)
    }
}

/// Video-conferencing figures at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VcSummary {
    /// Active meetings by level: central, province, commune, unknown.
    pub meetings_active: [u64; 4],
    /// Endpoints connected now.
    pub endpoints_connected: u64,
    /// Expected endpoints missing now.
    pub endpoints_missing: u64,
    /// Connected endpoints with poor quality now.
    pub endpoints_poor_quality: u64,
}

/// The serialised part of [`VcState`], cloned for a checkpoint written on another thread
/// (see [`crate::state::FrozenState`]); serialises as `VcState` does.
#[derive(Clone, Debug, Serialize)]
pub struct VcSaved {
    meetings: HashMap<String, Meeting>,
    endpoints: HashMap<String, Endpoint>,
}

impl VcState {
    /// A copy of what a checkpoint keeps (not the caches, not the change log).
    #[must_use]
    pub fn saved(&self) -> VcSaved {
        VcSaved {
            meetings: self.meetings.clone(),
            endpoints: self.endpoints.clone(),
        }
    }
}
