//! UTC calendar times from Unix time, for logs and status bodies (no time zone database).

/// A UTC date and time split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl UtcTime {
    /// From nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(nanos: u64) -> UtcTime {
        let secs = (nanos / 1_000_000_000) as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
            nanos: (nanos % 1_000_000_000) as u32,
        }
    }

    pub fn from_system_time(t: std::time::SystemTime) -> UtcTime {
        let nanos = t
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        UtcTime::from_unix_nanos(nanos)
    }

    /// RFC 3339 with nanoseconds, as Go writes a `time.Time` in JSON.
    pub fn rfc3339_nanos(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }

    /// `2006-01-02 15:04:05.000000000 +0000 UTC`, as Go prints a `time.Time`.
    pub fn go_string(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09} +0000 UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_times() {
        assert_eq!(
            UtcTime::from_unix_nanos(0).go_string(),
            "1970-01-01 00:00:00.000000000 +0000 UTC"
        );
        let t = UtcTime::from_unix_nanos(1_700_000_000_000_000_005);
        assert_eq!(t.rfc3339_nanos(), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(
            UtcTime::from_unix_nanos(951_782_400_000_000_000).rfc3339_nanos(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
