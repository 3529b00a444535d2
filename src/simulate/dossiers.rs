//! The one-stop system: citizens file dossiers (88 % online, at any hour; the rest at the
//! desk in office hours), and each dossier's whole lifecycle is planned when it arrives, in
//! office time: received (with its working-day deadline) → transferred → sometimes a
//! supplement or a fee pause (each with a new deadline) → resolved (mostly early, a few
//! late, about 2 % after stalling for days) → returned; a few are refused at intake,
//! withdrawn or cancelled. Every step carries the agency handling the dossier.

use serde_json::{Map, Value};

use super::generator::{Generator, Task, pick_cumulative};
use super::model::{CENTRE, LAND_OFFICE, PROCEDURES, Tier};
use crate::decode::{Channel, DossierKind, Source};
use crate::time::Ts;

/// Dossiers filed per working day at scale 1 (new Phú Thọ, about 3 million a year).
pub const DOSSIERS_PER_WORKING_DAY: f64 = 12_000.0;
/// Share filed online.
pub const ONLINE_SHARE: f64 = 0.88;
/// Share of online submissions refused at intake.
const REFUSED_AT_INTAKE: f64 = 0.03;
/// Share of desk filings sent by public postal service.
const POSTAL_SHARE: f64 = 0.15;
/// Share of received dossiers that stall (no event for days).
const STALL_SHARE: f64 = 0.02;
/// Share of received dossiers resolved late for other reasons (workload, complexity).
const LATE_SHARE: f64 = 0.009;
/// Share withdrawn by the citizen, then cancelled, after receipt.
const WITHDRAWN_SHARE: f64 = 0.01;
const CANCELLED_SHARE: f64 = 0.003;
/// Share of results handed back (the rest stay uncollected).
const RETURNED_SHARE: f64 = 0.93;
/// Share of refusals among results.
const REFUSED_OUTCOME: f64 = 0.04;
// Contract 1.2 (the 766 indicators). Shares of received dossiers: carrying fees, returning a
// paper result, digitised at receipt, reusing digitised data; of results: an electronic file.
const FEE_REQUIRED_SHARE: f64 = 0.4;
const PAPER_RESULT_SHARE: f64 = 0.8;
const DIGITISED_SHARE: f64 = 0.72;
const REUSED_SHARE: f64 = 0.35;
const ELECTRONIC_RESULT_SHARE: f64 = 0.65;
/// Payments of dossiers with fees: online through the national portal, online through the
/// province's gateway, at the desk.
const PAYMENT_WEIGHTS: [f64; 3] = [0.38, 0.17, 0.45];
/// Share of returned dossiers the citizen rates; ratings very satisfied, satisfied,
/// unsatisfied; share of unsatisfied ratings with a complaint.
const RATED_SHARE: f64 = 0.3;
const RATING_WEIGHTS: [f64; 3] = [0.55, 0.4, 0.05];
const COMPLAINT_SHARE: f64 = 0.3;

/// Facts of contract 1.2 a dossier carries, as bits of [`Step::facts`].
const FEE: u8 = 1;
const PAPER: u8 = 1 << 1;
const DIGITISED: u8 = 1 << 2;
const REUSED: u8 = 1 << 3;
const ELECTRONIC: u8 = 1 << 4;
const COMPLAINT: u8 = 1 << 5;

/// The deadline field of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DueField {
    /// Not carried.
    Absent,
    /// `null`: the procedure has no deadline.
    Null,
    /// A deadline.
    At(Ts),
}

/// One planned lifecycle step of a dossier.
#[derive(Clone, Debug)]
pub(super) struct Step {
    kind: DossierKind,
    /// The dossier's number: receiving agency, day and serial, formatted at emission.
    receiver: u16,
    yymmdd: u32,
    serial: u32,
    /// Agency handling it at this step.
    agency: u16,
    procedure: u16,
    channel: Channel,
    due: DueField,
    /// `outcome` of `resolved` (true: refused), `reason` of `paused` (0 fees, 1 suspended,
    /// 2 other), `method` of `paid` or `rating` of `rated` (their index).
    detail: u8,
    /// The dossier's facts of contract 1.2 ([`FEE`], [`PAPER`], …).
    facts: u8,
}

