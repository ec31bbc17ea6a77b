//! Runs tests/e2e/python/otlp_sink.py, an OTLP backend built on opentelemetry-proto, grpcio
//! and Python's http.server, and reads what it accepted and every attempt it saw.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::harness;
use crate::otlp_proto;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python/otlp_sink.py");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One request the sink accepted.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub port: u16,
    /// "grpc" or "http".
    pub transport: String,
    /// "traces", "metrics" or "logs".
    pub signal: String,
    pub path: String,
    pub content_type: String,
    pub content_encoding: Option<String>,
    /// HTTP headers or gRPC metadata, keys in lower case.
    pub headers: BTreeMap<String, String>,
    /// Spans, metric data points or log records.
    pub items: u64,
    /// The request, re-serialized by the sink, in base64 (decoded on demand).
    protobuf_base64: String,
    /// Wall-clock seconds when it was accepted.
    pub unix: f64,
}

impl Record {
    /// The request as protobuf.
    pub fn protobuf(&self) -> Vec<u8> {
        otlp_proto::base64_decode(&self.protobuf_base64).expect("base64")
    }

    pub fn traces(&self) -> ExportTraceServiceRequest {
        assert_eq!(self.signal, "traces");
        ExportTraceServiceRequest::decode(self.protobuf().as_slice()).expect("decode traces")
    }

    pub fn metrics(&self) -> ExportMetricsServiceRequest {
        assert_eq!(self.signal, "metrics");
        ExportMetricsServiceRequest::decode(self.protobuf().as_slice()).expect("decode metrics")
    }

    pub fn logs(&self) -> ExportLogsServiceRequest {
        assert_eq!(self.signal, "logs");
        ExportLogsServiceRequest::decode(self.protobuf().as_slice()).expect("decode logs")
    }

    /// The request as OTLP/JSON.
    pub fn otlp_json(&self) -> Value {
        match self.signal.as_str() {
            "traces" => otlp_proto::traces(&self.traces()),
            "metrics" => otlp_proto::metrics(&self.metrics()),
            "logs" => otlp_proto::logs(&self.logs()),
            other => panic!("unknown signal {other}"),
        }
    }

    /// The span ids of a traces request, as hex.
    pub fn span_ids(&self) -> Vec<String> {
        self.traces()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| otlp_proto::hex(&s.span_id))
            .collect()
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).map(String::as_str)
    }
}

/// One attempt the sink saw, with its outcome.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based, counted per port.
    pub attempt: u64,
    pub port: u16,
    pub transport: String,
    pub signal: String,
    pub items: Option<u64>,
    /// Identifies the request's content: a retry has the digest of the first attempt.
    pub digest: Option<String>,
    /// "accepted", "failed", "bad_request" or "unsupported".
    pub outcome: String,
    /// The HTTP status or gRPC code name it was answered with.
    pub status: Value,
    /// Seconds on the sink's monotonic clock.
    pub start: f64,
}

pub struct Sink {
    child: Option<Child>,
    pub grpc_ports: Vec<u16>,
    pub http_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl Sink {
    /// A sink on `grpc` + `http` fresh loopback ports, with the script's `options`.
    pub fn start(grpc: usize, http: usize, options: &[&str]) -> Sink {
        let mut last = String::new();
        for _ in 0..3 {
            let ports = harness::free_ports(grpc + http);
            match Sink::start_on(&ports[..grpc], &ports[grpc..], options) {
                Ok(sink) => return sink,
                Err(e) => last = e,
            }
        }
        panic!("the OTLP sink did not start in 3 attempts: {last}")
    }

    /// A sink on the given ports; Err with its output if it does not get ready.
    pub fn start_on(grpc: &[u16], http: &[u16], options: &[&str]) -> Result<Sink, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(harness::python());
        cmd.arg(SCRIPT)
            .arg("--out")
            .arg(dir.path().join("records.jsonl"))
            .arg("--attempts")
            .arg(dir.path().join("attempts.jsonl"));
        for p in grpc {
            cmd.args(["--grpc-port", &p.to_string()]);
        }
        for p in http {
            cmd.args(["--http-port", &p.to_string()]);
        }
        let stderr_path = dir.path().join("sink.stderr");
        let mut child = cmd
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("sink stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SCRIPT}: {e}"));
        let stdout = child.stdout.take().expect("sink stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sink = Sink {
            child: Some(child),
            grpc_ports: grpc.to_vec(),
            http_ports: http.to_vec(),
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) if line.trim() == "ready" => return Ok(sink),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(_) => {
                    sink.stop();
                    return Err(format!(
                        "the sink was not ready within {READY_TIMEOUT:?}:\n{}",
                        sink.stderr()
                    ));
                }
            }
        }
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_ports[0]
    }

    pub fn http_port(&self) -> u16 {
        self.http_ports[0]
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("sink.stderr")).unwrap_or_default()
    }

    /// Every request accepted so far, in the order accepted.
    pub fn records(&self) -> Vec<Record> {
        read_lines(&self.path("records.jsonl"))
            .iter()
            .map(|v| Record {
                seq: v["seq"].as_u64().expect("seq"),
                port: port(v),
                transport: text(v, "transport"),
                signal: text(v, "signal"),
                path: text(v, "path"),
                content_type: text(v, "content_type"),
                content_encoding: v["content_encoding"].as_str().map(str::to_string),
                headers: v["headers"]
                    .as_object()
                    .expect("headers")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
                items: v["items"].as_u64().expect("items"),
                protobuf_base64: text(v, "protobuf"),
                unix: v["unix"].as_f64().expect("unix"),
            })
            .collect()
    }

    /// Every attempt seen so far, in the order answered.
    pub fn attempts(&self) -> Vec<Attempt> {
        read_lines(&self.path("attempts.jsonl"))
            .iter()
            .map(|v| Attempt {
                attempt: v["attempt"].as_u64().expect("attempt"),
                port: port(v),
                transport: text(v, "transport"),
                signal: text(v, "signal"),
                items: v["items"].as_u64(),
                digest: v["digest"].as_str().map(str::to_string),
                outcome: text(v, "outcome"),
                status: v["status"].clone(),
                start: v["start_mono"].as_f64().expect("start_mono"),
            })
            .collect()
    }

    /// Items of `signal` accepted on `port`.
    pub fn items_on(&self, port: u16, signal: &str) -> u64 {
        self.records()
            .iter()
            .filter(|r| r.port == port && r.signal == signal)
            .map(|r| r.items)
            .sum()
    }

    /// Polls until `done` holds, at most `timeout`; panics with `what` and `context()`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Sink) -> bool,
        context: impl Fn() -> String,
    ) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            if Instant::now() >= deadline {
                panic!(
                    "{what}: not within {timeout:?}\nsink records: {:?}\nsink attempts: {:#?}\nsink stderr:\n{}\n{}",
                    self.records()
                        .iter()
                        .map(|r| (r.port, r.signal.clone(), r.items))
                        .collect::<Vec<_>>(),
                    self.attempts(),
                    self.stderr(),
                    context()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then a bounded wait (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    if !path.exists() {
        return Vec::new();
    }
    // A line being written may be incomplete; only whole lines count.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

fn port(v: &Value) -> u16 {
    v["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port")
}
