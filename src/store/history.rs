//! The alerts' history: each firing, resolution, escalation and reminder, for
//! `GET /api/v1/alerts/{id}/history` (with the operator actions, which the state keeps).
//!
//! Kept in memory (the last [`History::max`] entries within the horizon) and, with a data
//! directory, in one JSON-lines file per UTC day under `{data-dir}/history/`, read back at
//! start. Files older than the horizon are deleted; a day's file stops growing at
//! [`DAY_MAX_BYTES`] (then entries are kept in memory only, and that is logged once), so the
//! directory stays bounded whatever fires. Lines are written at once (no fsync: the
//! history is a record for people, not state; a crash of the machine may lose the last
//! lines, a crash of iocd does not).

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::time::{NANOS_PER_SEC, Ts};

/// Largest history file of one day, in bytes.
pub const DAY_MAX_BYTES: u64 = 8 << 20;

/// One entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When (Unix nanoseconds).
    pub at_ns: i64,
    /// The alert.
    pub alert_id: String,
    /// `firing`, `resolved`, `escalated` or `reminder`.
    pub event: String,
    /// The severity it was shown at.
    pub severity: String,
    /// Its count then.
    pub count: u64,
    /// Its sentence then.
    pub summary: String,
}

/// The history, bounded.
pub struct History {
    dir: Option<PathBuf>,
    entries: VecDeque<Entry>,
    /// Entries per alert id (to tell an alert that existed from an unknown id).
    per_alert: HashMap<String, u32>,
    /// Per firing alert: whether it was escalated, and its reminders, as last recorded.
    last: HashMap<String, (bool, u64)>,
    max: usize,
    horizon_secs: i64,
    /// The day of the file being written, its handle and size; `None` until the first line.
    file: Option<(i64, std::fs::File, u64)>,
    /// The day whose file was full (logged once).
    full_day: Option<i64>,
}

fn day_of(at_ns: i64) -> i64 {
    at_ns.div_euclid(86_400 * NANOS_PER_SEC)
}

fn file_name(day: i64) -> String {
    format!("{}.jsonl", crate::time::iso_date(day))
}

fn day_of_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".jsonl")?;
    let mut parts = stem.split('-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some(crate::time::days_from_civil(y, m, d))
}

impl History {
    /// An empty history in memory only.
    #[must_use]
    pub fn in_memory(max: usize, horizon_secs: i64) -> Self {
        Self {
            dir: None,
            entries: VecDeque::new(),
            per_alert: HashMap::new(),
            last: HashMap::new(),
            max: max.max(1),
            horizon_secs,
            file: None,
            full_day: None,
        }
    }