/// A dossier being planned: its steps so far and where office time stands.
struct Plan {
    base: Step,
    /// Office seconds of the last step.
    x: i64,
    due: Option<Ts>,
    steps: Vec<(Ts, Step)>,
    /// Still to be processed (not refused at intake).
    open: bool,
}

impl Plan {
    fn push(&mut self, at: Ts, kind: DossierKind, due: DueField, detail: u8) {
        let mut step = self.base.clone();
        step.kind = kind;
        step.due = due;
        step.detail = detail;
        self.steps.push((at, step));
    }
}

impl Generator {
    /// A candidate online filing: accepted with the citizen weight of the hour (thinning).
    pub(super) fn online_arrival(&mut self, at: Ts) {
        // At the start itself only the next draw is made (see `cap_at_start`).
        if at != self.start && self.chance(self.clock.citizen_weight(at)) {
            self.plan_dossier(at, true);
        }
        let weekly = DOSSIERS_PER_WORKING_DAY * 5.0 * ONLINE_SHARE;
        let peak_per_sec = weekly / (super::clock::Clock::citizen_week_hours() * 3600.0);
        let gap = self.exp(1.0 / (peak_per_sec * self.scale_at(at)));
        let next = self.cap_at_start(at, Generator::after(at, gap));
        self.schedule(next, Task::OnlineArrival);
    }

    /// A desk or postal filing, in office time.
    pub(super) fn desk_arrival(&mut self, at: Ts) {
        if at != self.start {
            self.plan_dossier(at, false);
        }
        let per_office_sec =
            DOSSIERS_PER_WORKING_DAY * (1.0 - ONLINE_SHARE) / super::clock::OFFICE_DAY_SECS as f64;
        // In the busy rhythm every second is office time: the rate of a busy office hour.
        // A gap in real office seconds, on an office clock that may run faster.
        let gap = self.exp(1.0 / (per_office_sec * self.scale_at(at)));
        self.desk_next_x += gap * self.clock.office_speed();
        let next = self.clock.from_office_secs(self.desk_next_x as i64);
        let next = self.jittered(next.max(at), 999);
        let capped = self.cap_at_start(at, next);
        if capped < next {
            self.desk_next_x = self.clock.office_secs(capped) as f64;
        }
        self.schedule(capped, Task::DeskArrival);
    }

    /// A history arrival process whose next draw crosses the start draws again there, at
    /// the live scale (the exponential gap is memoryless, so this changes no statistics;
    /// the task at the start itself files nothing).
    fn cap_at_start(&self, at: Ts, next: Ts) -> Ts {
        if at < self.start && next > self.start {
            self.start
        } else {
            next
        }
    }

    /// Plans a dossier arriving at `at` and schedules its published steps.
    fn plan_dossier(&mut self, at: Ts, online: bool) {
        let mut plan = self.intake(at, online);
        if plan.open {
            self.process(&mut plan);
        }
        for (t, step) in plan.steps {
            if self.emitted(t) {
                self.schedule(t, Task::Dossier(Box::new(step)));
            }
        }
    }

