//! Dynatrace's metric ingestion line protocol: key and dimension normalisation, number and
//! timestamp formatting, and the line itself, as the Metrics API v2 documents them and as
//! Dynatrace's own metric utilities normalise (lengths in bytes).
//!
//! `metric.key,dim.key=value,... <payload> [timestamp_ms]`, with the payloads `gauge,<v>`,
//! `count,delta=<v>` and `gauge,min=<v>,max=<v>,sum=<v>,count=<n>`.

use std::fmt::Write as _;

const METRIC_KEY_MAX: usize = 250;
const DIMENSION_KEY_MAX: usize = 100;
const DIMENSION_VALUE_MAX: usize = 250;
/// The API's limit on one line.
pub const LINE_MAX: usize = 50_000;
/// The API's limit on dimensions per line.
pub const DIMENSIONS_MAX: usize = 50;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Removes a leading run of characters that `ok` refuses.
fn trim_start(s: &str, ok: impl Fn(char) -> bool) -> &str {
    s.trim_start_matches(|c: char| !ok(c))
}

/// Replaces each run of characters that `ok` refuses with one `_`.
fn collapse(s: &str, ok: impl Fn(char) -> bool, out: &mut String) {
    let mut in_run = false;
    for c in s.chars() {
        if ok(c) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A valid metric key from any name (the prefix already joined with a dot), or why not.
pub fn metric_key(name: &str) -> Result<String, String> {
    let name = truncate(name, METRIC_KEY_MAX);
    let mut out = String::with_capacity(name.len());
    for (i, section) in name.split('.').enumerate() {
        let section = if i == 0 {
            trim_start(section, |c| c.is_ascii_alphabetic() || c == '_')
        } else {
            trim_start(section, |c| c.is_ascii_alphanumeric() || c == '_')
        };
        // Trailing invalid characters go; runs inside become one underscore.
        let section = section.trim_end_matches(|c: char| !key_char(c));
        if i == 0 {
            if section.is_empty() {
                return Err(format!(
                    "the metric name \"{name}\" has no valid first key section"
                ));
            }
        } else if section.is_empty() {
            continue;
        } else {
            out.push('.');
        }
        collapse(section, key_char, &mut out);
    }
    Ok(out)
}

fn dimension_key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b':' | b'-')
}

/// Whether a key is already valid as it is (the common case: no copy is made).
fn is_valid_dimension_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= DIMENSION_KEY_MAX
        && key.split('.').all(|section| {
            let b = section.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0] == b'_')
                && b.iter().all(|c| dimension_key_char(*c))
                && dimension_key_char(b[b.len() - 1])
        })
}

/// A valid dimension key, borrowed when the key is valid as it is.
pub fn dimension_key_cow(key: &str) -> Option<std::borrow::Cow<'_, str>> {
    if is_valid_dimension_key(key) {
        return Some(std::borrow::Cow::Borrowed(key));
    }
    dimension_key(key).map(std::borrow::Cow::Owned)
}

/// A valid dimension key (lowercase), or `None` when nothing valid is left.
pub fn dimension_key(key: &str) -> Option<String> {
    let key = truncate(key, DIMENSION_KEY_MAX).to_lowercase();
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '-');
    let mut out = String::with_capacity(key.len());
    for section in key.split('.') {
        let section = trim_start(section, |c| c.is_ascii_lowercase() || c == '_');
        let section = section.trim_end_matches(|c: char| !ok(c));
        if section.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        collapse(section, ok, &mut out);
    }
    (!out.is_empty()).then_some(out)
}

/// A dimension value: control characters replaced, `=`, space, `,`, `\` and `"` escaped,
/// at most 250 bytes without a dangling escape.
pub fn dimension_value(value: &str, out: &mut String) {
    let value = truncate(value, DIMENSION_VALUE_MAX);
    // Most values need nothing done: copied whole.
    if value
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b',' | b'\\' | b'"'))
    {
        out.push_str(value);
        return;
    }
    let start = out.len();
    let mut in_control = false;
    for c in value.chars() {
        if c.is_control() || is_format_char(c) {
            if !in_control {
                out.push('_');
                in_control = true;
            }
            continue;
        }
        in_control = false;
        if matches!(c, '=' | ' ' | ',' | '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.len() - start > DIMENSION_VALUE_MAX {
        let keep = truncate(&out[start..], DIMENSION_VALUE_MAX).len();
        out.truncate(start + keep);
        // An odd run of trailing backslashes would escape the separator after it.
        let trailing = out[start..]
            .bytes()
            .rev()
            .take_while(|b| *b == b'\\')
            .count();
        if trailing % 2 == 1 {
            out.pop();
        }
    }
}

/// Unicode "other" characters besides controls (format, private use, unassigned
/// surrogates cannot occur in Rust strings): the format characters Go's `\p{C}` covers.
fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x8E2 | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

