//! The exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0, written the way the
//! Prometheus Go client writes them (the Collector serves through it), and the choice
//! between them from a scrape's `Accept` header.

use std::fmt::Write as _;

/// Text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPEN_METRICS_1_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const OPEN_METRICS_0_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=0.0.1; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    Gauge,
    Counter,
    Histogram,
    Summary,
    Untyped,
}

impl FamilyType {
    fn text_name(self) -> &'static str {
        match self {
            FamilyType::Gauge => "gauge",
            FamilyType::Counter => "counter",
            FamilyType::Histogram => "histogram",
            FamilyType::Summary => "summary",
            FamilyType::Untyped => "untyped",
        }
    }

    /// The name the Go client's data model gives the type, as upstream's messages show it.
    pub fn dto_name(self) -> &'static str {
        match self {
            FamilyType::Gauge => "GAUGE",
            FamilyType::Counter => "COUNTER",
            FamilyType::Histogram => "HISTOGRAM",
            FamilyType::Summary => "SUMMARY",
            FamilyType::Untyped => "UNTYPED",
        }
    }

    fn open_metrics_name(self) -> &'static str {
        match self {
            FamilyType::Untyped => "unknown",
            other => other.text_name(),
        }
    }
}

/// An exemplar as OpenMetrics shows it (the text format has none).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub time_unix_nano: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The upper bound; the last bucket is `+Inf`.
    pub le: f64,
    /// Cumulative.
    pub count: u64,
    pub exemplar: Option<Exemplar>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    Number {
        value: f64,
        exemplar: Option<Exemplar>,
    },
    Histogram {
        buckets: Vec<Bucket>,
        count: u64,
        sum: f64,
    },
    Summary {
        /// (quantile, value), by quantile.
        quantiles: Vec<(f64, f64)>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    pub value: SeriesValue,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: FamilyType,
    pub series: Vec<Series>,
}

/// Which format to answer a scrape in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics1,
    OpenMetrics0,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics1 => OPEN_METRICS_1_CONTENT_TYPE,
            Format::OpenMetrics0 => OPEN_METRICS_0_CONTENT_TYPE,
        }
    }
}

/// One entry of an Accept header: type/subtype, its parameters, its weight.
struct Accepted<'a> {
    media: String,
    params: Vec<(String, &'a str)>,
    q: f64,
}

fn parse_accept(header: &str) -> Vec<Accepted<'_>> {
    let mut out: Vec<Accepted<'_>> = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let mut q = 1.0;
        let mut params = Vec::new();
        for param in pieces {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        out.push(Accepted { media, params, q });
    }
    // Highest weight first; among equals the order given (a stable sort).
    out.sort_by(|a, b| b.q.total_cmp(&a.q));
    out
}

/// The format a scrape asked for: the first acceptable entry by weight, the text format when
/// none is (and always when OpenMetrics is off), as the Go client negotiates.
pub fn negotiate(accept: Option<&str>, open_metrics: bool) -> Format {
    if !open_metrics {
        return Format::Text;
    }
    for entry in parse_accept(accept.unwrap_or("")) {
        if entry.q <= 0.0 {
            continue;
        }
        let version = entry
            .params
            .iter()
            .find(|(k, _)| k == "version")
            .map(|(_, v)| *v)
            .unwrap_or("");
        match entry.media.as_str() {
            "text/plain" if version == "0.0.4" || version.is_empty() => return Format::Text,
            "application/openmetrics-text" => match version {
                "1.0.0" => return Format::OpenMetrics1,
                "0.0.1" | "" => return Format::OpenMetrics0,
                _ => {}
            },
            _ => {}
        }
    }
    Format::Text
}

/// Writes `families` (sorted, one entry per name) in `format`.
pub fn write(families: &[Family], format: Format) -> String {
    match format {
        Format::Text => write_text(families),
        Format::OpenMetrics1 | Format::OpenMetrics0 => write_open_metrics(families),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which the Go client writes values with: the
/// shortest digits that read back the same, in exponent form when the decimal exponent is
/// below -4 or 6 and above (`1e+06`, `1e-05`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest digits, e.g. "1.234567e6".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return format!("{f}");
    }
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{dot}{rest}e{exp_sign}{:02}",
            exp.unsigned_abs()
        );
    }
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// A float in OpenMetrics: like [`go_float`], with `.0` added to integral numbers.
fn open_metrics_float(f: f64) -> String {
    let text = go_float(f);
    if f.is_finite() && !text.contains(['.', 'e']) {
        format!("{text}.0")
    } else {
        text
    }
}

