//! The security operations centre: 75 monitored systems sending a log-shipping heartbeat
//! every two minutes (a few go silent for a while now and then), a steady trickle of mostly
//! low-severity alerts, bursts of scans and attacks on public-facing systems, and incidents
//! that wait minutes (sometimes much longer, at night) for acknowledgement, then hours for
//! resolution. SIEMs write their timestamps in UTC.

use std::collections::HashMap;

use serde_json::Map;

use super::generator::{Generator, Task};
use crate::decode::{Category, Severity, Source};
use crate::time::Ts;

/// Baseline alerts per day at scale 1.
const ALERTS_PER_DAY: f64 = 240.0;
/// Alert bursts (scans, attack campaigns) per day at scale 1.
const BURSTS_PER_DAY: f64 = 4.0;
/// Incidents opened per day at scale 1 (besides those following bursts).
const INCIDENTS_PER_DAY: f64 = 3.0;
/// Log-shipping outages per day (not scaled: the systems are the same).
const OUTAGES_PER_DAY: f64 = 0.6;
/// Seconds between two heartbeats of a system.
const SYSTEM_HEARTBEAT_SECS: i64 = 120;
/// The first systems are public-facing and draw most attacks.
const EXPOSED: usize = 8;

/// A SOC task.
#[derive(Clone, Copy, Debug)]
pub(super) enum SocTask {
    SystemHeartbeat(u16),
    AlertArrival,
    BurstArrival,
    BurstAlert { system: u16, category: Category },
    IncidentArrival,
    IncidentOpen(u32),
    IncidentAck(u32),
    IncidentResolve(u32),
    OutageArrival,
}

/// An incident's identity.
#[derive(Clone, Debug)]
pub(super) struct IncidentRun {
    pub id: String,
    pub system: u16,
    pub severity: Severity,
    pub title: &'static str,
}

/// SOC state of the simulation.
#[derive(Clone, Debug)]
pub(super) struct SocSim {
    /// Per system: silent (no heartbeat, no alert) from the first instant to the second.
    pub outages: Vec<(Ts, Ts)>,
    pub incidents: HashMap<u32, IncidentRun>,
    incident_serial: u32,
    alert_serial: u64,
}

impl SocSim {
    pub(super) fn new(systems: usize) -> Self {
        Self {
            outages: vec![(Ts(i64::MIN), Ts(i64::MIN)); systems],
            incidents: HashMap::new(),
            incident_serial: 0,
            alert_serial: 0,
        }
    }
}

const INCIDENT_TITLES: &[&str] = &[
    "Web shell trên cổng dịch vụ công",
    "Tấn công từ chối dịch vụ vào cổng thông tin điện tử",
    "Phát hiện mã độc trên máy chủ ứng dụng",
    "Đăng nhập trái phép tài khoản quản trị",
    "Dò quét lỗ hổng hàng loạt từ nước ngoài",
    "Lộ lọt tài khoản thư điện tử công vụ",
    "Khai thác lỗ hổng SQL injection",
    "Máy trạm kết nối đến máy chủ điều khiển mã độc",
];

fn signature(category: Category, pick: usize) -> &'static str {
    let list: &[&str] = match category {
        Category::Intrusion => &[
            "SQL injection attempt on /dichvucong/api",
            "Brute force SSH login",
            "Path traversal attempt",
        ],
        Category::Recon => &[
            "Port scan detected",
            "Directory enumeration",
            "Nmap OS fingerprint",
        ],
        Category::Malware => &[
            "Cobalt Strike beacon",
            "Trojan.GenericKD detected",
            "Emotet C2 traffic",
        ],
        Category::Ddos => &["SYN flood", "HTTP flood on /"],
        Category::Phishing => &["Credential harvesting link in e-mail"],
        Category::Policy => &["Outdated TLS version", "RDP from a non-whitelisted address"],
        Category::Other => &["Anomalous outbound traffic"],
    };
    list[pick % list.len()]
}

impl Generator {
    /// Starts the SOC processes at `from`.
    pub(super) fn schedule_soc(&mut self, from: Ts) {
        let n = self.province.systems.len();
        for i in 0..n {
            let phase = (i as i64 * SYSTEM_HEARTBEAT_SECS * 1000) / n as i64;
            let at = Ts(from.0 + phase * 1_000_000);
            self.schedule(at, Task::Soc(SocTask::SystemHeartbeat(i as u16)));
        }
        for task in [
            SocTask::AlertArrival,
            SocTask::BurstArrival,
            SocTask::IncidentArrival,
            SocTask::OutageArrival,
        ] {
            let at = Generator::after(from, self.exp(600.0));
            self.schedule(at, Task::Soc(task));
        }
    }

