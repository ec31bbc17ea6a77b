#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrotel_pipeline::pdata::common::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use ferrotel_pipeline::pdata::logs::LogRecord;
use ferrotel_pipeline::pdata::metrics::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::trace::{span, Span, Status};

use super::*;

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}

fn f(v: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(v)),
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(v),
        ..Default::default()
    }
}

fn map(entries: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: entries,
        })),
    }
}

fn list(items: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values: items })),
    }
}

/// The data every test starts from: a resource, a scope, one span with one event, one
/// log record, and a sum metric with two points.
#[derive(Clone, Debug, PartialEq)]
struct Fixture {
    resource: Option<Resource>,
    resource_url: String,
    scope: Option<InstrumentationScope>,
    scope_url: String,
    span: Span,
    log: LogRecord,
    metric: Metric,
}

fn fixture() -> Fixture {
    Fixture {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", s("checkout")),
                kv("k8s.namespace.name", s("shop")),
            ],
            ..Default::default()
        }),
        resource_url: String::new(),
        scope: Some(InstrumentationScope {
            name: "io.opentelemetry.http".to_string(),
            version: "1.2.0".to_string(),
            ..Default::default()
        }),
        scope_url: String::new(),
        span: Span {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            name: "GET /orders".to_string(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_250_000_000,
            attributes: vec![
                kv("http.method", s("GET")),
                kv("http.status_code", i(200)),
                kv("http.duration", f(0.25)),
                kv("user.password", s("hunter2")),
                kv("nested", map(vec![kv("a", map(vec![kv("b", s("deep"))]))])),
                kv("tags", list(vec![s("x"), s("y")])),
            ],
            events: vec![span::Event {
                time_unix_nano: 1_700_000_000_100_000_000,
                name: "exception".to_string(),
                attributes: vec![kv("exception.type", s("IOError"))],
                dropped_attributes_count: 0,
            }],
            status: Some(Status {
                message: String::new(),
                code: 0,
            }),
            ..Default::default()
        },
        log: LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 17,
            severity_text: "ERROR".to_string(),
            body: Some(s(r#"{"order":"o-1","amount":12.5,"items":[1,2]}"#)),
            attributes: vec![kv("log.file.name", s("app.log"))],
            ..Default::default()
        },
        metric: Metric {
            name: "http.server.requests".to_string(),
            unit: "1".to_string(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    NumberDataPoint {
                        attributes: vec![kv("route", s("/orders"))],
                        value: Some(number_data_point::Value::AsInt(5)),
                        time_unix_nano: 1_700_000_000_000_000_000,
                        ..Default::default()
                    },
                    NumberDataPoint {
                        attributes: vec![kv("route", s("/health"))],
                        value: Some(number_data_point::Value::AsInt(7)),
                        time_unix_nano: 1_700_000_000_000_000_000,
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
    }
}

impl Fixture {
    fn ctx(&mut self, kind: ContextKind, index: usize) -> TransformContext<'_> {
        let item = match kind {
            ContextKind::Resource | ContextKind::Scope => Item::None,
            ContextKind::Span => Item::Span(&mut self.span),
            ContextKind::SpanEvent => Item::SpanEvent {
                span: &mut self.span,
                event: index,
            },
            ContextKind::Metric => Item::Metric(&mut self.metric),
            ContextKind::DataPoint => Item::DataPoint {
                metric: &mut self.metric,
                point: index,
            },
            ContextKind::Log => Item::Log(&mut self.log),
        };
        TransformContext {
            resource: &mut self.resource,
            resource_schema_url: &mut self.resource_url,
            scope: if kind == ContextKind::Resource {
                None
            } else {
                Some((&mut self.scope, &mut self.scope_url))
            },
            item,
            cache: Vec::new(),
        }
    }
}

/// Runs one statement in a context on a fresh fixture; returns the fixture after it.
fn run(kind: ContextKind, text: &str) -> Fixture {
    let mut fx = fixture();
    let st = Statement::new(text, Some(kind)).unwrap_or_else(|e| panic!("{e}"));
    st.execute(&mut fx.ctx(kind, 0))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    fx
}

fn run_err(kind: ContextKind, text: &str) -> String {
    let mut fx = fixture();
    let st = Statement::new(text, Some(kind)).unwrap_or_else(|e| panic!("{e}"));
    st.execute(&mut fx.ctx(kind, 0)).unwrap_err().0
}

fn cond(kind: ContextKind, text: &str) -> bool {
    let mut fx = fixture();
    let c = Condition::new(text, Some(kind)).unwrap_or_else(|e| panic!("{e}"));
    c.eval(&fx.ctx(kind, 0))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Evaluates a value through `set(cache["v"], <value>)` and reads it back.
fn value_of(kind: ContextKind, expr: &str) -> Option<AnyValue> {
    let mut fx = fixture();
    let st = Statement::new(&format!("set(cache[\"v\"], {expr})"), Some(kind))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = fx.ctx(kind, 0);
    st.execute(&mut ctx)
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    context::map_get(&ctx.cache, "v").cloned()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    context::map_get(attrs, key)
}

const SPAN: ContextKind = ContextKind::Span;
const LOG: ContextKind = ContextKind::Log;

#[test]
fn conditions_follow_precedence_and_comparison_rules() {
    let table: &[(&str, bool)] = &[
        // Literals and precedence: not > and > or.
        ("true", true),
        ("false or true and false", false),
        ("not false and false", false),
        ("not (false and false)", true),
        ("true or false and false", true),
        ("(true or false) and false", false),
        // Math precedence and grouping.
        ("1 + 2 * 3 == 7", true),
        ("(1 + 2) * 3 == 9", true),
        ("10 - 4 - 3 == 3", true),
        ("7 / 2 == 3", true),
        ("1.5 * 2.0 == 3.0", true),
        ("-1 < 0", true),
        ("-.5 == -0.5", true),
        // Numbers of different types compare as floats.
        ("1 == 1.0", true),
        ("2 > 1.5", true),
        ("attributes[\"http.status_code\"] == 200", true),
        ("attributes[\"http.status_code\"] >= 200.0", true),
        ("attributes[\"http.duration\"] < 1", true),
        // Different types are not equal; only != holds.
        ("attributes[\"http.status_code\"] == \"200\"", false),
        ("attributes[\"http.status_code\"] != \"200\"", true),
        ("attributes[\"http.status_code\"] < \"300\"", false),
        ("\"a\" < \"b\"", true),
        ("\"B\" < \"a\"", true),
        ("false < true", true),
        ("0x01 < 0x02", true),
        ("0x0102 == 0x0102", true),
        // Nil: missing keys are nil; nil equals only nil.
        ("attributes[\"missing\"] == nil", true),
        ("attributes[\"missing\"] != nil", false),
        ("attributes[\"http.method\"] != nil", true),
        ("nil == nil", true),
        ("attributes[\"missing\"] < 1", false),
        ("attributes[\"missing\"][\"deeper\"] == nil", true),
        // Nested maps and lists.
        ("attributes[\"nested\"][\"a\"][\"b\"] == \"deep\"", true),
        ("attributes[\"tags\"][1] == \"y\"", true),
        ("attributes[\"tags\"] == [\"x\", \"y\"]", true),
        ("attributes[\"tags\"] != [\"y\", \"x\"]", true),
        ("attributes[\"nested\"][\"a\"] == {\"b\": \"deep\"}", true),
        // Span fields, enums and the levels above.
        ("name == \"GET /orders\"", true),
        ("span.name == \"GET /orders\"", true),
        ("kind == SPAN_KIND_SERVER", true),
        ("kind.string == \"Server\"", true),
        ("status.code == STATUS_CODE_UNSET", true),
        (
            "trace_id == TraceID(0x0102030405060708090a0b0c0d0e0f10)",
            true,
        ),
        (
            "trace_id.string == \"0102030405060708090a0b0c0d0e0f10\"",
            true,
        ),
        ("span_id == SpanID(0x0102030405060708)", true),
        ("end_time - start_time == Duration(\"250ms\")", true),
        (
            "end_time_unix_nano - start_time_unix_nano == 250000000",
            true,
        ),
        (
            "resource.attributes[\"service.name\"] == \"checkout\"",
            true,
        ),
        (
            "instrumentation_scope.name == \"io.opentelemetry.http\"",
            true,
        ),
        ("scope.version == \"1.2.0\"", true),
        // Converters as conditions.
        ("IsMatch(name, \"^GET\")", true),
        (
            "IsMatch(attributes[\"http.status_code\"], \"^2\\\\d\\\\d$\")",
            true,
        ),
        ("IsMatch(attributes[\"missing\"], \".*\")", false),
        ("not IsMatch(name, \"POST\") and kind > 1", true),
        (
            "IsString(name) and IsMap(attributes) and not IsMap(name)",
            true,
        ),
        ("Len(attributes[\"tags\"]) == 2", true),
    ];
    for (text, want) in table {
        assert_eq!(cond(SPAN, text), *want, "{text}");
    }
}

#[test]
fn converters_compute_what_upstream_does() {
    let table: Vec<(&str, Option<AnyValue>)> = vec![
        (
            "Concat([name, \"x\", 1, 2.5, true], \"|\")",
            Some(s("GET /orders|x|1|2.5|true")),
        ),
        (
            "Concat([attributes[\"missing\"], \"a\"], \"-\")",
            Some(s("<nil>-a")),
        ),
        ("Int(\"42\")", Some(i(42))),
        ("Int(2.9)", Some(i(2))),
        ("Int(true)", Some(i(1))),
        ("Int(\"4.2\")", None),
        ("Double(\"1.5\")", Some(f(1.5))),
        ("Double(3)", Some(f(3.0))),
        ("String(42)", Some(s("42"))),
        ("String(1.5)", Some(s("1.5"))),
        ("String(0x0aff)", Some(s("0aff"))),
        (
            "String(attributes[\"nested\"])",
            Some(s(r#"{"a":{"b":"deep"}}"#)),
        ),
        (
            "Split(\"a,b,,c\", \",\")",
            Some(list(vec![s("a"), s("b"), s(""), s("c")])),
        ),
        ("Split(name, \" \")[1]", Some(s("/orders"))),
        ("Substring(name, 4, 7)", Some(s("/orders"))),
        (
            "ConvertCase(\"HelloWorld\", \"snake\")",
            Some(s("hello_world")),
        ),
        (
            "ConvertCase(\"hello_world\", \"camel\")",
            Some(s("HelloWorld")),
        ),
        ("ConvertCase(name, \"upper\")", Some(s("GET /ORDERS"))),
        ("ConvertCase(\"ABC\", \"lower\")", Some(s("abc"))),
        (
            "SHA256(\"hello\")",
            Some(s(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            )),
        ),
        (
            "SHA1(\"hello\")",
            Some(s("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")),
        ),
        (
            "MD5(\"hello\")",
            Some(s("5d41402abc4b2a76b9719d911017c592")),
        ),
        ("FNV(\"hello\")", Some(i(0xa430d84680aabd0b_u64 as i64))),
        ("Len(\"héllo\")", Some(i(5))),
        ("Len(attributes)", Some(i(6))),
        (
            "ParseJSON(\"{\\\"a\\\": 1, \\\"b\\\": [true]}\")[\"a\"]",
            Some(f(1.0)),
        ),
        ("Hex(0x0a0b)", Some(s("0a0b"))),
        (
            "UnixMilli(Time(\"2023-11-14 22:13:20\", \"%Y-%m-%d %H:%M:%S\"))",
            Some(i(1_700_000_000_000)),
        ),
        ("UnixSeconds(start_time)", Some(i(1_700_000_000))),
        (
            "UnixNano(end_time) - UnixNano(start_time)",
            Some(i(250_000_000)),
        ),
        ("ToLowerCase(\"ABC\")", Some(s("abc"))),
        ("ToUpperCase(\"abc\")", Some(s("ABC"))),
        ("ToSnakeCase(\"OrderService\")", Some(s("order_service"))),
        ("ToCamelCase(\"order_service\")", Some(s("OrderService"))),
        ("Bool(\"true\")", Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) })),
        ("Bool(0)", Some(AnyValue { value: Some(any_value::Value::BoolValue(false)) })),
        ("Bool(\"maybe\")", None),
        ("IsList(attributes[\"tags\"])", Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) })),
        ("IsInt(attributes[\"http.status_code\"])", Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) })),
        ("IsDouble(attributes[\"http.duration\"])", Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) })),
        ("IsBool(attributes[\"http.method\"])", Some(AnyValue { value: Some(any_value::Value::BoolValue(false)) })),
        ("SHA512(\"hello\")", Some(s("9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"))),
        ("UnixMicro(start_time)", Some(i(1_700_000_000_000_000))),
        ("[1, \"a\"]", Some(list(vec![i(1), s("a")]))),
        ("{\"k\": name}", Some(map(vec![kv("k", s("GET /orders"))]))),
        ("attributes[\"missing\"]", None),
        ("nil", None),
    ];
    for (expr, want) in table {
        assert_eq!(value_of(SPAN, expr), want, "{expr}");
    }
    assert_eq!(
        value_of(SPAN, "UUID()").and_then(|v| match v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.len()),
            _ => None,
        }),
        Some(36)
    );
}