    /// Filing and receipt (or refusal at intake, which closes the plan).
    fn intake(&mut self, at: Ts, online: bool) -> Plan {
        let pi = pick_cumulative(&mut self.rng, &self.procedure_cum);
        let pr = &PROCEDURES[pi];
        let receiver = match pr.tier {
            Tier::Commune => self.pick_commune(),
            Tier::Province => self.province.agency_index(CENTRE),
        };
        let channel = if online {
            Channel::Online
        } else if self.chance(POSTAL_SHARE) {
            Channel::Postal
        } else {
            Channel::Direct
        };
        let yymmdd = self.clock.yymmdd(at);
        let serial = self.next_serial(receiver, yymmdd);
        let base = Step {
            kind: DossierKind::Submitted,
            receiver: receiver as u16,
            yymmdd,
            serial,
            agency: receiver as u16,
            procedure: pi as u16,
            channel,
            due: DueField::Absent,
            detail: 0,
            facts: self.facts(),
        };
        let mut plan = Plan {
            base,
            x: self.clock.office_secs(at),
            due: None,
            steps: Vec::with_capacity(8),
            open: true,
        };
        let received_at = if online {
            plan.push(at, DossierKind::Submitted, DueField::Absent, 0);
            if self.chance(REFUSED_AT_INTAKE) {
                let t = self.desk_after(&mut plan, 600.0, 2.0 * 3600.0);
                plan.push(t, DossierKind::Rejected, DueField::Absent, 0);
                plan.open = false;
                return plan;
            }
            self.desk_after(&mut plan, 120.0, 1.5 * 3600.0)
        } else {
            at
        };
        plan.due = pr.days.map(|n| self.clock.due_at(received_at, n));
        let due = plan.due.map_or(DueField::Null, DueField::At);
        plan.push(received_at, DossierKind::Received, due, 0);
        if plan.base.facts & FEE != 0 {
            // Fees are paid soon after receipt, online or at the desk.
            let method = self.pick_weighted(&PAYMENT_WEIGHTS) as u8;
            let t = self.desk_after(&mut plan, 300.0, 2.0 * 3600.0);
            plan.push(t, DossierKind::Paid, DueField::Absent, method);
        }
        plan
    }

    /// The facts of contract 1.2 of a new dossier.
    fn facts(&mut self) -> u8 {
        let mut facts = 0;
        for (bit, share) in [
            (FEE, FEE_REQUIRED_SHARE),
            (PAPER, PAPER_RESULT_SHARE),
            (DIGITISED, DIGITISED_SHARE),
            (REUSED, REUSED_SHARE),
            (ELECTRONIC, ELECTRONIC_RESULT_SHARE),
        ] {
            if self.chance(share) {
                facts |= bit;
            }
        }
        facts
    }

    /// Processing after receipt, through to the result and its return.
    fn process(&mut self, plan: &mut Plan) {
        let day = self.clock.workday_secs();
        let pr = PROCEDURES[usize::from(plan.base.procedure)];
        // Passed on to the officer or department who handles it (chuyển xử lý).
        plan.base.agency = self.handler(plan.base.agency, &pr) as u16;
        let t = self.desk_after(plan, 300.0, 3.0 * 3600.0);
        plan.push(t, DossierKind::Transferred, DueField::Absent, 0);
        if self.chance(0.3) {
            // To the leader for signature.
            let t = self.desk_after(plan, 1800.0, 0.8 * day);
            plan.push(t, DossierKind::Transferred, DueField::Absent, 0);
        }
        let fate: f64 = self.uniform(0.0, 1.0);
        if fate < WITHDRAWN_SHARE + CANCELLED_SHARE {
            let kind = if fate < WITHDRAWN_SHARE {
                DossierKind::Withdrawn
            } else {
                DossierKind::Cancelled
            };
            let t = self.desk_after(plan, 600.0, 1.5 * day);
            plan.push(t, kind, DueField::Absent, 0);
            return;
        }
        if self.chance(pr.supplement) {
            self.supplement(plan);
        }
        if self.chance(pr.fees) {
            self.fee_pause(plan);
        }
        let stall = self.chance(STALL_SHARE);
        let late = !stall && self.chance(LATE_SHARE);
        self.resolve(plan, stall, late);
    }

    /// The citizen is asked for documents; the clock stops until they come, then the
    /// remaining working days run again from that day.
    fn supplement(&mut self, plan: &mut Plan) {
        let day = self.clock.workday_secs();
        let t = self.desk_after(plan, 1800.0, 1.5 * day);
        plan.push(t, DossierKind::SupplementRequested, DueField::Absent, 0);
        let left = plan.due.map(|due| self.working_days_left(t, due));
        let wait = self.uniform(0.5, 6.0) * day;
        let t = self.desk_after(plan, wait, wait);
        plan.due = left.map(|n| self.clock.due_at(t, n));
        let due = plan.due.map_or(DueField::Absent, DueField::At);
        plan.push(t, DossierKind::SupplementReceived, due, 0);
    }

