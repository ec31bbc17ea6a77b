//! Which offsets may be committed: per partition, the records handed to the pipelines in
//! offset order with their delivery outcomes. A partition's commit point moves past a
//! record only when that record and every record before it are finished: delivered, or
//! failed and skipped as `message_marking` says.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use ferrotel_pipeline::component::ConsumeError;
use ferrotel_pipeline::telemetry::KafkaPartitionMetrics;

/// The delivery outcome of one record, known now or later.
pub enum Outcome {
    Done(Result<(), ConsumeError>),
    Pending(oneshot::Receiver<Result<(), ConsumeError>>),
    /// Read but not handed on, and not to be skipped (the receiver stopped first): the
    /// commit point stays before it.
    Abandoned,
    /// Never to be delivered (it does not decode): counted as failed, always passed over.
    Skipped,
}

/// What `message_marking` says about a record whose delivery failed.
#[derive(Debug, Clone, Copy)]
pub struct Marking {
    /// Without `after`, a failed record is always skipped.
    pub after: bool,
    pub on_error: bool,
    pub on_permanent_error: bool,
}

impl Marking {
    /// Whether the commit point may move past a record that failed with `error`.
    fn skips(&self, error: &ConsumeError) -> bool {
        if !self.after {
            return true;
        }
        if error.kind.is_retryable() {
            self.on_error
        } else {
            self.on_permanent_error
        }
    }
}

/// A record whose delivery failed, for the log.
#[derive(Debug)]
pub struct Failed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error: ConsumeError,
    /// The commit point moved past it; otherwise the partition holds at this record.
    pub skipped: bool,
}

pub struct Partition {
    pub topic: String,
    pub partition: i32,
    /// Which assignment of the partition this is: a record read under an earlier one is
    /// read again from the commit point, never tracked.
    pub epoch: u64,
    pub metrics: KafkaPartitionMetrics,
    in_flight: VecDeque<(i64, Outcome)>,
    /// The offset to commit: one past the last finished record.
    next: Option<i64>,
    /// What was last sent to the broker.
    committed: Option<i64>,
    /// A failed record that may not be skipped: nothing after it is handed on or committed
    /// until the partition is assigned again (its records in flight are forgotten).
    pub held: bool,
}

/// Every partition assigned to this consumer.
#[derive(Default)]
pub struct Tracker {
    partitions: Vec<Partition>,
    in_flight: usize,
    epochs: u64,
}

impl Tracker {
    /// Starts tracking a newly assigned partition (or starts it afresh).
    pub fn assign(&mut self, topic: &str, partition: i32, metrics: KafkaPartitionMetrics) {
        self.revoke(topic, partition);
        self.epochs += 1;
        self.partitions.push(Partition {
            topic: topic.to_string(),
            partition,
            epoch: self.epochs,
            metrics,
            in_flight: VecDeque::new(),
            next: None,
            committed: None,
            held: false,
        });
    }

