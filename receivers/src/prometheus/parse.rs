//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text, read as
//! Prometheus's scrape parsers read them: samples in order, with the metadata (TYPE, HELP,
//! UNIT) of the families they name. Any malformed line fails the whole exposition with its
//! line number, as a scrape fails; nothing here panics on any input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, and anything not OpenMetrics (as Prometheus 2.x falls back).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format a response's `Content-Type` announces.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type {
            Some(ct)
                if ct
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// A family's type, with OpenMetrics's names (`untyped` of the text format is `Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(word: &str, format: Format) -> Option<MetricType> {
        Some(match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The name as Prometheus reports it (`prometheus.type` metadata upstream).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// What `# TYPE`, `# HELP` and `# UNIT` said about one family.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub kind: Option<MetricType>,
    pub help: Option<String>,
    pub unit: Option<String>,
}

/// An OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// The exposed timestamp, in milliseconds.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// A whole exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition<'a> {
    pub samples: Vec<Sample<'a>>,
    /// By family name as written in the metadata lines.
    pub metadata: HashMap<&'a str, Metadata>,
}

/// Why an exposition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; 0 when the error is about the whole body.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a body in `format`.
pub fn parse(body: &[u8], format: Format) -> Result<Exposition<'_>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ParseError {
            line,
            message: "invalid UTF-8".to_string(),
        }
    })?;
    match format {
        Format::Text => parse_text(text),
        Format::OpenMetrics => parse_openmetrics(text),
    }
}

fn parse_text(text: &str) -> Result<Exposition<'_>, ParseError> {
    let mut out = Exposition::default();
    for (i, line) in text.split('\n').enumerate() {
        let number = i + 1;
        let fail = |message: String| ParseError {
            line: number,
            message,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            text_comment(rest, &mut out).map_err(fail)?;
            continue;
        }
        let mut cursor = Cursor::new(line, Format::Text);
        let sample = cursor.sample().map_err(fail)?;
        out.samples.push(sample);
    }
    Ok(out)
}

/// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
fn text_comment<'a>(rest: &'a str, out: &mut Exposition<'a>) -> Result<(), String> {
    // Metadata needs blanks after `#`; `#HELP` is an ordinary comment.
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if trimmed.len() == rest.len() {
        return Ok(());
    }
    let (keyword, after) = split_blank(trimmed);
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    if after.is_empty() {
        // `# HELP` alone: Prometheus wants a name after it.
        return Err(format!("expected metric name after {keyword}"));
    }
    let after = after.trim_start_matches([' ', '\t']);
    let name_len = metric_name_len(after);
    if name_len == 0 {
        return Err(format!("expected metric name after {keyword}"));
    }
    let name = &after[..name_len];
    let rest = &after[name_len..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(format!("invalid metric name after {keyword}"));
    }
    let entry = out.metadata.entry(name).or_default();
    if keyword == "HELP" {
        // Exactly one separator is dropped; the rest is the text.
        let help = rest.get(1..).unwrap_or("");
        entry.help = Some(unescape_help(help, Format::Text));
    } else {
        let word = rest.trim_matches([' ', '\t']);
        let kind = MetricType::parse(word, Format::Text)
            .ok_or_else(|| format!("invalid metric type {word:?}"))?;
        entry.kind = Some(kind);
    }
    Ok(())
}

fn parse_openmetrics(text: &str) -> Result<Exposition<'_>, ParseError> {
    let mut out = Exposition::default();
    let body = text.strip_suffix('\n').unwrap_or(text);
    let Some(content) = body.strip_suffix("# EOF") else {
        let after = text.rfind("# EOF\n");
        return Err(ParseError {
            line: 0,
            message: if after.is_some() {
                "unexpected data after # EOF".to_string()
            } else {
                "data does not end with # EOF".to_string()
            },
        });
    };
    if !content.is_empty() && !content.ends_with('\n') {
        return Err(ParseError {
            line: 0,
            message: "data does not end with # EOF".to_string(),
        });
    }
    if content.is_empty() {
        return Ok(out);
    }
    // Every line before `# EOF` ends with a newline; a blank line is an error.
    let content = &content[..content.len() - 1];
    for (i, line) in content.split('\n').enumerate() {
        let number = i + 1;
        let fail = |message: String| ParseError {
            line: number,
            message,
        };
        if line.starts_with('#') {
            om_metadata(line, &mut out).map_err(fail)?;
            continue;
        }
        let mut cursor = Cursor::new(line, Format::OpenMetrics);
        let sample = cursor.sample().map_err(fail)?;
        out.samples.push(sample);
    }
    Ok(out)
}