/// A number as the protocol takes it: Go's shortest `'g'` form, with `.0` before an exponent
/// that has no decimal point (`1.0e+06`). NaN and infinities are refused.
pub fn float(v: f64, out: &mut String) -> Result<(), String> {
    if !v.is_finite() {
        return Err(format!("the value {v} is not a finite number"));
    }
    if v == 0.0 {
        out.push('0');
        return Ok(());
    }
    // Rust's `{:e}` is the shortest round-trip form too: it gives the digits and the
    // exponent Go's formatter would choose.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Go's shortest 'g' writes an exponent below 1e-4 and from 1e6 up.
    if !(-4..6).contains(&exp) {
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        let _ = write!(out, "{v}");
    }
    Ok(())
}

/// Milliseconds since the epoch, or `None` outside the years 2000 to 3000 (the API's own
/// plausibility window; such points are sent without a timestamp).
pub fn timestamp_ms(unix_nanos: u64) -> Option<u64> {
    const Y2000_MS: u64 = 946_684_800_000;
    const Y3000_MS: u64 = 32_503_680_000_000;
    let ms = unix_nanos / 1_000_000;
    (Y2000_MS..Y3000_MS).contains(&ms).then_some(ms)
}

/// What a line carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload {
    GaugeInt(i64),
    Gauge(f64),
    CountInt(i64),
    Count(f64),
    Summary {
        min: f64,
        max: f64,
        sum: f64,
        count: u64,
    },
}

/// Writes `<payload>` (without the key and dimensions).
pub fn payload(p: Payload, out: &mut String) -> Result<(), String> {
    match p {
        Payload::GaugeInt(v) => {
            let _ = write!(out, "gauge,{v}");
        }
        Payload::Gauge(v) => {
            out.push_str("gauge,");
            float(v, out)?;
        }
        Payload::CountInt(v) => {
            let _ = write!(out, "count,delta={v}");
        }
        Payload::Count(v) => {
            out.push_str("count,delta=");
            float(v, out)?;
        }
        Payload::Summary {
            min,
            max,
            sum,
            count,
        } => {
            if min > max {
                return Err(format!("min ({min}) is greater than max ({max})"));
            }
            out.push_str("gauge,min=");
            float(min, out)?;
            out.push_str(",max=");
            float(max, out)?;
            out.push_str(",sum=");
            float(sum, out)?;
            let _ = write!(out, ",count={count}");
        }
    }
    Ok(())
}

/// Dimensions already normalised: `(key, escaped value)`, later entries overriding earlier
/// ones with the same key.
#[derive(Debug, Clone, Default)]
pub struct Dimensions(pub Vec<(String, String)>);

impl Dimensions {
    /// Adds a dimension from a raw key and value; keys that normalise to nothing are skipped.
    pub fn push(&mut self, key: &str, value: &str) {
        let Some(key) = dimension_key_cow(key) else {
            return;
        };
        let mut escaped = String::with_capacity(value.len());
        dimension_value(value, &mut escaped);
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = escaped,
            None => self.0.push((key.into_owned(), escaped)),
        }
    }
}