    /// Processing waits for fees (or is suspended); the deadline moves by the pause.
    fn fee_pause(&mut self, plan: &mut Plan) {
        let day = self.clock.workday_secs();
        let reason = self.pick_weighted(&[0.85, 0.1, 0.05]) as u8;
        let t = self.desk_after(plan, 1800.0, day);
        plan.push(t, DossierKind::Paused, DueField::Absent, reason);
        let pause = self.uniform(0.3, 4.0) * day;
        let t2 = self.desk_after(plan, pause, pause);
        let pause_days = (pause / day).ceil().max(1.0) as u32;
        plan.due = plan.due.map(|due| self.clock.due_at(due, pause_days));
        let due = plan.due.map_or(DueField::Absent, DueField::At);
        plan.push(t2, DossierKind::Resumed, due, 0);
    }

    /// The result, in time or not, then its return.
    fn resolve(&mut self, plan: &mut Plan, stall: bool, late: bool) {
        let day = self.clock.workday_secs();
        let due_x = plan.due.map(|d| self.clock.office_secs(d));
        let start = plan.x;
        let mut target = match due_x {
            _ if stall => start + (self.uniform(3.0, 12.0) * day) as i64,
            None => start + self.exp(8.0 * day).max(600.0) as i64,
            Some(dx) if late || dx - start < 1800 => {
                dx.max(start) + self.uniform(600.0, 3.0 * day) as i64
            }
            // In time: anywhere before the deadline.
            Some(dx) => start + ((dx - 600 - start) as f64 * self.uniform(0.0, 1.0)) as i64,
        };
        target = target.max(start + 300);
        if !stall {
            self.progress_steps(plan, target);
        }
        plan.x = target.max(plan.x + 300);
        let t = self.clock.from_office_secs(plan.x);
        let t = self.jittered(t, 999);
        let refused = u8::from(self.chance(REFUSED_OUTCOME));
        let due = plan.due.map_or(DueField::Null, DueField::At);
        plan.push(t, DossierKind::Resolved, due, refused);
        if self.chance(RETURNED_SHARE) {
            let t = self.desk_after(plan, 600.0, 1.5 * day);
            plan.push(t, DossierKind::Returned, DueField::Absent, 0);
            if self.chance(RATED_SHARE) {
                let rating = self.pick_weighted(&RATING_WEIGHTS) as u8;
                if rating == 2 && self.chance(COMPLAINT_SHARE) {
                    plan.base.facts |= COMPLAINT;
                }
                let t = self.desk_after(plan, 60.0, 0.5 * day);
                plan.push(t, DossierKind::Rated, DueField::Absent, rating);
            }
        }
    }

    /// Internal steps (appraisal, consultation, signature) every half to one working day
    /// while the result is more than a working day away, as one-stop systems log them.
    fn progress_steps(&mut self, plan: &mut Plan, until: i64) {
        let day = self.clock.workday_secs();
        while (until - plan.x) as f64 > 1.2 * day {
            let t = self.desk_after(plan, 0.4 * day, day);
            plan.push(t, DossierKind::Transferred, DueField::Absent, 0);
        }
    }

    /// Advances the plan's office clock by a uniform delay in `[lo, hi]` office seconds
    /// and returns that instant (with milliseconds).
    fn desk_after(&mut self, plan: &mut Plan, lo: f64, hi: f64) -> Ts {
        let delay = if hi > lo { self.uniform(lo, hi) } else { lo };
        plan.x += (delay as i64).max(60);
        let t = self.clock.from_office_secs(plan.x);
        self.jittered(t, 999)
    }

