//! Metric names: the OTLP name escaped to Prometheus' character set, with the unit, `_total`
//! and `_ratio` suffixes the Collector adds.

use super::NamingError;

/// `translation_strategy`: how OTLP names become Prometheus names, with upstream's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslationStrategy {
    /// Escape to `[a-zA-Z0-9_:]` and add unit and type suffixes (upstream's default).
    UnderscoreEscapingWithSuffixes,
    /// Escape, without suffixes (what `add_metric_suffixes: false` means).
    UnderscoreEscapingWithoutSuffixes,
    /// Keep UTF-8 names, with suffixes.
    NoUTF8EscapingWithSuffixes,
    /// Keep UTF-8 names as they are.
    NoTranslation,
}

impl TranslationStrategy {
    pub const ALL: [TranslationStrategy; 4] = [
        TranslationStrategy::UnderscoreEscapingWithSuffixes,
        TranslationStrategy::UnderscoreEscapingWithoutSuffixes,
        TranslationStrategy::NoUTF8EscapingWithSuffixes,
        TranslationStrategy::NoTranslation,
    ];

    /// The config value, exactly as upstream spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TranslationStrategy::UnderscoreEscapingWithSuffixes => "UnderscoreEscapingWithSuffixes",
            TranslationStrategy::UnderscoreEscapingWithoutSuffixes => {
                "UnderscoreEscapingWithoutSuffixes"
            }
            TranslationStrategy::NoUTF8EscapingWithSuffixes => "NoUTF8EscapingWithSuffixes",
            TranslationStrategy::NoTranslation => "NoTranslation",
        }
    }

    /// The strategy named `text` (case-sensitive, as upstream compares).
    pub fn parse(text: &str) -> Option<TranslationStrategy> {
        TranslationStrategy::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    pub fn adds_suffixes(self) -> bool {
        matches!(
            self,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
                | TranslationStrategy::NoUTF8EscapingWithSuffixes
        )
    }

    /// Whether names are escaped to the classic character set.
    pub fn escapes(self) -> bool {
        matches!(
            self,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
                | TranslationStrategy::UnderscoreEscapingWithoutSuffixes
        )
    }
}

/// What kind of OTLP metric a name is built for; it decides the `_total` and `_ratio` suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Gauge,
    /// A monotonic sum: a Prometheus counter.
    MonotonicCounter,
    /// A non-monotonic sum: a Prometheus gauge, without `_total`.
    NonMonotonicCounter,
    Histogram,
    ExponentialHistogram,
    Summary,
}

/// Builds Prometheus metric names in the classic character set (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricNamer {
    namespace: String,
    with_suffixes: bool,
}

/// Metric name characters, `_` aside (it separates tokens).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

fn is_metric_char(c: char) -> bool {
    is_token_char(c) || c == '_'
}

