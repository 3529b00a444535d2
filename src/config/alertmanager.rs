//! `[alertmanager]`: where iocd sends its alerts for notification (mail, chat, SMS are
//! Alertmanager's receivers, not iocd's), how often it sends them again, and the runbook
//! link each carries.
//!
//! In: the `[alertmanager]` table as written. Out: [`AlertmanagerSettings`] with the URL
//! parsed and the interval a `Duration`, or the problems keyed `alertmanager.*`.

use std::time::Duration;

use serde::Deserialize;

use super::check::{Problems, Unit};

/// `[alertmanager]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertmanagerFile {
    url: String,
    resend_secs: u64,
    runbook_url: String,
}

/// `[alertmanager]`: the notifier iocd posts its alerts to.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerSettings {
    /// Alertmanager's base URL (`http://127.0.0.1:9093`); `None`: nothing is posted.
    pub url: Option<reqwest::Url>,
    /// How often every firing alert is posted again (Alertmanager forgets an alert it
    /// has not heard of by its `endsAt`, which iocd sets to four times this).
    pub resend: Duration,
    /// The runbook each alert links to; the rule's anchor is added (`…#dossier_overdue`).
    pub runbook_url: String,
}

impl AlertmanagerFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<AlertmanagerSettings> {
        let resend = p.duration(
            "alertmanager.resend_secs",
            self.resend_secs,
            (1, 3600),
            Unit::Secs,
        );
        let url = if self.url.is_empty() {
            Some(None)
        } else {
            match reqwest::Url::parse(&self.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(Some(u)),
                Ok(_) => {
                    p.add("alertmanager.url", "must be an http:// or https:// URL");
                    None
                }
                Err(e) => {
                    p.add(
                        "alertmanager.url",
                        format!("is not a URL ({e}): `{}`", self.url),
                    );
                    None
                }
            }
        };
        Some(AlertmanagerSettings {
            url: url?,
            resend: resend?,
            runbook_url: self.runbook_url,
        })
    }
}
