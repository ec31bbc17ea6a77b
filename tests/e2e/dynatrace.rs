//! The `dynatrace` exporter in the real binary, at debug log level, against a metric ingest
//! endpoint that refuses the token, refuses lines, and fails: the API token must never
//! appear in the agent's log or in `print-config`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::delivery::Client;
use crate::harness::{self, Agent};

const TOKEN: &str = "dt0c01.E2E-SECRET-4242";

/// Answers every request with the next scripted status (then 202), recording the bodies.
fn ingest(script: Vec<(u16, &'static str)>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let script = Arc::new(Mutex::new(script.into_iter()));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            let script = script.clone();
            std::thread::spawn(move || serve(stream, &seen, &script));
        }
    });
    (port, bodies)
}

type Script = Mutex<std::vec::IntoIter<(u16, &'static str)>>;

/// One keep-alive connection.
fn serve(stream: std::net::TcpStream, seen: &Mutex<Vec<String>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).to_string());
            let (status, answer) = script
                .lock()
                .unwrap()
                .next()
                .unwrap_or((202, r#"{"linesOk":1,"linesInvalid":0,"error":null}"#));
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            let mut out = stream.try_clone().expect("clone");
            if out.write_all(reply.as_bytes()).is_err() {
                break;
            }
            length = 0;
        }
    }
}

fn config(ports: &harness::Ports, ingest_port: u16) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  dynatrace:
    endpoint: http://127.0.0.1:{ingest_port}/api/v2/metrics/ingest
    api_token: {TOKEN}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 3s}}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  pipelines:
    metrics: {{receivers: [otlp], exporters: [dynatrace]}}
  telemetry:
    logs:
      level: debug
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
"#,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    )
}

fn gauge(value: i64) -> serde_json::Value {
    json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "e2e.gauge",
        "gauge": {"dataPoints": [{"asInt": value.to_string(), "timeUnixNano": "1700000000000000000"}]},
    }]}]}]})
}

#[test]
fn the_api_token_never_reaches_the_log() {
    let (port, bodies) = ingest(vec![
        (
            401,
            r#"{"error":{"code":401,"message":"Token Authentication failed"}}"#,
        ),
        (
            400,
            r#"{"linesOk":0,"linesInvalid":1,"error":{"code":400,"message":"1 invalid lines","invalidLines":[{"line":0,"error":"invalid"}]}}"#,
        ),
        (503, "{}"),
    ]);
    let mut agent = Agent::start(|ports, _| config(ports, port));
    let client = Client::new();
    for v in 1..=3 {
        assert_eq!(
            client.post_json(agent.ports.http, "metrics", &gauge(v)),
            200
        );
    }
    // The third is refused once (503), then taken.
    let deadline = Instant::now() + Duration::from_secs(20);
    while bodies.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = agent.log();
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "{bodies:?}\n{log}");
    assert!(bodies
        .iter()
        .all(|b| b.starts_with("e2e.gauge,dt.metrics.source=opentelemetry gauge,")));
    assert!(log.contains("HTTP 401"), "the refusal is logged:\n{log}");
    assert!(
        log.contains("Dynatrace refused"),
        "invalid lines are logged:\n{log}"
    );
    assert!(
        !log.contains(TOKEN),
        "the token leaked into the log:\n{log}"
    );
    assert!(
        !log.contains("E2E-SECRET"),
        "part of the token leaked:\n{log}"
    );

    // print-config hides it too.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config(&agent.ports, port)).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrotel"))
        .args(["print-config", "--config"])
        .arg(&path)
        .output()
        .expect("run print-config");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("api_token"), "{printed}");
    assert!(!printed.contains(TOKEN), "{printed}");
}
