//! The load generator straight into the sink, every signal over gRPC and OTLP/HTTP: the sink
//! must count exactly what was sent, and `check` must find nothing lost, or say so.
//! (Also makes `cargo test --workspace` build the `ferrotel-bench` binary, which the
//! end-to-end smoke test in tests/e2e/bench_smoke.rs runs against ferrotel.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferrotel-bench");

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sink(report: &Path) -> (Sink, u16) {
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(BIN)
            .args([
                "sink",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--report-file",
            ])
            .arg(report)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut sink = Sink(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if report.exists() {
                return (sink, port);
            }
            if sink.0.try_wait().unwrap().is_some() {
                break;
            }
            sleep(Duration::from_millis(20));
        }
    }
    panic!("the sink did not start");
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferrotel-bench {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn sink_counts_exactly_what_the_generator_sent() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sink.json");
    let (_sink, port) = start_sink(&report);
    let endpoint = format!("http://127.0.0.1:{port}");
    let runs = [
        ("traces", "grpc", "gzip"),
        ("metrics", "grpc", "zstd"),
        ("logs", "grpc", "none"),
        ("traces", "http/protobuf", "none"),
        ("metrics", "http/protobuf", "gzip"),
        ("logs", "http/protobuf", "zstd"),
    ];
    for (i, (signal, protocol, compression)) in runs.iter().enumerate() {
        // The second run of a signal numbers its items after the first's.
        let seq_start = if i < 3 { 0 } else { 10_000 };
        let ranges = dir.path().join(format!("ranges-{i}.json"));
        let out = run(&[
            "load",
            "--endpoint",
            &endpoint,
            "--signal",
            signal,
            "--protocol",
            protocol,
            "--compression",
            compression,
            "--requests",
            "20",
            "--items-per-request",
            "50",
            "--concurrency",
            "3",
            "--seq-start",
            &seq_start.to_string(),
            "--ranges-file",
            ranges.to_str().unwrap(),
        ]);
        let load = json(&out.stdout);
        assert_eq!(load["ok_requests"], 20, "{load}");
        assert_eq!(load["acked_items"], 1000, "{load}");
        assert_eq!(load["items"], 1000, "{load}");
    }
    // The sink writes its report every 100 ms.
    sleep(Duration::from_millis(400));
    let sink = json(&std::fs::read(&report).unwrap());
    for signal in ["traces", "metrics", "logs"] {
        let s = &sink["signals"][signal];
        assert_eq!(s["items"], 2000, "{signal}: {s}");
        assert_eq!(s["unique"], 2000, "{signal}: {s}");
        assert_eq!(s["duplicates"], 0, "{signal}: {s}");
        assert_eq!(s["items_without_seq"], 0, "{signal}: {s}");
        assert_eq!(s["requests"], 40, "{signal}: {s}");
    }
    assert_eq!(sink["bad_requests"], 0);
    for i in 0..runs.len() {
        let ranges = dir.path().join(format!("ranges-{i}.json"));
        let out = run(&[
            "check",
            "--ranges",
            ranges.to_str().unwrap(),
            "--sink-report",
            report.to_str().unwrap(),
        ]);
        let v = json(&out.stdout);
        assert_eq!(v["acked"], 1000, "{v}");
        assert_eq!(v["delivered"], 1000, "{v}");
        assert_eq!(v["lost"], 0, "{v}");
        assert_eq!(v["duplicates"], 0, "{v}");
    }

    // Claim more was sent than arrived: `check` reports the loss and fails.
    let forged = dir.path().join("forged.json");
    std::fs::write(
        &forged,
        r#"{"signal":"logs","seq_start":0,"seq_end":1500,"unacked":[[1200,1300]],"unsent":[]}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "check",
            "--ranges",
            forged.to_str().unwrap(),
            "--sink-report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out.stdout);
    // 0..1000 arrived; 1000..1500 less the 100 refused ones were acknowledged and lost.
    assert_eq!(v["lost"], 400, "{v}");
    assert_eq!(v["acked"], 1400, "{v}");
}

#[test]
fn load_reports_refusals_by_status() {
    // The sink takes protobuf only: every OTLP/JSON request is answered 415.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sink.json");
    let (_sink, port) = start_sink(&report);
    let out = run(&[
        "load",
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--protocol",
        "http/json",
        "--signal",
        "logs",
        "--requests",
        "5",
        "--items-per-request",
        "10",
    ]);
    let load = json(&out.stdout);
    assert_eq!(load["ok_requests"], 0, "{load}");
    assert_eq!(load["failed_requests"], 5, "{load}");
    assert_eq!(load["status"]["HTTP 415"], 5, "{load}");
    assert_eq!(load["unacked_items"], 50, "{load}");
}
