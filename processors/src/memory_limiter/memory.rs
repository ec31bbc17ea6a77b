//! Where memory figures come from: the process's resident set size, and the total memory
//! the process may use (its cgroup limit, else the machine's memory).

use std::path::{Path, PathBuf};

/// Memory the process uses now, in bytes. Injectable so tests can drive usage.
pub trait MemorySource: Send + Sync {
    /// `None` when it cannot be read (the limiter then keeps its current state).
    fn used_bytes(&self) -> Option<u64>;
}

/// The resident set size of this process (VmRSS).
pub struct ProcessRss;

impl MemorySource for ProcessRss {
    fn used_bytes(&self) -> Option<u64> {
        ferrotel_pipeline::telemetry::process_rss_bytes()
    }
}

/// What the process holds: the allocator's live heap bytes when it reports them (the figure
/// upstream reads from Go's heap), else the resident set size. RSS alone would keep memory
/// the allocator has freed but not yet returned, and could refuse data long after it is gone.
pub struct ProcessMemory;

impl MemorySource for ProcessMemory {
    fn used_bytes(&self) -> Option<u64> {
        ferrotel_pipeline::telemetry::heap_allocated_bytes()
            .or_else(ferrotel_pipeline::telemetry::process_rss_bytes)
    }
}

impl<F> MemorySource for F
where
    F: Fn() -> Option<u64> + Send + Sync,
{
    fn used_bytes(&self) -> Option<u64> {
        self()
    }
}

/// A cgroup limit at or above this is "no limit" (cgroup v1 writes 2^63 rounded to a page).
const UNLIMITED: u64 = 1 << 62;

/// Reads the total memory available to the process. The paths are fields so tests can
/// point them at fixture files.
#[derive(Debug, Clone)]
pub struct TotalMemory {
    /// Where the cgroup hierarchy is mounted: `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    /// The process's cgroup membership: `/proc/self/cgroup`.
    pub self_cgroup: PathBuf,
    /// `/proc/meminfo`.
    pub meminfo: PathBuf,
}

impl Default for TotalMemory {
    fn default() -> Self {
        TotalMemory {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            self_cgroup: PathBuf::from("/proc/self/cgroup"),
            meminfo: PathBuf::from("/proc/meminfo"),
        }
    }
}

impl TotalMemory {
    /// The cgroup memory limit if one is set, never more than the machine's memory.
    pub fn total_bytes(&self) -> Result<u64, String> {
        match (self.cgroup_limit(), self.mem_total()) {
            (Some(limit), Ok(physical)) => Ok(limit.min(physical)),
            (Some(limit), Err(_)) => Ok(limit),
            (None, total) => total,
        }
    }

    /// The memory limit of the process's cgroup: v2 `memory.max`, else v1
    /// `memory.limit_in_bytes`; its own cgroup's file first, then the mount root's (what a
    /// container with its own cgroup namespace sees). `None` when no limit is set.
    pub fn cgroup_limit(&self) -> Option<u64> {
        let membership = std::fs::read_to_string(&self.self_cgroup).unwrap_or_default();
        let mut candidates = Vec::new();
        // v2 lines read `0::/path`; v1 lines `N:controller,...:/path`.
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                candidates.push(under(&self.cgroup_root, path).join("memory.max"));
            } else if controllers.split(',').any(|c| c == "memory") {
                candidates.push(
                    under(&self.cgroup_root.join("memory"), path).join("memory.limit_in_bytes"),
                );
            }
        }
        candidates.push(self.cgroup_root.join("memory.max"));
        candidates.push(
            self.cgroup_root
                .join("memory")
                .join("memory.limit_in_bytes"),
        );
        candidates
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .find_map(|text| parse_limit(&text))
    }

    /// `MemTotal` from /proc/meminfo, in bytes.
    pub fn mem_total(&self) -> Result<u64, String> {
        let text = std::fs::read_to_string(&self.meminfo)
            .map_err(|e| format!("cannot read {}: {e}", self.meminfo.display()))?;
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix("MemTotal:")?;
                let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .ok_or_else(|| format!("no MemTotal in {}", self.meminfo.display()))
    }
}

/// `path` (absolute, as /proc/self/cgroup writes it) below `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// A cgroup limit file's value; `None` for "max", a huge value, or anything unreadable.
fn parse_limit(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value > 0 && value < UNLIMITED).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_values() {
        assert_eq!(parse_limit("536870912\n"), Some(536_870_912));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit(""), None);
        assert_eq!(parse_limit("0"), None);
    }

    #[test]
    fn closures_are_sources() {
        let source = || Some(42u64);
        assert_eq!(MemorySource::used_bytes(&source), Some(42));
        if cfg!(target_os = "linux") {
            assert!(ProcessRss.used_bytes().is_some_and(|b| b > 0));
        }
    }
}
