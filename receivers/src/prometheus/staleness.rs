//! What a scrape loop remembers of its previous scrape, to mark the series that went away
//! with Prometheus's staleness marker and to count the ones that are new. Series are
//! compared by one 64-bit hash of name and labels; their labels are kept (moved, not
//! copied) only to write the markers.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use super::translate::{Series, STALE_NAN};

/// A series' name and labels.
type SeriesKey = (String, Vec<(String, String)>);

/// The hashes are already well mixed; hashing them again is wasted work.
#[derive(Default, Clone, Copy)]
pub struct BuildIdentity;

impl BuildHasher for BuildIdentity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A series' identity: its name and its (sorted) labels, hashed.
pub fn series_hash(s: &Series) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    h.update(s.name.as_bytes());
    for (k, v) in &s.labels {
        h.update(&[0xff]);
        h.update(k.as_bytes());
        h.update(&[0xfe]);
        h.update(v.as_bytes());
    }
    h.digest()
}

/// The series of the previous scrape.
#[derive(Default)]
pub struct Previous {
    series: HashMap<u64, SeriesKey, BuildIdentity>,
}

/// One scrape compared with the previous: its series' hashes and how many are new.
pub struct Compared {
    hashes: Vec<u64>,
    pub added: usize,
}

impl Previous {
    /// Compares this scrape's `series` with the previous scrape's: appends a staleness
    /// marker at `timestamp_ms` for every series that went away.
    pub fn compare(&self, series: &mut Vec<Series>, timestamp_ms: i64) -> Compared {
        let hashes: Vec<u64> = series.iter().map(series_hash).collect();
        let current: HashSet<u64, BuildIdentity> = hashes.iter().copied().collect();
        let added = current
            .iter()
            .filter(|h| !self.series.contains_key(h))
            .count();
        for (hash, (name, labels)) in &self.series {
            if !current.contains(hash) {
                series.push(Series {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: f64::from_bits(STALE_NAN),
                    timestamp_ms,
                    exemplar: None,
                });
            }
        }
        Compared { hashes, added }
    }

    /// Keeps this scrape's series (the first ones of `series`, as they were compared) for
    /// the next comparison.
    pub fn replace(&mut self, compared: Compared, mut series: Vec<Series>) {
        series.truncate(compared.hashes.len());
        self.series = compared
            .hashes
            .into_iter()
            .zip(series)
            .map(|(hash, s)| (hash, (s.name, s.labels)))
            .collect();
    }

    /// A staleness marker for every series (the target went away).
    pub fn all_stale(&self, timestamp_ms: i64) -> Vec<Series> {
        self.series
            .values()
            .map(|(name, labels)| Series {
                name: name.clone(),
                labels: labels.clone(),
                value: f64::from_bits(STALE_NAN),
                timestamp_ms,
                exemplar: None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(name: &str, v: &str) -> Series {
        Series {
            name: name.into(),
            labels: vec![("a".into(), v.into())],
            value: 1.0,
            timestamp_ms: 1,
            exemplar: None,
        }
    }

    #[test]
    fn new_series_are_counted_and_gone_ones_marked() {
        let mut previous = Previous::default();
        let mut first = vec![s("x", "1"), s("x", "2")];
        let c = previous.compare(&mut first, 10);
        assert_eq!(c.added, 2);
        assert_eq!(first.len(), 2);
        previous.replace(c, first);
        let mut second = vec![s("x", "1"), s("y", "1")];
        let c = previous.compare(&mut second, 20);
        assert_eq!(c.added, 1);
        assert_eq!(second.len(), 3);
        let marker = &second[2];
        assert_eq!(marker.labels, [("a".to_string(), "2".to_string())]);
        assert_eq!(marker.value.to_bits(), STALE_NAN);
        previous.replace(c, second);
        assert_eq!(previous.all_stale(30).len(), 2);
    }
}
