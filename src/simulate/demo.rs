//! The demo's scripted scene, on top of the replayed history, so that every panel of the
//! wall and several alerts show within the first minute of `iocd demo`, and some change
//! while one watches:
//!
//! - a Government session on air for 20 minutes with 60 expected endpoints: three never
//!   joined, four on poor links, one dropped three minutes ago and back 40 seconds in;
//! - a commune cluster meeting going on air 90 seconds in;
//! - a critical incident on the public service portal, unacknowledged for 25 minutes
//!   (acknowledged 8 minutes in), and a high one opened 5 minutes before the start, whose
//!   acknowledgement is late enough to raise the alert 10 minutes in;
//! - the camera platform's log shipping silent for 12 minutes (back 6 minutes in);
//! - alert bursts on exposed systems 8 minutes before and 20 seconds in.
//!
//! Open dossiers overdue, stalled and due soon come from the replayed week of dossiers.

use super::generator::Generator;
use super::meetings::Quality;
use crate::decode::{Level, Severity};
use crate::time::Ts;

const MIN: i64 = 60;

impl Generator {
    pub(super) fn schedule_demo(&mut self) {
        let s = self.start;
        self.demo_session(s);
        let cluster = self.plan_meeting(Level::Commune, s.plus_secs(90));
        self.launch(cluster);
        let portal = self.system_index("HT-DVC");
        let critical = self.new_incident(s.minus_secs(25 * MIN), portal, Severity::Critical);
        if let Some(inc) = self.soc.incidents.get_mut(&critical) {
            inc.title = "Web shell trên cổng dịch vụ công";
        }
        self.plan_incident(critical, Some(s.plus_secs(8 * MIN)), s.plus_secs(45 * MIN));
        let documents = self.system_index("HT-QLVB");
        let high = self.new_incident(s.minus_secs(5 * MIN), documents, Severity::High);
        self.plan_incident(high, Some(s.plus_secs(20 * MIN)), s.plus_secs(90 * MIN));
        let cameras = usize::from(self.system_index("HT-CAMERA"));
        if let Some(window) = self.soc.outages.get_mut(cameras) {
            *window = (s.minus_secs(12 * MIN), s.plus_secs(6 * MIN));
        }
        self.burst(s.minus_secs(8 * MIN));
        self.burst(s.plus_secs(20));
    }

    /// The Government session with its scripted endpoints.
    fn demo_session(&mut self, s: Ts) {
        let mut run = self.plan_meeting(Level::Central, s.minus_secs(20 * MIN));
        run.title = "Hội nghị trực tuyến Chính phủ với các địa phương";
        run.end = s.plus_secs(100 * MIN);
        let first_commune = self.province.first_commune_endpoint();
        let endpoints: Vec<u16> = [0, 1]
            .into_iter()
            .chain((0..58).map(|i| first_commune + i * 2))
            .map(|e| e as u16)
            .collect();
        run.participants = endpoints
            .into_iter()
            .enumerate()
            .map(|(i, endpoint)| {
                let delay = self.uniform(15.0, 240.0) as i64;
                let join = self.jittered(run.start.plus_secs(delay), 999);
                let leave = run.end.minus_secs(self.uniform(5.0, 120.0) as i64);
                let intervals = match i {
                    5 | 17 | 33 => Vec::new(),
                    12 => vec![(join, s.minus_secs(3 * MIN)), (s.plus_secs(40), leave)],
                    _ => vec![(join, leave)],
                };
                let quality = match i {
                    8 | 21 | 40 | 52 => Quality::Poor,
                    _ => Quality::Good,
                };
                super::meetings::Participant {
                    endpoint,
                    intervals,
                    quality,
                }
            })
            .collect();
        self.launch(run);
    }

    fn system_index(&self, id: &str) -> u16 {
        self.province
            .systems
            .iter()
            .position(|s| s == id)
            .unwrap_or(0) as u16
    }
}
