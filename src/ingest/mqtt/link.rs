//! The state of the link to the broker as the rest of iocd sees it, and the reconnect
//! backoff.

use std::time::Duration;

use rand::Rng as _;
use tokio::sync::watch;

use crate::telemetry::SelfMetrics;

/// The state of the link to the broker, as published on the `watch` channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkStatus {
    /// A CONNACK was received and the connection has not failed since.
    pub connected: bool,
    /// The input subscriptions are in place on the current connection.
    pub subscribed: bool,
    /// Reconnections on which the broker had lost the persistent session (a possible gap).
    pub sessions_lost: u64,
}

/// The link status, its `watch` sender and the gauges that mirror it.
pub(super) struct Link {
    pub(super) status: LinkStatus,
    pub(super) tx: watch::Sender<LinkStatus>,
    pub(super) metrics: SelfMetrics,
}

impl Link {
    /// Applies `change`; publishes the status and sets the gauges when it changed.
    pub(super) fn update(&mut self, change: impl FnOnce(&mut LinkStatus)) {
        let before = self.status.clone();
        change(&mut self.status);
        if self.status != before {
            self.metrics
                .mqtt_connected
                .set(i64::from(self.status.connected));
            self.metrics
                .mqtt_subscribed
                .set(i64::from(self.status.subscribed));
            self.tx.send_replace(self.status.clone());
        }
    }
}

/// Capped exponential backoff with full jitter: the n-th delay after a success is uniform
/// in `[0, min(min × 2ⁿ⁻¹, max)]`.
#[derive(Debug)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    cap: Duration,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Self { min, max, cap: min }
    }

    pub(super) fn reset(&mut self) {
        self.cap = self.min;
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let cap = self.cap;
        self.cap = cap.saturating_mul(2).min(self.max);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=cap_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let caps: Vec<u128> = (0..6)
            .map(|_| {
                let cap = b.cap;
                assert!(b.next_delay() <= cap);
                cap.as_millis()
            })
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.cap, Duration::from_millis(100));
    }

    #[test]
    fn link_changes_reach_the_watch_and_the_gauges() {
        let metrics = SelfMetrics::new();
        let (tx, mut rx) = watch::channel(LinkStatus::default());
        let mut link = Link {
            status: LinkStatus::default(),
            tx,
            metrics: metrics.clone(),
        };
        link.update(|s| s.connected = true);
        assert!(rx.has_changed().unwrap_or(false));
        assert!(rx.borrow_and_update().connected);
        assert_eq!(metrics.mqtt_connected.get(), 1);
        link.update(|s| s.connected = true);
        assert!(!rx.has_changed().unwrap_or(true));
    }
}