/// HELP text: backslashes and newlines escaped (and quotes too in OpenMetrics).
fn escape_help(text: &str, quotes: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn escape_label_value(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `{a="1",b="2",le="0.5"}`: the series' labels, then the extra one; nothing when empty.
fn write_labels(labels: &[(String, String)], extra: Option<(&str, &str)>, out: &mut String) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(extra)
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    out.push('}');
}

fn write_text(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let name = &family.name;
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(&family.help, false, &mut out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {name} {}", family.kind.text_name());
        for series in &family.series {
            let ts = series.timestamp_ms;
            let sample = |out: &mut String, suffix: &str, extra: Option<(&str, &str)>, v: &str| {
                out.push_str(name);
                out.push_str(suffix);
                write_labels(&series.labels, extra, out);
                out.push(' ');
                out.push_str(v);
                if let Some(ts) = ts {
                    let _ = write!(out, " {ts}");
                }
                out.push('\n');
            };
            match &series.value {
                SeriesValue::Number { value, .. } => sample(&mut out, "", None, &go_float(*value)),
                SeriesValue::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    for b in buckets {
                        let le = go_float(b.le);
                        sample(
                            &mut out,
                            "_bucket",
                            Some(("le", &le)),
                            &go_float(b.count as f64),
                        );
                    }
                    sample(&mut out, "_sum", None, &go_float(*sum));
                    sample(&mut out, "_count", None, &go_float(*count as f64));
                }
                SeriesValue::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        let q = go_float(*q);
                        sample(&mut out, "", Some(("quantile", &q)), &go_float(*v));
                    }
                    sample(&mut out, "_sum", None, &go_float(*sum));
                    sample(&mut out, "_count", None, &go_float(*count as f64));
                }
            }
        }
    }
    out
}

fn write_exemplar(exemplar: &Exemplar, out: &mut String) {
    out.push_str(" # {");
    for (i, (name, value)) in exemplar.labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    out.push_str("} ");
    out.push_str(&open_metrics_float(exemplar.value));
    out.push(' ');
    out.push_str(&open_metrics_float(exemplar.time_unix_nano as f64 / 1e9));
}

