//! The benchmark tools against the real agent, small and bounded: `ferrotel-bench load`
//! sends traces (gRPC, gzip), metrics (OTLP/HTTP protobuf) and logs (OTLP/HTTP JSON) through
//! ferrotel (otlp receiver -> batch -> otlp exporter) into `ferrotel-bench sink`, and every
//! item must arrive exactly once: counts and sequence numbers, never speed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::harness::{self, free_ports, run_bounded, Agent};

const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Newest modification time of the benchmark crate's sources.
fn newest_source() -> Option<SystemTime> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let mut newest = std::fs::metadata(root.join("Cargo.toml"))
        .ok()?
        .modified()
        .ok()?;
    for entry in std::fs::read_dir(root.join("src")).ok()?.flatten() {
        if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    Some(newest)
}

/// The `ferrotel-bench` binary: next to the ferrotel binary when `cargo test --workspace`
/// built it (the bench crate's own tests make cargo build it), else built here. The build
/// uses its own target directory: cargo keeps the one of the running test locked.
fn bench_binary() -> PathBuf {
    let dir = Path::new(harness::BIN)
        .parent()
        .expect("ferrotel binary dir");
    let beside = dir.join("ferrotel-bench");
    let fresh = |p: &Path| {
        let built = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((built, newest_source()), (Some(b), Some(s)) if b >= s)
    };
    if fresh(&beside) {
        return beside;
    }
    let target = dir.parent().expect("target dir").join("bench-smoke");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "ferrotel-bench", "--target-dir"])
        .arg(&target);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_bounded(
        &mut cmd,
        tmp.path(),
        "cargo-build-bench",
        Duration::from_secs(900),
    );
    assert!(
        out.status.success(),
        "ferrotel-bench is not next to {} and `cargo build -p ferrotel-bench` failed:\n{}",
        harness::BIN,
        out.stderr
    );
    let built = target.join("debug").join("ferrotel-bench");
    assert!(built.is_file(), "cargo built no {}", built.display());
    built
}

struct Sink {
    child: Child,
    port: u16,
    report: PathBuf,
}

impl Sink {
    fn start(bin: &Path, dir: &Path) -> Sink {
        let report = dir.join("sink.json");
        for _ in 0..3 {
            let port = free_ports(1)[0];
            let _ = std::fs::remove_file(&report);
            let mut child = Command::new(bin)
                .args([
                    "sink",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--report-file",
                ])
                .arg(&report)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ferrotel-bench sink");
            let deadline = Instant::now() + Duration::from_secs(10);
            // The sink writes its first report once it listens.
            while Instant::now() < deadline && !report.exists() {
                if child.try_wait().expect("try_wait").is_some() {
                    break;
                }
                sleep(Duration::from_millis(20));
            }
            if report.exists() {
                return Sink {
                    child,
                    port,
                    report,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ferrotel-bench sink did not start");
    }

    fn report(&self) -> Value {
        std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bench_tools_see_every_item_through_ferrotel_exactly_once() {
    let bench = bench_binary();
    let work = tempfile::tempdir().expect("tempdir");
    let sink = Sink::start(&bench, work.path());
    let sink_port = sink.port;
    let mut agent = Agent::start(|ports, _dir| {
        format!(
            r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
processors:
  batch:
    send_batch_size: 1000
    timeout: 100ms
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_port}
    tls:
      insecure: true
    compression: gzip
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
    metrics: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
    logs: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
"#,
            grpc = ports.grpc,
            http = ports.http,
            health = ports.health,
        )
    });

    // (signal, protocol, port, compression, requests, items per request)
    let runs = [
        ("traces", "grpc", agent.ports.grpc, "gzip", 50u64, 100u64),
        (
            "metrics",
            "http/protobuf",
            agent.ports.http,
            "none",
            20,
            100,
        ),
        ("logs", "http/json", agent.ports.http, "none", 20, 100),
    ];
    let mut ranges_files = Vec::new();
    for (signal, protocol, port, compression, requests, items) in runs {
        let ranges = work.path().join(format!("ranges-{signal}.json"));
        let mut cmd = Command::new(&bench);
        cmd.args([
            "load",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--signal",
            signal,
            "--protocol",
            protocol,
            "--compression",
            compression,
            "--requests",
            &requests.to_string(),
            "--items-per-request",
            &items.to_string(),
            "--concurrency",
            "4",
            "--ranges-file",
        ])
        .arg(&ranges);
        let out = run_bounded(
            &mut cmd,
            work.path(),
            &format!("load-{signal}"),
            STEP_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "load {signal} failed:\n{}",
            out.stderr
        );
        let load: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("load {signal} output: {e}: {}", out.stdout));
        assert_eq!(load["ok_requests"], requests, "{signal}: {load}");
        assert_eq!(load["failed_requests"], 0, "{signal}: {load}");
        assert_eq!(load["acked_items"], requests * items, "{signal}: {load}");
        ranges_files.push((signal, requests * items, ranges));
    }

    // Every acknowledged item reaches the sink (bounded wait).
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let r = sink.report();
        let done = ranges_files
            .iter()
            .all(|(signal, want, _)| r["signals"][signal]["unique"].as_u64() == Some(*want));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not everything reached the sink within {DELIVERY_TIMEOUT:?}: {r}\nagent log:\n{}",
            agent.log()
        );
        sleep(Duration::from_millis(100));
    }
    let status = agent.stop();
    assert!(
        status.success(),
        "ferrotel exited with {status}\n{}",
        agent.log()
    );
    // The sink rewrites its report every 100 ms: let the last of the shutdown arrive.
    sleep(Duration::from_millis(300));

    let report = sink.report();
    assert_eq!(report["bad_requests"], 0, "{report}");
    for (signal, want, ranges) in &ranges_files {
        let s = &report["signals"][signal];
        assert_eq!(
            s["items"].as_u64(),
            Some(*want),
            "{signal}: items counted {s}"
        );
        assert_eq!(
            s["unique"].as_u64(),
            Some(*want),
            "{signal}: distinct items {s}"
        );
        assert_eq!(s["duplicates"], 0, "{signal}: {s}");
        assert_eq!(s["items_without_seq"], 0, "{signal}: {s}");
        let mut cmd = Command::new(&bench);
        cmd.args(["check", "--ranges"])
            .arg(ranges)
            .arg("--sink-report")
            .arg(&sink.report);
        let out = run_bounded(
            &mut cmd,
            work.path(),
            &format!("check-{signal}"),
            STEP_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "check {signal}: {}{}",
            out.stdout,
            out.stderr
        );
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("check output");
        assert_eq!(v["acked"].as_u64(), Some(*want), "{signal}: {v}");
        assert_eq!(v["delivered"].as_u64(), Some(*want), "{signal}: {v}");
        assert_eq!(v["lost"], 0, "{signal}: {v}");
        assert_eq!(v["duplicates"], 0, "{signal}: {v}");
        assert_eq!(v["unexpected"], 0, "{signal}: {v}");
    }
}