    /// The history kept under `data_dir/history`, read back from its files within the
    /// horizon at `now` (older files are deleted; unreadable lines are skipped).
    ///
    /// # Errors
    /// When the directory cannot be created or listed.
    pub fn open(data_dir: &Path, max: usize, horizon_secs: i64, now: Ts) -> std::io::Result<Self> {
        let dir = data_dir.join("history");
        std::fs::create_dir_all(&dir)?;
        let mut h = Self::in_memory(max, horizon_secs);
        let oldest = day_of(now.minus_secs(horizon_secs).0);
        let mut days: Vec<(i64, PathBuf)> = Vec::new();
        for item in std::fs::read_dir(&dir)? {
            let path = item?.path();
            let Some(day) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(day_of_name)
            else {
                continue;
            };
            if day < oldest {
                let _ = std::fs::remove_file(&path);
            } else {
                days.push((day, path));
            }
        }
        days.sort();
        for (_, path) in days {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<Entry>(line) {
                    h.remember(e);
                }
            }
        }
        h.dir = Some(dir);
        Ok(h)
    }

    /// Most entries kept in memory.
    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    fn remember(&mut self, e: Entry) {
        while self.entries.len() >= self.max {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.forget(&old.alert_id);
        }
        match e.event.as_str() {
            "resolved" => {
                self.last.remove(&e.alert_id);
            }
            "firing" => {
                self.last.insert(e.alert_id.clone(), (false, 0));
            }
            "escalated" => {
                self.last.entry(e.alert_id.clone()).or_default().0 = true;
            }
            _ => {
                self.last.entry(e.alert_id.clone()).or_default().1 += 1;
            }
        }
        *self.per_alert.entry(e.alert_id.clone()).or_default() += 1;
        self.entries.push_back(e);
    }

    fn forget(&mut self, id: &str) {
        if let Some(n) = self.per_alert.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                self.per_alert.remove(id);
            }
        }
    }

    /// Records what an alert transition means for the history: `firing` and `resolved`
    /// as they come; for a change of a firing alert, an `escalated` entry when it just
    /// escalated and a `reminder` entry per reminder added (other changes, a count or an
    /// acknowledgement, are not history entries: the actions are in the audit trail).
    pub fn transition(&mut self, e: Entry, (firing, escalated, reminders): (bool, bool, u64)) {
        if !firing {
            self.record(Entry {
                event: "resolved".into(),
                ..e
            });
            return;
        }
        let Some(&(was_escalated, was_reminded)) = self.last.get(&e.alert_id) else {
            self.record(Entry {
                event: "firing".into(),
                ..e
            });
            return;
        };
        if escalated && !was_escalated {
            self.record(Entry {
                event: "escalated".into(),
                ..e.clone()
            });
        }
        if reminders > was_reminded {
            self.record(Entry {
                event: "reminder".into(),
                ..e
            });
        }
    }

    fn record(&mut self, e: Entry) {
        self.write(&e);
        self.remember(e);
    }

    fn write(&mut self, e: &Entry) {
        let Some(dir) = &self.dir else {
            return;
        };
        let day = day_of(e.at_ns);
        if self.file.as_ref().is_none_or(|(d, _, _)| *d != day) {
            let path = dir.join(file_name(day));
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            match opened {
                Ok(f) => {
                    let size = f.metadata().map_or(0, |m| m.len());
                    self.file = Some((day, f, size));
                }
                Err(err) => {
                    warn!(path = %path.display(), error = %err, "Cannot write the alert history file; history kept in memory only.");
                    self.file = None;
                    return;
                }
            }
            // A new day: drop the files past the horizon.
            let oldest = day - self.horizon_secs / 86_400 - 1;
            if let Ok(items) = std::fs::read_dir(dir) {
                for item in items.flatten() {
                    let path = item.path();
                    if path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(day_of_name)
                        .is_some_and(|d| d < oldest)
                    {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        }
        let Some((_, file, size)) = &mut self.file else {
            return;
        };
        let Ok(mut line) = serde_json::to_vec(e) else {
            return;
        };
        line.push(b'\n');
        if *size + line.len() as u64 > DAY_MAX_BYTES {
            if self.full_day != Some(day) {
                self.full_day = Some(day);
                warn!(
                    "Today's alert history file is full ({DAY_MAX_BYTES} bytes): further entries today are kept in memory only."
                );
            }
            return;
        }
        if file.write_all(&line).is_ok() {
            *size += line.len() as u64;
        }
    }

    /// Whether `id` has an entry (it fired within the horizon).
    #[must_use]
    pub fn knows(&self, id: &str) -> bool {
        self.per_alert.contains_key(id)
    }

    /// The entries of `id`, oldest first.
    pub fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.alert_id == id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(at: i64, id: &str) -> Entry {
        Entry {
            at_ns: at * NANOS_PER_SEC,
            alert_id: id.into(),
            event: String::new(),
            severity: "warning".into(),
            count: 1,
            summary: "Sở Tư pháp có 1 hồ sơ quá hạn".into(),
        }
    }

    #[test]
    fn transitions_become_entries_that_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("iocd-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Ts::from_secs(1_796_000_000);
        let mut h = History::open(&dir, 100, 90 * 86_400, now).unwrap();
        let t = 1_796_000_000;
        h.transition(entry(t, "a"), (true, false, 0));
        h.transition(entry(t + 1, "a"), (true, false, 0)); // a count change: nothing
        h.transition(entry(t + 2, "a"), (true, true, 1));
        h.transition(entry(t + 3, "a"), (false, false, 0));
        let events: Vec<&str> = h.of("a").map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["firing", "escalated", "reminder", "resolved"]);
        assert!(h.knows("a") && !h.knows("b"));
        let again = History::open(&dir, 100, 90 * 86_400, now).unwrap();
        let events: Vec<&str> = again.of("a").map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["firing", "escalated", "reminder", "resolved"]);
        // Past the horizon, the files go.
        let later = now.plus_secs(100 * 86_400);
        let gone = History::open(&dir, 100, 90 * 86_400, later).unwrap();
        assert!(!gone.knows("a"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn memory_keeps_the_newest_entries() {
        let mut h = History::in_memory(3, 86_400);
        for i in 0..5 {
            h.transition(entry(i, &format!("x{i}")), (true, false, 0));
        }
        assert!(!h.knows("x0") && !h.knows("x1") && h.knows("x4"));
    }
}
