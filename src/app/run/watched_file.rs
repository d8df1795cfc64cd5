//! A config-side file the service re-reads when it changes (the registry file, the
//! approvals file): one throttled modification-time check, and the keys a new version
//! dropped, so each feed only says how to read its records.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the file's modification time is checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A file, its modification time when last read, and the keys that version held.
pub(super) struct WatchedFile {
    pub path: PathBuf,
    modified: Option<SystemTime>,
    keys: BTreeSet<String>,
    checked: Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl WatchedFile {
    /// Starts watching `path`, whose current version holds `keys`.
    pub fn new(path: &Path, keys: BTreeSet<String>) -> Self {
        WatchedFile {
            path: path.to_path_buf(),
            modified: modified(path),
            keys,
            checked: Instant::now(),
        }
    }

    /// True, at most once per check interval, when the file's modification time moved
    /// since it was last read.
    pub fn changed(&mut self) -> bool {
        if self.checked.elapsed() < CHECK_INTERVAL {
            return false;
        }
        self.checked = Instant::now();
        let now = modified(&self.path);
        if now == self.modified {
            return false;
        }
        self.modified = now;
        true
    }

    /// Records the keys of the version just read and returns those it no longer holds.
    pub fn replace_keys(&mut self, keys: BTreeSet<String>) -> Vec<String> {
        let gone = self.keys.difference(&keys).cloned().collect();
        self.keys = keys;
        gone
    }
}
