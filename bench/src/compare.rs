//! The side-by-side harness: for each scenario, runs ferrotel and rotel-agent with
//! equivalent settings (the agent pinned to one core, the load generator and the sink to
//! another), measures saturation throughput, CPU per item, idle and peak memory, latency at
//! a fixed moderate rate, and overload behaviour, checks after every run that nothing
//! acknowledged was lost or duplicated, and prints one table of medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::compress::Compression;
use crate::load::Protocol;
use crate::payload::Signal;

// The Kafka scenarios, in `src/` beside this file.
#[path = "compare_kafka.rs"]
mod kafka_tier;
// The Prometheus scrape scenarios, likewise.
#[path = "compare_prom.rs"]
mod prom_tier;

#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// The ferrotel binary.
    #[arg(long)]
    pub ferrotel: PathBuf,
    /// The rotel-agent binary (PyPI `rotel`); without it only ferrotel runs.
    #[arg(long)]
    pub rotel: Option<PathBuf>,
    /// A shorter subset: two trace scenarios and overload, one repetition, shorter runs.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions of each saturation run (default 3, quick 1).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Only these scenarios (comma-separated keys; see --list).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Seconds of load in each saturation run (default 4, quick 3).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of load in each latency run (default 4, quick 3).
    #[arg(long)]
    pub latency_duration: Option<f64>,
    /// Seconds of offered overload (default 10, quick 6).
    #[arg(long)]
    pub overload_duration: Option<f64>,
    /// The moderate rate, as a fraction of the lower saturation throughput of the agents.
    #[arg(long, default_value_t = 0.2)]
    pub latency_fraction: f64,
    /// Offered load in the overload scenario, as a multiple of the higher saturation
    /// throughput measured for traces over gRPC.
    #[arg(long, default_value_t = 4.0)]
    pub overload_factor: f64,
    /// CPU list for the agent (taskset).
    #[arg(long, default_value = "0")]
    pub agent_cpus: String,
    /// CPU list for the load generator and the sink (taskset).
    #[arg(long, default_value = "1")]
    pub load_cpus: String,
    /// Concurrent senders in the overload scenario (8 per connection).
    #[arg(long, default_value_t = 256)]
    pub overload_senders: usize,
    /// ferrotel's memory_limiter `limit_mib` in the overload scenario.
    #[arg(long, default_value_t = 160)]
    pub overload_limit_mib: u64,
    /// ferrotel's memory_limiter `spike_limit_mib` in the overload scenario.
    #[arg(long, default_value_t = 40)]
    pub overload_spike_mib: u64,
    /// ferrotel's bytes-sized sending queue (`queue_size`) in the overload scenario.
    #[arg(long, default_value_t = 32 << 20)]
    pub overload_queue_bytes: u64,
    /// gzip level of the load generator (the agents choose their own for export).
    #[arg(long, default_value_t = 6)]
    pub gzip_level: i32,
    /// Keep configs, logs and reports here (default: a temporary directory, removed).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write every measurement as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// kafka-in: records of 512 spans written to the topic before the agent reads it
    /// (default 1000 with sqlite storage, 6000 with memory storage).
    #[arg(long)]
    pub kafka_records: Option<u64>,
    /// The tansu broker for the Kafka scenarios (default: $FERROTEL_TANSU, else
    /// $FERROTEL_CACHE/tansu/bin/tansu, FERROTEL_CACHE defaulting to $HOME/.cache/ferrotel).
    #[arg(long)]
    pub tansu: Option<PathBuf>,
    /// The broker's storage: `sqlite` (a file, as the Kafka tests run it) or `memory`.
    #[arg(long, value_enum, default_value_t = kafka_tier::Storage::Sqlite)]
    pub tansu_storage: kafka_tier::Storage,
    /// prom-scrape: samples in the target's exposition.
    #[arg(long, default_value_t = 100_000)]
    pub prom_series: usize,
    /// prom-scrape: seconds of scraping measured (every 5 s), from the first scrape.
    #[arg(long, default_value_t = 60.0)]
    pub prom_duration: f64,
    /// prom-scrape: where the agent sends each scrape.
    #[arg(long, value_enum, default_value_t = prom_tier::PromExporter::Otlp)]
    pub prom_exporter: prom_tier::PromExporter,
}

const ITEMS_PER_REQUEST: usize = 512;
/// Enough senders to keep one core busy even when each answer takes tens of milliseconds.
const SATURATION_CONCURRENCY: usize = 32;
const SATURATION_CONNECTIONS: usize = 8;
/// Like a few SDK exporters: their answer times are what the latency run measures.
const LATENCY_CONCURRENCY: usize = 8;
const LATENCY_CONNECTIONS: usize = 2;