/// Appends a whole line to `out` (nothing when `Err` says why the point cannot be sent).
pub fn line<'d>(
    key: &str,
    dimensions: impl IntoIterator<Item = (&'d str, &'d str)>,
    value: Payload,
    timestamp_ms: Option<u64>,
    out: &mut String,
) -> Result<(), String> {
    let start = out.len();
    out.push_str(key);
    let mut count = 0;
    for (k, v) in dimensions {
        count += 1;
        out.push(',');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    finish(start, count, value, timestamp_ms, out)
}

/// Completes a line begun at `start` with its key and `dimensions` dimensions: the payload
/// and the timestamp. On `Err` the line is taken out again.
pub fn finish(
    start: usize,
    dimensions: usize,
    value: Payload,
    timestamp_ms: Option<u64>,
    out: &mut String,
) -> Result<(), String> {
    let refuse = |out: &mut String, message: String| {
        out.truncate(start);
        Err(message)
    };
    if dimensions > DIMENSIONS_MAX {
        return refuse(
            out,
            format!("{dimensions} dimensions, more than the {DIMENSIONS_MAX} a line may have"),
        );
    }
    out.push(' ');
    if let Err(e) = payload(value, out) {
        return refuse(out, e);
    }
    if let Some(ts) = timestamp_ms {
        let _ = write!(out, " {ts}");
    }
    if out.len() - start > LINE_MAX {
        return refuse(
            out,
            format!("the line is longer than {LINE_MAX} characters"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str) -> String {
        let mut out = String::new();
        dimension_value(v, &mut out);
        out
    }

    fn num(v: f64) -> String {
        let mut out = String::new();
        float(v, &mut out).map(|()| out).unwrap_or_else(|e| e)
    }

    #[test]
    fn metric_keys_are_normalised() {
        let cases = [
            ("basecase", "basecase"),
            ("prefix.case", "prefix.case"),
            ("This.Is.Valid", "This.Is.Valid"),
            ("0startsWithNumber", "startsWithNumber"),
            ("-startsWithHyphen", "startsWithHyphen"),
            ("_startsWithUnderscore", "_startsWithUnderscore"),
            ("a.0.b", "a.0.b"),
            ("a.-b", "a.b"),
            ("a..b", "a.b"),
            ("a.b.", "a.b"),
            ("hyphen-ending-", "hyphen-ending-"),
            ("in.valid.ending!!", "in.valid.ending"),
            ("nonÄscii", "non_scii"),
            ("many!!!invalid###chars", "many_invalid_chars"),
            (
                "http.server.request.duration",
                "http.server.request.duration",
            ),
            ("space in key", "space_in_key"),
        ];
        for (input, want) in cases {
            assert_eq!(metric_key(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["", "0", ".", "...", "!!", ".a"] {
            assert!(metric_key(bad).is_err(), "{bad}");
        }
        let long = "a".repeat(300);
        assert_eq!(metric_key(&long).map(|k| k.len()), Ok(250));
    }

    #[test]
    fn dimension_keys_are_normalised() {
        let cases = [
            ("valid", Some("valid")),
            ("Upper.Case", Some("upper.case")),
            ("k8s.pod.name", Some("k8s.pod.name")),
            ("0leading", Some("leading")),
            ("dt.entity:host", Some("dt.entity:host")),
            ("a..b", Some("a.b")),
            ("with space", Some("with_space")),
            ("ä", None),
            ("", None),
            ("...", None),
        ];
        for (input, want) in cases {
            assert_eq!(dimension_key(input).as_deref(), want, "{input}");
        }
        assert_eq!(dimension_key(&"k".repeat(150)).map(|k| k.len()), Some(100));
    }

    #[test]
    fn dimension_values_are_escaped_and_bounded() {
        assert_eq!(value("plain"), "plain");
        assert_eq!(value("a=b c,d"), r"a\=b\ c\,d");
        assert_eq!(value(r#"quote"back\"#), r#"quote\"back\\"#);
        assert_eq!(value("tab\there\u{1}\u{2}x"), "tab_here_x");
        assert_eq!(value("ünïcode ok"), r"ünïcode\ ok");
        let long = value(&"=".repeat(300));
        assert!(long.len() <= 250);
        assert_eq!(long.len() % 2, 0, "no escape is cut in half");
        let trailing = value(&format!("{}\\", "a".repeat(249)));
        assert!(!trailing.ends_with('\\') || trailing.ends_with("\\\\"));
    }

    #[test]
    fn numbers_as_go_formats_them() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-2.5), "-2.5");
        assert_eq!(num(0.001), "0.001");
        assert_eq!(num(1e-5), "1.0e-05");
        assert_eq!(num(1.5e-7), "1.5e-07");
        assert_eq!(num(999999.0), "999999");
        assert_eq!(num(123456.5), "123456.5");
        assert_eq!(num(1e6), "1.0e+06");
        assert_eq!(num(123456789.0), "1.23456789e+08");
        assert_eq!(num(1e21), "1.0e+21");
        assert_eq!(num(2.5e300), "2.5e+300");
        assert!(num(f64::NAN).contains("not a finite"));
        assert!(num(f64::INFINITY).contains("not a finite"));
    }

    #[test]
    fn timestamps_outside_the_window_are_left_out() {
        assert_eq!(
            timestamp_ms(1_700_000_000_123_456_789),
            Some(1_700_000_000_123)
        );
        assert_eq!(timestamp_ms(0), None);
        // 1999-12-31: before the window.
        assert_eq!(timestamp_ms(946_684_799_000_000_000), None);
        // Nanoseconds in a u64 end in 2554, inside it.
        assert_eq!(timestamp_ms(u64::MAX), Some(u64::MAX / 1_000_000));
    }

    #[test]
    fn lines() {
        let mut out = String::new();
        let dims = [("dt.metrics.source", "opentelemetry")];
        line(
            "my.gauge",
            dims,
            Payload::Gauge(1.5),
            Some(1_700_000_000_000),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            "my.gauge,dt.metrics.source=opentelemetry gauge,1.5 1700000000000"
        );
        out.clear();
        line("c", [], Payload::CountInt(3), None, &mut out).unwrap();
        assert_eq!(out, "c count,delta=3");
        out.clear();
        let summary = Payload::Summary {
            min: 1.0,
            max: 5.0,
            sum: 9.0,
            count: 3,
        };
        line("h", [], summary, None, &mut out).unwrap();
        assert_eq!(out, "h gauge,min=1,max=5,sum=9,count=3");
        out.clear();
        assert!(line("g", [], Payload::Gauge(f64::NAN), None, &mut out).is_err());
        assert!(out.is_empty(), "a refused line leaves nothing behind");
        let keys: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        let many = keys.iter().map(|k| (k.as_str(), "v"));
        assert!(line("g", many, Payload::GaugeInt(1), None, &mut out).is_err());
        assert!(out.is_empty());
    }
}