    pub(super) fn soc_task(&mut self, at: Ts, task: SocTask) {
        match task {
            SocTask::SystemHeartbeat(s) => self.system_heartbeat(at, s),
            SocTask::AlertArrival => {
                let system = self.pick_system();
                let category = self.pick_category();
                self.alert(at, system, category);
                self.again(at, ALERTS_PER_DAY, true, SocTask::AlertArrival);
            }
            SocTask::BurstArrival => {
                self.burst(at);
                self.again(at, BURSTS_PER_DAY, true, SocTask::BurstArrival);
            }
            SocTask::BurstAlert { system, category } => self.alert(at, system, category),
            SocTask::IncidentArrival => {
                let system = self.pick_system();
                let severity = Severity::ALL[self.pick_weighted(&[0.2, 0.4, 0.3, 0.1])];
                self.open_incident(at, system, severity);
                self.again(at, INCIDENTS_PER_DAY, true, SocTask::IncidentArrival);
            }
            SocTask::IncidentOpen(i) => self.incident_event(at, i, "incident_opened"),
            SocTask::IncidentAck(i) => self.incident_event(at, i, "incident_acknowledged"),
            SocTask::IncidentResolve(i) => {
                self.incident_event(at, i, "incident_resolved");
                self.soc.incidents.remove(&i);
            }
            SocTask::OutageArrival => {
                let system = self.rng_index(self.province.systems.len());
                let minutes = self.uniform(15.0, 120.0);
                self.soc.outages[system] = (at, Generator::after(at, minutes * 60.0));
                self.again(at, OUTAGES_PER_DAY, false, SocTask::OutageArrival);
            }
        }
    }

    /// Reschedules a Poisson process of `per_day` events (scaled or not).
    fn again(&mut self, at: Ts, per_day: f64, scaled: bool, task: SocTask) {
        let scale = if scaled { self.base_scale() } else { 1.0 };
        let gap = self.exp(86_400.0 / (per_day * scale));
        self.schedule(Generator::after(at, gap), Task::Soc(task));
    }

    fn silent(&self, at: Ts, system: u16) -> bool {
        self.soc
            .outages
            .get(usize::from(system))
            .is_some_and(|(from, until)| *from <= at && at < *until)
    }

    fn system_heartbeat(&mut self, at: Ts, system: u16) {
        if !self.silent(at, system) {
            let id = self.province.systems[usize::from(system)].clone();
            let mut obj = Map::new();
            obj.insert("system_id".into(), id.clone().into());
            let topic = self.topic(format_args!("soc/systems/{id}"));
            self.emit(at, Source::Soc, topic, "system_heartbeat", obj);
        }
        let next = self.jittered(at.plus_secs(SYSTEM_HEARTBEAT_SECS), 300);
        self.schedule(next, Task::Soc(SocTask::SystemHeartbeat(system)));
    }

    /// A burst: tens to a hundred-odd alerts on one exposed system within minutes,
    /// followed by an incident three times in ten.
    pub(super) fn burst(&mut self, at: Ts) {
        let system = self.rng_index(EXPOSED) as u16;
        let category = [
            Category::Recon,
            Category::Intrusion,
            Category::Ddos,
            Category::Malware,
        ][self.pick_weighted(&[0.5, 0.25, 0.15, 0.1])];
        let n = self.uniform(20.0, 150.0) as usize;
        let span = self.uniform(120.0, 600.0);
        for _ in 0..n {
            let t = Generator::after(at, self.uniform(0.0, span));
            self.schedule(t, Task::Soc(SocTask::BurstAlert { system, category }));
        }
        if self.chance(0.3) {
            let severity = if self.chance(0.3) {
                Severity::Critical
            } else {
                Severity::High
            };
            let t = Generator::after(at, self.uniform(60.0, 300.0));
            self.open_incident(t, system, severity);
        }
    }

    fn alert(&mut self, at: Ts, system: u16, category: Category) {
        if self.silent(at, system) {
            return;
        }
        let severity = self.severity_for(category);
        self.soc.alert_serial += 1;
        let alert_id = format!("SIEM-{:03}{:07}", self.tag % 1000, self.soc.alert_serial);
        let system_id = self.province.systems[usize::from(system)].clone();
        let external = !matches!(category, Category::Malware | Category::Policy);
        let src = if external {
            let net = ["203.0.113", "198.51.100", "192.0.2"][self.rng_index(3)];
            format!("{net}.{}", self.rng_index(254) + 1)
        } else {
            format!("10.20.{}.{}", self.rng_index(40), self.rng_index(254) + 1)
        };
        let dst = format!("10.20.1.{}", usize::from(system) % 250 + 2);
        let sig = signature(category, self.rng_index(3));
        let mut obj = Map::new();
        obj.insert("alert_id".into(), alert_id.into());
        obj.insert("system_id".into(), system_id.clone().into());
        obj.insert("severity".into(), severity.as_str().into());
        obj.insert("category".into(), category.as_str().into());
        obj.insert("src_ip".into(), src.into());
        obj.insert("dst_ip".into(), dst.into());
        obj.insert("signature".into(), sig.into());
        let topic = self.topic(format_args!("soc/alerts/{system_id}"));
        self.emit(at, Source::Soc, topic, "alert", obj);
    }

