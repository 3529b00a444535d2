//! Alerts to Prometheus Alertmanager, the ecosystem's notifier: iocd does not send mail,
//! chat or SMS itself, Alertmanager's receivers do, with its routing, grouping, silences
//! and repeat intervals.
//!
//! The task follows the alert transitions and keeps each firing alert as Alertmanager
//! sees it (its labels and annotations). A change is posted at once to `/api/v2/alerts`;
//! every `resend` all firing alerts are posted again, each saying it ends four resends
//! later (as Prometheus does), so that a stopped iocd's alerts resolve by themselves; a
//! resolved alert is posted with `endsAt` now. A change of labels (an escalation raises
//! `severity`) ends the old label set.
//!
//! An acknowledged or silenced alert must stop paging without looking resolved: while it
//! is, a marker alert `alertname="iocd_handled"` with the same `alert_id` is posted beside
//! it, and the shipped Alertmanager configuration (`dashboards/alertmanager.yml`) inhibits
//! every iocd alert whose `alert_id` has a marker, and routes the markers nowhere.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::config::AlertmanagerSettings;
use crate::derive::alerts::{Alert, AlertState};
use crate::derive::{Transition, View};
use crate::time::{Calendar, Ts};

/// The `alertname` of the markers of acknowledged and silenced alerts.
pub const HANDLED: &str = "iocd_handled";
/// How long a post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Items kept for the next try while Alertmanager cannot be reached.
const DUE_MAX: usize = 10_000;
/// Failed posts are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One alert as Alertmanager knows it.
#[derive(Clone, Debug, PartialEq)]
struct Posted {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    /// The marker's labels while the alert is acknowledged or silenced.
    marker: Option<BTreeMap<String, String>>,
}

/// The labels and annotations of `a` (the runbook link is `runbook#rule`).
fn posted(a: &Alert, runbook: &str, vi_first: bool) -> Posted {
    let shown = a.handling.shown_severity(a.severity);
    let mut labels = BTreeMap::from([
        ("alertname".to_owned(), a.rule.as_str().to_owned()),
        ("rule".to_owned(), a.rule.as_str().to_owned()),
        ("severity".to_owned(), shown.as_str().to_owned()),
        ("subject_kind".to_owned(), a.subject.kind.to_owned()),
        ("subject_id".to_owned(), a.subject.id.clone()),
        ("alert_id".to_owned(), a.id.clone()),
        ("source".to_owned(), "iocd".to_owned()),
    ]);
    if let Some(name) = a.params.get("agency_name").and_then(Value::as_str) {
        labels.insert("agency_name".to_owned(), name.to_owned());
    }
    let (vi, en) = if vi_first {
        (&a.summary, &a.summary_alt)
    } else {
        (&a.summary_alt, &a.summary)
    };
    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), a.summary.clone()),
        ("summary_vi".to_owned(), vi.clone()),
        ("summary_en".to_owned(), en.clone()),
        ("count".to_owned(), a.count.to_string()),
        (
            "handling".to_owned(),
            a.handling.handling.as_str().to_owned(),
        ),
        (
            "runbook_url".to_owned(),
            format!("{runbook}#{}", a.rule.as_str()),
        ),
    ]);
    let by = a
        .handling
        .acknowledged
        .as_ref()
        .map(|t| t.by.clone())
        .or_else(|| a.handling.silenced.as_ref().map(|s| s.by.clone()));
    if let Some(by) = &by {
        annotations.insert("handled_by".to_owned(), by.clone());
    }
    let marker = (!a.handling.pages()).then(|| {
        BTreeMap::from([
            ("alertname".to_owned(), HANDLED.to_owned()),
            ("alert_id".to_owned(), a.id.clone()),
            (
                "handling".to_owned(),
                a.handling.handling.as_str().to_owned(),
            ),
            ("source".to_owned(), "iocd".to_owned()),
        ])
    });
    Posted {
        labels,
        annotations,
        starts_at: a.since.clone(),
        marker,
    }
}

