//! The video-conferencing system: one or two meetings per working day (central sessions
//! and provincial briefings reaching up to all 148 communes, and many small commune-cluster
//! meetings; 43 endpoints on average), each with its list of expected endpoints. The bridge opens (`meeting_started`) ahead of the session and the
//! rooms connect within minutes; some join late, about 3 % never join (missing), some drop
//! and reconnect, and some sit on poor links. Every
//! connected endpoint reports its link statistics every 5 seconds.

use serde_json::{Map, Value};

use super::generator::{Generator, Task};
use super::model::MEETING_TITLES;
use crate::decode::{Level, Source};
use crate::time::Ts;

/// Meetings per working day at scale 1.
const MEETINGS_PER_WORKING_DAY: f64 = 1.5;
/// Seconds between two statistics samples of an endpoint.
pub const STATS_INTERVAL_SECS: i64 = 5;
/// Link statistics replayed before the start, in seconds (demo history).
const STATS_REPLAYED_SECS: i64 = 120;

/// A video-conferencing task.
#[derive(Clone, Copy, Debug)]
pub(super) enum MeetingTask {
    /// Plans the next meeting (Poisson process in office time).
    Arrival,
    /// The meeting goes on air.
    Start(u32),
    /// A participant connects.
    Join(u32, u16),
    /// A participant disconnects.
    Left(u32, u16),
    /// A participant's next statistics sample.
    Stats(u32, u16),
    /// The meeting ends.
    End(u32),
}

/// Link quality of a participant for the whole meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Quality {
    Good,
    /// Always over the thresholds (loss > 1 %, jitter > 30 ms or RTT > 300 ms).
    Poor,
    /// Mostly good, with bad samples.
    Flaky,
}

/// One expected endpoint of a meeting.
#[derive(Clone, Debug)]
pub(super) struct Participant {
    /// Index into the province's endpoints.
    pub endpoint: u16,
    /// Connected intervals `[join, leave)`; empty: never joins.
    pub intervals: Vec<(Ts, Ts)>,
    pub quality: Quality,
}

/// A planned meeting.
#[derive(Clone, Debug)]
pub(super) struct MeetingRun {
    /// Key in the generator's meeting table (its serial).
    pub key: u32,
    /// Under a scale above 1, which copy of the province the meeting belongs to (its
    /// endpoints carry the suffix `-P{n}` for copies after the first).
    pub replica: u16,
    pub id: String,
    pub level: Level,
    pub title: &'static str,
    pub start: Ts,
    pub end: Ts,
    pub participants: Vec<Participant>,
}

impl Generator {
    pub(super) fn meeting_task(&mut self, at: Ts, task: MeetingTask) {
        match task {
            MeetingTask::Arrival => self.meeting_arrival(at),
            MeetingTask::Start(m) => self.meeting_started(at, m),
            MeetingTask::Join(m, p) => self.endpoint_event(at, m, p, "endpoint_joined"),
            MeetingTask::Left(m, p) => self.endpoint_event(at, m, p, "endpoint_left"),
            MeetingTask::Stats(m, p) => self.endpoint_stats(at, m, p),
            MeetingTask::End(m) => self.meeting_ended(at, m),
        }
    }

    fn meeting_arrival(&mut self, at: Ts) {
        let level = [Level::Central, Level::Province, Level::Commune]
            [self.pick_weighted(&[0.15, 0.25, 0.6])];
        // Announced ahead: on air 20 to 60 office minutes later, on a five-minute mark.
        let lead = self.uniform(1200.0, 3600.0) * self.clock.office_speed();
        let on_air = self
            .clock
            .from_office_secs(self.clock.office_secs(at) + lead as i64);
        let start = Ts::from_secs(on_air.0.div_euclid(300 * 1_000_000_000) * 300);
        if start >= self.meetings_from {
            let run = self.plan_meeting(level, start);
            self.launch(run);
        }
        let per_office_sec = MEETINGS_PER_WORKING_DAY / super::clock::OFFICE_DAY_SECS as f64;
        let gap = self.exp(1.0 / (per_office_sec * self.base_scale()));
        // A gap in real office seconds, on an office clock that may run faster.
        self.meeting_next_x += gap * self.clock.office_speed();
        let next = self
            .clock
            .from_office_secs(self.meeting_next_x as i64)
            .max(at);
        self.schedule(next, Task::Meeting(MeetingTask::Arrival));
    }

