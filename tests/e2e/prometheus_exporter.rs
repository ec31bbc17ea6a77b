//! The `prometheus` exporter end to end: OTLP/HTTP in, a scrape out. The exposition is
//! checked line by line, by `promtool check metrics` (no findings at all), and by a real
//! Prometheus server that scrapes it in both formats and must store the same samples.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{agent_config, Client};
use crate::harness::{self, Agent};
use crate::own_metrics;
use crate::prometheus_server::PrometheusServer;

/// Bound of every wait for the agent or Prometheus to show something.
const WAIT: Duration = Duration::from_secs(30);
const T0: u64 = 1_700_000_000_000_000_000;
const STEP: u64 = 10_000_000_000;
/// Data points in `first_request` and `second_request`.
const POINTS: f64 = 10.0;

/// The resource and scope labels every series of the test data carries.
const COMMON: [(&str, &str); 5] = [
    ("instance", "pod-1"),
    ("job", "shop/checkout"),
    ("otel_scope_name", "e2e.meter"),
    ("otel_scope_schema_url", ""),
    ("otel_scope_version", "1.2.3"),
];

fn attr(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn text(value: &str) -> Value {
    json!({"stringValue": value})
}

fn nanos(t: u64) -> String {
    t.to_string()
}

fn request(metrics: Vec<Value>) -> Value {
    json!({"resourceMetrics": [{
        "resource": {"attributes": [
            attr("service.name", text("checkout")),
            attr("service.namespace", text("shop")),
            attr("service.instance.id", text("pod-1")),
            attr("host.name", text("node-a")),
            attr("deployment.environment", text("prod")),
        ]},
        "scopeMetrics": [{
            "scope": {"name": "e2e.meter", "version": "1.2.3"},
            "metrics": metrics,
        }],
    }]})
}

fn delta_jobs(start: u64, value: i64) -> Value {
    json!({"name": "app.jobs.processed", "unit": "{jobs}", "description": "Jobs processed",
        "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
            "attributes": [attr("queue", text("emails"))],
            "startTimeUnixNano": nanos(start), "timeUnixNano": nanos(start + STEP),
            "asInt": value.to_string()}]}})
}

fn delta_duration(start: u64, counts: [u64; 4], sum: f64) -> Value {
    json!({"name": "http.server.request.duration", "unit": "s",
        "description": "Duration of HTTP server requests",
        "histogram": {"aggregationTemporality": 1, "dataPoints": [{
            "attributes": [attr("http.route", text("/checkout"))],
            "startTimeUnixNano": nanos(start), "timeUnixNano": nanos(start + STEP),
            "count": counts.iter().sum::<u64>().to_string(), "sum": sum,
            "bucketCounts": counts.map(|c| c.to_string()),
            "explicitBounds": [0.1, 0.5, 1.0]}]}})
}

/// Every kind of metric once, the delta ones for their first interval.
fn first_request() -> Value {
    request(vec![
        json!({"name": "system.memory.utilization", "unit": "1",
            "description": "Fraction of memory in use",
            "gauge": {"dataPoints": [{"attributes": [attr("state", text("used"))],
                "timeUnixNano": nanos(T0), "asDouble": 0.42}]}}),
        json!({"name": "process.memory.usage", "unit": "By", "description": "Resident memory",
            "gauge": {"dataPoints": [{"timeUnixNano": nanos(T0), "asInt": "1048576"}]}}),
        json!({"name": "http.server.requests", "unit": "{requests}",
            "description": "HTTP requests served",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                "attributes": [attr("http.request.method", text("GET")),
                    attr("http.response.status_code", json!({"intValue": "200"}))],
                "startTimeUnixNano": nanos(T0), "timeUnixNano": nanos(T0 + STEP),
                "asInt": "10"}]}}),
        json!({"name": "app.queue.length", "unit": "{items}",
            "description": "Items waiting in the queue",
            "sum": {"aggregationTemporality": 2, "isMonotonic": false, "dataPoints": [{
                "attributes": [attr("queue", text("emails"))],
                "startTimeUnixNano": nanos(T0), "timeUnixNano": nanos(T0 + STEP),
                "asInt": "5"}]}}),
        delta_jobs(T0, 3),
        delta_duration(T0, [1, 2, 0, 1], 2.0),
        json!({"name": "rpc.client.duration", "unit": "s", "description": "RPC latency",
            "summary": {"dataPoints": [{"attributes": [attr("rpc.method", text("Get"))],
                "startTimeUnixNano": nanos(T0), "timeUnixNano": nanos(T0 + STEP),
                "count": "10", "sum": 4.5,
                "quantileValues": [{"quantile": 0.5, "value": 0.3},
                    {"quantile": 0.99, "value": 1.2}]}]}}),
        json!({"name": "app.payload.size", "unit": "By", "description": "Size of payloads",
            "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [{
                "startTimeUnixNano": nanos(T0), "timeUnixNano": nanos(T0 + STEP),
                "count": "3", "sum": 300.0, "scale": 0, "zeroCount": "0",
                "positive": {"offset": 5, "bucketCounts": ["1", "2"]}}]}}),
    ])
}

