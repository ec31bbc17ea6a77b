//! Deterministic, realistic OTLP payloads.
//!
//! A few request templates are built once from the seed (Kubernetes-like resources, about
//! ten attributes per span with events, varied names, metrics of every common kind, log
//! records with bodies and trace context) and encoded once, as protobuf or OTLP/JSON. Every
//! item carries the string attribute `bench.seq` and every resource `bench.sent`, both
//! fixed-width digits: sending a request copies a template and writes the sequence numbers
//! and the send time over those digits, so no request is encoded twice and every item sent
//! in a run has its own number.

use clap::ValueEnum;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use crate::json;

/// The attribute on every span, data point and log record: its sequence number in the run.
pub const SEQ_KEY: &str = "bench.seq";
/// The attribute on every resource: when the request was sent, in Unix nanoseconds.
pub const SENT_KEY: &str = "bench.sent";
const SEQ_DIGITS: usize = 12;
const SENT_DIGITS: usize = 19;
/// Largest sequence number that fits the placeholder.
pub const MAX_SEQ: u64 = 999_999_999_999;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];
}

/// What one request looks like.
#[derive(Clone, Debug)]
pub struct Shape {
    pub signal: Signal,
    /// Spans, data points or log records per request.
    pub items: usize,
    /// Attributes per span, data point or log record (besides `bench.seq`).
    pub attributes: usize,
    /// Resource attributes (besides `bench.sent`).
    pub resource_attributes: usize,
    /// Events per span.
    pub events: usize,
    /// Data points per metric.
    pub points_per_metric: usize,
    /// Distinct request templates (services, pods) to cycle through.
    pub templates: usize,
    pub seed: u64,
    /// Stamp `bench.seq` and `bench.sent`.
    pub stamp: bool,
}

impl Shape {
    pub fn new(signal: Signal, items: usize) -> Shape {
        Shape {
            signal,
            items,
            attributes: default_attributes(signal),
            resource_attributes: 12,
            events: 1,
            points_per_metric: 8,
            templates: 8,
            seed: 1,
            stamp: true,
        }
    }
}

pub fn default_attributes(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 10,
        Signal::Metrics => 4,
        Signal::Logs => 8,
    }
}

struct Template {
    bytes: Vec<u8>,
    seq_at: Vec<usize>,
    sent_at: Vec<usize>,
}

/// The encoded templates of a run.
pub struct Templates {
    list: Vec<Template>,
    items: usize,
}

impl Templates {
    pub fn build(shape: &Shape, json: bool) -> Templates {
        let list = (0..shape.templates.max(1))
            .map(|t| {
                let mut g = Gen::new(shape, t as u64);
                let (bytes, seq_pat, sent_pat) = match (shape.signal, json) {
                    (Signal::Traces, false) => (
                        g.traces().encode_to_vec(),
                        proto_pat(SEQ_KEY, SEQ_DIGITS),
                        proto_pat(SENT_KEY, SENT_DIGITS),
                    ),
                    (Signal::Metrics, false) => (
                        g.metrics().encode_to_vec(),
                        proto_pat(SEQ_KEY, SEQ_DIGITS),
                        proto_pat(SENT_KEY, SENT_DIGITS),
                    ),
                    (Signal::Logs, false) => (
                        g.logs().encode_to_vec(),
                        proto_pat(SEQ_KEY, SEQ_DIGITS),
                        proto_pat(SENT_KEY, SENT_DIGITS),
                    ),
                    (Signal::Traces, true) => (
                        json::traces(&g.traces()),
                        json_pat(SEQ_KEY),
                        json_pat(SENT_KEY),
                    ),
                    (Signal::Metrics, true) => (
                        json::metrics(&g.metrics()),
                        json_pat(SEQ_KEY),
                        json_pat(SENT_KEY),
                    ),
                    (Signal::Logs, true) => {
                        (json::logs(&g.logs()), json_pat(SEQ_KEY), json_pat(SENT_KEY))
                    }
                };
                let (seq_at, sent_at) = if shape.stamp {
                    (find_all(&bytes, &seq_pat), find_all(&bytes, &sent_pat))
                } else {
                    (Vec::new(), Vec::new())
                };
                Template {
                    bytes,
                    seq_at,
                    sent_at,
                }
            })
            .collect();
        Templates {
            list,
            items: shape.items,
        }
    }