/// `# TYPE name type`, `# HELP name text`, `# UNIT name unit`; nothing else may start with `#`.
fn om_metadata<'a>(line: &'a str, out: &mut Exposition<'a>) -> Result<(), String> {
    let invalid = || format!("{line:?} is not a valid start token");
    let rest = line.strip_prefix("# ").ok_or_else(invalid)?;
    let (keyword, after) = match rest.split_once(' ') {
        Some((k, a)) => (k, Some(a)),
        None => (rest, None),
    };
    if !matches!(keyword, "TYPE" | "HELP" | "UNIT") {
        return Err(invalid());
    }
    let after = after.ok_or_else(|| format!("expected metric name after {keyword}"))?;
    let name_len = metric_name_len(after);
    if name_len == 0 {
        return Err(format!("expected metric name after {keyword}"));
    }
    let name = &after[..name_len];
    let text = match after[name_len..].strip_prefix(' ') {
        Some(t) => t,
        None if after.len() == name_len => return Err(format!("expected text in {keyword}")),
        None => return Err(format!("invalid metric name after {keyword}")),
    };
    let entry = out.metadata.entry(name).or_default();
    match keyword {
        "TYPE" => {
            let kind = MetricType::parse(text, Format::OpenMetrics)
                .ok_or_else(|| format!("invalid metric type {text:?}"))?;
            entry.kind = Some(kind);
        }
        "HELP" => {
            let help = unescape_help(text, Format::OpenMetrics);
            entry.help = (!help.is_empty()).then_some(help);
        }
        _ => {
            if !text.is_empty() && !name.ends_with(&format!("_{text}")) {
                return Err(format!("unit not a suffix of metric {name:?}"));
            }
            entry.unit = (!text.is_empty()).then(|| text.to_string());
        }
    }
    Ok(())
}

/// Splits at the first blank (space or tab): the word and what follows the blank.
fn split_blank(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// The length of the metric name at the start of `s` (`[a-zA-Z_:][a-zA-Z0-9_:]*`), 0 if none.
fn metric_name_len(s: &str) -> usize {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return 0,
    }
    b.iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b':'))
        .unwrap_or(b.len())
}

/// The length of the label name at the start of `s` (`[a-zA-Z_][a-zA-Z0-9_]*`), 0 if none.
fn label_name_len(s: &str) -> usize {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return 0,
    }
    b.iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .unwrap_or(b.len())
}