/// The order of the severity labels (info < warning < critical).
fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// The labels and annotations of a firing alert known only by its JSON object (after
/// missed transitions): the sentence in iocd's language only.
fn posted_from_json(v: &Value, runbook: &str) -> Option<Posted> {
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let id = text("id")?;
    let rule = text("rule")?;
    let severity = v["escalated"]["severity"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| text("severity"))?;
    let mut labels = BTreeMap::from([
        ("alertname".to_owned(), rule.clone()),
        ("rule".to_owned(), rule.clone()),
        ("severity".to_owned(), severity),
        (
            "subject_kind".to_owned(),
            v["subject"]["kind"].as_str()?.to_owned(),
        ),
        (
            "subject_id".to_owned(),
            v["subject"]["id"].as_str()?.to_owned(),
        ),
        ("alert_id".to_owned(), id.clone()),
        ("source".to_owned(), "iocd".to_owned()),
    ]);
    if let Some(name) = v["params"]["agency_name"].as_str() {
        labels.insert("agency_name".to_owned(), name.to_owned());
    }
    let summary = text("summary").unwrap_or_default();
    let handling = text("handling").unwrap_or_else(|| "new".to_owned());
    let annotations = BTreeMap::from([
        ("summary".to_owned(), summary),
        ("count".to_owned(), v["count"].to_string()),
        ("handling".to_owned(), handling.clone()),
        ("runbook_url".to_owned(), format!("{runbook}#{rule}")),
    ]);
    let marker = matches!(handling.as_str(), "acknowledged" | "silenced").then(|| {
        BTreeMap::from([
            ("alertname".to_owned(), HANDLED.to_owned()),
            ("alert_id".to_owned(), id.clone()),
            ("handling".to_owned(), handling.clone()),
            ("source".to_owned(), "iocd".to_owned()),
        ])
    });
    Some(Posted {
        labels,
        annotations,
        starts_at: text("since")?,
        marker,
    })
}

/// One element of the v2 API's list.
fn element(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    starts_at: &str,
    ends_at: &str,
) -> Value {
    json!({"labels": labels, "annotations": annotations, "startsAt": starts_at, "endsAt": ends_at})
}

/// Posts alert transitions to Alertmanager until the transitions channel closes.
pub struct Notifier {
    settings: AlertmanagerSettings,
    url: reqwest::Url,
    client: reqwest::Client,
    cal: Calendar,
    /// Whether iocd's `summary` is Vietnamese (`[alerts] language`), `summary_alt` English.
    vi_first: bool,
    /// The firing alerts as posted, by id.
    active: HashMap<String, Posted>,
    /// What to post at the next send: changed alerts, and ended label sets.
    due: Vec<Value>,
    last_warning: Option<std::time::Instant>,
    posts: prometheus::IntCounterVec,
}

impl Notifier {
    /// A notifier for `settings`, when they name an Alertmanager.
    #[must_use]
    pub fn new(
        settings: &AlertmanagerSettings,
        (cal, language): (Calendar, crate::config::Lang),
        posts: prometheus::IntCounterVec,
    ) -> Option<Self> {
        let mut base = settings.url.clone()?;
        // `http://h/alertmanager` is a base under which the API lives, not a file beside it.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base.join("api/v2/alerts").ok()?;
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .ok()?;
        Some(Self {
            settings: settings.clone(),
            url,
            client,
            cal,
            vi_first: language == crate::config::Lang::Vi,
            active: HashMap::new(),
            due: Vec::new(),
            last_warning: None,
            posts,
        })
    }

    fn stamp(&self, t: Ts) -> String {
        t.to_rfc3339(self.cal.tz())
    }

    /// When a firing alert posted now ends unless posted again.
    fn until(&self, now: Ts) -> String {
        let secs = i64::try_from(self.settings.resend.as_secs()).unwrap_or(3600);
        self.stamp(now.plus_secs(4 * secs))
    }

