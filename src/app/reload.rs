//! Reloads the agency directory while running: on SIGHUP (`systemctl reload iocd`) and when
//! the file's modification time or size changes (checked every `[directory] check_secs`).
//! A good file replaces the directory the pipeline names agencies from (at its next tick);
//! a bad one keeps the previous directory, is logged with every problem, counted, and shown
//! in `/readyz` until a good file is loaded. The mappings directory reloads the same way
//! ([`MappingReloader`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{DirectorySettings, MappingSettings};
use crate::decode::mapping::Mappings;
use crate::directory::Directory;
use crate::telemetry::SelfMetrics;

/// The last reload's refusal, for `/readyz`; `None` while the file in use is the file on disk.
pub type ReloadProblem = watch::Receiver<Option<Arc<str>>>;

/// What identifies a version of the file without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The reloader of one directory file.
pub struct Reloader {
    file: Option<PathBuf>,
    every: Option<Duration>,
    directory: watch::Sender<Arc<Directory>>,
    problem: watch::Sender<Option<Arc<str>>>,
    metrics: SelfMetrics,
    stamp: Stamp,
    /// Listened to from the start: SIGHUP's default action would end the process.
    hangup: Hangups,
}

impl Reloader {
    /// A reloader for `settings`; the directory channel starts with the directory read at
    /// load. Returns it with the receivers of the directory and of the last refusal. Call
    /// it within the runtime: it listens for SIGHUP from then on.
    #[must_use]
    pub fn new(
        settings: &DirectorySettings,
        metrics: SelfMetrics,
    ) -> (Self, watch::Receiver<Arc<Directory>>, ReloadProblem) {
        let (directory, rx) = watch::channel(Arc::clone(&settings.directory));
        let (problem, problem_rx) = watch::channel(None);
        let stamp = settings.file.as_deref().and_then(stamp);
        let reloader = Self {
            file: settings.file.clone(),
            every: settings.check_every,
            directory,
            problem,
            metrics,
            stamp,
            hangup: hangups(),
        };
        (reloader, rx, problem_rx)
    }

    /// Runs until `cancel`: reloads on SIGHUP and on a change of the file.
    pub async fn run(mut self, cancel: CancellationToken) {
        let (hangup, every) = (std::mem::take(&mut self.hangup), self.every);
        run_reloads(self, hangup, every, cancel).await;
    }

    /// Reads the file again; replaces the directory when it is good.
    async fn reload(&mut self) {
        let Some(file) = self.file.clone() else {
            info!("No agency directory is configured ([directory] file): nothing to reload.");
            return;
        };
        self.stamp = stamp(&file);
        let read = tokio::task::spawn_blocking(move || Directory::read(&file)).await;
        match read {
            Ok(Ok(directory)) => {
                info!(
                    file = directory.origin(),
                    agencies = directory.len(),
                    "Agency directory loaded."
                );
                self.metrics
                    .directory_reloads
                    .with_label_values(&["ok"])
                    .inc();
                self.directory.send_replace(Arc::new(directory));
                self.problem.send_replace(None);
            }
            Ok(Err(e)) => {
                warn!(error = %e, "The agency directory file was refused; the previous directory stays in use.");
                self.metrics
                    .directory_reloads
                    .with_label_values(&["refused"])
                    .inc();
                self.problem.send_replace(Some(e.to_string().into()));
            }
            Err(e) => warn!(error = %e, "Reading the agency directory failed."),
        }
    }
}

/// What [`run_reloads`] reloads: a file or a directory of files.
trait Reload {
    /// What is reloaded, for the log.
    const WHAT: &'static str;
    /// Whether the files on disk differ from the ones last read.
    fn changed(&self) -> bool;
    /// Reads them again; takes them into use when they are good.
    async fn reload(&mut self);
}

impl Reload for Reloader {
    const WHAT: &'static str = "the agency directory";
    fn changed(&self) -> bool {
        self.file.as_deref().is_some_and(|f| stamp(f) != self.stamp)
    }
    async fn reload(&mut self) {
        Reloader::reload(self).await;
    }
}

impl Reload for MappingReloader {
    const WHAT: &'static str = "the mappings";
    fn changed(&self) -> bool {
        self.dir
            .as_deref()
            .is_some_and(|d| dir_stamp(d) != self.stamp)
    }
    async fn reload(&mut self) {
        MappingReloader::reload(self).await;
    }
}

/// The loop both reloaders run until `cancel`: reload on SIGHUP, and when a check every
/// `every` finds the files changed.
async fn run_reloads<R: Reload>(
    mut r: R,
    mut hangup: Hangups,
    every: Option<Duration>,
    cancel: CancellationToken,
) {
    let mut check = every.map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(()) = next_hangup(&mut hangup) => {
                info!(what = R::WHAT, "SIGHUP: reloading.");
                r.reload().await;
            }
            () = tick(&mut check) => {
                if r.changed() {
                    info!(what = R::WHAT, "The files changed on disk: reloading.");
                    r.reload().await;
                }
            }
        }
    }
}

