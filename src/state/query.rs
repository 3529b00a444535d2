//! Read queries over the dossiers for the API: filter by status (or overdue, due soon,
//! stalled) and agency, most urgent first. Runs on the pipeline task, which owns the state.

use serde::Serialize;

use super::State;
use crate::decode::DossierStatus;
use crate::state::dossiers::Dossier;
use crate::time::Ts;

/// A `status` the dossier query does not know.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status `{0}`; expected submitted, in_progress, waiting_citizen, paused, overdue, \
     due_soon or stalled"
)]
pub struct UnknownStatus(pub String);

/// Which dossiers a query selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DossierFilter {
    /// Every open dossier.
    Open,
    /// Dossiers in this open status.
    Status(DossierStatus),
    /// In progress and past `due_at`.
    Overdue,
    /// In progress, not overdue, due within the due-soon horizon.
    DueSoon,
    /// In progress with no event for longer than the stalled threshold.
    Stalled,
}

impl DossierFilter {
    /// Parses the `status` parameter (absent: every open dossier).
    ///
    /// # Errors
    /// [`UnknownStatus`], whose message lists the accepted values.
    pub fn parse(status: Option<&str>) -> Result<Self, UnknownStatus> {
        Ok(match status {
            None => DossierFilter::Open,
            Some("overdue") => DossierFilter::Overdue,
            Some("due_soon") => DossierFilter::DueSoon,
            Some("stalled") => DossierFilter::Stalled,
            Some(s) => match DossierStatus::parse(s) {
                Some(st) if st.is_open() => DossierFilter::Status(st),
                _ => return Err(UnknownStatus(s.to_owned())),
            },
        })
    }
}

/// How the agency list is sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgencySort {
    /// Most overdue first (then stalled, due soon), the wall's order.
    Overdue,
    /// Most open dossiers first.
    Open,
    /// Lowest on-time ratio first (agencies without a resolution last).
    OnTime,
    /// Lowest online share first (agencies without a receipt last).
    Online,
    /// Lowest Decision 766 progress estimate this month first (agencies without a dossier
    /// handled this month last).
    Progress,
    /// By code.
    Code,
}

impl AgencySort {
    /// Parses the `sort` parameter.
    ///
    /// # Errors
    /// The accepted values, when `s` is not one of them.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        Ok(match s {
            None | Some("overdue") => AgencySort::Overdue,
            Some("open") => AgencySort::Open,
            Some("on_time") => AgencySort::OnTime,
            Some("online") => AgencySort::Online,
            Some("progress") => AgencySort::Progress,
            Some("code") => AgencySort::Code,
            Some(other) => {
                return Err(format!(
                    "unknown sort `{other}`; expected overdue, open, on_time, online, progress or code"
                ));
            }
        })
    }
}

/// A question for the state's owner (the pipeline), with where to send the answer.
#[derive(Debug)]
pub enum Query {
    /// Dossiers matching a filter: the total and the first `limit`, most urgent first.
    Dossiers {
        /// Which dossiers.
        filter: DossierFilter,
        /// Only this agency code.
        agency: Option<String>,
        /// At most this many rows.
        limit: usize,
        /// Rows skipped first (paging).
        offset: usize,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<(usize, Vec<DossierRow>)>,
    },
    /// The agencies with their figures (`GET /api/v1/agencies`), as the JSON document.
    Agencies {
        /// Only this level (`province`, `commune`, `district`, `unknown`).
        level: Option<String>,
        /// Only the units whose parent is this code.
        parent: Option<String>,
        /// The order.
        sort: AgencySort,
        /// At most this many rows.
        limit: usize,
        /// Rows skipped first (paging).
        offset: usize,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    },
    /// The Decision 766 scorecard (`GET /api/v1/scorecard`), as the JSON document.
    Scorecard {
        /// `week`, `month` or `year` (checked by the API).
        period: String,
        /// Only the agencies of this level.
        level: Option<String>,
        /// Only this agency.
        agency: Option<String>,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    },
    /// One agency in detail (`GET /api/v1/agencies/{code}`); `None` when unknown.
    Agency {
        /// Its code.
        code: String,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<Option<serde_json::Value>>,
    },
    /// Where alert `id` stands, to check an operator action on it.
    Alert {
        /// `{rule}:{subject}`.
        id: String,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<AlertLookup>,
    },
    /// `GET /api/v1/alerts/{id}/history`: transitions and actions, oldest first; `None`
    /// for an id neither firing nor in the history.
    History {
        /// `{rule}:{subject}`.
        id: String,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<Option<serde_json::Value>>,
    },
    /// `GET /api/v1/audit`: operator actions from `since` to `until`, newest first.
    Audit {
        /// From (inclusive).
        since: Ts,
        /// To (exclusive).
        until: Ts,
        /// Only the actions of this name.
        who: Option<String>,
        /// At most this many.
        limit: usize,
        /// Skipped first (paging).
        offset: usize,
        /// The answer.
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    },
    /// `GET /api/v1/silences`: the silences kept, in force or not.
    Silences {
        /// The answer.
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    },
}

