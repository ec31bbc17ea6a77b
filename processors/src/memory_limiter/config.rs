//! The `memory_limiter` processor's configuration, with upstream's fields, defaults and
//! validation messages. The Go garbage-collector fields are accepted and have no effect.

use std::time::Duration;

use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::factory::Validate;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often memory use is measured; required.
    pub check_interval: GoDuration,
    /// Hard limit in MiB; takes precedence over `limit_percentage`.
    pub limit_mib: u32,
    /// Headroom below the hard limit in MiB; data is refused above `limit - spike`.
    pub spike_limit_mib: u32,
    /// Hard limit as a percentage of the total memory (cgroup limit or physical memory).
    pub limit_percentage: u32,
    pub spike_limit_percentage: u32,
    /// Upstream tunes Go's garbage collector with these; ferrotel has none to force.
    pub min_gc_interval_when_soft_limited: GoDuration,
    pub min_gc_interval_when_hard_limited: GoDuration,
    pub max_gc_interval_when_soft_limited: GoDuration,
    pub max_gc_interval_when_hard_limited: GoDuration,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        MemoryLimiterConfig {
            check_interval: GoDuration::default(),
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
            min_gc_interval_when_soft_limited: GoDuration::from_secs(10),
            min_gc_interval_when_hard_limited: GoDuration::default(),
            max_gc_interval_when_soft_limited: GoDuration::from_secs(30),
            max_gc_interval_when_hard_limited: GoDuration::from_secs(30),
        }
    }
}

impl Validate for MemoryLimiterConfig {
    fn validate(&self) -> Result<(), String> {
        if self.check_interval.get() == Duration::ZERO {
            return Err("'check_interval' must be greater than zero".into());
        }
        if self.min_gc_interval_when_soft_limited < self.min_gc_interval_when_hard_limited {
            return Err("'min_gc_interval_when_soft_limited' should be larger than 'min_gc_interval_when_hard_limited'".into());
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            return Err("'limit_mib' or 'limit_percentage' must be greater than zero".into());
        }
        if self.limit_percentage > 100 || self.spike_limit_percentage > 100 {
            return Err("'limit_percentage' and 'spike_limit_percentage' must be greater than zero and less than or equal to hundred".into());
        }
        if self.limit_mib > 0 && self.limit_mib <= self.spike_limit_mib {
            return Err("'spike_limit_mib' must be smaller than 'limit_mib'".into());
        }
        if self.limit_percentage > 0 && self.limit_percentage <= self.spike_limit_percentage {
            return Err("'spike_limit_percentage' must be smaller than 'limit_percentage'".into());
        }
        Ok(())
    }
}

impl ComponentConfig for MemoryLimiterConfig {}

/// The limits in bytes: data is refused from `soft` (= hard - spike) up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub hard: u64,
    pub soft: u64,
}

