//! Sequence-number bookkeeping: the sink's set of numbers seen, and the arithmetic on sorted,
//! disjoint half-open ranges that tells what was lost.

/// Half-open range of sequence numbers.
pub type Range = (u64, u64);

/// Numbers above this are counted as invalid rather than tracked (the bitmap stays below
/// 128 MiB).
const LIMIT: u64 = 1 << 30;

#[derive(Default)]
pub struct SeqSet {
    words: Vec<u64>,
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_range: u64,
    pub min: Option<u64>,
    /// One past the largest number seen.
    pub end: u64,
}

impl SeqSet {
    pub fn insert(&mut self, seq: u64) {
        if seq >= LIMIT {
            self.out_of_range += 1;
            return;
        }
        let w = (seq / 64) as usize;
        if w >= self.words.len() {
            let want = (w + 1).max(self.words.len() * 2).min((LIMIT / 64) as usize);
            self.words.resize(want, 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.words[w] & bit != 0 {
            self.duplicates += 1;
        } else {
            self.words[w] |= bit;
            self.unique += 1;
        }
        self.min = Some(self.min.map_or(seq, |m| m.min(seq)));
        self.end = self.end.max(seq + 1);
    }

    /// The numbers present, as ranges.
    pub fn present(&self) -> Vec<Range> {
        let mut out: Vec<Range> = Vec::new();
        let mut start: Option<u64> = None;
        for (i, &word) in self.words.iter().enumerate() {
            let base = i as u64 * 64;
            match (word, start) {
                (u64::MAX, Some(_)) => continue,
                (0, None) => continue,
                _ => {}
            }
            for b in 0..64 {
                let set = word & (1u64 << b) != 0;
                match (set, start) {
                    (true, None) => start = Some(base + b),
                    (false, Some(s)) => {
                        out.push((s, base + b));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = start {
            out.push((s, self.words.len() as u64 * 64));
        }
        out
    }

    /// The numbers missing between the smallest and the largest seen.
    pub fn gaps(&self) -> Vec<Range> {
        let present = self.present();
        present.windows(2).map(|w| (w[0].1, w[1].0)).collect()
    }
}

pub fn len(ranges: &[Range]) -> u64 {
    ranges.iter().map(|(a, b)| b - a).sum()
}

/// Sorts and merges overlapping or touching ranges.
pub fn normalize(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.retain(|(a, b)| a < b);
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` without `b` (both normalized).
pub fn subtract(a: &[Range], b: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(mut s, e) in a {
        while j < b.len() && b[j].1 <= s {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].0 < e {
            if b[k].0 > s {
                out.push((s, b[k].0));
            }
            s = s.max(b[k].1);
            if s >= e {
                break;
            }
            k += 1;
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// `a` and `b` (both normalized).
pub fn intersect(a: &[Range], b: &[Range]) -> Vec<Range> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// What the sink got, held against what the generator sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Items the agent acknowledged.
    pub acked: u64,
    /// Acknowledged items that arrived (once or more).
    pub delivered: u64,
    /// Acknowledged items that never arrived.
    pub lost: u64,
    /// Deliveries beyond the first of an item.
    pub duplicates: u64,
    /// Items the agent did not acknowledge (refused, timed out) that arrived anyway.
    pub unacked_delivered: u64,
    /// Items that arrived with a number the generator never sent.
    pub unexpected: u64,
}

/// `sent`: the numbers the generator sent; `unacked`: those of requests not acknowledged;
/// `present`: those the sink saw.
pub fn verdict(sent: &[Range], unacked: &[Range], present: &[Range], duplicates: u64) -> Verdict {
    let sent = normalize(sent.to_vec());
    let unacked = normalize(unacked.to_vec());
    let acked = subtract(&sent, &unacked);
    let got_acked = intersect(&acked, present);
    Verdict {
        acked: len(&acked),
        delivered: len(&got_acked),
        lost: len(&acked) - len(&got_acked),
        duplicates,
        unacked_delivered: len(&intersect(&unacked, present)),
        unexpected: len(&subtract(present, &sent)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqset_counts_and_ranges() {
        let mut s = SeqSet::default();
        for n in (0..200).chain(250..300).chain([10, 11, 299]) {
            s.insert(n);
        }
        assert_eq!(s.unique, 250);
        assert_eq!(s.duplicates, 3);
        assert_eq!(s.present(), vec![(0, 200), (250, 300)]);
        assert_eq!(s.gaps(), vec![(200, 250)]);
        assert_eq!(s.end, 300);
        s.insert(1 << 40);
        assert_eq!(s.out_of_range, 1);
    }

    #[test]
    fn range_arithmetic() {
        let a = vec![(0, 10), (20, 30)];
        let b = vec![(5, 25)];
        assert_eq!(subtract(&a, &b), vec![(0, 5), (25, 30)]);
        assert_eq!(intersect(&a, &b), vec![(5, 10), (20, 25)]);
        assert_eq!(subtract(&a, &[]), a);
        assert_eq!(
            normalize(vec![(5, 6), (0, 3), (3, 4), (7, 7)]),
            vec![(0, 4), (5, 6)]
        );
        assert_eq!(
            subtract(&[(0, 100)], &[(10, 20), (30, 40), (90, 200)]),
            vec![(0, 10), (20, 30), (40, 90)]
        );
    }

    #[test]
    fn verdict_separates_lost_from_refused() {
        // 0..100 sent, 40..50 refused, sink saw 0..35 and 45..100 and one duplicate.
        let v = verdict(&[(0, 100)], &[(40, 50)], &[(0, 35), (45, 100)], 1);
        assert_eq!(
            v,
            Verdict {
                acked: 90,
                delivered: 85,
                lost: 5,
                duplicates: 1,
                unacked_delivered: 5,
                unexpected: 0
            }
        );
    }
}
