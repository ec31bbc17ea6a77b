//! A batch sent as several requests (remote write, Dynatrace lines): each request remembers
//! whether the destination took it, refused it for good, or must see it again, so that a
//! retry resends only the requests still pending.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;

use ferrotel_pipeline::exporter::{ExportError, Sent};

const PENDING: u8 = 0;
const TAKEN: u8 = 1;
const REFUSED: u8 = 2;

/// One request of a batch.
pub(crate) struct Part {
    pub body: Bytes,
    /// Data points (or lines) it carries.
    pub points: u64,
    state: AtomicU8,
    /// Points the destination took the request with but rejected.
    rejected: AtomicU64,
}

/// What became of one attempt at a part.
pub(crate) enum PartOutcome {
    /// Taken; `rejected` of its points were refused inside it (a partial success).
    Taken { rejected: u64, note: Option<String> },
    /// Refused for good: sending it again would give the same answer.
    Refused(String),
    /// Not taken this time; to be sent again.
    Retry(ExportError),
}

/// A batch converted, split and encoded once, for every attempt.
pub(crate) struct PartBatch {
    pub parts: Vec<Part>,
    /// Send one request after the other (a series spans several).
    pub in_order: bool,
    /// Points that never made it into a request, and why.
    pub dropped_points: u64,
    pub drop_message: String,
    /// The first refusal and the first partial-success note.
    refusal: Mutex<Option<String>>,
    note: Mutex<Option<String>>,
}

impl PartBatch {
    pub fn new(
        parts: Vec<(Bytes, u64)>,
        in_order: bool,
        dropped_points: u64,
        drop_message: String,
    ) -> PartBatch {
        PartBatch {
            parts: parts
                .into_iter()
                .map(|(body, points)| Part {
                    body,
                    points,
                    state: AtomicU8::new(PENDING),
                    rejected: AtomicU64::new(0),
                })
                .collect(),
            in_order,
            dropped_points,
            drop_message,
            refusal: Mutex::new(None),
            note: Mutex::new(None),
        }
    }

    fn record(&self, part: &Part, outcome: PartOutcome) -> Option<ExportError> {
        match outcome {
            PartOutcome::Taken { rejected, note } => {
                part.rejected
                    .store(rejected.min(part.points), Ordering::Release);
                part.state.store(TAKEN, Ordering::Release);
                if let (Some(note), Ok(mut slot)) = (note, self.note.lock()) {
                    slot.get_or_insert(note);
                }
                None
            }
            PartOutcome::Refused(message) => {
                part.state.store(REFUSED, Ordering::Release);
                if let Ok(mut slot) = self.refusal.lock() {
                    slot.get_or_insert(message);
                }
                None
            }
            PartOutcome::Retry(err) => Some(err),
        }
    }

    /// One attempt: sends the parts still pending with `post`, up to `concurrency` at once
    /// (one at a time when in order, stopping at the first that must be retried).
    pub async fn send<'a, F, Fut>(
        &'a self,
        concurrency: usize,
        post: F,
    ) -> Result<Sent, ExportError>
    where
        F: Fn(&'a Part) -> Fut,
        Fut: Future<Output = PartOutcome> + 'a,
    {
        let pending: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| p.state.load(Ordering::Acquire) == PENDING)
            .collect();
        let mut failures: Vec<ExportError> = Vec::new();
        if self.in_order || concurrency <= 1 {
            for part in pending {
                if let Some(err) = self.record(part, post(part).await) {
                    failures.push(err);
                    if self.in_order {
                        break;
                    }
                }
            }
        } else {
            let sends: Vec<_> = pending
                .into_iter()
                .map(|part| {
                    let attempt = post(part);
                    async move { (part, attempt.await) }
                })
                .collect();
            let outcomes: Vec<(&Part, PartOutcome)> = futures::stream::iter(sends)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for (part, outcome) in outcomes {
                failures.extend(self.record(part, outcome));
            }
        }
        if let Some(first) = failures.first() {
            let throttle = failures
                .iter()
                .filter_map(|e| match e {
                    ExportError::Retryable { throttle, .. } => *throttle,
                    ExportError::Permanent { .. } => None,
                })
                .max();
            let message = if failures.len() > 1 {
                format!("{first} (and {} more requests)", failures.len() - 1)
            } else {
                first.to_string()
            };
            return Err(ExportError::Retryable { message, throttle });
        }
        let refused: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| p.state.load(Ordering::Acquire) == REFUSED)
            .collect();
        let refusal = self.refusal.lock().ok().and_then(|r| r.clone());
        if !refused.is_empty() && refused.len() == self.parts.len() {
            return Err(ExportError::permanent(refusal.unwrap_or_default()));
        }
        let refused_points: u64 = refused.iter().map(|p| p.points).sum();
        let rejected_inside: u64 = self
            .parts
            .iter()
            .map(|p| p.rejected.load(Ordering::Acquire))
            .sum();
        let note = self.note.lock().ok().and_then(|n| n.clone());
        let message = [
            self.drop_message.clone(),
            refusal
                .map(|r| {
                    format!(
                        "{} of {} requests refused: {r}",
                        refused.len(),
                        self.parts.len()
                    )
                })
                .unwrap_or_default(),
            note.unwrap_or_default(),
        ]
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
        Ok(Sent {
            rejected_items: self.dropped_points + refused_points + rejected_inside,
            message,
        })
    }
}
