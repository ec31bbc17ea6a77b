//! The agent's own metrics endpoint passes Prometheus's `promtool check metrics`.

use std::fs::File;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::harness::{self, Agent};
use crate::traffic;

const SPANS: u64 = 3;

#[test]
fn promtool_accepts_metrics_endpoint() {
    let promtool = harness::promtool();

    // Default reader: counters keep upstream's names without `_total`, which promtool's lint
    // reports (exit 3); nothing else may be reported.
    let (code, findings, exposition) = check(&promtool, "", "otelcol_receiver_accepted_spans");
    assert!(
        code == Some(0) || code == Some(3),
        "promtool exit {code:?}:\n{findings}\n{exposition}"
    );
    let counters: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let lines: Vec<&str> = findings.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        code == Some(3),
        !lines.is_empty(),
        "exit {code:?}: {findings}"
    );
    for line in lines {
        let name = line
            .strip_suffix(" counter metrics should have \"_total\" suffix")
            .unwrap_or_else(|| panic!("unexpected promtool finding: {line}"));
        assert!(
            name.starts_with("otelcol_") && counters.contains(&name),
            "finding for something other than an otelcol_* counter: {line}"
        );
    }

    // With type suffixes the output is clean.
    let (code, findings, exposition) = check(
        &promtool,
        ", without_type_suffix: false",
        "otelcol_receiver_accepted_spans_total",
    );
    assert_eq!(code, Some(0), "promtool:\n{findings}\n{exposition}");
    assert_eq!(findings.trim(), "", "promtool findings");
}

/// Runs an agent with the reader options `extra`, sends traffic, waits until `accepted` shows
/// it, and returns promtool's exit code, its findings and the exposition it checked.
fn check(promtool: &std::path::Path, extra: &str, accepted: &str) -> (Option<i32>, String, String) {
    let mut agent = Agent::start(|ports, dir| {
        harness::otlp_to_file_config(ports, &dir.join("out.jsonl"), extra)
    });
    send_traffic(agent.ports.http);

    let url = format!("http://127.0.0.1:{}/metrics", agent.ports.metrics);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exposition = loop {
        let (status, body) = harness::http_get(&url).expect("GET /metrics");
        assert_eq!(status, 200, "GET /metrics");
        if sample(&body, accepted, "transport=\"http\"") == Some(SPANS as f64) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "{accepted}{{transport=\"http\"}} never reached {SPANS}:\n{body}"
        );
        sleep(Duration::from_millis(100));
    };

    let input = agent.dir.path().join("metrics.txt");
    std::fs::write(&input, &exposition).expect("write exposition");
    let out = harness::run_bounded(
        Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(File::open(&input).expect("open exposition")),
        agent.dir.path(),
        "promtool",
        Duration::from_secs(30),
    );
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "agent exit status");
    (
        out.status.code(),
        format!("{}{}", out.stdout, out.stderr),
        exposition,
    )
}

fn send_traffic(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        for (signal, body) in [
            ("traces", traffic::traces(0, SPANS)),
            ("metrics", traffic::metrics(2)),
            ("logs", traffic::logs(2)),
        ] {
            let status = traffic::post(&client, port, signal, &body)
                .await
                .unwrap_or_else(|e| panic!("POST /v1/{signal}: {e}"));
            assert_eq!(status, 200, "POST /v1/{signal}");
        }
    });
}

/// The value of the first sample of `name` whose labels contain `label`.
fn sample(exposition: &str, name: &str, label: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .find(|l| l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
