//! The Decision 766/QĐ-TTg scorecard, live: iocd's estimates of the indicators it can measure
//! from the one-stop events (contract 1.2), per agency, per level and for the province, for
//! the week, the month or the year to date, beside the period before for the trend.
//!
//! Everything here is an estimate ("ước tính"): the national portal computes the official
//! scores days later, over its own data. Each indicator is a ratio of counts kept as events
//! arrive ([`crate::state::periods::Score`], the open dossiers from the tracker or, for a past
//! period, as they stood at its end); a request costs the agencies, never the dossiers.
//!
//! The rules (docs/scorecard.md says why):
//! - **2.1 progress**: resolved early or on time with at most one supplement request, plus
//!   open and in time, over resolved plus open (received: in progress, waiting for the
//!   citizen, paused). Open and in time: not past the deadline in progress; waiting or paused,
//!   the clock stopped before the deadline; at most one supplement request. The end of the
//!   period stands in for "now" for a past period.
//! - **3.3 online share** at receipt: received online over received.
//! - **3.6 online payment**: paid online (either portal) over received with fees.
//! - **4.1 electronic result**: with an electronic result over resolved with a paper result.
//! - **4.2 digitisation**: digitised and with an electronic result over resolved.
//! - **4.3 data reuse**: reusing digitised data over received.
//! - **5.4 satisfaction**: 100 % minus the late rate (1 − 2.1) minus the rate of handled
//!   dossiers rated unsatisfied or with a complaint.
//!
//! An item whose fact is unknown (the field absent) is left out of that indicator, numerator
//! and denominator; an indicator with no item has no value, never zero.

use serde_json::{Value, json};

use crate::directory::Directory;
use crate::state::State;
use crate::state::dossiers::AgencyGauges;
use crate::state::periods::{MAX_AGENCIES, OTHER, OpenAtEnd, Period, Score};
use crate::time::{Ts, iso_date};

/// Which period the scorecard covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// The local week (Monday to Sunday) to date.
    Week,
    /// The local month to date.
    Month,
    /// The local year to date.
    Year,
}

