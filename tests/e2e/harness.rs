//! Runs the real `ferrotel` binary: free loopback ports, a config in a temp dir, readiness
//! through the health endpoint, SIGTERM and a bounded wait for the exit.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrotel");
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Above the agent's own 30 s shutdown deadline, so a hang shows as a failure here.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
    pub health: u16,
    pub metrics: u16,
}

impl Ports {
    /// Ports that were free a moment ago (bound to port 0, read, released).
    fn pick() -> Ports {
        // Hold all four listeners at once so the four ports differ.
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let port = |i: usize| listeners[i].local_addr().expect("local addr").port();
        Ports {
            grpc: port(0),
            http: port(1),
            health: port(2),
            metrics: port(3),
        }
    }
}

/// Fails the test with the message that tells how to get the tool.
pub fn missing_tool(what: &str) -> ! {
    panic!("{what} is not available: run the tests with ./scripts/test, which installs it")
}

/// The Python of the venv that has the OpenTelemetry SDK (set by ./scripts/test).
pub fn python() -> PathBuf {
    match std::env::var_os("FERROTEL_TEST_PYTHON") {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        Some(p) => missing_tool(&format!(
            "FERROTEL_TEST_PYTHON={} (no such file)",
            Path::new(&p).display()
        )),
        None => missing_tool("FERROTEL_TEST_PYTHON (a Python with the OpenTelemetry SDK)"),
    }
}

/// A tool from the environment variable `env`, else `binary` on PATH; fails naming the
/// Debian package that has it.
pub fn tool(env: &str, binary: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        if Path::new(&p).is_file() {
            return PathBuf::from(p);
        }
        missing_tool(&format!("{binary} at {env}={}", Path::new(&p).display()));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing_tool(&format!("{binary} (Debian package {package})")))
}

/// promtool from FERROTEL_PROMTOOL, else from PATH.
pub fn promtool() -> PathBuf {
    tool("FERROTEL_PROMTOOL", "promtool", "prometheus")
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion within `timeout`, output captured through files in `dir`.
pub fn run_bounded(cmd: &mut Command, dir: &Path, name: &str, timeout: Duration) -> Finished {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let mut child = cmd
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let status = wait_bounded(&mut child, timeout);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{name} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            read(&out_path),
            read(&err_path)
        );
    };
    Finished {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(20));
    }
}

/// GET over plain HTTP with a short timeout: (status, body).
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    })
}

/// A running agent; killed on drop if a test panics before stopping it.
pub struct Agent {
    child: Option<Child>,
    pub ports: Ports,
    pub dir: tempfile::TempDir,
    log_path: PathBuf,
}

impl Agent {
    /// Writes the config `make_config(ports, dir)` and starts the agent, waiting until its
    /// health endpoint answers 200. The config must enable `health_check` on `ports.health`.
    /// Retries with new ports if one was taken between picking and binding.
    pub fn start(make_config: impl Fn(&Ports, &Path) -> String) -> Agent {
        Agent::start_with_env(&[], make_config)
    }

    /// Like `start`, with extra environment variables for the agent process.
    pub fn start_with_env(
        env: &[(&str, &str)],
        make_config: impl Fn(&Ports, &Path) -> String,
    ) -> Agent {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let ports = Ports::pick();
            let config_path = dir.path().join("config.yaml");
            std::fs::write(&config_path, make_config(&ports, dir.path())).expect("write config");
            let log_path = dir.path().join("agent.log");
            let log = File::create(&log_path).expect("create agent log");
            let child = Command::new(BIN)
                .arg("--config")
                .arg(&config_path)
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("start ferrotel");
            let mut agent = Agent {
                child: Some(child),
                ports,
                dir,
                log_path,
            };
            match agent.wait_ready() {
                Ok(()) => return agent,
                Err(exited) => {
                    last_log = agent.log();
                    let in_use = last_log.to_lowercase().contains("in use");
                    if !(exited && in_use) {
                        panic!("ferrotel did not become ready:\n{last_log}");
                    }
                }
            }
        }
        panic!("ferrotel could not bind free ports in 3 attempts:\n{last_log}")
    }

    /// Err(true) when the process exited before it was ready, Err(false) on timeout.
    fn wait_ready(&mut self) -> Result<(), bool> {
        let url = format!("http://127.0.0.1:{}/", self.ports.health);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let child = self.child.as_mut().expect("child present");
            if child.try_wait().expect("try_wait").is_some() {
                self.child = None;
                return Err(true);
            }
            if let Ok((200, _)) = http_get(&url) {
                return Ok(());
            }
            sleep(Duration::from_millis(50));
        }
        Err(false)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        signal(self.pid(), "-TERM");
    }

    /// SIGTERM, then waits for the exit; past the deadline: SIGKILL and a failure.
    /// The temp dir (config, output, log) lives on until the `Agent` is dropped.
    pub fn stop(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit()
    }

    /// Waits for an exit already requested (see `sigterm`), bounded like `stop`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("agent running");
        match wait_bounded(&mut child, EXIT_TIMEOUT) {
            Some(status) => status,
            None => {
                signal(child.id(), "-KILL");
                let _ = child.wait();
                panic!(
                    "ferrotel did not exit within {EXIT_TIMEOUT:?} of SIGTERM; killed\n{}",
                    self.log()
                );
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// The usual test config: OTLP gRPC + HTTP into a `file` exporter for all three signals,
/// health_check on, own metrics on `ports.metrics`; `prometheus_extra` is appended to the
/// flow-style prometheus map, e.g. `", without_type_suffix: false"`.
pub fn otlp_to_file_config(ports: &Ports, out: &Path, prometheus_extra: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  file:
    path: {out}
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
    metrics: {{receivers: [otlp], exporters: [file]}}
    logs: {{receivers: [otlp], exporters: [file]}}
  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}{prometheus_extra}}}}}}}
"#,
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
        out = serde_json::Value::String(out.display().to_string()),
    )
}

/// Every line of a file exporter's output, parsed.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

/// `n` distinct loopback ports that were free a moment ago (held together, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A process's resident set size (VmRSS in /proc/<pid>/status), in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}