/// HELP text: the text format knows `\\` and `\n`; OpenMetrics also `\"`.
fn unescape_help(s: &str, format: Format) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A sample line being read.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
    format: Format,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str, format: Format) -> Self {
        Cursor {
            line,
            pos: 0,
            format,
        }
    }

    fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    /// Blanks the text format allows between tokens; OpenMetrics allows none.
    fn blanks(&mut self) {
        if self.format == Format::Text {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
        }
    }

    /// One separator: blanks in the text format, exactly one space in OpenMetrics.
    fn separator(&mut self, what: &str) -> Result<(), String> {
        match (self.format, self.peek()) {
            (Format::Text, Some(b' ' | b'\t')) => {
                self.blanks();
                Ok(())
            }
            (Format::OpenMetrics, Some(b' ')) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(format!("expected {what}, got {:?}", self.rest())),
        }
    }

    fn sample(&mut self) -> Result<Sample<'a>, String> {
        let start = self.rest();
        let name_len = metric_name_len(start);
        if name_len == 0 {
            return Err(if start.starts_with('{') {
                "metric name not set".to_string()
            } else {
                format!("{start:?} is not a valid start token")
            });
        }
        let name = &start[..name_len];
        self.pos += name_len;
        let labels = if self.peek() == Some(b'{') {
            self.pos += 1;
            let labels = self.labels()?;
            if self.format == Format::OpenMetrics {
                self.separator("value after metric")?;
            } else {
                self.blanks();
            }
            labels
        } else {
            // Text: blanks, or a brace after them; OpenMetrics: one space.
            self.separator("value after metric")?;
            if self.format == Format::Text && self.peek() == Some(b'{') {
                self.pos += 1;
                let labels = self.labels()?;
                self.blanks();
                labels
            } else {
                Vec::new()
            }
        };
        let value_text = self.token();
        if value_text.is_empty() {
            return Err(format!(
                "expected value after metric, got {:?}",
                self.rest()
            ));
        }
        let value = parse_float(value_text)?;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        let om = self.format == Format::OpenMetrics;
        if self.peek().is_some() {
            self.separator("timestamp or end of line")?;
            if om && self.rest().is_empty() {
                return Err(
                    "expected timestamp or exemplar after value, got a trailing space".to_string(),
                );
            }
            if om && self.rest().starts_with("# ") {
                exemplar = Some(self.exemplar(name)?);
            } else if !self.rest().is_empty() {
                let ts = self.token();
                timestamp_ms = Some(self.timestamp(ts, "invalid timestamp")?);
                if self.peek().is_some() {
                    self.separator("end of line after timestamp")?;
                    if om {
                        if !self.rest().starts_with("# ") {
                            return Err(format!(
                                "expected next entry after timestamp, got {:?}",
                                self.rest()
                            ));
                        }
                        exemplar = Some(self.exemplar(name)?);
                    }
                }
            }
        }
        if !self.rest().is_empty() {
            return Err(format!(
                "expected next entry after timestamp, got {:?}",
                self.rest()
            ));
        }
        Ok(Sample {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
        })
    }

    /// The next token: up to a blank or the end.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn timestamp(&self, text: &str, invalid: &str) -> Result<i64, String> {
        match self.format {
            Format::Text => {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("expected next entry after value, got {text:?}"));
                }
                text.parse::<i64>()
                    .map_err(|_| format!("timestamp {text:?} out of range"))
            }
            Format::OpenMetrics => {
                let secs = parse_float(text).map_err(|_| invalid.to_string())?;
                if !secs.is_finite() {
                    return Err(invalid.to_string());
                }
                let ms = secs * 1000.0;
                if ms.abs() >= 9.2e18 {
                    return Err(invalid.to_string());
                }
                // Truncated toward zero, as Prometheus converts seconds.
                Ok(ms as i64)
            }
        }
    }

    /// `name="value", ...}` after the opening brace.
    fn labels(&mut self) -> Result<Vec<(&'a str, Cow<'a, str>)>, String> {
        let mut labels = Vec::new();
        let om = self.format == Format::OpenMetrics;
        self.blanks();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(labels);
        }
        loop {
            self.blanks();
            let rest = self.rest();
            let len = label_name_len(rest);
            if len == 0 {
                return Err(if om && rest.starts_with(',') {
                    "expected label name or left brace, got \",\"".to_string()
                } else {
                    format!("expected label name, got {rest:?}")
                });
            }
            let name = &rest[..len];
            self.pos += len;
            self.blanks();
            if self.peek() != Some(b'=') {
                return Err(format!("expected equal, got {:?}", self.rest()));
            }
            self.pos += 1;
            self.blanks();
            if self.peek() != Some(b'"') {
                return Err(format!("expected label value, got {:?}", self.rest()));
            }
            self.pos += 1;
            let value = self.quoted()?;
            labels.push((name, value));
            self.blanks();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.blanks();
                    if self.peek() == Some(b'}') {
                        if om {
                            return Err("expected label name, got \"}\"".to_string());
                        }
                        self.pos += 1;
                        return Ok(labels);
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(labels);
                }
                // Prometheus's text parser takes a missing comma; OpenMetrics does not.
                Some(_) if !om => {}
                _ => return Err(format!("expected comma, got {:?}", self.rest())),
            }
        }
    }

    /// A label value after its opening quote, unescaped; the cursor ends past the quote.
    fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => break,
                b'\n' => return Err("label value contains a new line".to_string()),
                _ => i += 1,
            }
        }
        if i >= bytes.len() {
            return Err("label value not closed".to_string());
        }
        let raw = &rest[..i];
        self.pos += i + 1;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Ok(Cow::Owned(out))
    }

    /// ` # {labels} value [timestamp]` (the cursor is at `#`).
    fn exemplar(&mut self, name: &str) -> Result<Exemplar<'a>, String> {
        if !(name.ends_with("_total") || name.ends_with("_bucket")) {
            return Err(format!("metric name {name} does not support exemplars"));
        }
        self.pos += 2;
        if self.peek() != Some(b'{') {
            return Err(format!(
                "expected label set after exemplar, got {:?}",
                self.rest()
            ));
        }
        self.pos += 1;
        let labels = self.labels()?;
        let length: usize = labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if length > 128 {
            return Err(format!(
                "exemplar labels have {length} characters, more than 128"
            ));
        }
        self.separator("value after exemplar labels")?;
        let value_text = self.token();
        let value = parse_float(value_text)
            .map_err(|_| format!("expected value after exemplar labels, got {value_text:?}"))?;
        let mut timestamp_ms = None;
        if self.peek().is_some() {
            self.separator("timestamp after exemplar value")?;
            let ts = self.token();
            timestamp_ms = Some(self.timestamp(ts, "invalid exemplar timestamp")?);
        }
        Ok(Exemplar {
            labels,
            value,
            timestamp_ms,
        })
    }
}

