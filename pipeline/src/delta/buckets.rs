//! Exponential histogram buckets as the converter keeps them, with the operations a scale or
//! zero-threshold change needs before two points can be subtracted.

use crate::pdata::metrics::exponential_histogram_data_point::Buckets;

/// One side (positive or negative) of an exponential histogram: `counts[k]` is bucket
/// `offset + k`. The offset is widened so that index arithmetic cannot overflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExpBuckets {
    pub offset: i64,
    pub counts: Vec<u64>,
}

impl ExpBuckets {
    pub fn from_proto(buckets: Option<&Buckets>) -> Self {
        buckets.map_or_else(ExpBuckets::default, |b| ExpBuckets {
            offset: i64::from(b.offset),
            counts: b.bucket_counts.clone(),
        })
    }

    /// Merges buckets as a scale `shift` steps lower does: bucket `i` becomes `i >> shift`.
    pub fn coarsen(&mut self, shift: u32) {
        let shift = shift.min(63);
        if shift == 0 {
            return;
        }
        let first = self.offset;
        if self.counts.is_empty() {
            self.offset = first >> shift;
            return;
        }
        let last = first.saturating_add(self.counts.len() as i64 - 1);
        let (new_first, new_last) = (first >> shift, last >> shift);
        let len = usize::try_from(new_last - new_first + 1).unwrap_or(0);
        let mut counts = vec![0u64; len];
        for (k, count) in self.counts.iter().enumerate() {
            let index = first.saturating_add(k as i64) >> shift;
            if let Some(slot) = usize::try_from(index - new_first)
                .ok()
                .and_then(|i| counts.get_mut(i))
            {
                *slot = slot.saturating_add(*count);
            }
        }
        self.offset = new_first;
        self.counts = counts;
    }

    /// Empties the buckets with an index up to `index` and returns what they held: they fall
    /// under a raised zero threshold.
    pub fn take_up_to(&mut self, index: i64) -> u64 {
        let mut taken = 0u64;
        for (k, count) in self.counts.iter_mut().enumerate() {
            if self.offset.saturating_add(k as i64) > index {
                break;
            }
            taken = taken.saturating_add(std::mem::take(count));
        }
        taken
    }

    /// Whether `current` (a later cumulative point at the same scale) holds at least what
    /// these buckets hold, bucket by bucket; cumulative counts never shrink or vanish.
    pub fn fits_under(&self, current: Option<&Buckets>) -> bool {
        let (offset, counts) = match current {
            Some(b) => (i64::from(b.offset), b.bucket_counts.as_slice()),
            None => (0, &[][..]),
        };
        self.nonzero().all(|(index, count)| {
            slot(offset, counts.len(), index)
                .and_then(|j| counts.get(j))
                .is_some_and(|c| *c >= count)
        })
    }

    /// Subtracts these buckets from `current`; [`Self::fits_under`] must hold.
    pub fn subtract_from(&self, current: Option<&mut Buckets>) {
        let Some(current) = current else { return };
        let offset = i64::from(current.offset);
        let len = current.bucket_counts.len();
        for (index, count) in self.nonzero() {
            if let Some(c) = slot(offset, len, index).and_then(|j| current.bucket_counts.get_mut(j))
            {
                *c = c.saturating_sub(count);
            }
        }
    }

    fn nonzero(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(k, c)| (self.offset.saturating_add(k as i64), *c))
    }
}

/// Where bucket `index` sits in a list starting at `offset`, if it is there.
fn slot(offset: i64, len: usize, index: i64) -> Option<usize> {
    let j = usize::try_from(index.checked_sub(offset)?).ok()?;
    (j < len).then_some(j)
}

/// The bucket holding `threshold` at `scale`: bucket `i` covers `(base^i, base^(i+1)]` with
/// `base = 2^(2^-scale)`. Out-of-range inputs saturate rather than fail.
pub(crate) fn threshold_index(threshold: f64, scale: i32) -> i64 {
    let index = (threshold.log2() * 2f64.powi(scale)).ceil() - 1.0;
    // `as` saturates, and NaN becomes 0.
    index as i64
}