    /// Average encoded size of a request.
    pub fn encoded_len(&self) -> usize {
        self.list.iter().map(|t| t.bytes.len()).sum::<usize>() / self.list.len().max(1)
    }

    /// Request `n` of the run: its items are numbered from `first_seq`.
    pub fn render(&self, n: u64, first_seq: u64, sent_unix_nano: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(n, first_seq, sent_unix_nano, &mut out);
        out
    }

    pub fn render_into(&self, n: u64, first_seq: u64, sent_unix_nano: u64, out: &mut Vec<u8>) {
        out.clear();
        self.append_to(n, first_seq, sent_unix_nano, out);
    }

    /// Like `render_into`, after what `out` already holds.
    pub fn append_to(&self, n: u64, first_seq: u64, sent_unix_nano: u64, out: &mut Vec<u8>) {
        let t = &self.list[(n % self.list.len() as u64) as usize];
        let base = out.len();
        out.extend_from_slice(&t.bytes);
        for (i, &at) in t.seq_at.iter().enumerate() {
            let at = base + at;
            write_digits(&mut out[at..at + SEQ_DIGITS], first_seq + i as u64);
        }
        for &at in &t.sent_at {
            let at = base + at;
            write_digits(&mut out[at..at + SENT_DIGITS], sent_unix_nano);
        }
    }

    /// Checks that every template has one stamp per item and one per resource.
    pub fn stamps_ok(&self) -> bool {
        self.list
            .iter()
            .all(|t| t.seq_at.len() == self.items && t.sent_at.len() == 1)
    }
}

fn write_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The protobuf bytes of `KeyValue { key, value: AnyValue { string_value: <digits> } }` up to
/// the digits.
fn proto_pat(key: &str, digits: usize) -> Vec<u8> {
    let mut p = vec![0x0a, key.len() as u8];
    p.extend_from_slice(key.as_bytes());
    p.extend_from_slice(&[0x12, (digits + 2) as u8, 0x0a, digits as u8]);
    p
}

fn json_pat(key: &str) -> Vec<u8> {
    format!("{{\"key\":\"{key}\",\"value\":{{\"stringValue\":\"").into_bytes()
}

/// Offsets just past every occurrence of `pat` in `hay`.
fn find_all(hay: &[u8], pat: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + pat.len() <= hay.len() {
        if hay[i] == pat[0] && &hay[i..i + pat.len()] == pat {
            out.push(i + pat.len());
            i += pat.len();
        } else {
            i += 1;
        }
    }
    out
}

// ---------- generation ----------

/// xorshift64*: small, fast and the same everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn int(v: i64) -> any_value::Value {
    any_value::Value::IntValue(v)
}

fn zeros(n: usize) -> String {
    "0".repeat(n)
}

const NOW: u64 = 1_700_000_000_000_000_000;
const SERVICES: [&str; 8] = [
    "checkout",
    "cart",
    "payments",
    "orders",
    "catalog",
    "shipping",
    "frontend",
    "recommendation",
];
const ROUTES: [&str; 8] = [
    "/api/cart",
    "/api/checkout",
    "/api/orders/{id}",
    "/api/orders/{id}/items",
    "/api/catalog/search",
    "/api/users/{id}/profile",
    "/healthz",
    "/api/payments/{id}/capture",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

struct Gen<'a> {
    shape: &'a Shape,
    rng: Rng,
    template: u64,
}