/// The next interval of the delta metrics.
fn second_request() -> Value {
    request(vec![
        delta_jobs(T0 + STEP, 4),
        delta_duration(T0 + STEP, [0, 1, 1, 0], 1.0),
    ])
}

/// `{a="1",...}` of `own` and the common labels, sorted by name, then `extra` last.
fn labels(own: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
    let mut all: Vec<(&str, &str)> = COMMON.iter().copied().chain(own.iter().copied()).collect();
    all.sort();
    let parts: Vec<String> = all
        .into_iter()
        .chain(extra)
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The whole exposition the test data must give in the text format.
fn expected_text() -> String {
    let jobs = [("queue", "emails")];
    let route = [("http_route", "/checkout")];
    let rpc = [("rpc_method", "Get")];
    let requests = [
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
    ];
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, lines: Vec<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    };
    family(
        "app_jobs_processed_total",
        "Jobs processed",
        "counter",
        vec![format!("app_jobs_processed_total{} 7", labels(&jobs, None))],
    );
    family(
        "app_payload_size_bytes",
        "Size of payloads",
        "histogram",
        vec![
            format!(
                "app_payload_size_bytes_bucket{} 3",
                labels(&[], Some(("le", "+Inf")))
            ),
            format!("app_payload_size_bytes_sum{} 300", labels(&[], None)),
            format!("app_payload_size_bytes_count{} 3", labels(&[], None)),
        ],
    );
    family(
        "app_queue_length",
        "Items waiting in the queue",
        "gauge",
        vec![format!("app_queue_length{} 5", labels(&jobs, None))],
    );
    let duration = "http_server_request_duration_seconds";
    family(
        duration,
        "Duration of HTTP server requests",
        "histogram",
        vec![
            format!("{duration}_bucket{} 1", labels(&route, Some(("le", "0.1")))),
            format!("{duration}_bucket{} 4", labels(&route, Some(("le", "0.5")))),
            format!("{duration}_bucket{} 5", labels(&route, Some(("le", "1")))),
            format!(
                "{duration}_bucket{} 6",
                labels(&route, Some(("le", "+Inf")))
            ),
            format!("{duration}_sum{} 3", labels(&route, None)),
            format!("{duration}_count{} 6", labels(&route, None)),
        ],
    );
    family(
        "http_server_requests_total",
        "HTTP requests served",
        "counter",
        vec![format!(
            "http_server_requests_total{} 10",
            labels(&requests, None)
        )],
    );
    family(
        "process_memory_usage_bytes",
        "Resident memory",
        "gauge",
        vec![format!(
            "process_memory_usage_bytes{} 1.048576e+06",
            labels(&[], None)
        )],
    );
    family(
        "rpc_client_duration_seconds",
        "RPC latency",
        "summary",
        vec![
            format!(
                "rpc_client_duration_seconds{} 0.3",
                labels(&rpc, Some(("quantile", "0.5")))
            ),
            format!(
                "rpc_client_duration_seconds{} 1.2",
                labels(&rpc, Some(("quantile", "0.99")))
            ),
            format!("rpc_client_duration_seconds_sum{} 4.5", labels(&rpc, None)),
            format!("rpc_client_duration_seconds_count{} 10", labels(&rpc, None)),
        ],
    );
    family(
        "system_memory_utilization_ratio",
        "Fraction of memory in use",
        "gauge",
        vec![format!(
            "system_memory_utilization_ratio{} 0.42",
            labels(&[("state", "used")], None)
        )],
    );
    family(
        "target_info",
        "Target metadata",
        "gauge",
        vec![
            "target_info{deployment_environment=\"prod\",host_name=\"node-a\",instance=\"pod-1\",job=\"shop/checkout\"} 1"
                .to_string(),
        ],
    );
    out
}

/// Starts an agent whose metrics pipeline (OTLP in) ends in the exporters `names`, which
/// `exporters` configures (a YAML block indented by two spaces) on the ports it is given:
/// one per name, distinct from the agent's own. Returns the agent and those ports.
fn start_agent(names: &[&str], exporters: impl Fn(&[u16]) -> String) -> (Agent, Vec<u16>) {
    let chosen: RefCell<Vec<u16>> = RefCell::new(Vec::new());
    let pipeline = format!("{{receivers: [otlp], exporters: [{}]}}", names.join(", "));
    let agent = Agent::start(|ports, _dir| {
        let own = [ports.grpc, ports.http, ports.health, ports.metrics];
        let picked: Vec<u16> = harness::free_ports(names.len() + own.len())
            .into_iter()
            .filter(|p| !own.contains(p))
            .take(names.len())
            .collect();
        let config = agent_config(ports, "", &exporters(&picked), &[("metrics", &pipeline)]);
        *chosen.borrow_mut() = picked;
        config
    });
    let ports = chosen.into_inner();
    assert_eq!(ports.len(), names.len(), "free ports");
    (agent, ports)
}