    /// A meeting of `level` going on air at `start`, with random participants and fates.
    pub(super) fn plan_meeting(&mut self, level: Level, start: Ts) -> MeetingRun {
        let (endpoints, minutes) = match level {
            Level::Central => (self.central_endpoints(), (90.0, 240.0)),
            Level::Province => (self.province_endpoints(), (60.0, 180.0)),
            _ => (self.cluster_endpoints(), (45.0, 120.0)),
        };
        let end = start.plus_secs((self.uniform(minutes.0, minutes.1) * 60.0) as i64);
        let participants = endpoints
            .into_iter()
            .map(|e| self.participant(e, start, end))
            .collect();
        let titles = MEETING_TITLES[match level {
            Level::Central => 0,
            Level::Province => 1,
            _ => 2,
        }];
        let title = titles[self.rng_index(titles.len())];
        self.meeting_serial += 1;
        let replicas = self.base_scale().ceil().max(1.0) as usize;
        let replica = if replicas > 1 {
            self.rng_index(replicas) as u16
        } else {
            0
        };
        MeetingRun {
            key: self.meeting_serial,
            replica,
            id: format!(
                "M-{}-{:03}{:03}",
                self.clock.year(start),
                self.tag % 1000,
                self.meeting_serial
            ),
            level,
            title,
            start,
            end,
            participants,
        }
    }

    /// A participant's connection plan once the meeting is open: within minutes, late
    /// (after the 5 minutes that make it missing) or never; maybe a drop.
    fn participant(&mut self, endpoint: u16, start: Ts, end: Ts) -> Participant {
        let quality = match self.pick_weighted(&[0.82, 0.06, 0.12]) {
            0 => Quality::Good,
            1 => Quality::Poor,
            _ => Quality::Flaky,
        };
        let fate: f64 = self.uniform(0.0, 1.0);
        let mut intervals = Vec::new();
        if fate >= 0.03 {
            let delay = if fate < 0.10 {
                self.uniform(360.0, 1500.0)
            } else {
                self.uniform(15.0, 240.0)
            };
            let join = start.plus_secs(delay as i64);
            let join = self.jittered(join, 999);
            let early = self.uniform(5.0, 120.0) as i64;
            let leave = self.jittered(end.minus_secs(early), 999);
            let span = leave.secs_since(join);
            if span > 600.0 && self.chance(0.08) {
                let drop = Generator::after(join, span * self.uniform(0.1, 0.9));
                let back = Generator::after(drop, self.uniform(20.0, 360.0));
                intervals.push((join, drop));
                if back < leave {
                    intervals.push((back, leave));
                }
            } else if join < leave {
                intervals.push((join, leave));
            }
        }
        Participant {
            endpoint,
            intervals,
            quality,
        }
    }

