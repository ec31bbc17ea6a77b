//! Times and durations: the `Time` converter's strptime-style formats, Go's duration syntax
//! for `Duration`, and the text forms `String` gives them.

use crate::EvalError;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 with nanoseconds when there are any, in UTC.
pub fn format_rfc3339(nanos: i64) -> String {
    let secs = nanos.div_euclid(NANOS_PER_SEC);
    let frac = nanos.rem_euclid(NANOS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's `time.Duration.String()`.
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", trim_frac(n as f64 / 1e3));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", trim_frac(n as f64 / 1e6));
    }
    let total_secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let h = total_secs / 3600;
    let m = total_secs % 3600 / 60;
    let s = total_secs % 60;
    let mut secs = s.to_string();
    if frac != 0 {
        let f = format!("{frac:09}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

fn trim_frac(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Go's `time.ParseDuration`: e.g. `1h30m`, `-1.5s`, `300ms`, `2us`.
pub fn parse_duration(text: &str) -> Result<i64, EvalError> {
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if magnitude.starts_with(['-', '+']) && negative {
        return Err(EvalError(format!("time: invalid duration \"{text}\"")));
    }
    let d = ferrotel_pipeline::config::types::parse_go_duration(magnitude)
        .map_err(|e| EvalError(format!("time: {e}")))?;
    let nanos = i64::try_from(d.as_nanos())
        .map_err(|_| EvalError(format!("time: invalid duration \"{text}\": too large")))?;
    Ok(if negative { -nanos } else { nanos })
}

/// A fixed UTC offset in seconds for a `location`: `UTC`, `Z` or `±hh:mm`.
pub fn offset_of(location: &str) -> Result<i64, String> {
    match location {
        "" | "UTC" | "Etc/UTC" | "GMT" | "Z" => Ok(0),
        other => parse_offset(other).ok_or_else(|| {
            format!("unsupported location \"{other}\": use UTC or a fixed offset such as +02:00 (time zone names are not supported yet)")
        }),
    }
}

fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

const DIRECTIVES: &str = "YymdbhBaAHIpMSLfszZjen%t";

/// Checks that every `%` directive of a format is one `Time` knows.
pub fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(d) if DIRECTIVES.contains(d) => {}
                Some(d) => return Err(format!("unsupported directive %{d} in the time format")),
                None => return Err("the time format ends with %".to_string()),
            }
        }
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

struct Input<'a> {
    s: &'a str,
}

impl<'a> Input<'a> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let n = self
            .s
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if n < min {
            return None;
        }
        let v = self.s[..n].parse().ok()?;
        self.s = &self.s[n..];
        Some(v)
    }

    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let lower = self.s.to_ascii_lowercase();
        for (i, n) in names.iter().enumerate() {
            if lower.starts_with(n) {
                self.s = &self.s[n.len()..];
                return Some(i);
            }
        }
        for (i, n) in names.iter().enumerate() {
            if lower.starts_with(&n[..3]) {
                self.s = &self.s[3..];
                return Some(i);
            }
        }
        None
    }

    fn literal(&mut self, c: char) -> Option<()> {
        self.s = self.s.strip_prefix(c)?;
        Some(())
    }
}