    /// Takes one transition into `active` and `due`.
    fn take(&mut self, a: &Alert, now: Ts) {
        let vi_first = self.vi_first;
        let now_s = self.stamp(now);
        let until = self.until(now);
        let previous = self.active.remove(&a.id);
        if a.state == AlertState::Resolved {
            if let Some(p) = previous {
                self.due
                    .push(element(&p.labels, &p.annotations, &p.starts_at, &now_s));
                if let Some(m) = &p.marker {
                    self.due
                        .push(element(m, &BTreeMap::new(), &p.starts_at, &now_s));
                }
            }
            return;
        }
        let mut new = posted(a, &self.settings.runbook_url, vi_first);
        // Once escalated, an alert keeps its raised severity label for its episode: taking
        // it (which ends the escalation) mutes it by its marker, without ending one label
        // set and starting another (which would notify a false resolution).
        if let Some(p) = &previous
            && let (Some(old), Some(now)) = (p.labels.get("severity"), new.labels.get("severity"))
            && severity_rank(old) > severity_rank(now)
        {
            let old = old.clone();
            new.labels.insert("severity".to_owned(), old);
        }
        if let Some(p) = &previous {
            if p.labels != new.labels {
                self.due
                    .push(element(&p.labels, &p.annotations, &p.starts_at, &now_s));
            }
            // A marker that goes, or changes (acknowledged, then silenced), ends.
            if let Some(m) = &p.marker
                && new.marker.as_ref() != Some(m)
            {
                self.due
                    .push(element(m, &BTreeMap::new(), &p.starts_at, &now_s));
            }
        }
        if previous.as_ref() != Some(&new) {
            self.due.push(element(
                &new.labels,
                &new.annotations,
                &new.starts_at,
                &until,
            ));
            if let Some(m) = &new.marker {
                self.due
                    .push(element(m, &BTreeMap::new(), &new.starts_at, &until));
            }
        }
        self.active.insert(a.id.clone(), new);
    }

    /// Every firing alert (and marker), as posted at each resend.
    fn everything(&self, now: Ts) -> Vec<Value> {
        let until = self.until(now);
        let mut out = Vec::with_capacity(self.active.len());
        for p in self.active.values() {
            out.push(element(&p.labels, &p.annotations, &p.starts_at, &until));
            if let Some(m) = &p.marker {
                out.push(element(m, &BTreeMap::new(), &p.starts_at, &until));
            }
        }
        out
    }