    /// Schedules a planned meeting's events. A meeting on air at the start whose opening
    /// is not published is announced at the start, with the rooms connected then (as a
    /// feed starting up would).
    pub(super) fn launch(&mut self, run: MeetingRun) {
        let m = run.key;
        let s = self.start;
        if !self.emitted(run.start) && run.end > s {
            self.schedule(s, Task::Meeting(MeetingTask::Start(m)));
            for (i, p) in run.participants.iter().enumerate() {
                if p.intervals.iter().any(|&(j, l)| j <= s && s < l) {
                    let at = self.jittered(s, 2000);
                    self.schedule(at, Task::Meeting(MeetingTask::Join(m, i as u16)));
                }
            }
        }
        self.schedule(run.start, Task::Meeting(MeetingTask::Start(m)));
        for (i, p) in run.participants.iter().enumerate() {
            let i = i as u16;
            for &(join, leave) in &p.intervals {
                self.schedule(join, Task::Meeting(MeetingTask::Join(m, i)));
                self.schedule(leave, Task::Meeting(MeetingTask::Left(m, i)));
            }
            if let Some(&(join, _)) = p.intervals.first() {
                // Samples of the past are not even generated, except the last two minutes
                // of a replayed history (the latest sample is what shows the link quality).
                let replayed = s.minus_secs(STATS_REPLAYED_SECS);
                let from = join.max(if self.emitted(join) { replayed } else { s });
                let first = Generator::after(from, self.uniform(1.0, 5.0));
                self.schedule(first, Task::Meeting(MeetingTask::Stats(m, i)));
            }
        }
        self.schedule(run.end, Task::Meeting(MeetingTask::End(m)));
        self.meetings.insert(m, run);
    }

    fn meeting_started(&mut self, at: Ts, m: u32) {
        let Some(run) = self.meetings.get(&m) else {
            return;
        };
        let expected: Vec<Value> = run
            .participants
            .iter()
            .map(|p| self.endpoint_id(run, p.endpoint).into())
            .collect();
        let mut obj = Map::new();
        obj.insert("meeting_id".into(), run.id.clone().into());
        obj.insert("title".into(), run.title.into());
        obj.insert("level".into(), run.level.as_str().into());
        obj.insert("expected_endpoints".into(), Value::Array(expected));
        let topic = self.topic(format_args!("vc/meetings/{}", run.id));
        self.emit(at, Source::Vc, topic, "meeting_started", obj);
    }

    fn meeting_ended(&mut self, at: Ts, m: u32) {
        let Some(run) = self.meetings.remove(&m) else {
            return;
        };
        let mut obj = Map::new();
        obj.insert("meeting_id".into(), run.id.clone().into());
        let topic = self.topic(format_args!("vc/meetings/{}", run.id));
        self.emit(at, Source::Vc, topic, "meeting_ended", obj);
    }

    /// The meeting id and the endpoint's id and agency, if the meeting is still planned.
    fn endpoint_of(&self, m: u32, p: u16) -> Option<(String, String, &str)> {
        let run = self.meetings.get(&m)?;
        let part = run.participants.get(usize::from(p))?;
        let (_, agency) = self.province.endpoints.get(usize::from(part.endpoint))?;
        Some((
            run.id.clone(),
            self.endpoint_id(run, part.endpoint),
            agency.as_str(),
        ))
    }

    /// The id of endpoint `e` in the copy of the province that `run` belongs to.
    fn endpoint_id(&self, run: &MeetingRun, e: u16) -> String {
        let id = self
            .province
            .endpoints
            .get(usize::from(e))
            .map_or("EP-?", |(id, _)| id);
        if run.replica == 0 {
            id.to_owned()
        } else {
            format!("{id}-P{}", run.replica)
        }
    }

    fn endpoint_event(&mut self, at: Ts, m: u32, p: u16, ty: &str) {
        let Some((meeting, ep, agency)) = self.endpoint_of(m, p) else {
            return;
        };
        let mut obj = Map::new();
        obj.insert("meeting_id".into(), meeting.into());
        if ty == "endpoint_joined" {
            obj.insert("agency".into(), agency.into());
        }
        let topic = self.topic(format_args!("vc/endpoints/{ep}"));
        obj.insert("endpoint_id".into(), ep.into());
        self.emit(at, Source::Vc, topic, ty, obj);
    }

    /// Emits a sample if connected, and schedules the next one (or the first after a
    /// reconnection).
    fn endpoint_stats(&mut self, at: Ts, m: u32, p: u16) {
        let Some(run) = self.meetings.get(&m) else {
            return;
        };
        let Some(part) = run.participants.get(usize::from(p)) else {
            return;
        };
        let quality = part.quality;
        let connected = part.intervals.iter().any(|&(j, l)| j <= at && at < l);
        let next = if connected {
            Some(at.plus_secs(STATS_INTERVAL_SECS))
        } else {
            part.intervals
                .iter()
                .find(|&&(j, _)| j > at)
                .map(|&(j, _)| j.plus_secs(2))
        };
        if connected {
            self.emit_stats(at, m, p, quality);
        }
        if let Some(next) = next {
            self.schedule(next, Task::Meeting(MeetingTask::Stats(m, p)));
        }
    }