#[test]
fn set_writes_fields_and_nested_keys() {
    let fx = run(SPAN, "set(attributes[\"env\"], \"prod\")");
    assert_eq!(attr(&fx.span.attributes, "env"), Some(&s("prod")));
    let fx = run(SPAN, "set(name, Concat([\"x\", name], \"-\"))");
    assert_eq!(fx.span.name, "x-GET /orders");
    // nil leaves the target alone.
    let fx = run(SPAN, "set(name, attributes[\"missing\"])");
    assert_eq!(fx.span.name, "GET /orders");
    // Missing maps on the way are created.
    let fx = run(SPAN, "set(attributes[\"a\"][\"b\"][\"c\"], 1)");
    assert_eq!(
        attr(&fx.span.attributes, "a"),
        Some(&map(vec![kv("b", map(vec![kv("c", i(1))]))]))
    );
    let fx = run(SPAN, "set(attributes[\"tags\"][0], \"z\")");
    assert_eq!(
        attr(&fx.span.attributes, "tags"),
        Some(&list(vec![s("z"), s("y")]))
    );
    // Levels above: resource and scope from a span.
    let fx = run(SPAN, "set(resource.attributes[\"team\"], \"payments\")");
    assert_eq!(
        attr(&fx.resource.unwrap().attributes, "team"),
        Some(&s("payments"))
    );
    let fx = run(SPAN, "set(instrumentation_scope.version, \"2\")");
    assert_eq!(fx.scope.unwrap().version, "2");
    // Enums, status, kind, times.
    let fx = run(
        SPAN,
        "set(status.code, STATUS_CODE_ERROR) where attributes[\"http.status_code\"] >= 200",
    );
    assert_eq!(fx.span.status.unwrap().code, 2);
    let fx = run(SPAN, "set(kind, SPAN_KIND_CLIENT)");
    assert_eq!(fx.span.kind, 3);
    let fx = run(SPAN, "set(end_time, start_time + Duration(\"1s\"))");
    assert_eq!(fx.span.end_time_unix_nano, 1_700_000_001_000_000_000);
    let fx = run(
        SPAN,
        "set(trace_id.string, \"ffffffffffffffffffffffffffffffff\")",
    );
    assert_eq!(fx.span.trace_id, vec![0xff; 16]);
    // A where clause that is false does nothing.
    let fx = run(
        SPAN,
        "set(name, \"renamed\") where kind == SPAN_KIND_CLIENT",
    );
    assert_eq!(fx.span.name, "GET /orders");
    // Type errors are errors.
    assert!(run_err(SPAN, "set(name, 1)").contains("must be a string"));
    assert!(run_err(SPAN, "set(attributes[\"tags\"][5], 1)").contains("out of bounds"));
}