    /// After missed transitions: the firing alerts (by the view's list) not known here are
    /// taken from their JSON, and the alerts no longer firing end.
    fn reconcile(&mut self, view: &View, now: Ts) {
        let mut firing = std::collections::HashSet::new();
        for v in view
            .alerts_api
            .iter()
            .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        {
            let Some(id) = v["id"].as_str().map(str::to_owned) else {
                continue;
            };
            if !self.active.contains_key(&id)
                && let Some(p) = posted_from_json(&v, &self.settings.runbook_url)
            {
                let until = self.until(now);
                self.due
                    .push(element(&p.labels, &p.annotations, &p.starts_at, &until));
                self.active.insert(id.clone(), p);
            }
            firing.insert(id);
        }
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|id| !firing.contains(*id))
            .cloned()
            .collect();
        let now_s = self.stamp(now);
        for id in gone {
            if let Some(p) = self.active.remove(&id) {
                self.due
                    .push(element(&p.labels, &p.annotations, &p.starts_at, &now_s));
                if let Some(m) = &p.marker {
                    self.due
                        .push(element(m, &BTreeMap::new(), &p.starts_at, &now_s));
                }
            }
        }
    }

    /// Posts `body`; returns whether Alertmanager took it.
    async fn post(&mut self, body: &[Value]) -> bool {
        if body.is_empty() {
            return true;
        }
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .send()
            .await;
        let failure = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("Alertmanager answered {}", r.status())),
            Err(e) => Some(e.to_string()),
        };
        match failure {
            None => {
                self.posts.with_label_values(&["ok"]).inc();
                debug!(alerts = body.len(), "Alerts posted to Alertmanager.");
                true
            }
            Some(why) => {
                self.posts.with_label_values(&["error"]).inc();
                if self
                    .last_warning
                    .is_none_or(|at| at.elapsed() >= WARN_EVERY)
                {
                    self.last_warning = Some(std::time::Instant::now());
                    warn!(url = %self.url, error = %why, "Cannot post alerts to Alertmanager; retrying at the next resend.");
                }
                false
            }
        }
    }

    /// Runs until `transitions` closes (the pipeline stopped).
    pub async fn run(
        mut self,
        mut transitions: broadcast::Receiver<Arc<Transition>>,
        views: watch::Receiver<Arc<View>>,
    ) {
        let mut resend = tokio::time::interval(self.settings.resend);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = transitions.recv() => {
                    match received {
                        Ok(t) => self.take(&t.alert, Ts::now()),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            warn!(missed, "Alert transitions came faster than Alertmanager's poster took them; reconciling with the firing list.");
                            let view = Arc::clone(&views.borrow());
                            self.reconcile(&view, Ts::now());
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    // Whatever else is already queued goes in the same post.
                    while let Ok(t) = transitions.try_recv() {
                        self.take(&t.alert, Ts::now());
                    }
                    let due = std::mem::take(&mut self.due);
                    if !self.post(&due).await {
                        // Resolutions and ended label sets are not in `active`: kept for the
                        // next resend, not lost.
                        self.due = due;
                    }
                    // Bounded while Alertmanager is away: the oldest go first (their alerts
                    // end by their `endsAt` anyway).
                    if self.due.len() > DUE_MAX {
                        let extra = self.due.len() - DUE_MAX;
                        self.due.drain(..extra);
                    }
                }
                _ = resend.tick() => {
                    let due = std::mem::take(&mut self.due);
                    let mut all = due.clone();
                    all.extend(self.everything(Ts::now()));
                    if !self.post(&all).await {
                        // What is not resent anyway (resolutions, ended sets) waits for the
                        // next try.
                        self.due = due;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::AlertSeverity;
    use crate::derive::alerts::handling::{Escalated, Handling, Status, Taken};
    use crate::derive::alerts::{Rule, Subject};

    fn alert(handling: Handling) -> Alert {
        Alert {
            id: "dossier_overdue:H42".into(),
            rule: Rule::DossierOverdue,
            severity: AlertSeverity::Warning,
            state: AlertState::Firing,
            subject: Subject {
                kind: "agency",
                id: "H42".into(),
            },
            count: 4,
            since: "2026-12-07T08:00:00.000+07:00".into(),
            summary: "Đơn vị H42 có 4 hồ sơ đang xử lý quá hạn trả kết quả.".into(),
            summary_alt: "H42 has 4 dossiers in progress past their due date.".into(),
            params: json!({"agency": "H42", "agency_name": null, "count": 4}),
            handling,
            members: Vec::new(),
            since_ts: Ts(0),
        }
    }

    fn notifier() -> Notifier {
        let settings = AlertmanagerSettings {
            url: Some("http://127.0.0.1:9093/am".parse().unwrap()),
            resend: Duration::from_secs(60),
            runbook_url: "https://ioc.example/runbook".into(),
        };
        let posts =
            prometheus::IntCounterVec::new(prometheus::Opts::new("p", "p"), &["result"]).unwrap();
        Notifier::new(
            &settings,
            (Calendar::default(), crate::config::Lang::Vi),
            posts,
        )
        .unwrap()
    }

    #[test]
    fn an_escalated_alert_taken_keeps_its_label_set_and_gets_a_marker() {
        let mut n = notifier();
        assert_eq!(n.url.as_str(), "http://127.0.0.1:9093/am/api/v2/alerts");
        let now = Ts::from_secs(1_800_000_000);
        n.take(&alert(Handling::default()), now);
        let escalated = Handling {
            handling: Status::Escalated,
            escalated: Some(Escalated {
                at: String::new(),
                severity: AlertSeverity::Critical,
            }),
            ..Handling::default()
        };
        n.take(&alert(escalated), now);
        let due = std::mem::take(&mut n.due);
        assert_eq!(
            due.len(),
            3,
            "warning posted, then ended, then critical: {due:?}"
        );
        assert_eq!(due[2]["labels"]["severity"], "critical");
        assert_eq!(
            due[2]["annotations"]["summary_en"],
            alert(Handling::default()).summary_alt
        );
        let taken = Handling {
            handling: Status::Acknowledged,
            acknowledged: Some(Taken {
                by: "Trực ban ca 1".into(),
                role: crate::decode::action::Role::Operator,
                at: String::new(),
                comment: None,
                action_id: "a1".into(),
                at_ts: now,
            }),
            ..Handling::default()
        };
        n.take(&alert(taken), now);
        let due = std::mem::take(&mut n.due);
        assert_eq!(
            due.len(),
            2,
            "the alert (same labels) and its marker: {due:?}"
        );
        assert_eq!(due[0]["labels"]["severity"], "critical", "no label change");
        assert_eq!(due[1]["labels"]["alertname"], HANDLED);
        assert_eq!(due[1]["labels"]["alert_id"], "dossier_overdue:H42");
    }
}