    /// Whole working days (at least 1) between `from` and the deadline.
    fn working_days_left(&self, from: Ts, due: Ts) -> u32 {
        let left = self.clock.office_secs(due) - self.clock.office_secs(from);
        (left as f64 / self.clock.workday_secs()).ceil().max(1.0) as u32
    }

    /// Who handles a dossier received by `receiver`.
    fn handler(&mut self, receiver: u16, pr: &super::model::Procedure) -> usize {
        match pr.tier {
            Tier::Province => self.province.department(pr.dept),
            Tier::Commune if pr.sector == "Đất đai" && self.chance(0.5) => {
                self.province.agency_index(LAND_OFFICE)
            }
            Tier::Commune => usize::from(receiver),
        }
    }

    fn pick_commune(&mut self) -> usize {
        let first = self.province.communes().start;
        first + pick_cumulative(&mut self.rng, &self.commune_cum)
    }

    fn next_serial(&mut self, agency: usize, yymmdd: u32) -> u32 {
        let n = self
            .dossier_serials
            .entry((agency as u16, yymmdd))
            .or_insert(0);
        *n += 1;
        *n
    }

    /// Publishes a planned step.
    pub(super) fn dossier_step(&mut self, at: Ts, step: &Step) {
        let agency = &self.province.agencies[usize::from(step.agency)];
        let receiver = &self.province.agencies[usize::from(step.receiver)].code;
        let id = format!(
            "{receiver}-{:06}-{:03}{:04}",
            step.yymmdd,
            self.tag % 1000,
            step.serial
        );
        let mut obj = Map::new();
        obj.insert("dossier_id".into(), id.into());
        let facts = |bit: u8| Value::from(step.facts & bit != 0);
        match step.kind {
            // Contract 1.2: a payment or a rating names no agency.
            DossierKind::Paid => {
                let method = crate::decode::PaymentMethod::ALL[usize::from(step.detail.min(2))];
                obj.insert("method".into(), method.as_str().into());
            }
            DossierKind::Rated => {
                let rating = crate::decode::Rating::ALL[usize::from(step.detail.min(2))];
                obj.insert("rating".into(), rating.as_str().into());
                obj.insert("complaint".into(), facts(COMPLAINT));
            }
            _ => {
                obj.insert("agency".into(), agency.code.clone().into());
            }
        }
        if step.kind == DossierKind::Received {
            obj.insert("fee_required".into(), facts(FEE));
            obj.insert("paper_result".into(), facts(PAPER));
            obj.insert("digitised".into(), facts(DIGITISED));
            obj.insert("reused_data".into(), facts(REUSED));
        }
        if matches!(step.kind, DossierKind::Resolved | DossierKind::Returned) {
            obj.insert("result_electronic".into(), facts(ELECTRONIC));
        }
        if matches!(step.kind, DossierKind::Submitted | DossierKind::Received) {
            let pr = &PROCEDURES[usize::from(step.procedure)];
            let level = match agency.tier {
                Tier::Province => "province",
                Tier::Commune => "commune",
            };
            obj.insert("agency_level".into(), level.into());
            obj.insert("procedure".into(), pr.code.into());
            obj.insert("sector".into(), pr.sector.into());
            obj.insert("channel".into(), step.channel.as_str().into());
        }
        match step.due {
            DueField::Absent => {}
            DueField::Null => {
                obj.insert("due_at".into(), Value::Null);
            }
            DueField::At(due) => {
                obj.insert("due_at".into(), self.clock.rfc3339(due, false).into());
            }
        }
        if step.kind == DossierKind::Resolved {
            let outcome = if step.detail == 1 {
                "refused"
            } else {
                "approved"
            };
            obj.insert("outcome".into(), outcome.into());
        }
        if step.kind == DossierKind::Paused {
            let reason = ["fees", "suspended", "other"][usize::from(step.detail.min(2))];
            obj.insert("reason".into(), reason.into());
        }
        let level = &self.agency_topics[usize::from(step.agency)];
        let topic = self.topic(format_args!("onestop/{level}/dossier"));
        self.emit(at, Source::Onestop, topic, step.kind.as_str(), obj);
    }
}