fn send_test_data(agent: &Agent) {
    let client = Client::new();
    for body in [first_request(), second_request()] {
        let status = client.post_json(agent.ports.http, "metrics", &body);
        assert_eq!(status, 200, "POST /v1/metrics\n{}", agent.log());
    }
}

struct Scrape {
    status: u16,
    content_type: String,
    content_encoding: String,
    body: Vec<u8>,
}

fn scrape(port: u16, headers: &[(&str, &str)]) -> Scrape {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let mut req = client.get(format!("http://127.0.0.1:{port}/metrics"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("GET /metrics");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (content_type, content_encoding) = (header("content-type"), header("content-encoding"));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body").to_vec();
        Scrape {
            status,
            content_type,
            content_encoding,
            body,
        }
    })
}

fn scrape_text(port: u16) -> String {
    let s = scrape(port, &[]);
    assert_eq!(s.status, 200, "GET /metrics");
    String::from_utf8(s.body).expect("UTF-8 exposition")
}

/// Scrapes until the delta metrics show both intervals, at most `WAIT`.
fn wait_for_data(port: u16, agent: &Agent) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape_text(port);
        if text.contains("app_jobs_processed_total{") && text.contains("} 7\n") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the exporter never showed the data:\n{text}\n{}",
            agent.log()
        );
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn exposition_is_exact_and_promtool_finds_nothing() {
    let (mut agent, ports) = start_agent(&["prometheus"], |p| {
        format!(
            "  prometheus:\n    endpoint: 127.0.0.1:{}\n    enable_open_metrics: true\n    metric_expiration: 10m",
            p[0]
        )
    });
    let port = ports[0];
    send_test_data(&agent);
    let exposition = wait_for_data(port, &agent);
    assert_eq!(exposition, expected_text(), "text exposition");

    let plain = scrape(port, &[]);
    assert_eq!(
        plain.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(plain.content_encoding, "");

    // promtool lints the exposition: not a single finding.
    let input = agent.dir.path().join("exposition.txt");
    std::fs::write(&input, &exposition).expect("write exposition");
    let out = harness::run_bounded(
        Command::new(harness::promtool())
            .args(["check", "metrics"])
            .stdin(File::open(&input).expect("open exposition")),
        agent.dir.path(),
        "promtool",
        WAIT,
    );
    assert_eq!(
        (out.status.code(), out.stdout.trim(), out.stderr.trim()),
        (Some(0), "", ""),
        "promtool check metrics must report nothing"
    );

    // OpenMetrics when asked for it, as Prometheus does.
    let om = scrape(
        port,
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )],
    );
    assert_eq!(
        om.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om_text = String::from_utf8(om.body).expect("UTF-8");
    assert!(om_text.ends_with("\n# EOF\n"), "{om_text}");
    assert!(
        om_text.contains(&format!(
            "# HELP app_jobs_processed Jobs processed\n# TYPE app_jobs_processed counter\napp_jobs_processed_total{} 7.0\n",
            labels(&[("queue", "emails")], None)
        )),
        "{om_text}"
    );
    assert!(
        om_text.contains(&format!(
            "http_server_request_duration_seconds_bucket{} 5\n",
            labels(&[("http_route", "/checkout")], Some(("le", "1.0")))
        )),
        "{om_text}"
    );

    // Compressed when the scraper accepts gzip.
    let zipped = scrape(port, &[("accept-encoding", "gzip")]);
    assert_eq!(zipped.content_encoding, "gzip");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(zipped.body.as_slice())
        .read_to_string(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, exposition);

    // Nothing but /metrics is served.
    assert_eq!(scrape(port, &[]).status, 200);
    let (status, _) =
        harness::http_get(&format!("http://127.0.0.1:{port}/other")).expect("GET /other");
    assert_eq!(status, 404);

    // Every point taken is counted as sent, as for any exporter.
    own_metrics::wait_for(
        agent.ports.metrics,
        Duration::from_secs(10),
        &[
            (
                "otelcol_exporter_sent_metric_points",
                &[("exporter", "prometheus")],
                POINTS,
            ),
            (
                "otelcol_exporter_send_failed_metric_points",
                &[("exporter", "prometheus")],
                0.0,
            ),
        ],
        || agent.log(),
    );
    assert_eq!(agent.stop().code(), Some(0), "agent exit\n{}", agent.log());
}