impl Limits {
    /// The limits a config sets. `total_memory` is asked only for percentage limits.
    pub fn from_config(
        config: &MemoryLimiterConfig,
        total_memory: impl FnOnce() -> Result<u64, String>,
    ) -> Result<Limits, String> {
        let (hard, spike) = if config.limit_mib != 0 {
            (
                u64::from(config.limit_mib) * MIB,
                u64::from(config.spike_limit_mib) * MIB,
            )
        } else {
            let total = total_memory().map_err(|err| {
                format!("failed to get total memory, use fixed memory settings (limit_mib): {err}")
            })?;
            let share = |percent: u32| {
                u64::try_from(u128::from(total) * u128::from(percent) / 100).unwrap_or(u64::MAX)
            };
            (
                share(config.limit_percentage),
                share(config.spike_limit_percentage),
            )
        };
        if hard == 0 {
            return Err("the memory limit comes to 0 bytes; set limit_mib".into());
        }
        // Without a spike limit, 20% of the hard limit is kept as headroom, as upstream does.
        let spike = if spike == 0 { hard / 5 } else { spike };
        Ok(Limits {
            hard,
            soft: hard.saturating_sub(spike),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    use super::*;

    fn parse(yaml: &str) -> Result<MemoryLimiterConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: MemoryLimiterConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn validation_messages_are_upstreams() {
        let cases = [
            ("limit_mib: 100", "'check_interval' must be greater than zero"),
            ("check_interval: 0s\nlimit_mib: 100", "'check_interval' must be greater than zero"),
            ("check_interval: 1s", "'limit_mib' or 'limit_percentage' must be greater than zero"),
            (
                "check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 100",
                "'spike_limit_mib' must be smaller than 'limit_mib'",
            ),
            (
                "check_interval: 1s\nlimit_percentage: 50\nspike_limit_percentage: 60",
                "'spike_limit_percentage' must be smaller than 'limit_percentage'",
            ),
            (
                "check_interval: 1s\nlimit_percentage: 101",
                "'limit_percentage' and 'spike_limit_percentage' must be greater than zero and less than or equal to hundred",
            ),
            (
                "check_interval: 1s\nlimit_mib: 100\nmin_gc_interval_when_soft_limited: 1s\nmin_gc_interval_when_hard_limited: 2s",
                "'min_gc_interval_when_soft_limited' should be larger than 'min_gc_interval_when_hard_limited'",
            ),
        ];
        for (yaml, message) in cases {
            assert_eq!(parse(yaml).unwrap_err(), message, "{yaml}");
        }
    }

    #[test]
    fn accepts_upstream_configs_including_gc_fields() {
        let c = parse(
            "check_interval: 1s\nlimit_mib: 4000\nspike_limit_mib: 800\nmin_gc_interval_when_soft_limited: 10s\nmin_gc_interval_when_hard_limited: 0s\nmax_gc_interval_when_soft_limited: 30s\nmax_gc_interval_when_hard_limited: 30s",
        )
        .unwrap();
        assert_eq!(c.check_interval.get(), Duration::from_secs(1));
        assert_eq!(c.limit_mib, 4000);
        assert!(
            parse("check_interval: 5s\nlimit_percentage: 80\nspike_limit_percentage: 25").is_ok()
        );
        let unknown = parse("check_interval: 1s\nlimit_mib: 1\nballast_size_mib: 1").unwrap_err();
        assert!(
            unknown.contains("unknown field \"ballast_size_mib\""),
            "{unknown}"
        );
    }

    #[test]
    fn fixed_limits_default_the_spike_to_a_fifth() {
        let c = parse("check_interval: 1s\nlimit_mib: 100").unwrap();
        let l = Limits::from_config(&c, || Err("not asked".into())).unwrap();
        assert_eq!(l.hard, 100 * MIB);
        assert_eq!(l.soft, 80 * MIB);
        let c = parse("check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 30").unwrap();
        let l = Limits::from_config(&c, || Err("not asked".into())).unwrap();
        assert_eq!(l.soft, 70 * MIB);
    }

    #[test]
    fn percentage_limits_come_from_the_total() {
        let total = 1000 * MIB;
        let c =
            parse("check_interval: 1s\nlimit_percentage: 80\nspike_limit_percentage: 25").unwrap();
        let l = Limits::from_config(&c, || Ok(total)).unwrap();
        assert_eq!(l.hard, 800 * MIB);
        assert_eq!(l.soft, 550 * MIB);
        let c = parse("check_interval: 1s\nlimit_percentage: 50").unwrap();
        let l = Limits::from_config(&c, || Ok(total)).unwrap();
        assert_eq!(l.hard, 500 * MIB);
        assert_eq!(l.soft, 400 * MIB, "20% of the limit as spike");
        assert_eq!(
            Limits::from_config(&c, || Err("no /proc".into())).unwrap_err(),
            "failed to get total memory, use fixed memory settings (limit_mib): no /proc"
        );
        assert_eq!(
            Limits::from_config(&c, || Ok(1)).unwrap_err(),
            "the memory limit comes to 0 bytes; set limit_mib"
        );
    }
}
