//! Exponential backoff with jitter, as the Collector's `retry_on_failure` computes it.

use std::time::Duration;

use super::config::RetrySettings;

pub struct Backoff {
    initial: Duration,
    max_interval: Duration,
    max_elapsed: Duration,
    multiplier: f64,
    randomization: f64,
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(settings: &RetrySettings) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0x9E37_79B9)
            | 1;
        Backoff {
            initial: settings.initial_interval.get(),
            max_interval: settings.max_interval.get(),
            max_elapsed: settings.max_elapsed_time.get(),
            multiplier: settings.multiplier,
            randomization: settings.randomization_factor,
            current: settings.initial_interval.get(),
            seed,
        }
    }

    fn random(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The wait before the next attempt, given the time spent so far and a wait the server
    /// asked for; `None` once `max_elapsed_time` would be passed (never, when it is 0).
    pub fn next(&mut self, elapsed: Duration, throttle: Option<Duration>) -> Option<Duration> {
        if !self.max_elapsed.is_zero() && elapsed > self.max_elapsed {
            return None;
        }
        let base = self.current.as_secs_f64();
        let delta = self.randomization * base;
        let randomized = base - delta + self.random() * 2.0 * delta;
        let next = self.current.as_secs_f64() * self.multiplier;
        self.current = Duration::from_secs_f64(next.min(self.max_interval.as_secs_f64()).max(0.0));
        let mut wait = Duration::from_secs_f64(randomized.max(0.0));
        if let Some(t) = throttle {
            wait = wait.max(t);
        }
        if !self.max_elapsed.is_zero() && elapsed + wait > self.max_elapsed {
            return None;
        }
        Some(wait)
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::GoDuration;

    #[test]
    fn grows_with_jitter_up_to_the_cap_and_stops() {
        let settings = RetrySettings {
            initial_interval: GoDuration::from_secs(1),
            max_interval: GoDuration::from_secs(4),
            max_elapsed_time: GoDuration::from_secs(20),
            ..RetrySettings::default()
        };
        let mut b = Backoff::new(&settings);
        let bounds = [
            (0.5, 1.5),
            (0.75, 2.25),
            (1.125, 3.375),
            (1.6875, 5.0625),
            (2.0, 6.0),
            (2.0, 6.0),
        ];
        for (lo, hi) in bounds {
            let w = b
                .next(Duration::ZERO, None)
                .map(|d| d.as_secs_f64())
                .unwrap_or(-1.0);
            assert!(w >= lo - 1e-9 && w <= hi + 1e-9, "{w} not in [{lo}, {hi}]");
        }
        assert_eq!(b.next(Duration::from_secs(21), None), None);
        assert_eq!(
            b.next(Duration::from_secs(19), Some(Duration::from_secs(5))),
            None
        );
        b.reset();
        let w = b
            .next(Duration::ZERO, Some(Duration::from_secs(3)))
            .unwrap_or_default();
        assert!(
            w >= Duration::from_secs(3),
            "a server-requested wait is honoured"
        );
    }

    #[test]
    fn zero_max_elapsed_means_forever() {
        let settings = RetrySettings {
            max_elapsed_time: GoDuration::from_secs(0),
            ..RetrySettings::default()
        };
        let mut b = Backoff::new(&settings);
        assert!(b.next(Duration::from_secs(100_000), None).is_some());
    }
}