/// A sample value as Go's `ParseFloat` takes it (Prometheus also refuses `p`, `P` and `_`):
/// decimal with an optional exponent, `Inf`/`Infinity` with a sign, `NaN` without one.
fn parse_float(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a float");
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return Err(bad());
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    match lower.as_str() {
        "nan" if unsigned.len() == s.len() => return Ok(f64::NAN),
        "nan" => return Err(bad()),
        "inf" | "infinity" => {
            return Ok(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        _ => {}
    }
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(bad());
    }
    let value: f64 = s.parse().map_err(|_| bad())?;
    if value.is_infinite() {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Exposition<'_>, ParseError> {
        parse(s.as_bytes(), Format::Text)
    }

    fn om(s: &str) -> Result<Exposition<'_>, ParseError> {
        parse(s.as_bytes(), Format::OpenMetrics)
    }

    fn labels<'a>(s: &'a Sample<'a>) -> Vec<(&'a str, &'a str)> {
        s.labels.iter().map(|(n, v)| (*n, v.as_ref())).collect()
    }

    #[test]
    fn text_format_with_metadata_escapes_and_timestamps() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                    \n\
                    # A comment\n\
                    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n";
        // The last line's negative timestamp is refused, as Prometheus's lexer refuses it.
        let err = text(body).unwrap_err();
        assert_eq!(err.line, 9);
        let body = body.replace(" -3982045", "");
        let e = text(&body).unwrap();
        assert_eq!(e.samples.len(), 5);
        let m = &e.metadata["http_requests_total"];
        assert_eq!(m.kind, Some(MetricType::Counter));
        assert_eq!(
            m.help.as_deref(),
            Some("The total number of HTTP requests.")
        );
        assert_eq!(e.samples[0].timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(e.samples[1].value, 3.0);
        assert_eq!(
            labels(&e.samples[2]),
            [
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ]
        );
        assert_eq!(e.samples[2].value, 1.458255915e9);
        assert_eq!(e.samples[4].value, f64::INFINITY);
    }

    #[test]
    fn text_format_quirks_prometheus_accepts() {
        let e =
            text("m { a = \"b\" , } 1\nq{quantile=\"2.0\" a=\"b\"} 2\n#HELP not metadata\n_x 3\n")
                .unwrap();
        assert_eq!(labels(&e.samples[0]), [("a", "b")]);
        assert_eq!(labels(&e.samples[1]), [("quantile", "2.0"), ("a", "b")]);
        assert_eq!(e.samples[2].name, "_x");
        assert!(e.metadata.is_empty());
        let e = text("# HELP x\tone \\n two \\\\ \\\"\n# TYPE x untyped\nx NaN\n").unwrap();
        let m = &e.metadata["x"];
        assert_eq!(m.help.as_deref(), Some("one \n two \\ \\\""));
        assert_eq!(m.kind, Some(MetricType::Unknown));
        assert!(e.samples[0].value.is_nan());
    }

    #[test]
    fn text_format_rejections() {
        for bad in [
            "a\n",
            "a{b='c'} 1\n",
            "{a=\"ok\"} 1\n",
            "# TYPE #\n",
            "# TYPE x thing\n",
            " a 1\n",
            "a 1 1_2\n",
            "a +nan\n",
            "a 0x1p3\n",
            "a 1e400\n",
            "a{b=\"c} 1\n",
            "a{=\"\"} 0\n",
            "a 1 -5\n",
            "a 1 2 3\n",
        ] {
            assert!(text(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse(b"a{b=\"\xff\"} 1\n", Format::Text).unwrap_err().line,
            1
        );
    }

    #[test]
    fn openmetrics_with_units_exemplars_and_created() {
        let body = "# TYPE acme_http_router_request_seconds summary\n\
                    # UNIT acme_http_router_request_seconds seconds\n\
                    # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
                    acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
                    acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
                    acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
                    # TYPE foo histogram\n\
                    foo_bucket{le=\"0.01\"} 0\n\
                    foo_bucket{le=\"+Inf\"} 17 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879607.789\n\
                    foo_count 17 1520879607.5\n\
                    # TYPE s stateset\n\
                    s{s=\"a\"} 1\n\
                    # EOF\n";
        let e = om(body).unwrap();
        assert_eq!(e.samples.len(), 7);
        let m = &e.metadata["acme_http_router_request_seconds"];
        assert_eq!(m.unit.as_deref(), Some("seconds"));
        assert_eq!(m.kind, Some(MetricType::Summary));
        let ex = e.samples[4].exemplar.as_ref().unwrap();
        assert_eq!(ex.value, 0.67);
        assert_eq!(ex.timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(e.samples[5].timestamp_ms, Some(1_520_879_607_500));
        assert_eq!(e.metadata["s"].kind, Some(MetricType::StateSet));
    }

    #[test]
    fn openmetrics_rejections() {
        for bad in [
            "",
            "a 1\n",
            "# EOF\n\n",
            "# EOF\na 1\n",
            "\n# EOF\n",
            " a 1\n# EOF\n",
            "#\tTYPE a counter\n# EOF\n",
            "# TYPE u untyped\n# EOF\n",
            "# TYPE c counter \n# EOF\n",
            "# TYPE m\n# EOF\n",
            "# UNIT metric suffix\n# EOF\n",
            "a\t1\n# EOF\n",
            "a 1 2 \n# EOF\n",
            "a{b=\"c\",} 1\n# EOF\n",
            "a{,b=\"c\"} 1\n# EOF\n",
            "a{b=\"c\"d=\"e\"} 1\n# EOF\n",
            "a 1 NaN\n# EOF\n",
            "custom_metric 1 # {aa=\"bb\"}\n# EOF\n",
            "a_total 1 # {aa=\"bb\"}\n# EOF\n",
            "# just a comment\n# EOF\n",
        ] {
            assert!(om(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(om("# EOF").is_ok());
        assert!(om("# EOF\n").unwrap().samples.is_empty());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
    }

    #[test]
    fn floats_as_go_reads_them() {
        assert_eq!(parse_float("1.5e3"), Ok(1500.0));
        assert_eq!(parse_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_float("+infinity"), Ok(f64::INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("-NaN").is_err());
        assert!(parse_float(".5").is_ok());
        assert!(parse_float("1_000").is_err());
        assert!(parse_float("0x10").is_err());
        assert!(parse_float("true").is_err());
    }

    #[test]
    fn mutated_expositions_never_panic() {
        let seeds: [&[u8]; 3] = [
            b"# HELP a x\n# TYPE a histogram\na_bucket{le=\"0.1\",x=\"y\\\"z\"} 1 1700000000000\na_count 1\n",
            b"# TYPE c counter\n# UNIT c_seconds seconds\nc_total{a=\"b\"} 1.5e3 # {trace_id=\"ab\"} 1 1.5\n# EOF\n",
            b"m { a = \"b\" , } +Inf\n#HELP\tx\nq{quantile=\"0.5\"} NaN\n",
        ];
        let alphabet = b"{}\"\\=,# \n\tabc_:019.+-eE\xff\x00";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let seed = seeds[(next() % 3) as usize];
            let mut input = seed.to_vec();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % (input.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < input.len() => input[at] = byte,
                    1 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.insert(at, byte),
                }
            }
            let _ = parse(&input, Format::Text);
            let _ = parse(&input, Format::OpenMetrics);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let corpus: &[&[u8]] = &[
            b"a{b=\"\\",
            b"a{b=\"\\\"} 1",
            b"#",
            b"# ",
            b"# HELP",
            b"# TYPE a",
            b"a{",
            b"a{b",
            b"a{b=",
            b"a 1 ",
            b"\xff\xfe",
            b"a{b=\"c\"}",
            b"# EOF",
            b"a_total 1 # {",
            b"a_total 1 # {a=\"b\"} ",
        ];
        for input in corpus {
            for format in [Format::Text, Format::OpenMetrics] {
                let _ = parse(input, format);
                let mut with_newline = input.to_vec();
                with_newline.push(b'\n');
                let _ = parse(&with_newline, format);
            }
        }
    }
}