/// Prometheus scraping every `(job, port)` each second, once it is ready.
fn scraping_server(targets: &[(&str, u16)]) -> PrometheusServer {
    let jobs: String = targets
        .iter()
        .map(|(job, port)| {
            format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            )
        })
        .collect();
    let config =
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}");
    PrometheusServer::start_on(harness::free_ports(1)[0], &config, &[])
}

/// The samples of a text exposition as Prometheus stores them from the scrape job `job` of
/// target `127.0.0.1:port`: the exposed `job` and `instance` renamed `exported_*` (the
/// default `honor_labels: false`), empty labels left out (they mean "absent").
fn as_stored(exposition: &str, job: &str, port: u16) -> BTreeMap<BTreeMap<String, String>, f64> {
    let mut out = BTreeMap::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, label_text) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        // The test data has no quotes, commas or backslashes in values.
        for pair in label_text.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").expect("label pair");
            let v = v.trim_end_matches('"');
            if v.is_empty() {
                continue;
            }
            let k = match k {
                "job" => "exported_job",
                "instance" => "exported_instance",
                other => other,
            };
            labels.insert(k.to_string(), v.to_string());
        }
        labels.insert("__name__".to_string(), name.to_string());
        labels.insert("job".to_string(), job.to_string());
        labels.insert("instance".to_string(), format!("127.0.0.1:{port}"));
        let value: f64 = value.parse().expect("sample value");
        out.insert(labels, value);
    }
    out
}

#[test]
fn prometheus_server_stores_the_same_samples() {
    // Prometheus 2.42 asks for OpenMetrics first: one exporter offers it, one does not.
    let (agent, ports) = start_agent(&["prometheus/text", "prometheus/openmetrics"], |p| {
        format!(
            "  prometheus/text:\n    endpoint: 127.0.0.1:{}\n  prometheus/openmetrics:\n    endpoint: 127.0.0.1:{}\n    enable_open_metrics: true",
            p[0], p[1]
        )
    });
    send_test_data(&agent);
    let exposition = wait_for_data(ports[0], &agent);
    assert_eq!(exposition, expected_text());

    let jobs = [
        ("ferrotel-text", ports[0]),
        ("ferrotel-openmetrics", ports[1]),
    ];
    let server = scraping_server(&jobs);
    for (job, port) in jobs {
        let mut want = as_stored(&exposition, job, port);
        if job == "ferrotel-openmetrics" {
            // OpenMetrics writes bounds as floats; Prometheus 2.x keeps the label as written.
            want = want
                .into_iter()
                .map(|(mut labels, v)| {
                    if let Some(le) = labels.get_mut("le") {
                        if le == "1" {
                            *le = "1.0".to_string();
                        }
                    }
                    (labels, v)
                })
                .collect();
        }
        let deadline = Instant::now() + WAIT;
        let stored = loop {
            let stored: BTreeMap<BTreeMap<String, String>, f64> = server
                .query(&format!("{{job=\"{job}\"}}"))
                .into_iter()
                .filter(|(labels, _)| {
                    // Prometheus' own series about the scrape.
                    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
                    name != "up" && !name.starts_with("scrape_")
                })
                .map(|(labels, v)| (labels, v.parse::<f64>().expect("stored value")))
                .collect();
            if stored.len() >= want.len() {
                break stored;
            }
            assert!(
                Instant::now() < deadline,
                "{job}: Prometheus stored {} of {} series within {WAIT:?}:\n{stored:#?}\n{}",
                stored.len(),
                want.len(),
                server.log()
            );
            sleep(Duration::from_millis(200));
        };
        assert_eq!(stored, want, "{job}: what Prometheus stored");
        let up = server.query(&format!("up{{job=\"{job}\"}}"));
        assert_eq!(up.len(), 1, "{job}: up");
        assert_eq!(up[0].1, "1", "{job}: up");
    }
    // A spot check in PromQL terms, independent of the parsing above.
    let jobs_processed = server.query(
        "app_jobs_processed_total{job=\"ferrotel-openmetrics\",exported_job=\"shop/checkout\",exported_instance=\"pod-1\",queue=\"emails\",otel_scope_name=\"e2e.meter\",otel_scope_version=\"1.2.3\"}",
    );
    assert_eq!(jobs_processed.len(), 1, "{jobs_processed:?}");
    assert_eq!(jobs_processed[0].1, "7");
    let target = server.query("target_info{job=\"ferrotel-text\"}");
    assert_eq!(target.len(), 1, "{target:?}");
    assert_eq!(
        target[0]
            .0
            .get("deployment_environment")
            .map(String::as_str),
        Some("prod")
    );
    drop(server);
    let mut agent = agent;
    assert_eq!(agent.stop().code(), Some(0), "agent exit\n{}", agent.log());
}