/// Parses `text` with a strptime-style `format` (the directives of upstream's `Time`),
/// in `location` when the text has no offset. Returns Unix nanoseconds.
pub fn parse(text: &str, format: &str, location: Option<&str>) -> Result<i64, EvalError> {
    let fail = || {
        EvalError(format!(
            "cannot parse \"{text}\" with the time format \"{format}\""
        ))
    };
    let mut input = Input { s: text };
    let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i64> = None;
    let mut epoch: Option<i64> = None;
    let mut yday: Option<i64> = None;
    let mut f = format.chars();
    while let Some(c) = f.next() {
        if c != '%' {
            if c.is_whitespace() {
                input.s = input.s.trim_start();
                continue;
            }
            input.literal(c).ok_or_else(fail)?;
            continue;
        }
        let d = f.next().ok_or_else(fail)?;
        match d {
            'Y' => year = input.digits(4, 4).ok_or_else(fail)?,
            'y' => {
                let y = input.digits(2, 2).ok_or_else(fail)?;
                year = if y < 69 { 2000 + y } else { 1900 + y };
            }
            'm' => month = input.digits(1, 2).ok_or_else(fail)? as u32,
            'd' | 'e' => {
                input.s = input.s.trim_start();
                day = input.digits(1, 2).ok_or_else(fail)? as u32
            }
            'b' | 'h' | 'B' => month = input.name(&MONTHS).ok_or_else(fail)? as u32 + 1,
            'a' | 'A' => {
                input.name(&DAYS).ok_or_else(fail)?;
            }
            'H' => hour = input.digits(1, 2).ok_or_else(fail)?,
            'I' => hour = input.digits(1, 2).ok_or_else(fail)?,
            'p' => {
                let lower = input.s.get(..2).map(str::to_ascii_lowercase);
                pm = match lower.as_deref() {
                    Some("am") => Some(false),
                    Some("pm") => Some(true),
                    _ => return Err(fail()),
                };
                input.s = &input.s[2..];
            }
            'M' => minute = input.digits(1, 2).ok_or_else(fail)?,
            'S' => second = input.digits(1, 2).ok_or_else(fail)?,
            'L' => nanos = input.digits(3, 3).ok_or_else(fail)? * 1_000_000,
            'f' => {
                let start = input.s;
                let n = input.digits(1, 9).ok_or_else(fail)?;
                let len = start.len() - input.s.len();
                nanos = n * 10i64.pow(9 - len as u32);
                // Digits beyond nanoseconds are dropped.
                input.digits(0, usize::MAX);
            }
            's' => {
                let neg = input.literal('-').is_some();
                let v = input.digits(1, 19).ok_or_else(fail)?;
                epoch = Some(if neg { -v } else { v });
            }
            'j' => yday = Some(input.digits(1, 3).ok_or_else(fail)?),
            'z' => {
                if input.literal('Z').is_some() {
                    offset = Some(0);
                } else {
                    let end = input
                        .s
                        .char_indices()
                        .skip(1)
                        .find(|(_, c)| !(c.is_ascii_digit() || *c == ':'))
                        .map_or(input.s.len(), |(i, _)| i);
                    offset = Some(parse_offset(&input.s[..end]).ok_or_else(fail)?);
                    input.s = &input.s[end..];
                }
            }
            'Z' => {
                let end = input
                    .s
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(input.s.len());
                match &input.s[..end] {
                    "UTC" | "GMT" | "Z" => offset = Some(0),
                    _ => return Err(fail()),
                }
                input.s = &input.s[end..];
            }
            'n' | 't' => input.s = input.s.trim_start(),
            '%' => input.literal('%').ok_or_else(fail)?,
            _ => return Err(fail()),
        }
    }
    if !input.s.is_empty() {
        return Err(fail());
    }
    if let Some(e) = epoch {
        return e.checked_mul(NANOS_PER_SEC).ok_or_else(fail);
    }
    if let Some(p) = pm {
        if !(1..=12).contains(&hour) {
            return Err(fail());
        }
        hour = match (p, hour) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(fail());
    }
    let days = match yday {
        Some(j) if (1..=366).contains(&j) => days_from_civil(year, 1, 1) + j - 1,
        Some(_) => return Err(fail()),
        None => days_from_civil(year, month, day),
    };
    let offset = match offset {
        Some(o) => o,
        None => offset_of(location.unwrap_or("UTC")).map_err(EvalError)?,
    };
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    secs.checked_mul(NANOS_PER_SEC)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1_000_000, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn durations_as_go_prints_and_parses_them() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(1_500), "1.5µs");
        assert_eq!(format_duration(90 * NANOS_PER_SEC), "1m30s");
        assert_eq!(format_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(parse_duration("1h30m").ok(), Some(5_400 * NANOS_PER_SEC));
        assert_eq!(parse_duration("-1.5s").ok(), Some(-1_500_000_000));
        assert_eq!(parse_duration("300ms").ok(), Some(300_000_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn strptime_formats() {
        let t = parse("2023-11-14 22:13:20", "%Y-%m-%d %H:%M:%S", None).ok();
        assert_eq!(t, Some(1_700_000_000 * NANOS_PER_SEC));
        let t = parse("14/Nov/2023:22:13:20 +0100", "%d/%b/%Y:%H:%M:%S %z", None).ok();
        assert_eq!(t, Some((1_700_000_000 - 3600) * NANOS_PER_SEC));
        let t = parse("2023-11-14T22:13:20.5Z", "%Y-%m-%dT%H:%M:%S.%f%z", None).ok();
        assert_eq!(t, Some(1_700_000_000 * NANOS_PER_SEC + 500_000_000));
        let t = parse("Nov 14 10:13:20 PM", "%b %d %I:%M:%S %p", Some("+02:00")).ok();
        let want = (days_from_civil(1970, 11, 14) * 86_400 + 22 * 3600 + 13 * 60 + 20 - 7200)
            * NANOS_PER_SEC;
        assert_eq!(t, Some(want));
        assert!(parse("2023-13-01", "%Y-%m-%d", None).is_err());
        assert!(parse("2023-11-14 extra", "%Y-%m-%d", None).is_err());
        assert!(check_format("%Q").is_err());
    }
}