impl<'a> Gen<'a> {
    fn new(shape: &'a Shape, template: u64) -> Gen<'a> {
        Gen {
            shape,
            rng: Rng::new(shape.seed ^ template.wrapping_mul(0xA24B_AED4_963E_E407)),
            template,
        }
    }

    fn seq(&self) -> Option<KeyValue> {
        self.shape.stamp.then(|| kv(SEQ_KEY, s(zeros(SEQ_DIGITS))))
    }

    /// Pads or cuts `attrs` to the configured count, then stamps.
    fn finish(&mut self, mut attrs: Vec<KeyValue>, want: usize) -> Vec<KeyValue> {
        attrs.truncate(want);
        let mut k = 0;
        while attrs.len() < want {
            let value = format!("{:x}", self.rng.below(1 << 20));
            attrs.push(kv(&format!("app.attribute.{k}"), s(value)));
            k += 1;
        }
        attrs.extend(self.seq());
        attrs
    }

    fn resource(&mut self) -> Resource {
        let r = &mut self.rng;
        let service = SERVICES[(self.template as usize) % SERVICES.len()];
        let pod = r.next();
        let node = r.below(40);
        let mut attributes = vec![
            kv("service.name", s(service)),
            kv("service.namespace", s("shop")),
            kv(
                "service.version",
                s(format!("1.{}.{}", r.below(60), r.below(10))),
            ),
            kv(
                "service.instance.id",
                s(format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    r.next() as u32,
                    r.below(1 << 16),
                    r.below(1 << 12),
                    r.below(1 << 12),
                    r.below(1 << 48)
                )),
            ),
            kv("k8s.namespace.name", s("shop-prod")),
            kv(
                "k8s.pod.name",
                s(format!(
                    "{service}-{:x}-{:05x}",
                    pod % 0xfff_ffff,
                    (pod >> 32) % 0xf_ffff
                )),
            ),
            kv(
                "k8s.pod.uid",
                s(format!("{:016x}{:016x}", r.next(), r.next())),
            ),
            kv("k8s.deployment.name", s(service)),
            kv(
                "k8s.node.name",
                s(format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    node % 4,
                    10 + node
                )),
            ),
            kv("k8s.container.name", s(service)),
            kv(
                "container.id",
                s(format!(
                    "{:016x}{:016x}{:016x}{:016x}",
                    r.next(),
                    r.next(),
                    r.next(),
                    r.next()
                )),
            ),
            kv(
                "host.name",
                s(format!("ip-10-0-{}-{}", node % 4, 10 + node)),
            ),
            kv("cloud.provider", s("aws")),
            kv("cloud.region", s("eu-west-1")),
            kv(
                "cloud.availability_zone",
                s(format!("eu-west-1{}", ["a", "b", "c"][(node % 3) as usize])),
            ),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv(
                "telemetry.sdk.language",
                s(["java", "go", "python", "nodejs"][(self.template % 4) as usize]),
            ),
            kv("telemetry.sdk.version", s("1.45.0")),
            kv("process.pid", int(1 + r.below(30000) as i64)),
            kv("os.type", s("linux")),
        ];
        attributes.truncate(self.shape.resource_attributes);
        let mut k = 0;
        while attributes.len() < self.shape.resource_attributes {
            attributes.push(kv(
                &format!("k8s.pod.label.app_{k}"),
                s(format!("v{}", r.below(100))),
            ));
            k += 1;
        }
        if self.shape.stamp {
            attributes.push(kv(SENT_KEY, s(zeros(SENT_DIGITS))));
        }
        Resource {
            attributes,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        }
    }

    fn scope(&self, name: &str) -> InstrumentationScope {
        InstrumentationScope {
            name: name.to_string(),
            version: "2.10.0".to_string(),
            ..Default::default()
        }
    }

    // ----- traces -----

    fn traces(&mut self) -> ExportTraceServiceRequest {
        let resource = self.resource();
        let mut spans = Vec::with_capacity(self.shape.items);
        let mut trace_id = Vec::new();
        let mut root = Vec::new();
        let mut left_in_trace = 0;
        for _ in 0..self.shape.items {
            let parent = if left_in_trace == 0 {
                trace_id = [self.rng.next().to_be_bytes(), self.rng.next().to_be_bytes()].concat();
                left_in_trace = 1 + self.rng.below(12);
                root = self.rng.next().to_be_bytes().to_vec();
                None
            } else {
                Some(root.clone())
            };
            left_in_trace -= 1;
            let span_id = match parent {
                None => root.clone(),
                Some(_) => self.rng.next().to_be_bytes().to_vec(),
            };
            spans.push(self.span(trace_id.clone(), span_id, parent.unwrap_or_default()));
        }
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope("io.opentelemetry.spring-webmvc-6.0")),
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.24.0".to_string(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn span(&mut self, trace_id: Vec<u8>, span_id: Vec<u8>, parent_span_id: Vec<u8>) -> Span {
        let r = &mut self.rng;
        let start = NOW + r.below(1_000_000_000);
        let duration = 50_000 + r.below(80_000_000);
        let route = r.pick(&ROUTES);
        let method = r.pick(&METHODS);
        let status_code = [200, 200, 200, 201, 204, 400, 404, 500][r.below(8) as usize];
        let (name, kind, attrs) = match (parent_span_id.is_empty(), r.below(10)) {
            (true, _) | (false, 0..=2) => (
                format!("{method} {route}"),
                span::SpanKind::Server,
                vec![
                    kv("http.request.method", s(method)),
                    kv("http.route", s(route)),
                    kv("http.response.status_code", int(status_code)),
                    kv("url.path", s(route.replace("{id}", &r.below(100_000).to_string()))),
                    kv("url.scheme", s("https")),
                    kv("server.address", s("shop.example.com")),
                    kv("server.port", int(443)),
                    kv("client.address", s(format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256)))),
                    kv("user_agent.original", s(["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "okhttp/4.12.0", "python-requests/2.32.3"][r.below(3) as usize])),
                    kv("network.protocol.version", s(["1.1", "2"][r.below(2) as usize])),
                    kv("http.request.body.size", int(r.below(8192) as i64)),
                    kv("http.response.body.size", int(r.below(65536) as i64)),
                ],
            ),
            (false, 3..=5) => {
                let table = r.pick(&["orders", "order_items", "carts", "users", "payments", "products"]);
                let op = r.pick(&["SELECT", "INSERT", "UPDATE"]);
                (
                    format!("{op} shop.{table}"),
                    span::SpanKind::Client,
                    vec![
                        kv("db.system", s("postgresql")),
                        kv("db.namespace", s("shop")),
                        kv("db.operation.name", s(op)),
                        kv("db.collection.name", s(table)),
                        kv("db.query.text", s(format!("{op} id, status, total FROM {table} WHERE id = $1"))),
                        kv("server.address", s("postgres.shop-prod.svc.cluster.local")),
                        kv("server.port", int(5432)),
                        kv("network.peer.address", s(format!("10.0.{}.{}", r.below(4), r.below(256)))),
                        kv("db.response.returned_rows", int(r.below(50) as i64)),
                        kv("thread.name", s(format!("http-nio-8080-exec-{}", r.below(16)))),
                    ],
                )
            }
            (false, 6..=7) => {
                let peer = r.pick(&SERVICES);
                (
                    method.to_string(),
                    span::SpanKind::Client,
                    vec![
                        kv("http.request.method", s(method)),
                        kv("http.response.status_code", int(status_code)),
                        kv("url.full", s(format!("http://{peer}.shop-prod.svc.cluster.local:8080{}", route.replace("{id}", &r.below(100_000).to_string())))),
                        kv("server.address", s(format!("{peer}.shop-prod.svc.cluster.local"))),
                        kv("server.port", int(8080)),
                        kv("network.protocol.version", s("1.1")),
                        kv("peer.service", s(peer)),
                        kv("http.request.resend_count", int(r.below(2) as i64)),
                        kv("thread.name", s(format!("http-nio-8080-exec-{}", r.below(16)))),
                        kv("thread.id", int(30 + r.below(64) as i64)),
                    ],
                )
            }
            (false, 8) => (
                "orders publish".to_string(),
                span::SpanKind::Producer,
                vec![
                    kv("messaging.system", s("kafka")),
                    kv("messaging.operation.type", s("publish")),
                    kv("messaging.destination.name", s("orders")),
                    kv("messaging.destination.partition.id", s(r.below(12).to_string())),
                    kv("messaging.kafka.message.key", s(format!("order-{}", r.below(1_000_000)))),
                    kv("messaging.message.body.size", int(r.below(4096) as i64)),
                    kv("messaging.client.id", s("producer-1")),
                    kv("server.address", s("kafka-0.kafka.shop-prod.svc.cluster.local")),
                    kv("server.port", int(9092)),
                    kv("thread.name", s("kafka-producer-network-thread")),
                ],
            ),
            _ => (
                r.pick(&["render_template", "validate_cart", "compute_discounts", "serialize_response", "OrderService.place"]).to_string(),
                span::SpanKind::Internal,
                vec![
                    kv("code.function.name", s(r.pick(&["render", "validate", "compute", "serialize", "place"]))),
                    kv("code.namespace", s("com.example.shop.orders.OrderService")),
                    kv("code.file.path", s("src/main/java/com/example/shop/orders/OrderService.java")),
                    kv("code.line.number", int(20 + r.below(900) as i64)),
                    kv("app.order.id", s(format!("{:012x}", r.next() >> 16))),
                    kv("app.cart.items", int(r.below(20) as i64)),
                    kv("app.customer.tier", s(r.pick(&["free", "plus", "business"]))),
                    kv("app.currency", s(r.pick(&["EUR", "USD", "GBP", "INR"]))),
                    kv("thread.name", s(format!("http-nio-8080-exec-{}", r.below(16)))),
                    kv("app.feature_flag.new_checkout", any_value::Value::BoolValue(r.chance(50))),
                ],
            ),
        };
        let error = status_code >= 500 || r.chance(2);
        let events = (0..self.shape.events)
            .map(|e| {
                let r = &mut self.rng;
                let t = start + (e as u64 + 1) * duration / (self.shape.events as u64 + 2);
                if error && e == 0 {
                    span::Event {
                        time_unix_nano: t,
                        name: "exception".to_string(),
                        attributes: vec![
                            kv(
                                "exception.type",
                                s(r.pick(&[
                                    "java.net.SocketTimeoutException",
                                    "org.postgresql.util.PSQLException",
                                    "java.lang.IllegalStateException",
                                ])),
                            ),
                            kv(
                                "exception.message",
                                s(format!(
                                    "request {} failed after {} ms",
                                    r.below(100_000),
                                    r.below(5000)
                                )),
                            ),
                        ],
                        dropped_attributes_count: 0,
                    }
                } else {
                    let (name, attrs) = match r.below(3) {
                        0 => (
                            "cache.miss",
                            vec![
                                kv("cache.key", s(format!("product:{}", r.below(10_000)))),
                                kv("cache.name", s("products")),
                            ],
                        ),
                        1 => (
                            "retry",
                            vec![
                                kv("retry.attempt", int(1 + r.below(3) as i64)),
                                kv("retry.reason", s("connection reset")),
                            ],
                        ),
                        _ => (
                            "message",
                            vec![
                                kv("message.type", s("SENT")),
                                kv("message.id", int(r.below(1000) as i64)),
                            ],
                        ),
                    };
                    span::Event {
                        time_unix_nano: t,
                        name: name.to_string(),
                        attributes: attrs,
                        dropped_attributes_count: 0,
                    }
                }
            })
            .collect();
        let attributes = self.finish(attrs, self.shape.attributes);
        Span {
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            attributes,
            events,
            status: Some(if error {
                Status {
                    message: "internal error".to_string(),
                    code: 2,
                }
            } else {
                Status::default()
            }),
            flags: 0x100,
            ..Default::default()
        }
    }

    // ----- logs -----

    fn logs(&mut self) -> ExportLogsServiceRequest {
        let resource = self.resource();
        let log_records = (0..self.shape.items).map(|_| self.log_record()).collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope("com.example.shop.orders.OrderService")),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn log_record(&mut self) -> LogRecord {
        let r = &mut self.rng;
        let (severity_number, severity_text) = [
            (9, "INFO"),
            (9, "INFO"),
            (9, "INFO"),
            (5, "DEBUG"),
            (13, "WARN"),
            (17, "ERROR"),
        ][r.below(6) as usize];
        let body = match r.below(6) {
            0 => format!(
                "order {} accepted, {} items, total {}.{:02} EUR",
                r.below(1_000_000),
                1 + r.below(9),
                r.below(500),
                r.below(100)
            ),
            1 => format!(
                "payment authorised for order {}: capturing funds via provider {}",
                r.below(1_000_000),
                r.pick(&["stripe", "adyen", "paypal"])
            ),
            2 => format!(
                "cache miss for product:{}, loading from database",
                r.below(10_000)
            ),
            3 => format!(
                "GET {} completed with status {} in {} ms",
                r.pick(&ROUTES),
                [200, 404, 500][r.below(3) as usize],
                r.below(900)
            ),
            4 => format!(
                "retrying call to {} after transient failure (attempt {}/3)",
                r.pick(&SERVICES),
                1 + r.below(3)
            ),
            _ => format!(
                "user {} signed in from 10.{}.{}.{}",
                r.below(100_000),
                r.below(4),
                r.below(256),
                r.below(256)
            ),
        };
        let with_context = r.chance(70);
        let attrs = vec![
            kv(
                "code.function.name",
                s(r.pick(&["handle", "placeOrder", "capture", "lookup", "signIn"])),
            ),
            kv("code.line.number", int(20 + r.below(900) as i64)),
            kv(
                "code.file.path",
                s("src/main/java/com/example/shop/orders/OrderService.java"),
            ),
            kv(
                "thread.name",
                s(format!("http-nio-8080-exec-{}", r.below(16))),
            ),
            kv("thread.id", int(30 + r.below(64) as i64)),
            kv("log.logger", s("com.example.shop.orders.OrderService")),
            kv("app.order.id", s(format!("{:012x}", r.next() >> 16))),
            kv(
                "app.customer.tier",
                s(r.pick(&["free", "plus", "business"])),
            ),
            kv("http.route", s(r.pick(&ROUTES))),
            kv("app.region", s("eu-west-1")),
        ];
        let time = NOW + r.below(1_000_000_000);
        let trace_id = if with_context {
            [r.next().to_be_bytes(), r.next().to_be_bytes()].concat()
        } else {
            vec![]
        };
        let span_id = if with_context {
            r.next().to_be_bytes().to_vec()
        } else {
            vec![]
        };
        let attributes = self.finish(attrs, self.shape.attributes);
        LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: time + 1_000_000,
            severity_number,
            severity_text: severity_text.to_string(),
            body: Some(AnyValue {
                value: Some(s(body)),
            }),
            attributes,
            trace_id,
            span_id,
            flags: u32::from(with_context),
            ..Default::default()
        }
    }

    // ----- metrics -----

    fn metrics(&mut self) -> ExportMetricsServiceRequest {
        let resource = self.resource();
        let defs: [(&str, &str, u8); 10] = [
            ("http.server.request.duration", "s", b'h'),
            ("http.server.active_requests", "{request}", b'u'),
            ("http.client.request.duration", "s", b'h'),
            ("process.cpu.time", "s", b'c'),
            ("process.memory.usage", "By", b'g'),
            ("jvm.gc.duration", "s", b'h'),
            ("db.client.connection.count", "{connection}", b'u'),
            ("messaging.client.sent.messages", "{message}", b'c'),
            ("system.cpu.utilization", "1", b'g'),
            ("k8s.pod.memory.working_set", "By", b'g'),
        ];
        let per_metric = self.shape.points_per_metric.max(1);
        let mut metrics = Vec::new();
        let mut left = self.shape.items;
        let mut m = 0;
        while left > 0 {
            let n = left.min(per_metric);
            left -= n;
            let (base, unit, kind) = defs[m % defs.len()];
            let name = if m < defs.len() {
                base.to_string()
            } else {
                format!("{base}.{}", m / defs.len())
            };
            m += 1;
            let data = match kind {
                b'h' => metric::Data::Histogram(Histogram {
                    data_points: (0..n).map(|_| self.histogram_point()).collect(),
                    aggregation_temporality: 2,
                }),
                b'g' => metric::Data::Gauge(Gauge {
                    data_points: (0..n).map(|_| self.number_point(false)).collect(),
                }),
                b'c' => metric::Data::Sum(Sum {
                    data_points: (0..n).map(|_| self.number_point(true)).collect(),
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
                _ => metric::Data::Sum(Sum {
                    data_points: (0..n).map(|_| self.number_point(false)).collect(),
                    aggregation_temporality: 2,
                    is_monotonic: false,
                }),
            };
            metrics.push(Metric {
                name,
                description: format!("{base} as reported by the instrumentation"),
                unit: unit.to_string(),
                data: Some(data),
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope("io.opentelemetry.runtime-telemetry-java17")),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn point_attributes(&mut self) -> Vec<KeyValue> {
        let r = &mut self.rng;
        let attrs = vec![
            kv("http.request.method", s(r.pick(&METHODS))),
            kv("http.route", s(r.pick(&ROUTES))),
            kv(
                "http.response.status_code",
                int([200, 201, 404, 500][r.below(4) as usize]),
            ),
            kv("url.scheme", s("https")),
            kv(
                "network.protocol.version",
                s(["1.1", "2"][r.below(2) as usize]),
            ),
            kv("server.address", s("shop.example.com")),
            kv("error.type", s(r.pick(&["", "timeout", "500"]))),
            kv("state", s(r.pick(&["used", "idle"]))),
        ];
        self.finish(attrs, self.shape.attributes)
    }

    fn number_point(&mut self, monotonic: bool) -> NumberDataPoint {
        let attributes = self.point_attributes();
        let r = &mut self.rng;
        let value = if monotonic || r.chance(50) {
            number_data_point::Value::AsInt(r.below(10_000_000) as i64)
        } else {
            number_data_point::Value::AsDouble(r.below(1_000_000) as f64 / 1000.0)
        };
        NumberDataPoint {
            attributes,
            start_time_unix_nano: NOW - 3_600_000_000_000,
            time_unix_nano: NOW + r.below(1_000_000_000),
            value: Some(value),
            ..Default::default()
        }
    }

    fn histogram_point(&mut self) -> HistogramDataPoint {
        let attributes = self.point_attributes();
        let r = &mut self.rng;
        let bounds = vec![
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        ];
        let counts: Vec<u64> = (0..=bounds.len()).map(|_| r.below(500)).collect();
        let count = counts.iter().sum();
        HistogramDataPoint {
            attributes,
            start_time_unix_nano: NOW - 3_600_000_000_000,
            time_unix_nano: NOW + r.below(1_000_000_000),
            count,
            sum: Some(count as f64 * 0.0375),
            bucket_counts: counts,
            explicit_bounds: bounds,
            min: Some(0.001),
            max: Some(9.5),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn templates_are_deterministic_and_stamped() {
        for signal in Signal::ALL {
            for json in [false, true] {
                let shape = Shape::new(signal, 100);
                let a = Templates::build(&shape, json);
                let b = Templates::build(&shape, json);
                assert!(a.stamps_ok(), "{signal:?} json={json}");
                assert_eq!(a.render(5, 500, 7), b.render(5, 500, 7));
                assert_ne!(a.render(5, 500, 7), a.render(6, 600, 7));
            }
        }
    }

    #[test]
    fn protobuf_templates_decode() {
        let shape = Shape::new(Signal::Traces, 64);
        let t = Templates::build(&shape, false);
        let req = ExportTraceServiceRequest::decode(&t.render(0, 42, 9)[..]).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 64);
        // 10 attributes plus bench.seq
        assert!(spans
            .iter()
            .all(|s| s.attributes.len() == 11 && s.events.len() == 1));
        let seq = spans[1].attributes.last().unwrap();
        assert_eq!(seq.key, SEQ_KEY);
        assert_eq!(seq.value.as_ref().unwrap().value, Some(s("000000000043")));
        let shape = Shape::new(Signal::Metrics, 20);
        let t = Templates::build(&shape, false);
        let req = ExportMetricsServiceRequest::decode(&t.render(0, 0, 9)[..]).unwrap();
        assert_eq!(req.resource_metrics[0].scope_metrics[0].metrics.len(), 3);
    }

    #[test]
    fn json_templates_parse() {
        for signal in Signal::ALL {
            let shape = Shape::new(signal, 10);
            let t = Templates::build(&shape, true);
            let v: serde_json::Value = serde_json::from_slice(&t.render(0, 3, 9)).unwrap();
            let text = v.to_string();
            assert!(text.contains("\"stringValue\":\"000000000012\""), "{text}");
        }
    }
}
