//! The `prometheusremotewrite` exporter end to end: OTLP/HTTP in, remote write out to a real
//! Prometheus server (its remote write receiver), read back with PromQL: names, labels and
//! values as stored, the delta sum refused and counted, and retries while the server is down.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::delivery::{agent_config, Client};
use crate::harness::{self, Agent};
use crate::own_metrics;
use crate::prometheus_server::{labels_of, Labels, PrometheusServer};

/// Bound of every wait for the agent or Prometheus to show something.
const WAIT: Duration = Duration::from_secs(30);

/// A Prometheus server taking remote writes (and exemplars), no scrape jobs.
struct RemoteWriteServer(PrometheusServer);

impl RemoteWriteServer {
    /// Starts Prometheus on `port` and waits until it is ready.
    fn start(port: u16) -> RemoteWriteServer {
        RemoteWriteServer(PrometheusServer::start_on(
            port,
            "global:\n  scrape_interval: 15s\n",
            &[
                "--web.enable-remote-write-receiver",
                "--enable-feature=exemplar-storage",
            ],
        ))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// An instant query: every series as (labels, value).
    fn query(&self, promql: &str) -> BTreeMap<Labels, String> {
        self.0.query(promql).into_iter().collect()
    }

    /// The exemplars of the series `promql` selects in the last hour: (series labels,
    /// exemplar labels, value).
    fn exemplars(&self, promql: &str) -> Vec<(Labels, Labels, String)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let body = self.0.api(
            "/api/v1/query_exemplars",
            &[
                ("query", promql.to_string()),
                ("start", (now - 3600).to_string()),
                ("end", (now + 60).to_string()),
            ],
        );
        let mut out = Vec::new();
        for series in body["data"].as_array().cloned().unwrap_or_default() {
            for e in series["exemplars"].as_array().cloned().unwrap_or_default() {
                out.push((
                    labels_of(&series["seriesLabels"]),
                    labels_of(&e["labels"]),
                    e["value"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        out
    }

    /// Queries until `want` series answer, at most `WAIT`.
    fn wait_for(&self, promql: &str, want: usize, agent: &Agent) -> BTreeMap<Labels, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let stored = self.query(promql);
            if stored.len() >= want {
                return stored;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: Prometheus stored {} of {want} series within {WAIT:?}:\n{stored:#?}\nprometheus:\n{}\nagent:\n{}",
                stored.len(),
                self.log(),
                agent.log()
            );
            sleep(Duration::from_millis(200));
        }
    }
}

fn attr(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn text(value: &str) -> Value {
    json!({"stringValue": value})
}

/// Now, a second ago, in Unix nanoseconds: recent enough for Prometheus to take.
fn recent_nanos() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(now.as_nanos()).expect("nanoseconds fit") - 1_000_000_000
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

fn memory_gauge(t: u64) -> Value {
    json!({"name": "system.memory.utilization", "unit": "1",
        "gauge": {"dataPoints": [{
            "attributes": [attr("state", text("used")), attr("cluster", text("local"))],
            "timeUnixNano": t.to_string(), "asDouble": 0.42}]}})
}

/// A gauge, a cumulative counter, a histogram, a summary, and a delta counter (refused).
fn every_kind(t: u64) -> Value {
    let gauge = memory_gauge(t);
    let start = (t - 60_000_000_000).to_string();
    let t = t.to_string();
    request(vec![
        gauge,
        json!({"name": "http.server.requests", "unit": "{requests}",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                "attributes": [attr("http.request.method", text("GET")),
                    attr("http.response.status_code", json!({"intValue": "200"}))],
                "startTimeUnixNano": start, "timeUnixNano": t, "asInt": "10"}]}}),
        json!({"name": "http.server.request.duration", "unit": "s",
            "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                "attributes": [attr("http.route", text("/checkout"))],
                "startTimeUnixNano": start, "timeUnixNano": t,
                "count": "4", "sum": 2.0, "bucketCounts": ["1", "2", "0", "1"],
                "explicitBounds": [0.005, 0.5, 1.0],
                // Goes with the 0.5 bucket.
                "exemplars": [{"timeUnixNano": t, "asDouble": 0.3,
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174"}]}]}}),
        json!({"name": "rpc.client.duration", "unit": "s",
            "summary": {"dataPoints": [{"attributes": [attr("rpc.method", text("Get"))],
                "startTimeUnixNano": start, "timeUnixNano": t, "count": "10", "sum": 4.5,
                "quantileValues": [{"quantile": 0.5, "value": 0.3},
                    {"quantile": 0.99, "value": 1.2}]}]}}),
        json!({"name": "app.jobs.processed", "unit": "{jobs}",
            "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
                "startTimeUnixNano": start, "timeUnixNano": t, "asInt": "3"}]}}),
    ])
}

/// A stored series: `own` labels, the resource's `job` and `instance` and the external
/// labels (unless `own` has them), and the name.
fn stored(name: &str, own: &[(&str, &str)]) -> Labels {
    let mut labels: Labels = [
        ("__name__", name),
        ("job", "shop/checkout"),
        ("instance", "pod-1"),
        ("cluster", "e2e"),
        ("deploy_region", "eu-west-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in own {
        labels.insert(k.to_string(), v.to_string());
    }
    labels
}

fn expected() -> BTreeMap<Labels, String> {
    let route = ("http_route", "/checkout");
    let duration = "http_server_request_duration_seconds";
    let rpc = ("rpc_method", "Get");
    [
        (
            stored(
                "system_memory_utilization_ratio",
                // The point's own `cluster` wins over the external label.
                &[("state", "used"), ("cluster", "local")],
            ),
            "0.42",
        ),
        (
            stored(
                "http_server_requests_total",
                &[
                    ("http_request_method", "GET"),
                    ("http_response_status_code", "200"),
                ],
            ),
            "10",
        ),
        (
            stored(&format!("{duration}_bucket"), &[route, ("le", "0.005")]),
            "1",
        ),
        (
            stored(&format!("{duration}_bucket"), &[route, ("le", "0.5")]),
            "3",
        ),
        (
            stored(&format!("{duration}_bucket"), &[route, ("le", "1")]),
            "3",
        ),
        (
            stored(&format!("{duration}_bucket"), &[route, ("le", "+Inf")]),
            "4",
        ),
        (stored(&format!("{duration}_sum"), &[route]), "2"),
        (stored(&format!("{duration}_count"), &[route]), "4"),
        (
            stored("rpc_client_duration_seconds", &[rpc, ("quantile", "0.5")]),
            "0.3",
        ),
        (
            stored("rpc_client_duration_seconds", &[rpc, ("quantile", "0.99")]),
            "1.2",
        ),
        (stored("rpc_client_duration_seconds_sum", &[rpc]), "4.5"),
        (stored("rpc_client_duration_seconds_count", &[rpc]), "10"),
        (
            stored(
                "target_info",
                &[("host_name", "node-a"), ("deployment_environment", "prod")],
            ),
            "1",
        ),
    ]
    .into_iter()
    .map(|(labels, value)| (labels, value.to_string()))
    .collect()
}

/// Starts an agent (OTLP in, remote write out to `127.0.0.1:<port>`, a port distinct from the
/// agent's own) with `extra` exporter settings (indented by four spaces); returns it and the
/// port.
fn start_agent(extra: &str) -> (Agent, u16) {
    let chosen: RefCell<u16> = RefCell::new(0);
    let agent = Agent::start(|ports, _dir| {
        let own = [ports.grpc, ports.http, ports.health, ports.metrics];
        let port = harness::free_ports(own.len() + 1)
            .into_iter()
            .find(|p| !own.contains(p))
            .expect("a free port");
        *chosen.borrow_mut() = port;
        let exporter = format!(
            "  prometheusremotewrite:\n    endpoint: http://127.0.0.1:{port}/api/v1/write\n    external_labels:\n      cluster: e2e\n      deploy.region: eu-west-1\n{extra}"
        );
        agent_config(
            ports,
            "",
            &exporter,
            &[(
                "metrics",
                "{receivers: [otlp], exporters: [prometheusremotewrite]}",
            )],
        )
    });
    let port = chosen.into_inner();
    (agent, port)
}

fn exporter_counts(agent: &Agent, sent: f64, failed: f64) {
    own_metrics::wait_for(
        agent.ports.metrics,
        Duration::from_secs(10),
        &[
            (
                "otelcol_exporter_sent_metric_points",
                &[("exporter", "prometheusremotewrite")],
                sent,
            ),
            (
                "otelcol_exporter_send_failed_metric_points",
                &[("exporter", "prometheusremotewrite")],
                failed,
            ),
        ],
        || agent.log(),
    );
}

#[test]
fn prometheus_stores_every_kind_with_its_labels() {
    let (mut agent, port) = start_agent("");
    let server = RemoteWriteServer::start(port);
    let t = recent_nanos();
    let status = Client::new().post_json(agent.ports.http, "metrics", &every_kind(t));
    assert_eq!(status, 200, "POST /v1/metrics\n{}", agent.log());

    let want = expected();
    let got = server.wait_for("{job=\"shop/checkout\"}", want.len(), &agent);
    assert_eq!(got, want, "what Prometheus stored");
    let exemplars = server.exemplars("http_server_request_duration_seconds_bucket");
    let route = ("http_route", "/checkout");
    assert_eq!(
        exemplars,
        vec![(
            stored(
                "http_server_request_duration_seconds_bucket",
                &[route, ("le", "0.5")]
            ),
            [
                ("span_id", "eee19b7ec3c1b174"),
                ("trace_id", "5b8efff798038103d269b633813fc60c"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            "0.3".to_string(),
        )],
        "the exemplar, on the first bucket that holds it\n{}",
        server.log()
    );
    // The delta counter was refused, not sent under another name.
    assert!(server.query("{__name__=~\"app_jobs.*\"}").is_empty());
    // Four points sent; the delta one counted as failed.
    exporter_counts(&agent, 4.0, 1.0);
    assert!(
        agent
            .log()
            .contains("invalid temporality and type combination for metric \"app.jobs.processed\""),
        "the refusal is logged:\n{}",
        agent.log()
    );

    // A sample older than the one stored: Prometheus refuses it (400), which is not retried.
    let client = Client::new();
    let older = request(vec![memory_gauge(t - 10_000_000_000)]);
    assert_eq!(client.post_json(agent.ports.http, "metrics", &older), 200);
    exporter_counts(&agent, 4.0, 2.0);
    assert!(
        agent
            .log()
            .contains("remote write returned HTTP status 400 Bad Request"),
        "{}",
        agent.log()
    );
    assert!(!agent.log().contains("Will retry"), "{}", agent.log());
    assert_eq!(
        server.query("{job=\"shop/checkout\"}"),
        want,
        "nothing changed"
    );
    drop(server);
    assert_eq!(agent.stop().code(), Some(0), "agent exit\n{}", agent.log());
}

#[test]
fn data_waits_and_arrives_once_prometheus_answers() {
    let (mut agent, port) = start_agent(
        "    retry_on_failure:\n      initial_interval: 100ms\n      max_interval: 500ms\n      max_elapsed_time: 2m\n",
    );
    let status = Client::new().post_json(
        agent.ports.http,
        "metrics",
        &request(vec![memory_gauge(recent_nanos())]),
    );
    assert_eq!(status, 200, "POST /v1/metrics\n{}", agent.log());
    // Nothing listens yet: the exporter retries.
    let deadline = Instant::now() + WAIT;
    while !agent.log().contains("Will retry") {
        assert!(
            Instant::now() < deadline,
            "no retry within {WAIT:?}:\n{}",
            agent.log()
        );
        sleep(Duration::from_millis(50));
    }
    let server = RemoteWriteServer::start(port);
    let got = server.wait_for("system_memory_utilization_ratio", 1, &agent);
    let want = stored(
        "system_memory_utilization_ratio",
        &[("state", "used"), ("cluster", "local")],
    );
    assert_eq!(got, [(want, "0.42".to_string())].into_iter().collect());
    exporter_counts(&agent, 1.0, 0.0);
    drop(server);
    assert_eq!(agent.stop().code(), Some(0), "agent exit\n{}", agent.log());
}