#[test]
fn map_editors() {
    let fx = run(SPAN, "delete_key(attributes, \"user.password\")");
    assert!(attr(&fx.span.attributes, "user.password").is_none());
    assert_eq!(fx.span.attributes.len(), 5);
    let fx = run(
        SPAN,
        "delete_matching_keys(attributes, \"(?i).*PASSWORD.*\")",
    );
    assert!(attr(&fx.span.attributes, "user.password").is_none());
    let fx = run(SPAN, "keep_keys(attributes, [\"http.method\", \"tags\"])");
    let keys: Vec<&str> = fx
        .span
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys, ["http.method", "tags"]);
    let fx = run(SPAN, "keep_matching_keys(attributes, \"^http\\\\.\")");
    assert_eq!(fx.span.attributes.len(), 3);
    let fx = run(SPAN, "limit(attributes, 2, [\"user.password\"])");
    let keys: Vec<&str> = fx
        .span
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"user.password"));
    let fx = run(SPAN, "truncate_all(attributes, 3)");
    assert_eq!(attr(&fx.span.attributes, "http.method"), Some(&s("GET")));
    assert_eq!(attr(&fx.span.attributes, "user.password"), Some(&s("hun")));
    assert_eq!(attr(&fx.span.attributes, "http.status_code"), Some(&i(200)));
    let fx = run(
        SPAN,
        "merge_maps(attributes, {\"http.method\": \"POST\", \"new\": 1}, \"insert\")",
    );
    assert_eq!(attr(&fx.span.attributes, "http.method"), Some(&s("GET")));
    assert_eq!(attr(&fx.span.attributes, "new"), Some(&i(1)));
    let fx = run(
        SPAN,
        "merge_maps(attributes, {\"http.method\": \"POST\", \"new\": 1}, \"update\")",
    );
    assert_eq!(attr(&fx.span.attributes, "http.method"), Some(&s("POST")));
    assert!(attr(&fx.span.attributes, "new").is_none());
    let fx = run(
        SPAN,
        "merge_maps(attributes, resource.attributes, \"upsert\")",
    );
    assert_eq!(
        attr(&fx.span.attributes, "service.name"),
        Some(&s("checkout"))
    );
    let fx = run(SPAN, "flatten(attributes)");
    assert_eq!(attr(&fx.span.attributes, "nested.a.b"), Some(&s("deep")));
    assert_eq!(attr(&fx.span.attributes, "tags.1"), Some(&s("y")));
    let fx = run(SPAN, "flatten(attributes, \"app\", depth=1)");
    assert_eq!(
        attr(&fx.span.attributes, "app.nested.a"),
        Some(&map(vec![kv("b", s("deep"))]))
    );
    let fx = run(SPAN, "append(attributes[\"tags\"], \"z\")");
    assert_eq!(
        attr(&fx.span.attributes, "tags"),
        Some(&list(vec![s("x"), s("y"), s("z")]))
    );
    let fx = run(
        SPAN,
        "append(attributes[\"http.method\"], values = [\"a\", \"b\"])",
    );
    assert_eq!(
        attr(&fx.span.attributes, "http.method"),
        Some(&list(vec![s("GET"), s("a"), s("b")]))
    );
    let fx = run(SPAN, "append(attributes[\"fresh\"], 1)");
    assert_eq!(attr(&fx.span.attributes, "fresh"), Some(&list(vec![i(1)])));
    assert!(run_err(SPAN, "delete_key(name, \"x\")").contains("map"));
}