async fn tick(check: &mut Option<tokio::time::Interval>) {
    match check {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .map_err(|e| warn!(error = %e, "Cannot listen for SIGHUP; the directory reloads only when its file changes."))
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

#[cfg(unix)]
async fn next_hangup(h: &mut Hangups) -> Option<()> {
    match h {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}

/// What identifies a version of a mappings directory without reading its files: each
/// `*.toml` file's name, modification time and size.
fn dir_stamp(dir: &std::path::Path) -> Vec<(PathBuf, Stamp)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Stamp)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let s = stamp(&p);
            (p, s)
        })
        .collect();
    files.sort();
    files
}

/// Reloads the mappings directory, as [`Reloader`] does the agency directory: on SIGHUP
/// and when a file is added, removed or changed. A bad set keeps the previous mappings.
pub struct MappingReloader {
    dir: Option<PathBuf>,
    prefix: String,
    every: Option<Duration>,
    mappings: watch::Sender<Arc<Mappings>>,
    problem: watch::Sender<Option<Arc<str>>>,
    metrics: SelfMetrics,
    stamp: Vec<(PathBuf, Stamp)>,
    hangup: Hangups,
}

impl MappingReloader {
    /// A reloader for `settings` (mapping filters are checked against `prefix`); returns
    /// it with the receivers of the mappings and of the last refusal. Call it within the
    /// runtime.
    #[must_use]
    pub fn new(
        settings: &MappingSettings,
        prefix: &str,
        metrics: SelfMetrics,
    ) -> (Self, watch::Receiver<Arc<Mappings>>, ReloadProblem) {
        let (mappings, rx) = watch::channel(Arc::clone(&settings.mappings));
        let (problem, problem_rx) = watch::channel(None);
        let stamp = settings.dir.as_deref().map(dir_stamp).unwrap_or_default();
        label_mappings(&metrics, &Mappings::empty(), &settings.mappings);
        let reloader = Self {
            dir: settings.dir.clone(),
            prefix: prefix.to_owned(),
            every: settings.check_every,
            mappings,
            problem,
            metrics,
            stamp,
            hangup: hangups(),
        };
        (reloader, rx, problem_rx)
    }

    /// Runs until `cancel`: reloads on SIGHUP and on a change of the directory's files.
    pub async fn run(mut self, cancel: CancellationToken) {
        if self.dir.is_none() {
            return;
        }
        let (hangup, every) = (std::mem::take(&mut self.hangup), self.every);
        run_reloads(self, hangup, every, cancel).await;
    }

    async fn reload(&mut self) {
        let Some(dir) = self.dir.clone() else { return };
        self.stamp = dir_stamp(&dir);
        let prefix = self.prefix.clone();
        let read = tokio::task::spawn_blocking(move || Mappings::read_dir(&dir, &prefix)).await;
        match read {
            Ok(Ok(mappings)) => {
                let names: Vec<&str> = mappings.all().iter().map(|m| m.name.as_str()).collect();
                info!(dir = mappings.origin(), mappings = ?names, "Mappings loaded.");
                self.metrics
                    .mapping_reloads
                    .with_label_values(&["ok"])
                    .inc();
                let old = self.mappings.send_replace(Arc::new(mappings));
                label_mappings(&self.metrics, &old, &self.mappings.borrow());
                self.problem.send_replace(None);
            }
            Ok(Err(e)) => {
                warn!(error = %e, "The mappings were refused; the previous ones stay in use.");
                self.metrics
                    .mapping_reloads
                    .with_label_values(&["refused"])
                    .inc();
                self.problem.send_replace(Some(e.into()));
            }
            Err(e) => warn!(error = %e, "Reading the mappings failed."),
        }
    }
}

/// `iocd_mapping_records_total` has every outcome of every mapping loaded from the start (at
/// 0, so that `rate()` sees the first record); the series of a mapping gone are removed.
fn label_mappings(metrics: &SelfMetrics, old: &Mappings, new: &Mappings) {
    use crate::telemetry::metrics::MAPPING_OUTCOMES;
    for gone in old.all().iter().filter(|m| new.get(&m.name).is_none()) {
        for outcome in MAPPING_OUTCOMES {
            let _ = metrics
                .mapping_records
                .remove_label_values(&[&gone.name, outcome]);
        }
    }
    for m in new.all() {
        for outcome in MAPPING_OUTCOMES {
            metrics
                .mapping_records
                .with_label_values(&[&m.name, outcome]);
        }
    }
}
