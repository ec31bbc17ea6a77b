//! Fan-out: one batch to several consumers, cloned for all but the last.

use std::sync::Arc;

use async_trait::async_trait;

use crate::component::{Accepted, ConsumeResult, Consumer, Envelope};

pub struct FanOut {
    consumers: Vec<Arc<dyn Consumer>>,
}

impl FanOut {
    /// A consumer over `consumers`; a single one is returned as it is, with no wrapper.
    pub fn over(mut consumers: Vec<Arc<dyn Consumer>>) -> Arc<dyn Consumer> {
        if consumers.len() == 1 {
            if let Some(only) = consumers.pop() {
                return only;
            }
        }
        Arc::new(FanOut { consumers })
    }
}

#[async_trait]
impl Consumer for FanOut {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let Some((last, rest)) = self.consumers.split_last() else {
            return Ok(Accepted::default());
        };
        let mut accepted = Accepted::default();
        let mut first_error = None;
        let mut any_taken = false;
        for consumer in rest {
            match consumer.consume(envelope.fork()).await {
                Ok(a) => {
                    any_taken = true;
                    accepted.combine(a);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match last.consume(envelope).await {
            Ok(a) => {
                any_taken = true;
                accepted.combine(a);
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(mut err) => {
                // A stage that retries must not resend to the branches that took it.
                err.partial |= any_taken;
                Err(err)
            }
            None => Ok(accepted),
        }
    }

    fn accepts_encoded(&self) -> bool {
        self.consumers.iter().all(|c| c.accepts_encoded())
    }
}
