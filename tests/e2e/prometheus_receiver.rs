//! The prometheus receiver against real targets: a Prometheus node-exporter and the
//! Prometheus server's own /metrics (Debian packages), scraped live and as snapshots whose
//! samples are read independently by prometheus_client (Python), in the text format and in
//! OpenMetrics; and targets that are down, slow or serve garbage.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, Agent, Ports};
use crate::own_metrics;
use crate::prometheus_server::PrometheusServer;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/python/prom_fixture.py"
);
const WAIT: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    harness::free_ports(1)[0]
}

/// GETs `url` with `accept`, retrying until it answers 200 (the process is starting).
fn fetch(url: &str, accept: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deadline = Instant::now() + WAIT;
    loop {
        let got: Result<String, String> = rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?;
            let resp = client
                .get(url)
                .header("Accept", accept)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status()));
            }
            resp.text().await.map_err(|e| e.to_string())
        });
        match got {
            Ok(body) => return body,
            Err(e) => assert!(Instant::now() < deadline, "GET {url}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_exporter() -> (Process, u16) {
    let port = free_port();
    let child = Command::new(harness::tool(
        "FERROTEL_NODE_EXPORTER",
        "prometheus-node-exporter",
        "prometheus-node-exporter",
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start prometheus-node-exporter");
    (Process(child), port)
}

/// prom_fixture.py serving the snapshots of `dir`.
fn fixture(dir: &Path) -> (Process, u16) {
    let port = free_port();
    let mut child = Command::new(harness::python())
        .arg(FIXTURE)
        .args(["serve", "--dir"])
        .arg(dir)
        .args(["--port", &port.to_string(), "--slow", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prom_fixture.py");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("read fixture");
    assert_eq!(line.trim(), "ready", "prom_fixture.py did not start");
    (Process(child), port)
}

/// Every request the file exporter wrote, once it holds a scrape of each job.
fn wait_for_jobs(agent: &Agent, path: &Path, jobs: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = if path.exists() {
            harness::read_json_lines(path)
        } else {
            Vec::new()
        };
        let seen: Vec<String> = lines.iter().flat_map(jobs_of).collect();
        if jobs.iter().all(|j| seen.iter().any(|s| s == j)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "jobs {jobs:?} not all scraped within {WAIT:?} (seen {seen:?})\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn jobs_of(request: &Value) -> Vec<String> {
    request["resourceMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|rm| {
            rm["resource"]["attributes"]
                .as_array()?
                .iter()
                .find(|kv| kv["key"] == "service.name")
                .and_then(|kv| kv["value"]["stringValue"].as_str())
                .map(str::to_string)
        })
        .collect()
}

/// The value of `up` in the first scrape of `job`.
fn up(lines: &[Value], job: &str) -> Option<f64> {
    lines
        .iter()
        .flat_map(|r| r["resourceMetrics"].as_array().cloned().unwrap_or_default())
        .filter(|rm| {
            rm["resource"]["attributes"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|kv| kv["key"] == "service.name" && kv["value"]["stringValue"] == job)
            })
        })
        .flat_map(|rm| rm["scopeMetrics"].as_array().cloned().unwrap_or_default())
        .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
        .find(|m| m["name"] == "up")
        .and_then(|m| m["gauge"]["dataPoints"][0]["asDouble"].as_f64())
}

/// An agent whose prometheus receiver has `config` (the body of its `config:`, indented by
/// six spaces, with `{{`/`}}` already unescaped) and writes what it scrapes to `out.json`
/// in the agent's directory.
fn scraping_agent(env: &[(&str, &str)], config: &str) -> Agent {
    Agent::start_with_env(env, |ports: &Ports, dir: &Path| {
        let out = Value::String(dir.join("out.json").display().to_string());
        format!(
            r#"receivers:
  prometheus:
    config:
{config}exporters:
  file: {{path: {out}, flush_interval: 100ms}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
  telemetry: {{metrics: {{level: none}}}}
"#,
            health = ports.health,
        )
    })
}

/// The metrics of the first scrape of `job`, by name.
fn metrics_of(lines: &[Value], job: &str) -> serde_json::Map<String, Value> {
    lines
        .iter()
        .flat_map(|r| r["resourceMetrics"].as_array().cloned().unwrap_or_default())
        .find(|rm| jobs_of(&serde_json::json!({"resourceMetrics": [rm]})) == [job])
        .map(|rm| {
            rm["scopeMetrics"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
                .filter_map(|m| Some((m["name"].as_str()?.to_string(), m)))
                .collect()
        })
        .unwrap_or_default()
}

fn attribute<'a>(point: &'a Value, key: &str) -> Option<&'a str> {
    point["attributes"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .and_then(|kv| kv["value"]["stringValue"].as_str())
}

#[test]
fn real_targets_scraped_as_an_independent_parser_reads_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_node, node_port) = node_exporter();
    let prom = PrometheusServer::start_on(free_port(), "global: {scrape_interval: 1m}\n", &[]);
    let prom_port = prom.port;
    // Snapshots of the real expositions, served unchanged so that both readers see the same
    // bytes: node-exporter in the text format, Prometheus in both formats.
    let text = "text/plain;version=0.0.4";
    let snapshots = work.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).expect("mkdir");
    let node_url = format!("http://127.0.0.1:{node_port}/metrics");
    let prom_url = format!("http://127.0.0.1:{prom_port}/metrics");
    std::fs::write(snapshots.join("node.txt"), fetch(&node_url, text)).expect("write");
    std::fs::write(snapshots.join("prom.txt"), fetch(&prom_url, text)).expect("write");
    // Neither serves OpenMetrics: prometheus_client writes every metric type in both formats.
    let mut generate = Command::new(harness::python());
    generate
        .arg(FIXTURE)
        .args(["generate", "--dir"])
        .arg(&snapshots);
    let done = harness::run_bounded(&mut generate, work.path(), "generate", WAIT);
    assert!(done.status.success(), "{}", done.stderr);
    std::fs::rename(snapshots.join("py.om"), snapshots.join("py_om.om")).expect("rename");
    std::fs::write(
        snapshots.join("garbage.txt"),
        "this is {not} exposition\n\u{1}\n",
    )
    .expect("write");
    let (_fixture, fixture_port) = fixture(&snapshots);
    let down_port = free_port();
    let mut agent = Agent::start(|ports: &Ports, dir: &Path| {
        let out = Value::String(dir.join("out.json").display().to_string());
        let fixture = format!("127.0.0.1:{fixture_port}");
        let jobs: String = [
            ("node_live", format!("127.0.0.1:{node_port}"), "/metrics"),
            ("node", fixture.clone(), "/node"),
            ("prom", fixture.clone(), "/prom"),
            ("py", fixture.clone(), "/py"),
            ("py_om", fixture.clone(), "/py_om"),
            ("garbage", fixture.clone(), "/garbage"),
            ("slow", fixture.clone(), "/slow"),
            ("down", format!("127.0.0.1:{down_port}"), "/metrics"),
        ]
        .iter()
        .map(|(job, address, path)| {
            format!(
                "        - {{job_name: {job}, metrics_path: {path}, static_configs: [{{targets: ['{address}']}}]}}\n"
            )
        })
        .collect::<String>()
            + &format!(
                r#"        - job_name: relabeled
          metrics_path: /py
          static_configs: [{{targets: ['{fixture}']}}]
          relabel_configs:
            - {{source_labels: [__address__], regex: '127\.0\.0\.1:(\d+)', target_label: port, replacement: 'p$$1'}}
            - {{target_label: team, replacement: checkout}}
          metric_relabel_configs:
            - {{source_labels: [__name__], regex: 'temperature_celsius|state', action: drop}}
            - {{source_labels: [aggregator], target_label: shard, modulus: 4, action: hashmod}}
            - {{action: labeldrop, regex: status}}
"#
            );
        format!(
            r#"receivers:
  prometheus:
    config:
      global: {{scrape_interval: 2s, scrape_timeout: 1s}}
      scrape_configs:
{jobs}exporters:
  file: {{path: {out}, flush_interval: 100ms}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
"#,
            health = ports.health,
            metrics = ports.metrics,
        )
    });
    let out = agent.dir.path().join("out.json");
    let all = [
        "node_live",
        "node",
        "prom",
        "py",
        "py_om",
        "garbage",
        "slow",
        "down",
        "relabeled",
    ];
    let lines = wait_for_jobs(&agent, &out, &all);
    for (job, want) in [
        ("node_live", 1.0),
        ("node", 1.0),
        ("prom", 1.0),
        ("py", 1.0),
        ("py_om", 1.0),
        ("garbage", 0.0),
        ("slow", 0.0),
        ("down", 0.0),
    ] {
        assert_eq!(up(&lines, job), Some(want), "up of {job}\n{}", agent.log());
    }
    // Same series and values as prometheus_client reads from the same bytes.
    for (job, file, format) in [
        ("node", "node.txt", "text"),
        ("prom", "prom.txt", "text"),
        ("py", "py.txt", "text"),
        ("py_om", "py_om.om", "openmetrics"),
    ] {
        let mut cmd = Command::new(harness::python());
        cmd.arg(FIXTURE)
            .args(["compare", "--snapshot"])
            .arg(snapshots.join(file))
            .args(["--format", format, "--otlp"])
            .arg(&out)
            .args(["--job", job]);
        let done = harness::run_bounded(&mut cmd, work.path(), "compare", WAIT);
        assert!(
            done.status.success(),
            "{job}: ferrotel's OTLP differs from prometheus_client's reading:\n{}{}",
            done.stdout,
            done.stderr
        );
    }
    // OpenMetrics: `_created` is the start time; an exemplar keeps its trace and span.
    let om_metrics = metrics_of(&lines, "py_om");
    let orders = &om_metrics["orders_total"];
    assert!(
        orders["sum"]["dataPoints"][0]["startTimeUnixNano"]
            .as_str()
            .is_some_and(|t| t.len() >= 19),
        "{orders}"
    );
    let exemplar = om_metrics["request_latency_seconds"]["histogram"]["dataPoints"]
        .as_array()
        .expect("points")
        .iter()
        .flat_map(|p| p["exemplars"].as_array().cloned().unwrap_or_default())
        .next()
        .expect("an exemplar");
    assert_eq!(exemplar["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(exemplar["spanId"], "b7ad6b7169203331");
    // Relabeling: target labels made by relabel_configs, series dropped, a hashmod shard,
    // a label dropped.
    let relabeled = metrics_of(&lines, "relabeled");
    assert!(!relabeled.contains_key("temperature_celsius"));
    assert!(!relabeled.contains_key("state"));
    let points = relabeled["orders_total"]["sum"]["dataPoints"]
        .as_array()
        .expect("points")
        .clone();
    let swiggy = points
        .iter()
        .find(|p| attribute(p, "aggregator") == Some("swiggy"))
        .expect("swiggy");
    assert_eq!(
        attribute(swiggy, "port"),
        Some(format!("p{fixture_port}").as_str())
    );
    assert_eq!(attribute(swiggy, "team"), Some("checkout"));
    assert_eq!(attribute(swiggy, "status"), None);
    let mut shard = Command::new(harness::python());
    shard.args([
        "-c",
        "import hashlib; print(int.from_bytes(hashlib.md5(b'swiggy').digest()[8:], 'big') % 4)",
    ]);
    let shard = harness::run_bounded(&mut shard, work.path(), "md5", WAIT);
    assert_eq!(attribute(swiggy, "shard"), Some(shard.stdout.trim()));

    let log = agent.log();
    assert!(
        log.contains("Failed to scrape Prometheus endpoint"),
        "{log}"
    );
    // The other targets went on while these failed.
    let metrics = own_metrics::scrape(agent.ports.metrics);
    assert!(
        own_metrics::count(
            &metrics,
            "otelcol_receiver_accepted_metric_points",
            &[("receiver", "prometheus")]
        ) > 100.0,
        "{metrics}"
    );
    assert!(agent.stop().success(), "{}", agent.log());
}

#[test]
fn a_series_that_goes_away_is_marked_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("page.txt");
    std::fs::write(
        &page,
        "# TYPE kept gauge\nkept 1\n# TYPE leaving gauge\nleaving 2\n",
    )
    .expect("write");
    let (_fixture, port) = fixture(dir.path());
    let mut agent = Agent::start(|ports: &Ports, dir: &Path| {
        let out = Value::String(dir.join("out.json").display().to_string());
        format!(
            r#"receivers:
  prometheus:
    config:
      scrape_configs:
        - {{job_name: page, scrape_interval: 1s, metrics_path: /page, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}
exporters:
  file: {{path: {out}, flush_interval: 100ms}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
  telemetry: {{metrics: {{level: none}}}}
"#,
            health = ports.health,
        )
    });
    let out = agent.dir.path().join("out.json");
    wait_for_jobs(&agent, &out, &["page"]);
    std::fs::write(&page, "# TYPE kept gauge\nkept 1\n").expect("rewrite");
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = harness::read_json_lines(&out);
        let stale = lines.iter().any(|r| {
            r["resourceMetrics"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|rm| rm["scopeMetrics"].as_array().cloned().unwrap_or_default())
                .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
                .any(|m| {
                    m["name"] == "leaving"
                        && m["gauge"]["dataPoints"][0]["flags"] == 1
                        && m["gauge"]["dataPoints"][0].get("asDouble").is_none()
                })
        });
        if stale {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no staleness marker for `leaving`\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(agent.stop().success(), "{}", agent.log());
}

/// Whether some request holds a point of `metric` with attribute page=`page` whose flags
/// are `flags` (1: no recorded value).
fn has_point(lines: &[Value], metric: &str, page: &str, flags: u64) -> bool {
    lines.iter().any(|r| {
        r["resourceMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|rm| rm["scopeMetrics"].as_array().cloned().unwrap_or_default())
            .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["name"] == metric)
            .flat_map(|m| {
                m["gauge"]["dataPoints"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .any(|p| {
                attribute(&p, "page") == Some(page) && p["flags"].as_u64().unwrap_or(0) == flags
            })
    })
}

#[test]
fn file_sd_targets_come_and_go_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "# TYPE from_a gauge\nfrom_a 1\n").expect("write");
    std::fs::write(dir.path().join("b.txt"), "# TYPE from_b gauge\nfrom_b 2\n").expect("write");
    let (_fixture, port) = fixture(dir.path());
    let sd = dir.path().join("targets.json");
    let group = |page: &str| {
        format!(
            r#"{{"targets": ["127.0.0.1:{port}"], "labels": {{"__metrics_path__": "/{page}", "page": "{page}"}}}}"#
        )
    };
    std::fs::write(&sd, format!("[{}]", group("a"))).expect("write sd");
    let sd_pattern = Value::String(format!("{}/*.json", dir.path().display()));
    let mut agent = scraping_agent(
        &[],
        &format!(
            r#"      scrape_configs:
        - {{job_name: sd, scrape_interval: 1s, file_sd_configs: [{{files: [{sd_pattern}]}}]}}
"#
        ),
    );
    let out = agent.dir.path().join("out.json");
    let wait_for = |what: &str, check: &dyn Fn(&[Value]) -> bool| {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = if out.exists() {
                harness::read_json_lines(&out)
            } else {
                Vec::new()
            };
            if check(&lines) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}\n{}", agent.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("target a scraped", &|l| has_point(l, "from_a", "a", 0));
    // A target added to the file while running.
    std::fs::write(&sd, format!("[{}, {}]", group("a"), group("b"))).expect("rewrite");
    wait_for("target b scraped", &|l| has_point(l, "from_b", "b", 0));
    // A target removed: its series and its `up` are marked stale.
    std::fs::write(&sd, format!("[{}]", group("b"))).expect("rewrite");
    wait_for("target a marked stale", &|l| {
        has_point(l, "from_a", "a", 1) && has_point(l, "up", "a", 1)
    });
    assert!(agent.stop().success(), "{}", agent.log());
}

#[test]
fn a_varied_corpus_reads_as_prometheus_client_reads_it() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/prometheus_corpus");
    let work = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&corpus).expect("corpus") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        std::fs::copy(&path, work.path().join(&name)).expect("copy");
        let (stem, ext) = name.rsplit_once('.').expect("extension");
        files.push((stem.to_string(), name.clone(), ext == "om"));
    }
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let (_fixture, port) = fixture(work.path());
    let mut agent = Agent::start(|ports: &Ports, dir: &Path| {
        let out = Value::String(dir.join("out.json").display().to_string());
        let jobs: String = files
            .iter()
            .map(|(stem, _, _)| {
                format!(
                    "        - {{job_name: {stem}, metrics_path: /{stem}, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
                )
            })
            .collect();
        format!(
            r#"receivers:
  prometheus:
    config:
      global: {{scrape_interval: 1s}}
      scrape_configs:
{jobs}exporters:
  file: {{path: {out}, flush_interval: 100ms}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
  telemetry: {{metrics: {{level: none}}}}
"#,
            health = ports.health,
        )
    });
    let out = agent.dir.path().join("out.json");
    let jobs: Vec<&str> = files.iter().map(|(stem, _, _)| stem.as_str()).collect();
    let lines = wait_for_jobs(&agent, &out, &jobs);
    for (stem, _, _) in &files {
        assert_eq!(up(&lines, stem), Some(1.0), "up of {stem}\n{}", agent.log());
    }
    for (stem, name, openmetrics) in &files {
        let mut cmd = Command::new(harness::python());
        cmd.arg(FIXTURE)
            .args(["compare", "--snapshot"])
            .arg(work.path().join(name))
            .args([
                "--format",
                if *openmetrics { "openmetrics" } else { "text" },
                "--otlp",
            ])
            .arg(&out)
            .args(["--job", stem]);
        let done = harness::run_bounded(&mut cmd, work.path(), "compare", WAIT);
        assert!(
            done.status.success(),
            "{name}: ferrotel's OTLP differs from prometheus_client's reading:\n{}{}",
            done.stdout,
            done.stderr
        );
    }
    assert!(agent.stop().success(), "{}", agent.log());
}

/// prom_fixture.py standing in for the Kubernetes API server, listing pods whose container
/// port is `target_port` on 127.0.0.1.
fn kube_api(target_port: u16) -> (Process, u16) {
    let port = free_port();
    let mut child = Command::new(harness::python())
        .arg(FIXTURE)
        .args(["kube", "--port", &port.to_string()])
        .args(["--target-port", &target_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prom_fixture.py kube");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("read fixture");
    assert_eq!(line.trim(), "ready", "prom_fixture.py kube did not start");
    (Process(child), port)
}

#[test]
fn kubernetes_pods_of_this_node_annotated_for_scraping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut generate = Command::new(harness::python());
    generate
        .arg(FIXTURE)
        .args(["generate", "--dir"])
        .arg(dir.path());
    let done = harness::run_bounded(&mut generate, dir.path(), "generate", WAIT);
    assert!(done.status.success(), "{}", done.stderr);
    let (_fixture, target_port) = fixture(dir.path());
    let (_api, api_port) = kube_api(target_port);
    // What a DaemonSet runs: the pods of its own node, those annotated for scraping, with
    // the usual relabeling.
    let env = [("K8S_NODE_NAME", "node-a")];
    let mut agent = Agent::start_with_env(&env, |ports: &Ports, out_dir: &Path| {
        let out = Value::String(out_dir.join("out.json").display().to_string());
        format!(
            r#"receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: pods
          scrape_interval: 1s
          kubernetes_sd_configs:
            - role: pod
              api_server: http://127.0.0.1:{api_port}
              selectors: [{{role: pod, field: "spec.nodeName=${{env:K8S_NODE_NAME}}"}}]
          relabel_configs:
            - {{source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], regex: "true", action: keep}}
            - {{source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], regex: "(.+)", target_label: __metrics_path__}}
            - {{action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}}
            - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}
exporters:
  file: {{path: {out}, flush_interval: 100ms}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
  telemetry: {{metrics: {{level: none}}}}
"#,
            health = ports.health,
        )
    });
    let out = agent.dir.path().join("out.json");
    let lines = wait_for_jobs(&agent, &out, &["pods"]);
    assert_eq!(up(&lines, "pods"), Some(1.0), "{}", agent.log());
    // Give a second scrape round the chance to show a pod that should not be there.
    std::thread::sleep(Duration::from_millis(2500));
    let lines = harness::read_json_lines(&out);
    let mut pods = std::collections::BTreeSet::new();
    for rm in lines
        .iter()
        .flat_map(|r| r["resourceMetrics"].as_array().cloned().unwrap_or_default())
    {
        let resource = &rm["resource"];
        assert_eq!(
            attribute(resource, "k8s.namespace.name"),
            Some("shop"),
            "{resource}"
        );
        assert_eq!(
            attribute(resource, "k8s.node.name"),
            Some("node-a"),
            "{resource}"
        );
        assert_eq!(
            attribute(resource, "k8s.replicaset.name"),
            Some("checkout-5d9f"),
            "{resource}"
        );
        pods.insert(
            attribute(resource, "k8s.pod.name")
                .unwrap_or_default()
                .to_string(),
        );
        for m in rm["scopeMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["name"] == "up")
        {
            let point = &m["gauge"]["dataPoints"][0];
            assert_eq!(attribute(point, "pod"), Some("checkout"));
            assert_eq!(attribute(point, "tier"), Some("web"));
            assert_eq!(attribute(point, "app_kubernetes_io_name"), Some("checkout"));
        }
    }
    assert_eq!(pods.into_iter().collect::<Vec<_>>(), ["checkout"]);
    assert!(agent.stop().success(), "{}", agent.log());
}