#[derive(Clone, Copy, Debug)]
struct Scenario {
    key: &'static str,
    signal: Signal,
    protocol: Protocol,
    compression: Compression,
    overload: bool,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        key: "traces-grpc",
        signal: Signal::Traces,
        protocol: Protocol::Grpc,
        compression: Compression::None,
        overload: false,
    },
    Scenario {
        key: "traces-grpc-gzip",
        signal: Signal::Traces,
        protocol: Protocol::Grpc,
        compression: Compression::Gzip,
        overload: false,
    },
    Scenario {
        key: "metrics-grpc",
        signal: Signal::Metrics,
        protocol: Protocol::Grpc,
        compression: Compression::None,
        overload: false,
    },
    Scenario {
        key: "metrics-grpc-gzip",
        signal: Signal::Metrics,
        protocol: Protocol::Grpc,
        compression: Compression::Gzip,
        overload: false,
    },
    Scenario {
        key: "logs-grpc",
        signal: Signal::Logs,
        protocol: Protocol::Grpc,
        compression: Compression::None,
        overload: false,
    },
    Scenario {
        key: "logs-grpc-gzip",
        signal: Signal::Logs,
        protocol: Protocol::Grpc,
        compression: Compression::Gzip,
        overload: false,
    },
    Scenario {
        key: "traces-http",
        signal: Signal::Traces,
        protocol: Protocol::HttpProtobuf,
        compression: Compression::None,
        overload: false,
    },
    Scenario {
        key: "overload",
        signal: Signal::Traces,
        protocol: Protocol::Grpc,
        compression: Compression::None,
        overload: true,
    },
];

const QUICK: [&str; 3] = ["traces-grpc", "traces-grpc-gzip", "overload"];

impl Scenario {
    fn label(&self) -> String {
        let input = match self.protocol {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http",
            Protocol::HttpJson => "http/json",
        };
        if self.overload {
            format!("overload {} {input}>grpc", self.signal.name())
        } else {
            format!(
                "{} {input}>grpc {}",
                self.signal.name(),
                self.compression.name()
            )
        }
    }

    fn describe(&self) -> String {
        if self.overload {
            return "traces, OTLP/gRPC in, no compression, offered at several times the saturation rate by many senders; ferrotel with memory_limiter and a bytes-sized sending queue".into();
        }
        let input = match self.protocol {
            Protocol::Grpc => "OTLP/gRPC",
            Protocol::HttpProtobuf => "OTLP/HTTP protobuf",
            Protocol::HttpJson => "OTLP/HTTP JSON",
        };
        format!(
            "{}, {input} in -> batch -> OTLP/gRPC out, {} on both sides",
            self.signal.name(),
            match self.compression {
                Compression::None => "no compression",
                Compression::Gzip => "gzip",
                Compression::Zstd => "zstd",
            }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Ferrotel,
    Rotel,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ferrotel => "ferrotel",
            Kind::Rotel => "rotel",
        }
    }
}

/// One run of one agent.
#[derive(Clone, Debug, Default, Serialize)]
struct Measure {
    items_per_s: f64,
    cpu_s_per_million: f64,
    /// The agent's CPU time over the wall time of the run, in percent of one core.
    busy_percent: f64,
    /// Bytes the agent exported per item, and how much smaller than decompressed.
    export_bytes_per_item: f64,
    export_compression_ratio: f64,
    idle_mib: f64,
    peak_mib: f64,
    e2e_p50_ms: f64,
    e2e_p99_ms: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    offered_items_per_s: f64,
    sent_items: u64,
    acked_items: u64,
    delivered_items: u64,
    unacked_items: u64,
    lost: u64,
    duplicates: u64,
    unacked_delivered: u64,
    export_requests: u64,
    status: BTreeMap<String, u64>,
    wall_s: f64,
}

