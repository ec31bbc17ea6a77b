//! File-based service discovery (`file_sd_configs`): JSON or YAML lists of target groups,
//! read again when a file changes (checked every second) and every `refresh_interval`. A
//! file that cannot be read or parsed keeps the targets it gave before, as Prometheus does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tracing::warn;

use super::config::FileSdConfig;

/// One group of targets with the labels they share.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Checks a `file_sd_configs` entry, with Prometheus's messages.
pub fn validate(config: &FileSdConfig) -> Result<(), String> {
    if config.files.is_empty() {
        return Err("file service discovery config must contain at least one path name".into());
    }
    for pattern in &config.files {
        if !valid_pattern(pattern) {
            return Err(format!(
                "path name {pattern:?} is not valid for file discovery"
            ));
        }
    }
    Ok(())
}

/// A path whose last element may hold one `*`, ending in a JSON or YAML extension.
fn valid_pattern(pattern: &str) -> bool {
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    if dir.contains('*') || file.matches('*').count() > 1 {
        return false;
    }
    [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"]
        .iter()
        .any(|ext| file.ends_with(ext))
}

/// The files a pattern names now.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path.to_path_buf()];
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_str()?.to_string();
            (file.len() >= prefix.len() + suffix.len()
                && file.starts_with(prefix)
                && file.ends_with(suffix))
            .then(|| dir.join(file))
        })
        .collect();
    out.sort();
    out
}

/// Reads one file's target groups.
fn read(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<Option<TargetGroup>> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())?
    };
    groups
        .into_iter()
        .map(|g| g.ok_or_else(|| "nil target group item found".to_string()))
        .collect()
}

/// A file's modification time and length, to notice a change.
type Stamp = Option<(SystemTime, u64)>;

/// The state of one `file_sd_configs` entry.
pub struct FileSd {
    patterns: Vec<String>,
    refresh: Duration,
    last_read: Option<Instant>,
    /// Per file: its modification stamp and the groups it gave.
    files: HashMap<PathBuf, (Stamp, Vec<TargetGroup>)>,
}

impl FileSd {
    pub fn new(config: &FileSdConfig) -> FileSd {
        FileSd {
            patterns: config.files.clone(),
            refresh: config
                .refresh_interval
                .map_or(Duration::from_secs(300), |d| d.get())
                .max(Duration::from_secs(1)),
            last_read: None,
            files: HashMap::new(),
        }
    }

    /// Reads what changed; true when the targets may have changed.
    pub fn poll(&mut self, job: &str) -> bool {
        let due = self.last_read.is_none_or(|t| t.elapsed() >= self.refresh);
        let mut present: Vec<PathBuf> = self.patterns.iter().flat_map(|p| expand(p)).collect();
        present.sort();
        present.dedup();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|path, _| present.contains(path));
        changed |= self.files.len() != before;
        for path in present {
            let stamp = std::fs::metadata(&path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let known = self.files.get(&path).map(|(s, _)| *s);
            if !due && known.is_some() && known == Some(stamp) {
                continue;
            }
            match read(&path) {
                Ok(groups) => {
                    let old = self.files.insert(path, (stamp, groups.clone()));
                    changed |= old.is_none_or(|(_, g)| g != groups);
                }
                Err(err) => {
                    warn!(job, file = %path.display(), error = %err,
                        "Reading a file_sd file failed; keeping its previous targets");
                    // Not read again until it changes or the refresh comes.
                    let groups = self.files.remove(&path).map(|(_, g)| g).unwrap_or_default();
                    self.files.insert(path, (stamp, groups));
                }
            }
        }
        if due {
            self.last_read = Some(Instant::now());
        }
        changed
    }

    /// Every group now, each with its `__meta_filepath`.
    pub fn groups(&self) -> Vec<(String, TargetGroup)> {
        let mut paths: Vec<&PathBuf> = self.files.keys().collect();
        paths.sort();
        paths
            .into_iter()
            .flat_map(|p| {
                let file = p.display().to_string();
                self.files[p]
                    .1
                    .iter()
                    .map(move |g| (file.clone(), g.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_prometheus_allows_them() {
        for ok in ["targets.json", "/etc/sd/*.yml", "sd/a*b.yaml", "x.JSON"] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in ["targets.txt", "/etc/*/x.yml", "a**.json", "*"] {
            assert!(!valid_pattern(bad), "{bad}");
        }
        let config = FileSdConfig {
            files: vec!["x.txt".into()],
            refresh_interval: None,
        };
        assert_eq!(
            validate(&config).unwrap_err(),
            "path name \"x.txt\" is not valid for file discovery"
        );
    }

    #[test]
    fn files_are_read_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(
            &a,
            r#"[{"targets": ["h1:9100"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        let pattern = format!("{}/*.json", dir.path().display());
        let mut sd = FileSd::new(&FileSdConfig {
            files: vec![pattern],
            refresh_interval: None,
        });
        assert!(sd.poll("j"));
        assert_eq!(sd.groups()[0].1.targets, ["h1:9100"]);
        assert!(!sd.poll("j"), "nothing changed");
        let b = dir.path().join("b.json");
        std::fs::write(&b, r#"[{"targets": ["h2:9100"]}]"#).unwrap();
        assert!(sd.poll("j"));
        assert_eq!(sd.groups().len(), 2);
        // A broken file keeps its targets; a removed one drops them.
        std::fs::write(&a, "not json at all, longer than before").unwrap();
        sd.poll("j");
        assert_eq!(sd.groups().len(), 2);
        std::fs::remove_file(&b).unwrap();
        assert!(sd.poll("j"));
        assert_eq!(sd.groups().len(), 1);
    }

    #[test]
    fn yaml_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("t.yml");
        std::fs::write(&y, "- targets: ['h:1']\n  labels: {a: b}\n").unwrap();
        let mut sd = FileSd::new(&FileSdConfig {
            files: vec![y.display().to_string()],
            refresh_interval: None,
        });
        sd.poll("j");
        assert_eq!(sd.groups()[0].1.labels["a"], "b");
    }
}