impl Span {
    /// Parses `week`, `month` or `year`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Span> {
        match s {
            "week" => Some(Span::Week),
            "month" => Some(Span::Month),
            "year" => Some(Span::Year),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Span::Week => "week",
            Span::Month => "month",
            Span::Year => "year",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One indicator iocd measures: where it sits in the Decision's groups, its points and the
/// ratio at which it earns them all.
pub struct Indicator {
    /// Its number in the Decision's annex.
    pub id: &'static str,
    /// Short English key.
    pub key: &'static str,
    /// Vietnamese name, as a 766 officer writes it.
    pub name_vi: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Its group and the group's points.
    pub group: (&'static str, u8),
    /// Its points within the group (iocd's reading of the annex: docs/scorecard.md).
    pub points: f64,
    /// The ratio at which it earns all its points (linear below).
    pub full_at: f64,
}

/// The indicators iocd measures.
pub const INDICATORS: [Indicator; 7] = [
    Indicator {
        id: "2.1",
        key: "progress",
        name_vi: "Tiến độ giải quyết (trước hạn, đúng hạn)",
        name_en: "Processing progress (early or on time)",
        group: ("progress", 20),
        points: 20.0,
        full_at: 1.0,
    },
    Indicator {
        id: "3.3",
        key: "online_share",
        name_vi: "Tỷ lệ hồ sơ trực tuyến",
        name_en: "Share received online",
        group: ("online_services", 12),
        points: 4.0,
        full_at: 0.5,
    },
    Indicator {
        id: "3.6",
        key: "online_payment",
        name_vi: "Tỷ lệ thanh toán trực tuyến",
        name_en: "Fees paid online",
        group: ("online_payment", 10),
        points: 10.0,
        full_at: 1.0,
    },
    Indicator {
        id: "4.1",
        key: "electronic_result",
        name_vi: "Tỷ lệ cấp kết quả điện tử",
        name_en: "Electronic results",
        group: ("digitisation", 22),
        points: 6.0,
        full_at: 1.0,
    },
    Indicator {
        id: "4.2",
        key: "digitisation",
        name_vi: "Tỷ lệ số hóa hồ sơ, kết quả",
        name_en: "Digitised dossiers and results",
        group: ("digitisation", 22),
        points: 10.0,
        full_at: 0.8,
    },
    Indicator {
        id: "4.3",
        key: "data_reuse",
        name_vi: "Tỷ lệ khai thác, sử dụng lại dữ liệu số hóa",
        name_en: "Reuse of digitised data",
        group: ("digitisation", 22),
        points: 6.0,
        full_at: 0.8,
    },
    Indicator {
        id: "5.4",
        key: "satisfaction",
        name_vi: "Mức độ hài lòng",
        name_en: "Satisfaction",
        group: ("satisfaction", 18),
        points: 6.0,
        full_at: 0.9,
    },
];

/// What the Decision scores that iocd does not receive: listed as "not measured here", never
/// as zero.
const NOT_MEASURED: [(&str, &str, &str, f64); 3] = [
    (
        "1",
        "Công khai, minh bạch",
        "Transparency of published procedures",
        18.0,
    ),
    (
        "3",
        "Cung cấp dịch vụ công trực tuyến (các chỉ tiêu khác)",
        "Online services provided (the other indicators)",
        8.0,
    ),
    (
        "5",
        "Tiếp nhận, xử lý phản ánh, kiến nghị",
        "Handling of citizens' feedback (the other indicators)",
        12.0,
    ),
];

/// The counts behind one agency's (or a sum's) indicators in one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Received and resolved counts of the period.
    pub score: Score,
    /// Open and received, and of them late by the 766 rules, at the period's end (now, for
    /// the current one).
    pub open: OpenAtEnd,
}

impl Counts {
    /// Adds `o` (a roll-up).
    pub fn add(&mut self, o: &Counts) {
        self.score.add(&o.score);
        self.open.open += o.open.open;
        self.open.late += o.open.late;
    }

    /// Each indicator's numerator and denominator, in [`INDICATORS`] order.
    #[must_use]
    pub fn fractions(&self) -> [(u64, u64); 7] {
        let s = &self.score;
        let n = |v: i32| u64::try_from(v.max(0)).unwrap_or(0);
        let open = n(self.open.open);
        let open_late = n(self.open.late).min(open);
        let handled = n(s.resolved) + open;
        let in_time = n(s.resolved_in_time) + (open - open_late);
        // 5.4: handled minus late minus unsatisfied (never below zero), over handled.
        let late = handled.saturating_sub(in_time);
        let satisfied = handled.saturating_sub(late + n(s.unsatisfied));
        [
            (in_time, handled),
            (n(s.received_online), n(s.received)),
            (n(s.fee_paid_online), n(s.fee_required)),
            (n(s.paper_electronic), n(s.paper_known)),
            (n(s.digitised_electronic), n(s.digitised_known)),
            (n(s.reused), n(s.reuse_known)),
            (satisfied, handled),
        ]
    }
}

/// An indicator's ratio: numerator over denominator, `None` without items.
#[must_use]
pub fn ratio((num, den): (u64, u64)) -> Option<f64> {
    super::periods::ratio(num.min(den), den)
}

/// The Decision's bands, on the share of the measured points earned.
fn band(percent: f64) -> &'static str {
    match percent {
        p if p >= 90.0 => "excellent",
        p if p >= 70.0 => "good",
        p if p >= 50.0 => "average",
        _ => "weak",
    }
}

/// One indicator's value: its ratio (none without items), numerator and denominator, and
/// the points it earns.
type Value766 = (Option<f64>, (u64, u64), f64);

/// Points earned and measured, and the indicators, of `c`.
fn scored(c: &Counts) -> (f64, f64, Vec<Value766>) {
    let mut earned = 0.0;
    let mut measured = 0.0;
    let rows = INDICATORS
        .iter()
        .zip(c.fractions())
        .map(|(ind, f)| {
            let r = ratio(f);
            let points = r.map_or(0.0, |r| ind.points * (r / ind.full_at).min(1.0));
            if r.is_some() {
                earned += points;
                measured += ind.points;
            }
            (r, f, points)
        })
        .collect();
    (earned, measured, rows)
}

fn round(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

/// One row of the scorecard: `now` and `before` are the counts of the period and of the one
/// before.
fn row(now: &Counts, before: &Counts) -> Value {
    let (earned, measured, rows) = scored(now);
    let (earned_b, measured_b, rows_b) = scored(before);
    let percent = (measured > 0.0).then(|| round(100.0 * earned / measured, 1));
    let percent_b = (measured_b > 0.0).then(|| round(100.0 * earned_b / measured_b, 1));
    let indicators: serde_json::Map<String, Value> = INDICATORS
        .iter()
        .zip(rows.iter().zip(&rows_b))
        .map(|(ind, ((r, (num, den), points), (rb, _, _)))| {
            (
                ind.id.to_owned(),
                json!({
                    "ratio": r.map(|r| round(r, 4)),
                    "numerator": num,
                    "denominator": den,
                    "points": round(*points, 2),
                    "previous_ratio": rb.map(|r| round(r, 4)),
                }),
            )
        })
        .collect();
    json!({
        "score": {
            "earned": round(earned, 2),
            "measured": measured,
            "percent": percent,
            "band": percent.map(band),
            "previous_percent": percent_b,
            "trend": percent.zip(percent_b).map(|(a, b)| round(a - b, 1)),
        },
        "indicators": indicators,
    })
}

/// The first local day of `p` and the last, as ISO dates.
fn dates(p: Period) -> Value {
    let date = |day: i32| iso_date(i64::from(day));
    json!({"from": date(p.first_day()), "to": date(p.end_day() - 1)})
}

/// The counts of `agency` in `p`: its scores, and its open dossiers now (`gauges`, for the
/// current period) or at the end of `p` (a past one).
fn counts(state: &State, agency: u32, p: Period, gauges: Option<&AgencyGauges>) -> Counts {
    let open = match gauges {
        Some(g) => g.open_766(),
        None => state.periods.open_at_end(agency, p),
    };
    Counts {
        score: state.periods.score_of(agency, p),
        open,
    }
}

/// The scorecard for `span` at `now`: every agency the state has counted (ranked by the share
/// of measured points earned, best first; `level` and `agency` narrow the list), the sums by
/// level and for the province, each beside the period before.
#[must_use]
pub fn scorecard(
    state: &State,
    directory: &Directory,
    span: Span,
    (level, agency): (Option<&str>, Option<&str>),
    now: Ts,
) -> Value {
    let cal = &state.params().cal;
    let current = Period::scored(cal.day(now))[span.index()];
    let previous = current.previous();
    let gauges = state.dossiers.tracker().gauges();
    let mut rows: Vec<(String, Counts, Counts)> = Vec::new();
    let mut push = |name: &str, id: u32, g: &AgencyGauges| {
        let now_c = counts(state, id, current, Some(g));
        let before = counts(state, id, previous, None);
        if now_c != Counts::default() || before != Counts::default() {
            rows.push((name.to_owned(), now_c, before));
        }
    };
    // Each agency with tallies of its own, `unknown` (id 0) among them, then `other`: the
    // agencies past the cap together, as the tallies and `/metrics` keep them.
    let (held, own) = (state.agencies.len(), MAX_AGENCIES as usize);
    for id in 0..held.min(own) {
        let id32 = u32::try_from(id).unwrap_or(u32::MAX);
        let g = gauges.get(id).copied().unwrap_or_default();
        push(state.agencies.name(id32), id32, &g);
    }
    if held > own {
        let mut g = AgencyGauges::default();
        for x in gauges.get(own..).unwrap_or_default() {
            g.add(x);
        }
        push("other", OTHER, &g);
    }
    let level_of = |code: &str| directory.get(code).map_or("unknown", |a| a.level.as_str());
    let mut province = (Counts::default(), Counts::default());
    let mut levels: std::collections::BTreeMap<&str, (Counts, Counts)> =
        std::collections::BTreeMap::new();
    for (code, c, b) in &rows {
        province.0.add(c);
        province.1.add(b);
        let l = levels.entry(level_of(code)).or_default();
        l.0.add(c);
        l.1.add(b);
    }
    rows.retain(|(code, _, _)| {
        level.is_none_or(|l| level_of(code) == l) && agency.is_none_or(|a| code == a)
    });
    let mut ranked: Vec<(f64, &String, Value)> = rows
        .iter()
        .map(|(code, c, b)| {
            let (earned, measured, _) = scored(c);
            let key = if measured > 0.0 {
                earned / measured
            } else {
                -1.0
            };
            let mut v = row(c, b);
            let a = directory.get(code);
            if let Some(map) = v.as_object_mut() {
                map.insert("code".into(), json!(code));
                map.insert("name".into(), json!(a.map(|a| &*a.name)));
                map.insert("short_name".into(), json!(a.map(|a| &*a.short_name)));
                map.insert("level".into(), json!(level_of(code)));
            }
            (key, code, v)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let agencies: Vec<Value> = ranked
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut v))| {
            if let Some(map) = v.as_object_mut() {
                map.insert("rank".into(), json!(i + 1));
            }
            v
        })
        .collect();
    json!({
        "period": span.as_str(),
        "current": dates(current),
        "previous": dates(previous),
        "estimate": "Ước tính của iocd từ các sự kiện nhận được, không phải điểm chính thức / iocd's estimate from the events it received, not an official score",
        "indicators": INDICATORS.iter().map(|i| json!({
            "id": i.id, "key": i.key, "name_vi": i.name_vi, "name_en": i.name_en,
            "group": i.group.0, "group_points": i.group.1, "points": i.points, "full_at": i.full_at,
        })).collect::<Vec<_>>(),
        "not_measured": NOT_MEASURED.iter().map(|(id, vi, en, points)| json!({
            "id": id, "name_vi": vi, "name_en": en, "points": points,
        })).collect::<Vec<_>>(),
        "province": row(&province.0, &province.1),
        "by_level": levels.iter().map(|(l, (c, b))| ((*l).to_owned(), row(c, b))).collect::<serde_json::Map<_, _>>(),
        "agencies": agencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_facts_leave_an_indicator_without_a_value_never_zero() {
        let c = Counts::default();
        assert!(c.fractions().iter().all(|&f| ratio(f).is_none()));
        let (earned, measured, _) = scored(&c);
        assert_eq!((earned, measured), (0.0, 0.0));
    }

    #[test]
    fn points_grow_linearly_to_the_full_score_threshold() {
        // 3.3: full at 50 %: 25 % online earns half of its 4 points.
        let c = Counts {
            score: Score {
                received: 4,
                received_online: 1,
                ..Score::default()
            },
            ..Counts::default()
        };
        let (earned, measured, _) = scored(&c);
        assert_eq!((earned, measured), (2.0, 4.0));
        assert_eq!(band(50.0), "average");
        assert_eq!(band(49.9), "weak");
        assert_eq!(band(90.0), "excellent");
    }
}

/// Issue 16, point 4: a month of dossiers built by hand for three agencies, every indicator
/// checked against values worked out by hand in the comments.
#[cfg(test)]
mod worked_example {
    use serde_json::{Value, json};

    use super::*;
    use crate::decode::{DecodeLimits, Source, decode};
    use crate::state::{Input, Params};
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    /// Applies one one-stop event at its own instant (as it would arrive).
    fn apply(state: &mut State, n: &mut u32, ty: &str, id: &str, at: &str, extra: Value) {
        *n += 1;
        let mut v =
            json!({"event_id": format!("e{n}"), "type": ty, "occurred_at": at, "dossier_id": id});
        if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
            map.extend(more);
        }
        let bytes = v.to_string().into_bytes();
        let far = t("2100-01-01T00:00:00Z");
        let ev = decode(Source::Onestop, &bytes, far, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        state.apply(&Input::Event(ev), t(at));
    }

    #[allow(clippy::needless_pass_by_value)] // built in place at each call
    fn received(agency: &str, channel: &str, due: Value, facts: Value) -> Value {
        let mut v = json!({"agency": agency, "procedure": "P", "channel": channel, "due_at": due});
        if let (Some(map), Value::Object(more)) = (v.as_object_mut(), facts) {
            map.extend(more);
        }
        v
    }

    const NOW: &str = "2026-12-18T16:00:00+07:00";

    /// The state of the example: November's end seen by housekeeping, then December.
    #[allow(clippy::too_many_lines)] // the example, one dossier after another
    fn example() -> State {
        let mut s = State::new(Params::default(), t("2026-11-01T00:00:00+07:00"));
        let n = &mut 0;
        // C3: received in November (counts in November's receipts, not December's), due
        // 25/11, resolved late on 1/12 with an electronic result.
        apply(
            &mut s,
            n,
            "received",
            "C3",
            "2026-11-20T09:00:00+07:00",
            received(
                "C",
                "online",
                json!("2026-11-25T17:00:00+07:00"),
                json!({"paper_result": true, "digitised": true}),
            ),
        );
        // Housekeeping on 30/11, then just after midnight: November's open dossiers are taken
        // as they stood at its end (C3, open and late).
        s.apply(&Input::Tick, t("2026-11-30T12:00:00+07:00"));
        s.apply(&Input::Tick, t("2026-12-01T00:01:00+07:00"));
        apply(
            &mut s,
            n,
            "resolved",
            "C3",
            "2026-12-01T10:00:00+07:00",
            json!({"due_at": "2026-11-25T17:00:00+07:00", "result_electronic": true}),
        );

        // Agency A.
        // A1: online, fees paid online, paper result, digitised, reused; resolved early with
        // an electronic result; rated very satisfied.
        apply(
            &mut s,
            n,
            "received",
            "A1",
            "2026-12-01T08:00:00+07:00",
            received(
                "A",
                "online",
                json!("2026-12-05T17:00:00+07:00"),
                json!({"fee_required": true, "paper_result": true, "digitised": true, "reused_data": true}),
            ),
        );
        apply(
            &mut s,
            n,
            "paid",
            "A1",
            "2026-12-01T09:00:00+07:00",
            json!({"method": "online_national"}),
        );
        apply(
            &mut s,
            n,
            "resolved",
            "A1",
            "2026-12-03T10:00:00+07:00",
            json!({"due_at": "2026-12-05T17:00:00+07:00", "result_electronic": true}),
        );
        apply(
            &mut s,
            n,
            "rated",
            "A1",
            "2026-12-04T10:00:00+07:00",
            json!({"rating": "very_satisfied"}),
        );
        // A2: at the desk, fees paid at the desk, paper result, not digitised, no reuse; two
        // supplement requests (late by the 766 rule although resolved before its deadline);
        // no electronic result; rated unsatisfied.
        apply(
            &mut s,
            n,
            "received",
            "A2",
            "2026-12-02T08:00:00+07:00",
            received(
                "A",
                "direct",
                json!("2026-12-08T17:00:00+07:00"),
                json!({"fee_required": true, "paper_result": true, "digitised": false, "reused_data": false}),
            ),
        );
        apply(
            &mut s,
            n,
            "paid",
            "A2",
            "2026-12-02T08:30:00+07:00",
            json!({"method": "direct"}),
        );
        apply(
            &mut s,
            n,
            "supplement_requested",
            "A2",
            "2026-12-03T08:00:00+07:00",
            json!({}),
        );
        apply(
            &mut s,
            n,
            "supplement_received",
            "A2",
            "2026-12-04T08:00:00+07:00",
            json!({"due_at": "2026-12-09T17:00:00+07:00"}),
        );
        apply(
            &mut s,
            n,
            "supplement_requested",
            "A2",
            "2026-12-05T08:00:00+07:00",
            json!({}),
        );
        apply(
            &mut s,
            n,
            "supplement_received",
            "A2",
            "2026-12-07T08:00:00+07:00",
            json!({"due_at": "2026-12-10T17:00:00+07:00"}),
        );
        apply(
            &mut s,
            n,
            "resolved",
            "A2",
            "2026-12-09T10:00:00+07:00",
            json!({"due_at": "2026-12-10T17:00:00+07:00", "result_electronic": false}),
        );
        apply(
            &mut s,
            n,
            "rated",
            "A2",
            "2026-12-11T10:00:00+07:00",
            json!({"rating": "unsatisfied"}),
        );
        // A3: online, no fees, no paper result, digitised, reused; still in progress, past
        // its deadline of 15/12: open and late.
        apply(
            &mut s,
            n,
            "received",
            "A3",
            "2026-12-10T08:00:00+07:00",
            received(
                "A",
                "online",
                json!("2026-12-15T17:00:00+07:00"),
                json!({"fee_required": false, "paper_result": false, "digitised": true, "reused_data": true}),
            ),
        );

        // Agency B.
        // B1: online, fees not paid yet, paused for the fees on 2/12, before its deadline of
        // 4/12: the clock stopped in time (open, in time).
        apply(
            &mut s,
            n,
            "received",
            "B1",
            "2026-12-01T08:00:00+07:00",
            received(
                "B",
                "online",
                json!("2026-12-04T17:00:00+07:00"),
                json!({"fee_required": true, "paper_result": true, "digitised": true, "reused_data": false}),
            ),
        );
        apply(
            &mut s,
            n,
            "paused",
            "B1",
            "2026-12-02T08:00:00+07:00",
            json!({"reason": "fees"}),
        );
        // B2: at the desk, fees paid online through the province's gateway, no paper result,
        // digitised, reused; resolved late with an electronic result; rated satisfied, with a
        // complaint.
        apply(
            &mut s,
            n,
            "received",
            "B2",
            "2026-12-03T08:00:00+07:00",
            received(
                "B",
                "direct",
                json!("2026-12-07T17:00:00+07:00"),
                json!({"fee_required": true, "paper_result": false, "digitised": true, "reused_data": true}),
            ),
        );
        apply(
            &mut s,
            n,
            "paid",
            "B2",
            "2026-12-03T09:00:00+07:00",
            json!({"method": "online_local"}),
        );
        apply(
            &mut s,
            n,
            "resolved",
            "B2",
            "2026-12-08T10:00:00+07:00",
            json!({"due_at": "2026-12-07T17:00:00+07:00", "result_electronic": true}),
        );
        apply(
            &mut s,
            n,
            "rated",
            "B2",
            "2026-12-09T10:00:00+07:00",
            json!({"rating": "satisfied", "complaint": true}),
        );
        // B3: by post, no deadline, no fact of 1.2 known; resolved (on time: no deadline).
        apply(
            &mut s,
            n,
            "received",
            "B3",
            "2026-12-04T08:00:00+07:00",
            received("B", "postal", Value::Null, json!({})),
        );
        apply(
            &mut s,
            n,
            "resolved",
            "B3",
            "2026-12-05T10:00:00+07:00",
            json!({"due_at": null}),
        );

        // Agency C.
        // C1: online, paper result, digitised, reused; waiting for the citizen since 5/12,
        // before its deadline of 20/12: in time.
        apply(
            &mut s,
            n,
            "received",
            "C1",
            "2026-12-02T08:00:00+07:00",
            received(
                "C",
                "online",
                json!("2026-12-20T17:00:00+07:00"),
                json!({"paper_result": true, "digitised": true, "reused_data": true}),
            ),
        );
        apply(
            &mut s,
            n,
            "supplement_requested",
            "C1",
            "2026-12-05T08:00:00+07:00",
            json!({}),
        );
        // C2: online, nothing of 1.2 known; asked for documents on 6/12, after its deadline
        // of 4/12: the clock stopped late (open, late).
        apply(
            &mut s,
            n,
            "received",
            "C2",
            "2026-12-02T09:00:00+07:00",
            received("C", "online", json!("2026-12-04T17:00:00+07:00"), json!({})),
        );
        apply(
            &mut s,
            n,
            "supplement_requested",
            "C2",
            "2026-12-06T08:00:00+07:00",
            json!({}),
        );

        let params = s.params().clone();
        s.dossiers.advance(&params, t(NOW));
        s
    }

    /// `ratio`, `numerator`, `denominator` of indicator `id` in a row.
    fn ind(row: &Value, id: &str) -> (Option<f64>, u64, u64) {
        let i = &row["indicators"][id];
        (
            i["ratio"].as_f64(),
            i["numerator"].as_u64().unwrap(),
            i["denominator"].as_u64().unwrap(),
        )
    }

    /// `num / den` rounded as the scorecard writes ratios, as the option it compares with.
    #[allow(clippy::unnecessary_wraps)]
    fn r4(num: f64, den: f64) -> Option<f64> {
        Some(round(num / den, 4))
    }

    #[test]
    fn every_indicator_of_a_hand_built_month_is_as_worked_out_by_hand() {
        let state = example();
        let card = scorecard(
            &state,
            &Directory::default(),
            Span::Month,
            (None, None),
            t(NOW),
        );
        let row = |code: &str| {
            card["agencies"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["code"] == code)
                .unwrap_or_else(|| panic!("no {code} in {card}"))
                .clone()
        };
        let (ag_a, ag_b, ag_c, province) = (row("A"), row("B"), row("C"), card["province"].clone());

        // Agency A. Received 3 (A1, A2, A3), 2 online. Fees: A1, A2; paid online: A1.
        // Reuse known for 3, reused by A1 and A3. Resolved 2 (A1 early, A2 early but with
        // two supplement requests: late for 766), open 1 (A3, past its deadline): handled 3,
        // in time 1. Paper result with a known electronic result: A1 (yes), A2 (no).
        // Digitised and electronic: A1 yes, A2 no. Unsatisfied: A2. 5.4: 3 handled, 2 late,
        // 1 unsatisfied: 0 of 3.
        assert_eq!(ind(&ag_a, "2.1"), (r4(1.0, 3.0), 1, 3));
        assert_eq!(ind(&ag_a, "3.3"), (r4(2.0, 3.0), 2, 3));
        assert_eq!(ind(&ag_a, "3.6"), (Some(0.5), 1, 2));
        assert_eq!(ind(&ag_a, "4.1"), (Some(0.5), 1, 2));
        assert_eq!(ind(&ag_a, "4.2"), (Some(0.5), 1, 2));
        assert_eq!(ind(&ag_a, "4.3"), (r4(2.0, 3.0), 2, 3));
        assert_eq!(ind(&ag_a, "5.4"), (Some(0.0), 0, 3));

        // Agency B. Received 3 (B1 online, B2 desk, B3 post). Fees: B1 (not paid yet), B2
        // (paid online locally): 1 of 2. Reuse known: B1 (no), B2 (yes). Resolved 2 (B2 late,
        // B3 on time without a deadline), open 1 (B1 paused before its deadline: in time):
        // handled 3, in time 2. No resolved dossier with a paper result and a known
        // electronic result (B2 has no paper result, B3 knows nothing): 4.1 has no value.
        // Digitised and electronic: B2 yes (B3 unknown): 1 of 1. Unsatisfied: B2 (complaint).
        // 5.4: 3 handled, 1 late, 1 unsatisfied: 1 of 3.
        assert_eq!(ind(&ag_b, "2.1"), (r4(2.0, 3.0), 2, 3));
        assert_eq!(ind(&ag_b, "3.3"), (r4(1.0, 3.0), 1, 3));
        assert_eq!(ind(&ag_b, "3.6"), (Some(0.5), 1, 2));
        assert_eq!(ind(&ag_b, "4.1"), (None, 0, 0));
        assert_eq!(ind(&ag_b, "4.2"), (Some(1.0), 1, 1));
        assert_eq!(ind(&ag_b, "4.3"), (Some(0.5), 1, 2));
        assert_eq!(ind(&ag_b, "5.4"), (r4(1.0, 3.0), 1, 3));
        // B's points: 2.1 20 × 2/3 = 13.333; 3.3 4 × (1/3 ÷ 0.5) = 2.667; 3.6 10 × 0.5 = 5;
        // 4.2 10 (100 % ≥ 80 %); 4.3 6 × (0.5 ÷ 0.8) = 3.75; 5.4 6 × (1/3 ÷ 0.9) = 2.222;
        // earned 36.972 of the 56 measured (4.1 not measured): 66.0 %, "average".
        assert_eq!(ag_b["score"]["earned"], json!(36.97));
        assert_eq!(ag_b["score"]["measured"], json!(56.0));
        assert_eq!(ag_b["score"]["percent"], json!(66.0));
        assert_eq!(ag_b["score"]["band"], "average");

        // Agency C. Received in December 2 (C1, C2, online); C3 was received in November.
        // No fee known: 3.6 has no value. Reuse known: C1 (yes). Resolved 1 (C3, late), open
        // 2 (C1 waiting since before its deadline: in time; C2 asked after its deadline:
        // late): handled 3, in time 1. Paper and electronic: C3 yes. Digitised and
        // electronic: C3 yes. 5.4: 3 handled, 2 late, none unsatisfied: 1 of 3.
        assert_eq!(ind(&ag_c, "2.1"), (r4(1.0, 3.0), 1, 3));
        assert_eq!(ind(&ag_c, "3.3"), (Some(1.0), 2, 2));
        assert_eq!(ind(&ag_c, "3.6"), (None, 0, 0));
        assert_eq!(ind(&ag_c, "4.1"), (Some(1.0), 1, 1));
        assert_eq!(ind(&ag_c, "4.2"), (Some(1.0), 1, 1));
        assert_eq!(ind(&ag_c, "4.3"), (Some(1.0), 1, 1));
        assert_eq!(ind(&ag_c, "5.4"), (r4(1.0, 3.0), 1, 3));
        // November, for C: received 1 (C3, online); nothing resolved; open at its end 1 (C3,
        // late): progress 0 of 1.
        assert_eq!(ag_c["indicators"]["2.1"]["previous_ratio"], json!(0.0));
        assert_eq!(ag_c["indicators"]["3.3"]["previous_ratio"], json!(1.0));

        // The province: the sums, never an average of the ratios. Received 8, 5 online; fees
        // 4, 2 paid online; reuse known 6 (A1, A2, A3, B1, B2, C1), reused 4 (A1, A3, B2,
        // C1); handled 9 (resolved 5, open 4), in time 4 (resolved in time A1, B3; open in
        // time B1, C1); 4.1: 2 of 3 (A1 and C3 of A1, A2, C3); 4.2: 3 of 4 (A1, B2, C3 of A1,
        // A2, B2, C3); 5.4: 9 handled, 5 late, 2 unsatisfied: 2 of 9.
        assert_eq!(ind(&province, "2.1"), (r4(4.0, 9.0), 4, 9));
        assert_eq!(ind(&province, "3.3"), (r4(5.0, 8.0), 5, 8));
        assert_eq!(ind(&province, "3.6"), (Some(0.5), 2, 4));
        assert_eq!(ind(&province, "4.1"), (r4(2.0, 3.0), 2, 3));
        assert_eq!(ind(&province, "4.2"), (Some(0.75), 3, 4));
        assert_eq!(ind(&province, "4.3"), (r4(4.0, 6.0), 4, 6));
        assert_eq!(ind(&province, "5.4"), (r4(2.0, 9.0), 2, 9));

        // C: 2.1 20 × 1/3 = 6.667; 3.3 4 (100 % ≥ 50 %); 4.1 6; 4.2 10; 4.3 6; 5.4 2.222
        // (3.6 not measured): 34.889 of 52, 67.1 %. A: 2.1 6.667; 3.3 4 (2/3 ≥ 50 %); 3.6 5;
        // 4.1 3; 4.2 10 × (0.5 ÷ 0.8) = 6.25; 4.3 6 × (2/3 ÷ 0.8) = 5; 5.4 0: 29.917 of 62,
        // 48.3 %, "weak". Ranked by the share of measured points: C, B, A.
        let ranked: Vec<(&str, f64)> = card["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["code"].as_str().unwrap(),
                    r["score"]["percent"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ranked, [("C", 67.1), ("B", 66.0), ("A", 48.3)]);
        assert_eq!(ag_a["score"]["band"], "weak");
        assert_eq!(card["agencies"][0]["rank"], 1);
        assert_eq!(
            card["estimate"].as_str().map(|e| e.contains("Ước tính")),
            Some(true)
        );
        assert_eq!(card["not_measured"][0]["id"], "1");
    }

    /// The week and the year cut the same dossiers by their own periods.
    #[test]
    fn the_week_and_the_year_count_their_own_periods() {
        let state = example();
        let dir = Directory::default();
        let week = scorecard(&state, &dir, Span::Week, (None, None), t(NOW));
        // The week of 14/12 to 20/12: nothing received or resolved in it; open now: A3
        // (late), B1 (in time), C1 (in time), C2 (late).
        assert_eq!(
            week["current"],
            json!({"from": "2026-12-14", "to": "2026-12-20"})
        );
        assert_eq!(ind(&week["province"], "2.1"), (Some(0.5), 2, 4));
        assert_eq!(ind(&week["province"], "3.3"), (None, 0, 0));
        let year = scorecard(&state, &dir, Span::Year, (None, None), t(NOW));
        // The year: C3's November receipt counts too: 9 received, 6 online.
        assert_eq!(ind(&year["province"], "3.3"), (r4(6.0, 9.0), 6, 9));
        let only_b = scorecard(&state, &dir, Span::Month, (None, Some("B")), t(NOW));
        assert_eq!(only_b["agencies"].as_array().map(Vec::len), Some(1));
    }

    /// Agencies past the cap of tallies of their own count together as `other`, in the
    /// province's sums as on `/metrics`: nothing received is left out.
    #[test]
    fn agencies_past_the_cap_count_as_other_in_the_province() {
        let mut s = State::new(Params::default(), t("2026-12-01T00:00:00+07:00"));
        let n = &mut 0;
        let extra = 3;
        for i in 0..MAX_AGENCIES + extra {
            apply(
                &mut s,
                n,
                "received",
                &format!("D{i}"),
                "2026-12-02T09:00:00+07:00",
                received(&format!("A{i}"), "online", json!(null), json!({})),
            );
        }
        let card = scorecard(&s, &Directory::default(), Span::Month, (None, None), t(NOW));
        let total = u64::from(MAX_AGENCIES + extra);
        assert_eq!(ind(&card["province"], "3.3"), (Some(1.0), total, total));
        let other = card["agencies"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["code"] == "other"))
            .unwrap_or_else(|| panic!("an `other` row"));
        assert_eq!(
            ind(other, "3.3"),
            (Some(1.0), u64::from(extra) + 1, u64::from(extra) + 1)
        );
    }
}