    /// Opens an incident at `at` and plans its acknowledgement (96 %, minutes later, more
    /// at night) and resolution (hours later).
    pub(super) fn open_incident(&mut self, at: Ts, system: u16, severity: Severity) {
        let key = self.new_incident(at, system, severity);
        let off_hours = self.daily() && !self.clock.in_office(at);
        let ack_median = if off_hours { 20.0 } else { 7.0 } * 60.0;
        let ack = Generator::after(at, self.lognormal(ack_median, 0.9).max(30.0));
        let fix = Generator::after(ack, self.lognormal(3.0 * 3600.0, 1.0).max(600.0));
        let acknowledged = self.chance(0.96);
        self.plan_incident(key, acknowledged.then_some(ack), fix);
    }

    /// Registers an incident and schedules its opening at `at`; returns its key.
    pub(super) fn new_incident(&mut self, at: Ts, system: u16, severity: Severity) -> u32 {
        self.soc.incident_serial += 1;
        let key = self.soc.incident_serial;
        let title = INCIDENT_TITLES[self.rng_index(INCIDENT_TITLES.len())];
        let id = format!(
            "INC-{}-{:03}{:04}",
            self.clock.year(at),
            self.tag % 1000,
            key
        );
        let run = IncidentRun {
            id,
            system,
            severity,
            title,
        };
        self.soc.incidents.insert(key, run);
        self.schedule(at, Task::Soc(SocTask::IncidentOpen(key)));
        key
    }

    /// Schedules an incident's acknowledgement (if any) and resolution.
    pub(super) fn plan_incident(&mut self, key: u32, ack: Option<Ts>, resolve: Ts) {
        if let Some(ack) = ack {
            self.schedule(ack, Task::Soc(SocTask::IncidentAck(key)));
        }
        self.schedule(resolve, Task::Soc(SocTask::IncidentResolve(key)));
    }

    fn incident_event(&mut self, at: Ts, key: u32, ty: &str) {
        let Some(inc) = self.soc.incidents.get(&key) else {
            return;
        };
        let mut obj = Map::new();
        obj.insert("incident_id".into(), inc.id.clone().into());
        if ty == "incident_opened" {
            let system = self.province.systems[usize::from(inc.system)].clone();
            obj.insert("system_id".into(), system.into());
            obj.insert("severity".into(), inc.severity.as_str().into());
            obj.insert("title".into(), inc.title.into());
        }
        let topic = self.topic(format_args!("soc/incidents/{}", inc.id));
        self.emit(at, Source::Soc, topic, ty, obj);
    }

    fn pick_system(&mut self) -> u16 {
        let n = self.province.systems.len();
        // Exposed systems draw four times their share.
        let weights: [f64; 2] = [4.0 * EXPOSED as f64, (n - EXPOSED) as f64];
        let i = if self.pick_weighted(&weights) == 0 {
            self.rng_index(EXPOSED)
        } else {
            EXPOSED + self.rng_index(n - EXPOSED)
        };
        i as u16
    }

    fn pick_category(&mut self) -> Category {
        const WEIGHTS: [f64; 7] = [0.08, 0.15, 0.03, 0.07, 0.4, 0.15, 0.12];
        Category::ALL[self.pick_weighted(&WEIGHTS)]
    }

    fn severity_for(&mut self, category: Category) -> Severity {
        let w: [f64; 4] = match category {
            Category::Recon => [0.8, 0.2, 0.0, 0.0],
            Category::Policy => [0.7, 0.3, 0.0, 0.0],
            Category::Intrusion => [0.0, 0.5, 0.4, 0.1],
            Category::Malware => [0.0, 0.3, 0.5, 0.2],
            Category::Ddos => [0.0, 0.4, 0.5, 0.1],
            Category::Phishing => [0.3, 0.6, 0.1, 0.0],
            Category::Other => [0.6, 0.4, 0.0, 0.0],
        };
        Severity::ALL[self.pick_weighted(&w)]
    }
}