#[test]
fn replace_editors() {
    let fx = run(
        SPAN,
        "replace_pattern(name, \"^GET /(\\\\w+)$\", \"GET /{$1}\")",
    );
    assert_eq!(fx.span.name, "GET /{orders}");
    let fx = run(
        SPAN,
        "replace_pattern(name, \"orders\", \"x\", SHA256, \"h:%s\")",
    );
    assert_eq!(
        fx.span.name,
        "GET /h:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    );
    let fx = run(
        SPAN,
        "replace_pattern(attributes[\"http.status_code\"], \"2\", \"3\")",
    );
    assert_eq!(attr(&fx.span.attributes, "http.status_code"), Some(&i(200)));
    let fx = run(
        SPAN,
        "replace_all_patterns(attributes, \"value\", \"hunter\\\\d\", \"***\")",
    );
    assert_eq!(attr(&fx.span.attributes, "user.password"), Some(&s("***")));
    let fx = run(
        SPAN,
        "replace_all_patterns(attributes, \"key\", \"^http\\\\.\", \"h.\")",
    );
    assert_eq!(attr(&fx.span.attributes, "h.method"), Some(&s("GET")));
    let fx = run(SPAN, "replace_match(name, \"GET /*\", \"GET /{path}\")");
    assert_eq!(fx.span.name, "GET /{path}");
    let fx = run(SPAN, "replace_match(name, \"GET /*/x\", \"nope\")");
    assert_eq!(fx.span.name, "GET /orders");
    let fx = run(SPAN, "replace_all_matches(attributes, \"hunt*\", \"***\")");
    assert_eq!(attr(&fx.span.attributes, "user.password"), Some(&s("***")));
}

#[test]
fn every_context_reads_and_writes_its_own_level() {
    let fx = run(
        ContextKind::Resource,
        "set(attributes[\"env\"], \"prod\") where attributes[\"service.name\"] == \"checkout\"",
    );
    assert_eq!(
        attr(&fx.resource.unwrap().attributes, "env"),
        Some(&s("prod"))
    );
    let fx = run(
        ContextKind::Scope,
        "set(name, Concat([name, version], \"@\"))",
    );
    assert_eq!(fx.scope.unwrap().name, "io.opentelemetry.http@1.2.0");
    let fx = run(
        ContextKind::SpanEvent,
        "set(attributes[\"span\"], span.name) where name == \"exception\"",
    );
    assert_eq!(
        attr(&fx.span.events[0].attributes, "span"),
        Some(&s("GET /orders"))
    );
    let fx = run(LOG, "merge_maps(attributes, ParseJSON(body), \"upsert\") where severity_number >= SEVERITY_NUMBER_ERROR");
    assert_eq!(attr(&fx.log.attributes, "order"), Some(&s("o-1")));
    assert_eq!(attr(&fx.log.attributes, "amount"), Some(&f(12.5)));
    let fx = run(
        LOG,
        "set(severity_text, \"WARN\") where IsMatch(body, \"order\")",
    );
    assert_eq!(fx.log.severity_text, "WARN");
    let fx = run(LOG, "set(body, \"replaced\")");
    assert_eq!(fx.log.body, Some(s("replaced")));
    let fx = run(ContextKind::Metric, "set(name, \"requests\") where type == METRIC_DATA_TYPE_SUM and aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE and is_monotonic");
    assert_eq!(fx.metric.name, "requests");
    let fx = run(ContextKind::Metric, "convert_sum_to_gauge()");
    assert!(matches!(fx.metric.data, Some(metric::Data::Gauge(_))));
    let mut gauge = fixture();
    gauge.metric.data = Some(metric::Data::Gauge(Gauge {
        data_points: vec![NumberDataPoint::default()],
    }));
    let st = Statement::new(
        "convert_gauge_to_sum(\"delta\", true)",
        Some(ContextKind::Metric),
    )
    .unwrap();
    st.execute(&mut gauge.ctx(ContextKind::Metric, 0)).unwrap();
    assert!(matches!(
        gauge.metric.data,
        Some(metric::Data::Sum(Sum {
            aggregation_temporality: 1,
            is_monotonic: true,
            ..
        }))
    ));
    // A datapoint sees its metric.
    let mut fx = fixture();
    let st = Statement::new(
        "set(attributes[\"metric\"], metric.name) where value_int > 6",
        Some(ContextKind::DataPoint),
    )
    .unwrap();
    for p in 0..2 {
        st.execute(&mut fx.ctx(ContextKind::DataPoint, p)).unwrap();
    }
    let Some(metric::Data::Sum(sum)) = &fx.metric.data else {
        panic!()
    };
    assert!(attr(&sum.data_points[0].attributes, "metric").is_none());
    assert_eq!(
        attr(&sum.data_points[1].attributes, "metric"),
        Some(&s("http.server.requests"))
    );
    assert!(cond(
        ContextKind::Metric,
        "HasAttrKeyOnDatapoint(\"route\")"
    ));
    assert!(cond(
        ContextKind::Metric,
        "HasAttrOnDatapoint(\"route\", \"/health\")"
    ));
    assert!(!cond(
        ContextKind::Metric,
        "HasAttrOnDatapoint(\"route\", \"/x\")"
    ));
}

#[test]
fn histogram_points_are_readable() {
    let mut fx = fixture();
    fx.metric.data = Some(metric::Data::Histogram(Histogram {
        data_points: vec![HistogramDataPoint {
            count: 3,
            sum: Some(1.5),
            bucket_counts: vec![1, 2],
            explicit_bounds: vec![0.5],
            ..Default::default()
        }],
        aggregation_temporality: 1,
    }));
    let c = Condition::new(
        "count == 3 and sum == 1.5 and bucket_counts[1] == 2 and explicit_bounds == [0.5] and metric.type == METRIC_DATA_TYPE_HISTOGRAM",
        Some(ContextKind::DataPoint),
    )
    .unwrap();
    assert!(c.eval(&fx.ctx(ContextKind::DataPoint, 0)).unwrap());
}

#[test]
fn contexts_are_inferred_from_path_prefixes() {
    let st = Statement::new(
        "set(span.attributes[\"x\"], resource.attributes[\"service.name\"])",
        None,
    )
    .unwrap();
    assert_eq!(st.context, ContextKind::Span);
    let st = Statement::new(
        "set(resource.attributes[\"x\"], \"y\") where spanevent.name == \"e\"",
        None,
    )
    .unwrap();
    assert_eq!(st.context, ContextKind::SpanEvent);
    let st = Statement::new("convert_sum_to_gauge() where metric.name == \"m\"", None).unwrap();
    assert_eq!(st.context, ContextKind::Metric);
    let c = Condition::new("log.severity_number < SEVERITY_NUMBER_WARN", None).unwrap();
    assert_eq!(c.context, ContextKind::Log);
    let err = Statement::new("set(attributes[\"x\"], 1)", None).unwrap_err();
    assert!(err.message.contains("does not say its context"), "{err}");
    let err = Statement::new("set(span.name, metric.name)", None).unwrap_err();
    assert!(err.message.contains("not available"), "{err}");
}

#[test]
fn errors_name_the_statement_and_the_column() {
    let cases: &[(&str, Option<ContextKind>, &str, usize)] = &[
        ("set(name, \"x\"", Some(SPAN), "expected \",\" or \")\"", 14),
        ("set(name, \"x\") where", Some(SPAN), "expected a value", 21),
        ("Set(name, \"x\")", Some(SPAN), "starts with an editor", 1),
        ("nope(name)", Some(SPAN), "undefined function \"nope\"", 1),
        (
            "set(name, Nope(1))",
            Some(SPAN),
            "undefined function \"Nope\"",
            11,
        ),
        ("set(nme, \"x\")", Some(SPAN), "unknown path \"nme\"", 5),
        (
            "set(metric.name, \"x\")",
            Some(SPAN),
            "not available in the span context",
            5,
        ),
        ("set(name, SPAN_KIND_NOPE)", Some(SPAN), "unknown enum", 11),
        ("set(name, \"a\\q\")", Some(SPAN), "invalid escape", 13),
        (
            "set(name, 0x123)",
            Some(SPAN),
            "even number of hex digits",
            11,
        ),
        (
            "replace_pattern(name, \"(\", \"x\")",
            Some(SPAN),
            "not a valid pattern",
            23,
        ),
        (
            "set(name, \"x\", \"y\")",
            Some(SPAN),
            "too many arguments",
            16,
        ),
        ("set(name)", Some(SPAN), "needs the argument \"value\"", 1),
        (
            "set(value = 1, name)",
            Some(SPAN),
            "positional argument cannot follow",
            16,
        ),
        (
            "limit(attributes, 1, [\"a\", \"b\"])",
            Some(SPAN),
            "priority keys",
            1,
        ),
        ("set(name, \"x\") where name", Some(SPAN), "", 0),
        (
            "convert_sum_to_gauge()",
            Some(ContextKind::DataPoint),
            "metric context",
            1,
        ),
        ("set(name, 1 + \"a\")", Some(SPAN), "math expression", 13),
        (
            "merge_maps(attributes, attributes, \"both\")",
            Some(SPAN),
            "strategy",
            36,
        ),
        (
            "set(name, ConvertCase(name, \"title\"))",
            Some(SPAN),
            "invalid case",
            29,
        ),
    ];
    for (text, ctx, want, column) in cases {
        match Statement::new(text, *ctx) {
            Ok(_) if want.is_empty() => {}
            Ok(_) => panic!("{text}: parsed"),
            Err(e) => {
                assert!(e.message.contains(want), "{text}: {e}");
                assert_eq!(e.column, *column, "{text}: {e}");
                assert!(e.to_string().contains(text), "{e}");
            }
        }
    }
    // A non-bool used as a condition fails when it runs.
    let mut fx = fixture();
    let st = Statement::new("set(name, \"x\") where name", Some(SPAN)).unwrap();
    assert!(st
        .execute(&mut fx.ctx(SPAN, 0))
        .unwrap_err()
        .0
        .contains("must be a bool"));
    let err = Condition::new("name ==", Some(SPAN)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unable to parse OTTL condition"),
        "{err}"
    );
}

#[test]
fn runtime_errors_do_not_panic() {
    for text in [
        "set(name, Substring(name, 100, 2))",
        "set(name, Substring(name, -1, 2))",
        "set(name, Substring(name, 9223372036854775807, 9223372036854775807))",
        "set(attributes[\"x\"], 1 / 0)",
        "set(attributes[\"x\"], ParseJSON(name))",
        "set(attributes[\"x\"], Split(attributes[\"tags\"], \",\"))",
        "set(attributes[\"x\"], attributes[\"tags\"][\"k\"])",
        "set(attributes[\"x\"], Time(name, \"%Y\"))",
        "set(attributes[\"x\"], 1 + 1.5)",
        "set(kind, 99)",
    ] {
        assert!(!run_err(SPAN, text).is_empty(), "{text}");
    }
}

#[test]
fn error_mode_parses_case_insensitively() {
    let m: ErrorMode = serde_json::from_str("\"IGNORE\"").unwrap();
    assert_eq!(m, ErrorMode::Ignore);
    let m: ErrorMode = serde_json::from_str("\"silent\"").unwrap();
    assert_eq!(m, ErrorMode::Silent);
    assert!(serde_json::from_str::<ErrorMode>("\"loud\"").is_err());
}

/// Random edits of valid statements and conditions: every one parses and compiles or is
/// refused with an error, and whatever compiles runs without panicking.
#[test]
fn mangled_statements_never_panic() {
    let seeds = [
        "set(attributes[\"a\"][\"b\"], Concat([name, \"x\", 1.5], \"-\")) where kind == SPAN_KIND_SERVER and not IsMatch(name, \"^GET\")",
        "replace_pattern(name, \"([0-9]+)\", \"{$1}\", SHA256, \"id:%s\")",
        "merge_maps(attributes, ParseJSON(\"{\\\"k\\\": [1, 2]}\"), \"upsert\") where Len(attributes) < 100",
        "set(end_time, start_time + Duration(\"1s\") * 2) where (1 + 2) * 3 >= 9 or nil != attributes[\"x\"][0]",
        "flatten(attributes, \"p\", depth=2)",
        "limit(attributes, 2, [\"http.method\"]) where trace_id == 0x0102",
        "set(attributes[Split(name, \" \")[0]], Substring(name, 0, 3))",
    ];
    let alphabet: Vec<char> = "()[]{}\",.=!<>+-*/ 0123456789abcxyzABCXYZ_$\\%x"
        .chars()
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut compiled = 0;
    for round in 0..20_000 {
        let mut chars: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..1 + next(4) {
            let at = next(chars.len() + 1);
            match next(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, alphabet[next(alphabet.len())]),
                _ if at < chars.len() => chars[at] = alphabet[next(alphabet.len())],
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        if let Ok(st) = Statement::new(&text, Some(SPAN)) {
            compiled += 1;
            let mut fx = fixture();
            let _ = st.execute(&mut fx.ctx(SPAN, 0));
        }
        let _ = Condition::new(&text, None);
        let _ = Statement::new(&text, None);
    }
    assert!(compiled > 1000, "only {compiled} mutations compiled");
}