    fn emit_stats(&mut self, at: Ts, m: u32, p: u16, quality: Quality) {
        let bad = match quality {
            Quality::Good => false,
            Quality::Poor => true,
            Quality::Flaky => self.chance(0.15),
        };
        let (loss, jitter, rtt, kbps) = if bad {
            (
                self.uniform(1.2, 6.0),
                self.uniform(20.0, 80.0),
                self.uniform(120.0, 420.0),
                self.uniform(300.0, 900.0),
            )
        } else {
            (
                self.uniform(0.0, 0.4),
                self.uniform(3.0, 18.0),
                self.uniform(25.0, 90.0),
                self.uniform(1400.0, 2048.0),
            )
        };
        let Some((meeting, ep, _)) = self.endpoint_of(m, p) else {
            return;
        };
        let round = |v: f64| (v * 10.0).round() / 10.0;
        let mut obj = Map::new();
        obj.insert("meeting_id".into(), meeting.into());
        obj.insert("packet_loss_pct".into(), round(loss).into());
        obj.insert("jitter_ms".into(), round(jitter).into());
        obj.insert("rtt_ms".into(), round(rtt).into());
        obj.insert("bitrate_kbps".into(), kbps.round().into());
        let topic = self.topic(format_args!("vc/endpoints/{ep}"));
        obj.insert("endpoint_id".into(), ep.into());
        self.emit(at, Source::Vc, topic, "endpoint_stats", obj);
    }

    /// The Government with the province hall and many communes.
    fn central_endpoints(&mut self) -> Vec<u16> {
        let mut out = vec![0];
        if self.chance(0.5) {
            out.push(1);
        }
        let n = if self.chance(0.4) {
            usize::MAX
        } else {
            self.uniform(20.0, 80.0) as usize
        };
        out.extend(self.some_communes(n));
        out
    }

    /// The province hall, some departments and communes.
    fn province_endpoints(&mut self) -> Vec<u16> {
        let mut out = vec![0];
        let departments = self.province.first_commune_endpoint() - 3;
        let k = self.uniform(3.0, 10.0) as usize;
        let picked = self.sample(departments, k);
        out.extend(picked.into_iter().map(|d| (d + 3) as u16));
        let n = self.uniform(10.0, 148.0) as usize;
        out.extend(self.some_communes(n));
        out
    }

    /// The communes of one cluster, sometimes with the province hall.
    fn cluster_endpoints(&mut self) -> Vec<u16> {
        let first = self.province.first_commune_endpoint();
        let cluster = self.rng_index(12) + 1;
        let prefix = format!("X{cluster:02}.");
        let mut out: Vec<u16> = self.province.endpoints[first..]
            .iter()
            .enumerate()
            .filter(|(_, (_, agency))| agency.starts_with(&prefix))
            .map(|(i, _)| (first + i) as u16)
            .collect();
        if self.chance(0.5) {
            out.insert(0, 0);
        }
        out
    }

    /// Up to `n` distinct commune endpoints, in order.
    fn some_communes(&mut self, n: usize) -> Vec<u16> {
        let first = self.province.first_commune_endpoint();
        let count = self.province.endpoints.len() - first;
        let mut picked = self.sample(count, n.min(count));
        picked.sort_unstable();
        picked.into_iter().map(|i| (first + i) as u16).collect()
    }

    /// `k` distinct indices below `n` (partial Fisher–Yates).
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.rng_index(n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }

    /// A uniform index below `n` (0 when `n` is 0).
    pub(super) fn rng_index(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.uniform(0.0, n as f64) as usize % n
    }
}