/// Runs of characters outside the metric character set become one `_`; leading and trailing
/// ones vanish.
fn escape_fields(text: &str) -> String {
    text.split(|c: char| !is_metric_char(c))
        .filter(|field| !field.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

impl MetricNamer {
    /// `namespace` is prefixed to every name (escaped like a name); `with_suffixes` adds the
    /// unit, `_total` and `_ratio` suffixes.
    pub fn new(namespace: &str, with_suffixes: bool) -> MetricNamer {
        MetricNamer {
            namespace: escape_fields(namespace),
            with_suffixes,
        }
    }

    /// The escaped namespace ("" when none).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn with_suffixes(&self) -> bool {
        self.with_suffixes
    }

    /// The Prometheus name of an OTLP metric `name` with `unit`, e.g. `http.server.duration`
    /// in `ms` as a histogram: `http_server_duration_milliseconds`.
    pub fn build(&self, name: &str, unit: &str, kind: MetricType) -> Result<String, NamingError> {
        let mut built = if self.with_suffixes {
            self.with_suffixes_name(name, unit, kind)
        } else {
            let base = escape_fields(name);
            if self.namespace.is_empty() {
                base
            } else {
                format!("{}_{base}", self.namespace)
            }
        };
        // A name cannot start with a digit.
        if built.starts_with(|c: char| c.is_ascii_digit()) {
            built.insert(0, '_');
        }
        if built.is_empty() {
            return Err(NamingError::EmptyMetricName {
                name: name.to_string(),
            });
        }
        if built != name && built.chars().all(|c| c == '_') {
            return Err(NamingError::InvalidMetricName {
                name: name.to_string(),
                normalized: built,
            });
        }
        Ok(built)
    }

    fn with_suffixes_name(&self, name: &str, unit: &str, kind: MetricType) -> String {
        // Tokens are split on `_` too, so runs of separators collapse into one `_`.
        let mut tokens: Vec<String> = name
            .split(|c: char| !is_token_char(c))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let (main, per) = unit_suffixes(unit);
        add_unit_tokens(&mut tokens, clean_unit(&main), clean_unit(&per));
        if kind == MetricType::MonotonicCounter {
            tokens.retain(|t| t != "total");
            tokens.push("total".to_string());
        }
        // Only gauges: unit "1" on counters often means "a count of things", not a ratio.
        if unit == "1" && kind == MetricType::Gauge {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".to_string());
        }
        if !self.namespace.is_empty() {
            tokens.insert(0, self.namespace.clone());
        }
        tokens.join("_")
    }
}

/// Appends the unit and per-unit tokens unless the name already has them.
fn add_unit_tokens(tokens: &mut Vec<String>, main: String, per: String) {
    let mut main = if tokens.contains(&main) {
        String::new()
    } else {
        main
    };
    let per = if per == "per_" {
        String::new()
    } else {
        let per = per.strip_suffix('_').map(str::to_string).unwrap_or(per);
        if tokens.contains(&per) {
            String::new()
        } else {
            per
        }
    };
    if !per.is_empty() {
        if let Some(trimmed) = main.strip_suffix('_') {
            main = trimmed.to_string();
        }
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
}

/// The Prometheus word for an OTLP (UCUM) unit; unknown units pass through.
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The word after `per_` for the unit below a `/`; unknown units pass through.
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and `per_` suffixes of a unit, unescaped. Parts in curly braces are annotations
/// (`{requests}`) and give no suffix.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main, Some(per)),
        None => (unit, None),
    };
    let is_annotation = |u: &str| u.contains(['{', '}']);
    let main = main.trim();
    let main_suffix = if main.is_empty() || is_annotation(main) {
        String::new()
    } else {
        unit_word(main).to_string()
    };
    let per_suffix = match per.map(str::trim) {
        Some(per) if !per.is_empty() && !is_annotation(per) => {
            format!("per_{}", per_unit_word(per))
        }
        _ => String::new(),
    };
    (main_suffix, per_suffix)
}

/// Escapes a unit suffix to metric name characters, runs of `_` collapsed, one leading `_`
/// dropped.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_token_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_string(),
        None => out,
    }
}