/// A child process, killed if still running when dropped.
struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`. True when it exited by itself.
    fn stop(&mut self, grace: Duration) -> bool {
        if !self.running() {
            return true;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.running() {
                return true;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .filter_map(|l| l.local_addr().ok().map(|a| a.port()))
        .collect())
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

pub(crate) fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime of a process (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(crate) fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map(|kib| kib / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    format!("nproc {cpus}, {model}, {mem_gib:.0} GiB")
}

fn version_of(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

struct Harness {
    args: CompareArgs,
    exe: PathBuf,
    work: PathBuf,
    hz: f64,
    seq: usize,
}

enum Mode {
    Saturation,
    Latency { item_rate: f64 },
    Overload { item_rate: f64 },
}

impl Harness {
    fn next_id(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    fn spawn(
        &self,
        cpus: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        name: &str,
    ) -> anyhow::Result<Proc> {
        let out = File::create(log)?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpus)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("start {name} ({})", program.display()))?;
        Ok(Proc {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        })
    }

    fn start_sink(&mut self) -> anyhow::Result<(Proc, u16, PathBuf)> {
        self.start_sink_with(&[])
    }

    /// Starts a sink with `extra` arguments; returns it with its port and report file.
    fn start_sink_with(&mut self, extra: &[String]) -> anyhow::Result<(Proc, u16, PathBuf)> {
        let id = self.next_id();
        for _ in 0..3 {
            let port = free_ports(1)?[0];
            let report = self.work.join(format!("sink-{id}.json"));
            let _ = std::fs::remove_file(&report);
            let mut args = vec![
                "sink".to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--report-file".into(),
                report.display().to_string(),
            ];
            args.extend(extra.iter().cloned());
            let log = self.work.join(format!("sink-{id}.log"));
            let mut p = self.spawn(&self.args.load_cpus, &self.exe, &args, &log, "sink")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && p.running() && !port_open(port) {
                sleep(Duration::from_millis(20));
            }
            if p.running() && port_open(port) {
                return Ok((p, port, report));
            }
            p.stop(Duration::from_secs(1));
        }
        bail!("the sink did not start")
    }

    fn ferrotel_config(&self, sc: &Scenario, grpc: u16, http: u16, sink: u16) -> String {
        let (limiter, queue) = if sc.overload {
            (
                format!(
                    "  memory_limiter: {{check_interval: 100ms, limit_mib: {}, spike_limit_mib: {}}}\n",
                    self.args.overload_limit_mib, self.args.overload_spike_mib
                ),
                format!(
                    "    sending_queue: {{sizer: bytes, queue_size: {}}}\n",
                    self.args.overload_queue_bytes
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let procs = if sc.overload {
            "[memory_limiter, batch]"
        } else {
            "[batch]"
        };
        format!(
            "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: \"127.0.0.1:{grpc}\"}}
      http: {{endpoint: \"127.0.0.1:{http}\"}}
processors:
{limiter}  batch: {{send_batch_size: 8192, send_batch_max_size: 8192, timeout: 200ms}}
exporters:
  otlp:
    endpoint: \"127.0.0.1:{sink}\"
    tls: {{insecure: true}}
    compression: {}
{queue}service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: {procs}, exporters: [otlp]}}
    metrics: {{receivers: [otlp], processors: {procs}, exporters: [otlp]}}
    logs: {{receivers: [otlp], processors: {procs}, exporters: [otlp]}}
",
            sc.compression.name()
        )
    }

    /// rotel's exporter and batch flags for an OTLP scenario.
    fn rotel_args(&self, sc: &Scenario, sink: u16) -> Vec<String> {
        [
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            &format!("http://127.0.0.1:{sink}"),
            "--otlp-exporter-protocol",
            "grpc",
            "--otlp-exporter-compression",
            sc.compression.name(),
            "--batch-max-size",
            "8192",
            "--batch-timeout",
            "200ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `rotel-agent start` with its receivers on these ports, then `extra`.
    fn rotel_command(&self, grpc: u16, http: u16, id: usize, extra: &[String]) -> Vec<String> {
        let mut args: Vec<String> = [
            "start",
            "--otlp-grpc-endpoint",
            &format!("127.0.0.1:{grpc}"),
            "--otlp-http-endpoint",
            &format!("127.0.0.1:{http}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        args.extend([
            "--pid-file".to_string(),
            self.work
                .join(format!("rotel-{id}.pid"))
                .display()
                .to_string(),
            "--log-file".to_string(),
            self.work
                .join(format!("rotel-{id}.log"))
                .display()
                .to_string(),
        ]);
        args
    }

    fn start_agent(
        &mut self,
        kind: Kind,
        sc: &Scenario,
        sink: u16,
    ) -> anyhow::Result<(Proc, u16, u16)> {
        let rotel = self.rotel_args(sc, sink);
        let id = self.next_id();
        self.start_agent_with(
            id,
            kind,
            &|grpc, http| self.ferrotel_config(sc, grpc, http, sink),
            &rotel,
        )
    }

    /// Starts an agent whose OTLP receivers listen on two free ports: ferrotel with the
    /// config `ferrotel(grpc, http)` makes, rotel-agent with `rotel_extra` after its
    /// receiver flags. Returns it once both ports answer. `id` names its files.
    fn start_agent_with(
        &self,
        id: usize,
        kind: Kind,
        ferrotel: &dyn Fn(u16, u16) -> String,
        rotel_extra: &[String],
    ) -> anyhow::Result<(Proc, u16, u16)> {
        let mut last = String::new();
        for _ in 0..3 {
            let ports = free_ports(2)?;
            let (grpc, http) = (ports[0], ports[1]);
            let log = self.work.join(format!("{}-{id}.out", kind.name()));
            let mut p = match kind {
                Kind::Ferrotel => {
                    let cfg = self.work.join(format!("ferrotel-{id}.yaml"));
                    std::fs::write(&cfg, ferrotel(grpc, http))?;
                    let args = vec!["--config".to_string(), cfg.display().to_string()];
                    self.spawn(
                        &self.args.agent_cpus,
                        &self.args.ferrotel,
                        &args,
                        &log,
                        "ferrotel",
                    )?
                }
                Kind::Rotel => {
                    let Some(bin) = self.args.rotel.clone() else {
                        bail!("no rotel binary")
                    };
                    let args = self.rotel_command(grpc, http, id, rotel_extra);
                    self.spawn(&self.args.agent_cpus, &bin, &args, &log, "rotel")?
                }
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && p.running() && !(port_open(grpc) && port_open(http))
            {
                sleep(Duration::from_millis(20));
            }
            if p.running() && port_open(grpc) && port_open(http) {
                return Ok((p, grpc, http));
            }
            p.stop(Duration::from_secs(2));
            last = p.log_tail();
        }
        bail!("{} did not start:\n{last}", kind.name())
    }

    fn run_load(
        &mut self,
        sc: &Scenario,
        port: u16,
        extra: &[String],
        yield_to_sink: bool,
        limit: Duration,
    ) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
        let id = self.next_id();
        let ranges = self.work.join(format!("ranges-{id}.json"));
        let mut args: Vec<String> = vec![
            "load".into(),
            "--endpoint".into(),
            format!("http://127.0.0.1:{port}"),
            "--protocol".into(),
            match sc.protocol {
                Protocol::Grpc => "grpc",
                Protocol::HttpProtobuf => "http/protobuf",
                Protocol::HttpJson => "http/json",
            }
            .into(),
            "--signal".into(),
            sc.signal.name().into(),
            "--compression".into(),
            sc.compression.name().into(),
            "--items-per-request".into(),
            ITEMS_PER_REQUEST.to_string(),
            "--ranges-file".into(),
            ranges.display().to_string(),
        ];
        if sc.compression == Compression::Gzip {
            args.push("--compression-level".into());
            args.push(self.args.gzip_level.to_string());
        }
        args.extend(extra.iter().cloned());
        let log = self.work.join(format!("load-{id}.log"));
        let out = self.work.join(format!("load-{id}.json"));
        // The generator and the sink share a core. Left to the scheduler, the generator
        // takes most of it from an agent that answers at once, and an agent faster than
        // the sink then holds the sink's backlog: its memory would measure the rig. At
        // nice 19 the generator runs when the sink has nothing to do.
        let mut command = if yield_to_sink {
            let mut c = Command::new("nice");
            c.args(["-n", "19", "taskset"]);
            c
        } else {
            Command::new("taskset")
        };
        let child = command
            .arg("-c")
            .arg(&self.args.load_cpus)
            .arg(&self.exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&log)?)
            .spawn()
            .context("start the load generator")?;
        let mut p = Proc {
            child,
            name: "load".into(),
            log: log.clone(),
        };
        let deadline = Instant::now() + limit;
        while p.running() {
            if Instant::now() > deadline {
                p.stop(Duration::from_secs(1));
                bail!("the load generator did not finish within {limit:?}");
            }
            sleep(Duration::from_millis(20));
        }
        let status = p.child.wait()?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let Some(load) = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
        else {
            bail!("the load generator failed ({status}): {}", p.log_tail());
        };
        let ranges = read_json(&ranges).context("the load generator's ranges file")?;
        Ok((load, ranges))
    }

    /// Polls the sink until `target` items of `signal` arrived, nothing arrived for
    /// `stall`, or `max` passed. Returns the last report.
    fn wait_drain(
        &self,
        report: &Path,
        signal: Signal,
        target: u64,
        stall: Duration,
        max: Duration,
    ) -> serde_json::Value {
        let start = Instant::now();
        let mut last_change = Instant::now();
        let mut last_unique = u64::MAX;
        let mut last = serde_json::Value::Null;
        loop {
            if let Some(r) = read_json(report) {
                let unique = r["signals"][signal.name()]["unique"].as_u64().unwrap_or(0);
                if unique != last_unique {
                    last_unique = unique;
                    last_change = Instant::now();
                }
                last = r;
                if unique >= target {
                    return last;
                }
            }
            if last_change.elapsed() > stall || start.elapsed() > max {
                return last;
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn one_run(&mut self, kind: Kind, sc: &Scenario, mode: &Mode) -> anyhow::Result<Measure> {
        let wall = Instant::now();
        let (mut sink, sink_port, report) = self.start_sink()?;
        let (mut agent, grpc, http) = self.start_agent(kind, sc, sink_port)?;
        let port = if sc.protocol == Protocol::Grpc {
            grpc
        } else {
            http
        };
        sleep(Duration::from_millis(match mode {
            Mode::Latency { .. } => 300,
            _ => 1000,
        }));
        let pid = agent.pid();
        let idle_kib = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
        let cpu0 = cpu_ticks(pid).unwrap_or(0);
        let (duration, extra): (f64, Vec<String>) = match mode {
            Mode::Saturation => {
                let d = self
                    .args
                    .duration
                    .unwrap_or(if self.args.quick { 3.0 } else { 4.0 });
                (
                    d,
                    vec![
                        "--concurrency".into(),
                        SATURATION_CONCURRENCY.to_string(),
                        "--connections".into(),
                        SATURATION_CONNECTIONS.to_string(),
                    ],
                )
            }
            Mode::Latency { item_rate } => {
                let d =
                    self.args
                        .latency_duration
                        .unwrap_or(if self.args.quick { 3.0 } else { 4.0 });
                (
                    d,
                    vec![
                        "--concurrency".into(),
                        LATENCY_CONCURRENCY.to_string(),
                        "--connections".into(),
                        LATENCY_CONNECTIONS.to_string(),
                        "--item-rate".into(),
                        format!("{item_rate:.0}"),
                    ],
                )
            }
            Mode::Overload { item_rate } => {
                let d =
                    self.args
                        .overload_duration
                        .unwrap_or(if self.args.quick { 6.0 } else { 10.0 });
                (
                    d,
                    vec![
                        "--concurrency".into(),
                        self.args.overload_senders.to_string(),
                        "--connections".into(),
                        self.args.overload_senders.div_ceil(8).to_string(),
                        "--item-rate".into(),
                        format!("{item_rate:.0}"),
                        "--timeout".into(),
                        "5".into(),
                    ],
                )
            }
        };
        let mut extra = extra;
        extra.extend([
            "--requests".into(),
            "0".into(),
            "--duration".into(),
            format!("{duration}"),
        ]);
        // Under overload the generator needs the core to offer its load.
        let yield_to_sink = !matches!(mode, Mode::Overload { .. });
        let (load, ranges) = self.run_load(
            sc,
            port,
            &extra,
            yield_to_sink,
            Duration::from_secs_f64(duration + 30.0),
        )?;
        let acked = load["acked_items"].as_u64().unwrap_or(0);
        let drain_max = if sc.overload { 20.0 } else { 30.0 };
        let r = self.wait_drain(
            &report,
            sc.signal,
            acked,
            Duration::from_secs(3),
            Duration::from_secs_f64(drain_max),
        );
        let cpu1 = cpu_ticks(pid).unwrap_or(cpu0);
        let peak_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
        let alive = agent.running();
        let s = &r["signals"][sc.signal.name()];
        let delivered = s["unique"].as_u64().unwrap_or(0);
        let start_ns = load["start_unix_ns"].as_u64().unwrap_or(0);
        let last_ns = s["last_unix_ns"].as_u64().unwrap_or(start_ns);
        let secs = (last_ns.saturating_sub(start_ns) as f64 / 1e9).max(1e-3);
        // The agent's shutdown may still deliver what it holds; the verdict counts that.
        let clean = agent.stop(Duration::from_secs(if sc.overload { 15 } else { 10 }));
        sink.stop(Duration::from_secs(5));
        let final_report = read_json(&report).unwrap_or(r.clone());
        let verdict = crate::check(&ranges, &final_report)?;
        if !alive {
            eprintln!(
                "    warning: {} exited during the run:\n{}",
                kind.name(),
                agent.log_tail()
            );
        } else if !clean {
            eprintln!(
                "    note: {} did not stop within the grace period; killed",
                agent.name
            );
        }
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
        let status = load["status"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Measure {
            items_per_s: delivered as f64 / secs,
            cpu_s_per_million: if delivered > 0 {
                (cpu1 - cpu0) as f64 / self.hz / delivered as f64 * 1e6
            } else {
                f64::NAN
            },
            busy_percent: (cpu1 - cpu0) as f64 / self.hz / secs * 100.0,
            export_bytes_per_item: f(&s["wire_bytes"]) / (f(&s["items"]).max(1.0)),
            export_compression_ratio: f(&s["body_bytes"]) / f(&s["wire_bytes"]).max(1.0),
            idle_mib: idle_kib as f64 / 1024.0,
            peak_mib: peak_kib as f64 / 1024.0,
            e2e_p50_ms: f(&s["latency_p50_ms"]),
            e2e_p99_ms: f(&s["latency_p99_ms"]),
            ack_p50_ms: f(&load["p50_ms"]),
            ack_p99_ms: f(&load["p99_ms"]),
            offered_items_per_s: f(&load["offered_items_per_s"]),
            sent_items: load["sent_items"].as_u64().unwrap_or(0),
            acked_items: verdict.acked,
            delivered_items: delivered,
            unacked_items: load["unacked_items"].as_u64().unwrap_or(0),
            lost: verdict.lost,
            duplicates: verdict.duplicates,
            unacked_delivered: verdict.unacked_delivered,
            export_requests: s["requests"].as_u64().unwrap_or(0),
            status,
            wall_s: wall.elapsed().as_secs_f64(),
        })
    }
}

#[derive(Default, Serialize)]
struct Row {
    scenario: String,
    key: String,
    agent: Option<Kind>,
    saturation: Vec<Measure>,
    latency: Vec<Measure>,
    latency_rate: f64,
    overload_rate: f64,
    errors: Vec<String>,
}

impl Row {
    fn med(&self, f: impl Fn(&Measure) -> f64, latency: bool) -> f64 {
        let src = if latency {
            &self.latency
        } else {
            &self.saturation
        };
        median(src.iter().map(f).collect())
    }

    fn all(&self) -> impl Iterator<Item = &Measure> {
        self.saturation.iter().chain(self.latency.iter())
    }

    /// items/s, CPU-s/M, busy, idle, peak, peak at the moderate rate, e2e p50, e2e p99,
    /// ack p99, refused, lost, dup
    fn values(&self, overload: bool) -> [f64; COLUMNS] {
        let lat = !overload;
        [
            self.med(|m| m.items_per_s, false),
            self.med(|m| m.cpu_s_per_million, false),
            self.med(|m| m.busy_percent, false),
            self.med(|m| m.idle_mib, false),
            self.med(|m| m.peak_mib, false),
            self.med(|m| m.peak_mib, lat),
            self.med(|m| m.e2e_p50_ms, lat),
            self.med(|m| m.e2e_p99_ms, lat),
            self.med(|m| m.ack_p99_ms, lat),
            self.all().map(|m| m.unacked_items).sum::<u64>() as f64,
            self.all().map(|m| m.lost).sum::<u64>() as f64,
            self.all().map(|m| m.duplicates).sum::<u64>() as f64,
        ]
    }
}

fn fmt_val(col: usize, v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    match col {
        0 | 2 | 9..=11 => format!("{v:.0}"),
        1 => format!("{v:.2}"),
        _ => format!("{v:.1}"),
    }
}

const COLUMNS: usize = 12;
const HEADERS: [&str; COLUMNS] = [
    "items/s", "CPU-s/M", "busy %", "idle MiB", "peak MiB", "mod MiB", "p50 ms", "p99 ms",
    "ack p99", "refused", "lost", "dup",
];
const WIDTHS: [usize; COLUMNS] = [9, 8, 6, 9, 9, 8, 8, 8, 8, 9, 6, 5];

fn table(rows: &[(Scenario, Vec<Row>)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<27} {:<15}", "scenario", "agent");
    for (h, w) in HEADERS.iter().zip(WIDTHS) {
        let _ = write!(out, " {h:>w$}");
    }
    out.push('\n');
    for (sc, agents) in rows {
        let mut vals: BTreeMap<Kind, [f64; COLUMNS]> = BTreeMap::new();
        for (i, row) in agents.iter().enumerate() {
            let Some(kind) = row.agent else { continue };
            let label = if i == 0 { sc.label() } else { String::new() };
            let _ = write!(out, "{label:<27} {:<15}", kind.name());
            if row.saturation.is_empty() {
                let _ = writeln!(
                    out,
                    " error: {}",
                    row.errors.join("; ").lines().next().unwrap_or("")
                );
                continue;
            }
            let v = row.values(sc.overload);
            for (c, w) in WIDTHS.iter().enumerate() {
                let _ = write!(out, " {:>w$}", fmt_val(c, v[c]), w = *w);
            }
            out.push('\n');
            vals.insert(kind, v);
        }
        if let (Some(f), Some(r)) = (vals.get(&Kind::Ferrotel), vals.get(&Kind::Rotel)) {
            let _ = write!(out, "{:<27} {:<15}", "", "ferrotel/rotel");
            for (c, w) in WIDTHS.iter().enumerate() {
                let cell = if c == 2 || c >= 9 || r[c] == 0.0 || f[c].is_nan() || r[c].is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.2}", f[c] / r[c])
                };
                let _ = write!(out, " {cell:>w$}", w = *w);
            }
            out.push('\n');
        }
    }
    out
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if args.list {
        for sc in SCENARIOS {
            println!("{:<18} {}", sc.key, sc.describe());
        }
        for (key, what) in kafka_tier::KEYS.iter().chain(&prom_tier::KEYS) {
            println!("{key:<18} {what} (not in the full run: select it with --scenarios)");
        }
        return Ok(());
    }
    let started = Instant::now();
    let mut kafka: Vec<&str> = Vec::new();
    let mut prom: Vec<&str> = Vec::new();
    let selected: Vec<Scenario> = if !args.scenarios.is_empty() {
        let mut v = Vec::new();
        for key in &args.scenarios {
            if let Some((k, _)) = kafka_tier::KEYS.iter().find(|(k, _)| k == key) {
                if !kafka.contains(k) {
                    kafka.push(k);
                }
                continue;
            }
            if let Some((k, _)) = prom_tier::KEYS.iter().find(|(k, _)| k == key) {
                if !prom.contains(k) {
                    prom.push(k);
                }
                continue;
            }
            match SCENARIOS.iter().find(|s| s.key == key) {
                Some(s) => v.push(*s),
                None => bail!("unknown scenario {key:?} (see --list)"),
            }
        }
        v
    } else if args.quick {
        SCENARIOS
            .iter()
            .filter(|s| QUICK.contains(&s.key))
            .copied()
            .collect()
    } else {
        SCENARIOS.to_vec()
    };
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    // Before any run: the Kafka scenarios cannot run without the broker.
    let tansu = if kafka.is_empty() {
        None
    } else {
        Some(kafka_tier::tansu_binary(args.tansu.as_deref())?)
    };
    let mut kinds = vec![Kind::Ferrotel];
    if args.rotel.is_some() {
        kinds.push(Kind::Rotel);
    }
    let exe = std::env::current_exe()?;
    let tmp = match &args.work_dir {
        Some(_) => None,
        None => Some(tempfile_dir()?),
    };
    let work = args
        .work_dir
        .clone()
        .or_else(|| tmp.clone())
        .context("work dir")?;
    std::fs::create_dir_all(&work)?;
    let mut h = Harness {
        args: args.clone(),
        exe,
        work,
        hz: clock_ticks_per_s(),
        seq: 0,
    };
    let mut header = String::new();
    let _ = writeln!(header, "machine: {}", machine());
    let _ = writeln!(
        header,
        "ferrotel: {} ({})",
        version_of(&args.ferrotel, "--version"),
        args.ferrotel.display()
    );
    if let Some(r) = &args.rotel {
        let _ = writeln!(
            header,
            "rotel: {} ({})",
            version_of(r, "--version"),
            r.display()
        );
    }
    if let Some(t) = &tansu {
        let _ = writeln!(header, "broker: {}", version_of(t, "--version"));
    }
    let _ = writeln!(
        header,
        "agent on cpu {}, load generator and sink{} on cpu {}; {reps} repetition(s), medians; {} items per request",
        args.agent_cpus,
        if tansu.is_some() { " (and the Kafka broker)" } else { "" },
        args.load_cpus,
        ITEMS_PER_REQUEST
    );
    print!("{header}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let mut results: Vec<(Scenario, Vec<Row>)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut traces_capacity: Option<f64> = None;
    for sc in &selected {
        let mut rows: Vec<Row> = kinds
            .iter()
            .map(|k| Row {
                scenario: sc.label(),
                key: sc.key.to_string(),
                agent: Some(*k),
                ..Default::default()
            })
            .collect();
        if sc.overload {
            let capacity = traces_capacity.unwrap_or(150_000.0);
            let rate = capacity * args.overload_factor;
            for (i, kind) in kinds.iter().enumerate() {
                eprint!(
                    "{:<27} {:<9} overload at {rate:.0} items/s offered ... ",
                    sc.label(),
                    kind.name()
                );
                match h.one_run(*kind, sc, &Mode::Overload { item_rate: rate }) {
                    Ok(m) => {
                        eprintln!("{}", progress(&m));
                        rows[i].overload_rate = rate;
                        rows[i].saturation.push(m);
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        rows[i].errors.push(format!("{e:#}"));
                    }
                }
            }
            let mut line = format!(
                "{}: target {:.0} items/s ({}x the higher traces-grpc saturation), {} senders on {} connections, {} s; ",
                sc.label(),
                rate,
                args.overload_factor,
                args.overload_senders,
                args.overload_senders.div_ceil(8),
                args.overload_duration.unwrap_or(if args.quick { 6.0 } else { 10.0 })
            );
            for row in &rows {
                if let (Some(k), Some(m)) = (row.agent, row.saturation.first()) {
                    let _ = write!(
                        line,
                        "{}: offered {} items ({:.0}/s), acknowledged {}, delivered {}, answers {:?}; ",
                        k.name(),
                        m.sent_items,
                        m.offered_items_per_s,
                        m.acked_items,
                        m.delivered_items,
                        m.status
                    );
                }
            }
            notes.push(line.trim_end_matches("; ").to_string());
            results.push((*sc, rows));
            continue;
        }
        for rep in 0..reps {
            let mut order: Vec<usize> = (0..kinds.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let kind = kinds[i];
                eprint!(
                    "{:<27} {:<9} saturation {}/{reps} ... ",
                    sc.label(),
                    kind.name(),
                    rep + 1
                );
                match h.one_run(kind, sc, &Mode::Saturation) {
                    Ok(m) => {
                        eprintln!("{}", progress(&m));
                        rows[i].saturation.push(m);
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        rows[i].errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        let caps: Vec<f64> = rows
            .iter()
            .filter(|r| !r.saturation.is_empty())
            .map(|r| r.med(|m| m.items_per_s, false))
            .collect();
        if sc.key == "traces-grpc" && !caps.is_empty() {
            traces_capacity = Some(caps.iter().copied().fold(0.0, f64::max));
        }
        if let Some(min_cap) = caps.iter().copied().reduce(f64::min) {
            let rate = (min_cap * args.latency_fraction).max(1000.0);
            for (i, kind) in kinds.iter().enumerate() {
                eprint!(
                    "{:<27} {:<9} latency at {rate:.0} items/s ... ",
                    sc.label(),
                    kind.name()
                );
                match h.one_run(*kind, sc, &Mode::Latency { item_rate: rate }) {
                    Ok(m) => {
                        eprintln!(
                            "e2e p50 {:.1} ms, p99 {:.1} ms, ack p99 {:.1} ms, lost {}, dup {}",
                            m.e2e_p50_ms, m.e2e_p99_ms, m.ack_p99_ms, m.lost, m.duplicates
                        );
                        rows[i].latency_rate = rate;
                        rows[i].latency.push(m);
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        rows[i].errors.push(format!("{e:#}"));
                    }
                }
            }
            notes.push(format!(
                "{}: latency measured at {rate:.0} items/s ({}% of the lower saturation figure)",
                sc.label(),
                (args.latency_fraction * 100.0).round()
            ));
        }
        if let Some(n) = export_note(sc, &rows) {
            notes.push(n);
        }
        results.push((*sc, rows));
    }

    let (kafka_rows, kafka_notes) = if kafka.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        kafka_tier::run(&mut h, &kafka, &kinds, reps)
    };
    // A scrape run lasts a minute: one each unless --reps says otherwise.
    let (prom_rows, prom_notes) = if prom.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        prom_tier::run(&mut h, &prom, &kinds, args.reps.unwrap_or(1).max(1))
    };

    let elapsed = started.elapsed().as_secs_f64();
    if !results.is_empty() {
        println!();
        print!("{}", table(&results));
        println!();
        for n in &notes {
            println!("- {n}");
        }
    }
    if !kafka_rows.is_empty() {
        println!();
        print!("{}", kafka_tier::table(&kafka_rows));
        println!();
        for n in &kafka_notes {
            println!("- {n}");
        }
    }
    if !prom_rows.is_empty() {
        println!();
        print!("{}", prom_tier::table(&prom_rows));
        println!();
        for n in &prom_notes {
            println!("- {n}");
        }
    }
    let mut errors: Vec<String> = results
        .iter()
        .flat_map(|(_, rows)| {
            rows.iter().flat_map(|r| {
                r.errors.iter().map(move |e| {
                    format!(
                        "{} {}: {e}",
                        r.scenario,
                        r.agent.map(|k| k.name()).unwrap_or("")
                    )
                })
            })
        })
        .collect();
    errors.extend(kafka_tier::errors(&kafka_rows));
    errors.extend(prom_tier::errors(&prom_rows));
    for e in &errors {
        println!("- error: {}", e.lines().next().unwrap_or(""));
    }
    println!("- harness time {elapsed:.0} s");
    if let Some(path) = &args.json {
        let mut all: Vec<serde_json::Value> = results
            .iter()
            .flat_map(|(_, r)| r.iter())
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        for r in &kafka_rows {
            all.push(serde_json::to_value(r)?);
        }
        for r in &prom_rows {
            all.push(serde_json::to_value(r)?);
        }
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
    let lost: u64 = results
        .iter()
        .flat_map(|(_, rows)| rows.iter())
        .flat_map(|r| r.all())
        .map(|m| m.lost + m.duplicates)
        .sum::<u64>()
        + kafka_tier::lost(&kafka_rows);
    if lost > 0 {
        println!(
            "- WARNING: some runs lost or duplicated acknowledged items (see the lost/dup columns)"
        );
    }
    let incomplete = prom_tier::incomplete(&prom_rows);
    if incomplete > 0 {
        println!(
            "- WARNING: {incomplete} scrape(s) did not report up 1 with every sample (see the up+all column)"
        );
    }
    Ok(())
}

/// Says so when an agent exported compressed data although the scenario asked for none.
fn export_note(sc: &Scenario, rows: &[Row]) -> Option<String> {
    if sc.compression != Compression::None {
        return None;
    }
    let parts: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let ratio = median(r.saturation.iter().map(|m| m.export_compression_ratio).collect());
            let bytes = median(r.saturation.iter().map(|m| m.export_bytes_per_item).collect());
            (ratio > 1.5).then(|| {
                format!(
                    "{} exported compressed data although told `none` ({bytes:.0} bytes per item, {ratio:.1}x smaller than the data)",
                    r.agent.map(|k| k.name()).unwrap_or("?")
                )
            })
        })
        .collect();
    (!parts.is_empty()).then(|| format!("{}: {}", sc.label(), parts.join("; ")))
}

fn progress(m: &Measure) -> String {
    format!(
        "{:.0} items/s, {:.2} CPU-s/M, busy {:.0}%, idle {:.1} MiB, peak {:.1} MiB, acked {}, delivered {}, refused {}, lost {}, dup {} ({:.1} s)",
        m.items_per_s, m.cpu_s_per_million, m.busy_percent, m.idle_mib, m.peak_mib, m.acked_items, m.delivered_items, m.unacked_items, m.lost, m.duplicates, m.wall_s
    )
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..100u32 {
        let p = base.join(format!("ferrotel-bench-{}-{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    bail!("cannot create a work directory in {}", base.display())
}