    /// Stops tracking a partition; records still in flight are forgotten (whoever reads the
    /// partition next reads them again). Returns the partition's uncommitted commit point.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let i = self.index(topic, partition)?;
        let p = self.partitions.swap_remove(i);
        self.in_flight -= p.in_flight.len();
        p.next.filter(|n| Some(*n) != p.committed)
    }

    fn index(&self, topic: &str, partition: i32) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.partition == partition && p.topic == topic)
    }

    /// Forgets every partition, so that nothing more is committed (after the last commit
    /// at shutdown, before the client's close revokes them).
    pub fn close(&mut self) {
        self.partitions.clear();
        self.in_flight = 0;
    }

    /// The current assignment epoch of a partition, if assigned.
    pub fn epoch(&self, topic: &str, partition: i32) -> Option<u64> {
        self.index(topic, partition)
            .map(|i| self.partitions[i].epoch)
    }

    /// A commit that failed: send the partition's commit point again next time.
    pub fn uncommit(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            if p.committed == Some(offset) {
                p.committed = None;
            }
        }
    }

    pub fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        let i = self.index(topic, partition)?;
        self.partitions.get_mut(i)
    }

    /// Records handed on whose outcome is not yet known, over every partition.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Adds a record read under assignment `epoch` (records come in offset order); false
    /// when the partition was revoked or reassigned since, or holds.
    pub fn track(
        &mut self,
        topic: &str,
        partition: i32,
        epoch: u64,
        offset: i64,
        outcome: Outcome,
    ) -> bool {
        let Some(i) = self.index(topic, partition) else {
            return false;
        };
        let p = &mut self.partitions[i];
        if p.epoch != epoch || p.held {
            return false;
        }
        p.in_flight.push_back((offset, outcome));
        self.in_flight += 1;
        true
    }

    /// Marks a tracked record as never taken.
    pub fn abandon(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            if let Some(entry) = p.in_flight.iter_mut().find(|(o, _)| *o == offset) {
                entry.1 = Outcome::Abandoned;
            }
        }
    }

    /// Moves every partition's commit point over the records now finished; returns the
    /// failures met on the way.
    pub fn advance(&mut self, marking: Marking) -> Vec<Failed> {
        let mut failed = Vec::new();
        for p in &mut self.partitions {
            while !p.held {
                let Some((offset, outcome)) = p.in_flight.front_mut() else {
                    break;
                };
                let offset = *offset;
                let result = match outcome {
                    Outcome::Abandoned => {
                        p.held = true;
                        break;
                    }
                    Outcome::Skipped => {
                        p.metrics.records_failure.inc();
                        p.in_flight.pop_front();
                        self.in_flight -= 1;
                        p.next = Some(offset.saturating_add(1));
                        continue;
                    }
                    Outcome::Done(result) => std::mem::replace(result, Ok(())),
                    Outcome::Pending(rx) => match rx.try_recv() {
                        Ok(result) => result,
                        Err(oneshot::error::TryRecvError::Empty) => break,
                        // Every holder went away without a word: nothing failed.
                        Err(oneshot::error::TryRecvError::Closed) => Ok(()),
                    },
                };
                match result {
                    Ok(()) => p.metrics.records_success.inc(),
                    Err(error) => {
                        p.metrics.records_failure.inc();
                        let skipped = marking.skips(&error);
                        failed.push(Failed {
                            topic: p.topic.clone(),
                            partition: p.partition,
                            offset,
                            error,
                            skipped,
                        });
                        if !skipped {
                            p.held = true;
                            break;
                        }
                    }
                }
                p.in_flight.pop_front();
                self.in_flight -= 1;
                p.next = Some(offset.saturating_add(1));
            }
            if p.held {
                // What follows is read again once the partition is assigned anew.
                self.in_flight -= p.in_flight.len();
                p.in_flight.clear();
            }
        }
        failed
    }

    /// The commit points that moved since the last call: (topic, partition, offset).
    pub fn to_commit(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for p in &mut self.partitions {
            if let Some(next) = p.next {
                if p.committed != Some(next) {
                    out.push((p.topic.clone(), p.partition, next));
                    p.committed = Some(next);
                }
            }
        }
        out
    }

    /// Whether any partition has records in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0
    }

    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::telemetry::Telemetry;

    fn tracker() -> Tracker {
        let telemetry = Telemetry::for_tests();
        let mut t = Tracker::default();
        t.assign("t", 0, telemetry.kafka_receiver("kafka").partition("t", 0));
        t
    }

    const AFTER: Marking = Marking {
        after: true,
        on_error: false,
        on_permanent_error: false,
    };
    const BEFORE: Marking = Marking {
        after: false,
        on_error: false,
        on_permanent_error: false,
    };

    #[test]
    fn the_commit_point_waits_for_the_oldest_record() {
        let mut t = tracker();
        let (tx0, rx0) = oneshot::channel();
        let (tx1, rx1) = oneshot::channel();
        t.track("t", 0, 1, 10, Outcome::Pending(rx0));
        t.track("t", 0, 1, 11, Outcome::Pending(rx1));
        t.track("t", 0, 1, 12, Outcome::Done(Ok(())));
        tx1.send(Ok(())).unwrap();
        assert!(t.advance(AFTER).is_empty());
        assert!(t.to_commit().is_empty(), "10 is not finished");
        tx0.send(Ok(())).unwrap();
        t.advance(AFTER);
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 13)]);
        assert!(t.to_commit().is_empty(), "nothing new");
        assert!(t.is_idle());
    }

    #[test]
    fn a_failure_holds_the_partition_only_when_marking_after() {
        for (marking, held) in [(AFTER, true), (BEFORE, false)] {
            let mut t = tracker();
            t.track("t", 0, 1, 5, Outcome::Done(Ok(())));
            t.track(
                "t",
                0,
                1,
                6,
                Outcome::Done(Err(ConsumeError::permanent("exporter gave up"))),
            );
            t.track("t", 0, 1, 7, Outcome::Done(Ok(())));
            let failed = t.advance(marking);
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].offset, 6);
            assert_eq!(failed[0].skipped, !held);
            let expected = if held { 6 } else { 8 };
            assert_eq!(t.to_commit(), [("t".to_string(), 0, expected)]);
            assert_eq!(t.get_mut("t", 0).unwrap().held, held);
        }
    }

    #[test]
    fn on_error_and_on_permanent_error_decide_by_kind() {
        let m = Marking {
            after: true,
            on_error: true,
            on_permanent_error: false,
        };
        assert!(m.skips(&ConsumeError::unavailable("x")));
        assert!(!m.skips(&ConsumeError::permanent("x")));
    }

    #[test]
    fn revoking_forgets_in_flight_records_and_returns_the_commit_point() {
        let mut t = tracker();
        let (_tx, rx) = oneshot::channel();
        t.track("t", 0, 1, 1, Outcome::Done(Ok(())));
        t.track("t", 0, 1, 2, Outcome::Pending(rx));
        t.advance(AFTER);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.revoke("t", 0), Some(2));
        assert_eq!(t.in_flight(), 0);
        assert!(
            !t.track("t", 0, 1, 3, Outcome::Done(Ok(()))),
            "not assigned"
        );
    }

    #[test]
    fn an_abandoned_record_is_never_committed_past() {
        let mut t = tracker();
        let (_tx, rx) = oneshot::channel();
        t.track("t", 0, 1, 1, Outcome::Done(Ok(())));
        t.track("t", 0, 1, 2, Outcome::Pending(rx));
        t.track("t", 0, 1, 3, Outcome::Done(Ok(())));
        t.abandon("t", 0, 2);
        assert!(t.advance(BEFORE).is_empty());
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 2)]);
    }

    #[test]
    fn records_of_an_earlier_assignment_are_not_tracked() {
        let mut t = tracker();
        let telemetry = Telemetry::for_tests();
        t.assign("t", 0, telemetry.kafka_receiver("kafka").partition("t", 0));
        assert_eq!(t.epoch("t", 0), Some(2));
        assert!(!t.track("t", 0, 1, 7, Outcome::Done(Ok(()))));
        assert!(t.track("t", 0, 2, 7, Outcome::Done(Ok(()))));
    }

    #[test]
    fn a_held_partition_forgets_its_records_in_flight() {
        let mut t = tracker();
        let (_tx, rx) = oneshot::channel();
        t.track("t", 0, 1, 1, Outcome::Abandoned);
        t.track("t", 0, 1, 2, Outcome::Pending(rx));
        t.advance(BEFORE);
        assert!(t.is_idle());
        assert!(!t.track("t", 0, 1, 3, Outcome::Done(Ok(()))), "holds");
        assert!(t.to_commit().is_empty());
    }

    #[test]
    fn undecodable_records_are_passed_over_even_when_marking_after() {
        let mut t = tracker();
        t.track("t", 0, 1, 4, Outcome::Skipped);
        t.track("t", 0, 1, 5, Outcome::Done(Ok(())));
        assert!(t.advance(AFTER).is_empty());
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 6)]);
    }

    #[test]
    fn a_failed_commit_is_sent_again() {
        let mut t = tracker();
        t.track("t", 0, 1, 4, Outcome::Done(Ok(())));
        t.advance(AFTER);
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 5)]);
        t.uncommit("t", 0, 5);
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 5)]);
    }

    #[test]
    fn a_dropped_acknowledgement_counts_as_delivered() {
        let mut t = tracker();
        let (tx, rx) = oneshot::channel::<Result<(), ConsumeError>>();
        t.track("t", 0, 1, 1, Outcome::Pending(rx));
        drop(tx);
        t.advance(AFTER);
        assert_eq!(t.to_commit(), [("t".to_string(), 0, 2)]);
    }
}