/// The unit as a Prometheus word, as OpenMetrics' `# UNIT` would carry it: `By/s` gives
/// `bytes_per_second`, `1` and annotations give "".
pub fn unit_name(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_unit(&main), clean_unit(&per));
    let joined = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    let joined = joined.strip_prefix('_').unwrap_or(&joined);
    joined.strip_suffix('_').unwrap_or(joined).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, unit: &str, kind: MetricType) -> String {
        MetricNamer::new("", true)
            .build(name, unit, kind)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn without(name: &str) -> String {
        MetricNamer::new("", false)
            .build(name, "", MetricType::Gauge)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// OTLP name | unit | type | Prometheus name, with suffixes on. Most rows are the
    /// examples of upstream's translator documentation and tests.
    const SUFFIX_CASES: &str = "
        http.server.duration | ms | histogram | http_server_duration_milliseconds
        http.server.duration | s | histogram | http_server_duration_seconds
        system.filesystem.usage | By | gauge | system_filesystem_usage_bytes
        astro.light.speed | m/s | gauge | astro_light_speed_meters_per_second
        system.memory.utilization | 1 | gauge | system_memory_utilization_ratio
        system.network.packets | {packets} | counter | system_network_packets_total
        http.server.requests | {requests} | gauge | http_server_requests
        requests | | counter | requests_total
        requests_total | | counter | requests_total
        total.requests | | counter | requests_total
        items | 1 | counter | items_total
        cpu_usage_ratio | 1 | gauge | cpu_usage_ratio
        ratio.of.cpu | 1 | gauge | of_cpu_ratio
        active | 1 | updown | active
        active_connections | | updown | active_connections
        response_time_seconds | s | gauge | response_time_seconds
        cpu.seconds.total | s | counter | cpu_seconds_total
        cpu.time | s | counter | cpu_time_seconds_total
        bytes.sent | By | counter | bytes_sent_total
        requests | 1/s | gauge | requests_per_second
        throughput | By/s | gauge | throughput_bytes_per_second
        custom_metric | custom_unit | gauge | custom_metric_custom_unit
        custom_metric | {custom} | gauge | custom_metric
        custom_metric | By/{custom} | gauge | custom_metric_bytes
        custom_metric | unit@with#special/chars | gauge | custom_metric_unit_with_special_per_chars
        metric__with__multiple__underscores | unit__multiple__underscores | gauge | metric_with_multiple_underscores_unit_multiple_underscores
        (lambda).function.executions(#) | | gauge | lambda_function_executions
        request_duration | s | histogram | request_duration_seconds
        request_size | By | exponential | request_size_bytes
        response_time | ms | summary | response_time_milliseconds
        uptime | d | gauge | uptime_days
        duration | h | gauge | duration_hours
        timeout | min | gauge | timeout_minutes
        latency | us | gauge | latency_microseconds
        precision_time | ns | gauge | precision_time_nanoseconds
        cache_size | KiBy | gauge | cache_size_kibibytes
        memory | MiBy | gauge | memory_mebibytes
        storage | GiBy | gauge | storage_gibibytes
        capacity | TiBy | gauge | capacity_tibibytes
        transfer | KBy | gauge | transfer_kilobytes
        download | MBy | gauge | download_megabytes
        backup | GBy | gauge | backup_gigabytes
        archive | TBy | gauge | archive_terabytes
        distance | m | gauge | distance_meters
        voltage | V | gauge | voltage_volts
        current | A | gauge | current_amperes
        energy | J | gauge | energy_joules
        power | W | gauge | power_watts
        weight | g | gauge | weight_grams
        temperature | Cel | gauge | temperature_celsius
        frequency | Hz | gauge | frequency_hertz
        cpu_usage | % | gauge | cpu_usage_percent
        requests | 1/m | gauge | requests_per_minute
        events | 1/h | gauge | events_per_hour
        transactions | 1/d | gauge | transactions_per_day
        reports | 1/w | gauge | reports_per_week
        invoices | 1/mo | gauge | invoices_per_month
        renewals | 1/y | gauge | renewals_per_year
        custom | 1/custom_unit | gauge | custom_per_custom_unit
        metric | By/ | gauge | metric_bytes
        metric | / | gauge | metric
        metric | By/$ | gauge | metric_bytes
        http.requests | 1 | counter | http_requests_total
        123.requests | | gauge | _123_requests
        process.cpu:seconds | s | gauge | process_cpu:seconds_seconds
        métric.name | | gauge | m_tric_name
    ";

    fn kind(name: &str) -> MetricType {
        match name {
            "gauge" => MetricType::Gauge,
            "counter" => MetricType::MonotonicCounter,
            "updown" => MetricType::NonMonotonicCounter,
            "histogram" => MetricType::Histogram,
            "exponential" => MetricType::ExponentialHistogram,
            "summary" => MetricType::Summary,
            other => panic!("unknown type {other}"),
        }
    }

    #[test]
    fn suffixes_follow_unit_and_type() {
        for row in SUFFIX_CASES.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = row.split('|').map(str::trim).collect();
            let [name, unit, type_name, want] = cols[..] else {
                panic!("bad row {row}");
            };
            assert_eq!(with(name, unit, kind(type_name)), want, "{row}");
        }
        // Blanks around the parts of a unit do not count.
        assert_eq!(
            with("metric", " By / s ", MetricType::Gauge),
            "metric_bytes_per_second"
        );
    }

    #[test]
    fn escaping_without_suffixes() {
        assert_eq!(without("simple_metric"), "simple_metric");
        assert_eq!(
            without("metric@with#special$chars"),
            "metric_with_special_chars"
        );
        assert_eq!(without("metric@@##$$name"), "metric_name");
        assert_eq!(without("123metric"), "_123metric");
        assert_eq!(without("a__b"), "a__b");
        assert_eq!(without("http.server.duration"), "http_server_duration");
        // No suffixes even for counters and units.
        let namer = MetricNamer::new("", false);
        assert_eq!(
            namer.build("requests", "s", MetricType::MonotonicCounter),
            Ok("requests".to_string())
        );
    }

    #[test]
    fn namespace_is_prefixed() {
        let namer = MetricNamer::new("test_namespace", false);
        assert_eq!(
            namer.build("simple_metric", "", MetricType::Gauge),
            Ok("test_namespace_simple_metric".to_string())
        );
        let namer = MetricNamer::new("test@namespace!!??", false);
        assert_eq!(namer.namespace(), "test_namespace");
        assert_eq!(
            namer.build("metric", "", MetricType::Gauge),
            Ok("test_namespace_metric".to_string())
        );
        let namer = MetricNamer::new("app", true);
        assert_eq!(
            namer.build("requests", "1/s", MetricType::MonotonicCounter),
            Ok("app_requests_per_second_total".to_string())
        );
        assert_eq!(
            namer.build("123_requests", "", MetricType::MonotonicCounter),
            Ok("app_123_requests_total".to_string())
        );
        // Escaped in both modes, so the result is always a valid name.
        let namer = MetricNamer::new("test-space", true);
        assert_eq!(
            namer.build("http.requests", "", MetricType::Gauge),
            Ok("test_space_http_requests".to_string())
        );
        let namer = MetricNamer::new("9lives", true);
        assert_eq!(
            namer.build("x", "", MetricType::Gauge),
            Ok("_9lives_x".to_string())
        );
    }

    #[test]
    fn names_that_escape_to_nothing_are_errors() {
        for namer in [MetricNamer::new("", true), MetricNamer::new("", false)] {
            assert!(matches!(
                namer.build("@#$%", "", MetricType::Gauge),
                Err(NamingError::EmptyMetricName { .. })
            ));
            assert!(matches!(
                namer.build("", "", MetricType::Gauge),
                Err(NamingError::EmptyMetricName { .. })
            ));
        }
        assert!(matches!(
            MetricNamer::new("", false).build("_-_", "", MetricType::Gauge),
            Err(NamingError::InvalidMetricName { .. })
        ));
        // A name of underscores that needed no change is kept, as upstream keeps it.
        assert_eq!(
            MetricNamer::new("", false).build("__", "", MetricType::Gauge),
            Ok("__".to_string())
        );
        let err = MetricNamer::new("", true)
            .build("@", "", MetricType::Gauge)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "normalization for metric \"@\" resulted in empty name"
        );
    }

    #[test]
    fn every_built_name_is_valid() {
        let namers = [
            MetricNamer::new("", true),
            MetricNamer::new("", false),
            MetricNamer::new("ns-1", true),
            MetricNamer::new("1ns", false),
        ];
        let names = ["a.b", "1x", "x y", "ü", "a/b", "__x", ":x", "total"];
        let units = ["", "1", "s/", "{x}", "é/ø", "By/s", "%"];
        for namer in &namers {
            for name in names {
                for unit in units {
                    for kind in [
                        MetricType::Gauge,
                        MetricType::MonotonicCounter,
                        MetricType::Histogram,
                    ] {
                        if let Ok(built) = namer.build(name, unit, kind) {
                            assert!(
                                super::super::is_valid_metric_name(&built),
                                "{namer:?} {name} {unit} -> {built}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unit_words() {
        let cases = [
            ("s", "seconds"),
            ("ms", "milliseconds"),
            ("By", "bytes"),
            ("By/s", "bytes_per_second"),
            ("1/s", "per_second"),
            ("1", ""),
            ("{requests}", ""),
            ("%", "percent"),
            ("custom_unit", "custom_unit"),
            ("unit__multiple__underscores", "unit_multiple_underscores"),
            ("unit@with#special/chars", "unit_with_special_per_chars"),
            (" By / s ", "bytes_per_second"),
            ("/", ""),
            ("", ""),
        ];
        for (unit, want) in cases {
            assert_eq!(unit_name(unit), want, "{unit:?}");
        }
    }

    #[test]
    fn strategies_round_trip() {
        for s in TranslationStrategy::ALL {
            assert_eq!(TranslationStrategy::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            TranslationStrategy::parse("underscoreescapingwithsuffixes"),
            None
        );
        assert!(TranslationStrategy::UnderscoreEscapingWithSuffixes.adds_suffixes());
        assert!(!TranslationStrategy::UnderscoreEscapingWithoutSuffixes.adds_suffixes());
        assert!(TranslationStrategy::NoUTF8EscapingWithSuffixes.adds_suffixes());
        assert!(!TranslationStrategy::NoTranslation.escapes());
    }
}