/// Where an alert stands, for checking an action on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertLookup {
    /// It fires now.
    pub firing: bool,
    /// It fired within the history's horizon.
    pub known: bool,
    /// Who acknowledged it, when it is acknowledged.
    pub acknowledged_by: Option<String>,
}

/// One dossier as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DossierRow {
    /// The dossier.
    pub dossier_id: String,
    /// Its agency code.
    pub agency: String,
    /// Its status.
    pub status: &'static str,
    /// Its channel, if known.
    pub channel: Option<&'static str>,
    /// Its procedure code, if known.
    pub procedure: Option<String>,
    /// When it was received, if it was.
    pub received_at: Option<Ts>,
    /// Its deadline, if any.
    pub due_at: Option<Ts>,
    /// Its latest event.
    pub last_event_at: Ts,
}

impl State {
    /// The dossiers matching `filter` and `agency` at `now`: how many in all, and `limit` of
    /// them after skipping the first `offset` (paging), most urgent first (overdue and due soon by earliest `due_at`, stalled by
    /// earliest `last_event_at`, others by earliest `due_at` with no deadline last; ties
    /// by dossier id).
    #[must_use]
    pub fn query_dossiers(
        &self,
        filter: DossierFilter,
        agency: Option<&str>,
        (limit, offset): (usize, usize),
        now: Ts,
    ) -> (usize, Vec<DossierRow>) {
        let p = &self.params;
        let agency_id = match agency {
            Some(code) => match self.agencies.get(code) {
                Some(id) => Some(id),
                None => return (0, Vec::new()),
            },
            None => None,
        };
        let urgency = p.urgency_at(now);
        let matches = |d: &Dossier| {
            agency_id.is_none_or(|a| d.agency() == a)
                && match filter {
                    DossierFilter::Open => d.is_open(),
                    DossierFilter::Status(s) => d.has_status() && d.status() == s,
                    DossierFilter::Overdue => urgency.is_overdue(d),
                    DossierFilter::DueSoon => urgency.is_due_soon(d),
                    DossierFilter::Stalled => urgency.is_stalled(d),
                }
        };
        let order_key = |d: &Dossier| match filter {
            DossierFilter::Stalled => (false, d.last_event_at()),
            _ => (d.due_at().is_none(), d.due_at().unwrap_or_default()),
        };
        let mut hits: Vec<&Dossier> = self.dossiers.iter().filter(|d| matches(d)).collect();
        let total = hits.len();
        let order = |a: &&Dossier, b: &&Dossier| {
            order_key(a)
                .cmp(&order_key(b))
                .then_with(|| a.id().cmp(b.id()))
        };
        let end = offset.saturating_add(limit);
        if hits.len() > end && end > 0 {
            hits.select_nth_unstable_by(end - 1, order);
        }
        hits.truncate(end);
        hits.sort_unstable_by(order);
        let rows = hits
            .into_iter()
            .skip(offset)
            .map(|d| DossierRow {
                dossier_id: d.id().to_owned(),
                agency: self.agencies.name(d.agency()).to_owned(),
                status: d.status().as_str(),
                channel: d
                    .channel()
                    .map(super::super::decode::event::Channel::as_str),
                procedure: d.procedure().map(|id| {
                    super::dossiers::split_procedure(self.procedures.name(id))
                        .0
                        .to_owned()
                }),
                received_at: d.received_at(),
                due_at: d.due_at(),
                last_event_at: d.last_event_at(),
            })
            .collect();
        (total, rows)
    }
}
