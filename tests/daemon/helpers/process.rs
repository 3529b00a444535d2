//! The `iocd` binary as an operator runs it: a command for it, a configuration file with a
//! unique client id and prefix, a guard that kills it when a test fails, a signal, and a
//! bounded wait for it to exit (polling, no fixed sleep).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::unique;

/// How often [`stop_with`] looks whether the child has exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// `iocd`, as built for these tests.
pub fn iocd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocd"))
}

/// As [`super::test_settings`]: one alert per agency from one dossier, no province digest.
pub const TEST_ALERTS: &str = "[alerts]\ndossier_digest = false\n[alerts.dossier_overdue]\nmin_count = 1\n\
                           [alerts.dossier_stalled]\nmin_count = 1\n";

/// Writes `dir/iocd.toml`: an `[mqtt]` table with a unique client id and prefix, then
/// `mqtt_extra` lines (`reconnect_min_ms = 50`, …). Returns its path.
pub fn config_file(dir: &Path, mqtt_extra: &str) -> PathBuf {
    let config = dir.join("iocd.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nclient_id = \"{}\"\nprefix = \"{}/v1\"\n{mqtt_extra}\n{TEST_ALERTS}",
            unique("iocd"),
            unique("ioc")
        ),
    )
    .expect("write iocd.toml");
    config
}

/// A child process killed (SIGKILL) and reaped on `Drop`, so that a failing test leaves
/// none behind.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`-TERM`, `-INT`, `-KILL`) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {}", child.id());
}

/// Sends `signal` and waits until `child` exits, at most `limit` (then panics); returns the
/// exit status and how long the stop took.
pub async fn stop_with(
    child: &mut Child,
    signal_name: &str,
    limit: Duration,
) -> (ExitStatus, Duration) {
    let start = Instant::now();
    signal(child, signal_name);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "iocd did not stop within {limit:?} of {signal_name}"
        );
        tokio::time::sleep(EXIT_POLL).await;
    }
}