fn write_open_metrics(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        // A counter's family is named without `_total`; its sample always has it.
        let (name, value_suffix) = match family.kind {
            FamilyType::Counter => (
                family.name.strip_suffix("_total").unwrap_or(&family.name),
                "_total",
            ),
            _ => (family.name.as_str(), ""),
        };
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(&family.help, true, &mut out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {name} {}", family.kind.open_metrics_name());
        for series in &family.series {
            let ts = series
                .timestamp_ms
                .map(|ms| open_metrics_float(ms as f64 / 1000.0));
            let sample = |out: &mut String,
                          suffix: &str,
                          extra: Option<(&str, &str)>,
                          v: &str,
                          exemplar: Option<&Exemplar>| {
                out.push_str(name);
                out.push_str(suffix);
                write_labels(&series.labels, extra, out);
                out.push(' ');
                out.push_str(v);
                if let Some(ts) = &ts {
                    out.push(' ');
                    out.push_str(ts);
                }
                if let Some(e) = exemplar {
                    write_exemplar(e, out);
                }
                out.push('\n');
            };
            match &series.value {
                SeriesValue::Number { value, exemplar } => {
                    // Exemplars belong to counters only.
                    let exemplar = exemplar
                        .as_ref()
                        .filter(|_| family.kind == FamilyType::Counter);
                    sample(
                        &mut out,
                        value_suffix,
                        None,
                        &open_metrics_float(*value),
                        exemplar,
                    );
                }
                SeriesValue::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    for b in buckets {
                        let le = open_metrics_float(b.le);
                        sample(
                            &mut out,
                            "_bucket",
                            Some(("le", &le)),
                            &b.count.to_string(),
                            b.exemplar.as_ref(),
                        );
                    }
                    sample(&mut out, "_sum", None, &open_metrics_float(*sum), None);
                    sample(&mut out, "_count", None, &count.to_string(), None);
                }
                SeriesValue::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        let q = open_metrics_float(*q);
                        sample(
                            &mut out,
                            "",
                            Some(("quantile", &q)),
                            &open_metrics_float(*v),
                            None,
                        );
                    }
                    sample(&mut out, "_sum", None, &open_metrics_float(*sum), None);
                    sample(&mut out, "_count", None, &count.to_string(), None);
                }
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn floats_as_go_writes_them() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (100.0, "100"),
            (123456.7, "123456.7"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-2.5e-10, "-2.5e-10"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1700000000.0, "1.7e+09"),
            (999999.0, "999999"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f:?}");
        }
        assert_eq!(open_metrics_float(1.0), "1.0");
        assert_eq!(open_metrics_float(0.0), "0.0");
        assert_eq!(open_metrics_float(1e6), "1e+06");
        assert_eq!(open_metrics_float(0.25), "0.25");
        assert_eq!(open_metrics_float(f64::INFINITY), "+Inf");
        assert_eq!(open_metrics_float(f64::NAN), "NaN");
    }

    #[test]
    fn negotiation_follows_accept() {
        // Prometheus 2.42's header.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom), true), Format::OpenMetrics1);
        assert_eq!(negotiate(Some(prom), false), Format::Text);
        // 2.49 and later weigh every entry.
        let newer = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(Some(newer), true), Format::OpenMetrics1);
        assert_eq!(
            negotiate(
                Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
                true
            ),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text"), true),
            Format::OpenMetrics0
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=0.0.1"), true),
            Format::OpenMetrics0
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=2.0.0"), true),
            Format::Text
        );
        // Protobuf is not offered; the next acceptable entry is taken.
        assert_eq!(
            negotiate(
                Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8"),
                true
            ),
            Format::OpenMetrics1
        );
        assert_eq!(negotiate(None, true), Format::Text);
        assert_eq!(negotiate(Some("*/*"), true), Format::Text);
        assert_eq!(negotiate(Some("application/json"), true), Format::Text);
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=1.0.0;q=0"), true),
            Format::Text
        );
    }

    fn sample_families() -> Vec<Family> {
        let exemplar = Exemplar {
            labels: labels(&[("span_id", "0102030405060708"), ("trace_id", "0f")]),
            value: 3.0,
            time_unix_nano: 1_700_000_000_500_000_000,
        };
        vec![
            Family {
                name: "http_requests_total".into(),
                help: "Requests \"served\"\nby path \\ method".into(),
                kind: FamilyType::Counter,
                series: vec![Series {
                    labels: labels(&[("path", "/a\"b\\c\nd")]),
                    value: SeriesValue::Number {
                        value: 7.0,
                        exemplar: Some(exemplar.clone()),
                    },
                    timestamp_ms: None,
                }],
            },
            Family {
                name: "latency_seconds".into(),
                help: "".into(),
                kind: FamilyType::Histogram,
                series: vec![Series {
                    labels: labels(&[("a", "1")]),
                    value: SeriesValue::Histogram {
                        buckets: vec![
                            Bucket {
                                le: 0.5,
                                count: 1,
                                exemplar: None,
                            },
                            Bucket {
                                le: 1.0,
                                count: 3,
                                exemplar: Some(exemplar),
                            },
                            Bucket {
                                le: f64::INFINITY,
                                count: 4,
                                exemplar: None,
                            },
                        ],
                        count: 4,
                        sum: 2.5,
                    },
                    timestamp_ms: Some(1_700_000_000_123),
                }],
            },
            Family {
                name: "rpc_seconds".into(),
                help: "RPC".into(),
                kind: FamilyType::Summary,
                series: vec![Series {
                    labels: vec![],
                    value: SeriesValue::Summary {
                        quantiles: vec![(0.5, 0.25), (0.99, 1.0)],
                        count: 10,
                        sum: 3.0,
                    },
                    timestamp_ms: None,
                }],
            },
            Family {
                name: "up_state".into(),
                help: "x".into(),
                kind: FamilyType::Untyped,
                series: vec![Series {
                    labels: vec![],
                    value: SeriesValue::Number {
                        value: 1.0,
                        exemplar: None,
                    },
                    timestamp_ms: None,
                }],
            },
        ]
    }

    #[test]
    fn text_format() {
        let text = write(&sample_families(), Format::Text);
        let want = r#"# HELP http_requests_total Requests "served"\nby path \\ method
# TYPE http_requests_total counter
http_requests_total{path="/a\"b\\c\nd"} 7
# HELP latency_seconds 
# TYPE latency_seconds histogram
latency_seconds_bucket{a="1",le="0.5"} 1 1700000000123
latency_seconds_bucket{a="1",le="1"} 3 1700000000123
latency_seconds_bucket{a="1",le="+Inf"} 4 1700000000123
latency_seconds_sum{a="1"} 2.5 1700000000123
latency_seconds_count{a="1"} 4 1700000000123
# HELP rpc_seconds RPC
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.25
rpc_seconds{quantile="0.99"} 1
rpc_seconds_sum 3
rpc_seconds_count 10
# HELP up_state x
# TYPE up_state untyped
up_state 1
"#;
        assert_eq!(text, want);
    }

    #[test]
    fn open_metrics_format() {
        let text = write(&sample_families(), Format::OpenMetrics1);
        let want = r#"# HELP http_requests Requests \"served\"\nby path \\ method
# TYPE http_requests counter
http_requests_total{path="/a\"b\\c\nd"} 7.0 # {span_id="0102030405060708",trace_id="0f"} 3.0 1.7000000005e+09
# HELP latency_seconds 
# TYPE latency_seconds histogram
latency_seconds_bucket{a="1",le="0.5"} 1 1.700000000123e+09
latency_seconds_bucket{a="1",le="1.0"} 3 1.700000000123e+09 # {span_id="0102030405060708",trace_id="0f"} 3.0 1.7000000005e+09
latency_seconds_bucket{a="1",le="+Inf"} 4 1.700000000123e+09
latency_seconds_sum{a="1"} 2.5 1.700000000123e+09
latency_seconds_count{a="1"} 4 1.700000000123e+09
# HELP rpc_seconds RPC
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.25
rpc_seconds{quantile="0.99"} 1.0
rpc_seconds_sum 3.0
rpc_seconds_count 10
# HELP up_state x
# TYPE up_state unknown
up_state 1.0
# EOF
"#;
        assert_eq!(text, want);
    }

    #[test]
    fn empty_exposition() {
        assert_eq!(write(&[], Format::Text), "");
        assert_eq!(write(&[], Format::OpenMetrics1), "# EOF\n");
    }
}
