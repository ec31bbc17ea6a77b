//! The Kafka scenarios of the harness, against a tansu broker (a Kafka-compatible broker;
//! sqlite storage, as the Kafka tests run it, or memory) pinned to the load generator's
//! core:
//!
//! - `kafka-out` (the agent tier): OTLP/gRPC traces from the load generator -> batch ->
//!   kafka exporter into the broker; ferrotel and rotel-agent with the same load. The spans
//!   the broker holds are counted afterwards by a plain consumer and held against what the
//!   agent acknowledged.
//! - `kafka-in` (the gateway tier): a topic pre-filled with trace requests -> kafka receiver
//!   -> batch -> OTLP/gRPC to the sink; ferrotel only (rotel-agent from the PyPI wheel has
//!   no Kafka receiver). The pre-fill and a plain librdkafka consumer of the same records
//!   measure the broker's own ceiling in the same repetition.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::{
    cpu_ticks, free_ports, median, port_open, proc_status_kib, read_json, Harness, Kind, Proc,
    Scenario, ITEMS_PER_REQUEST, SATURATION_CONCURRENCY, SATURATION_CONNECTIONS,
};
use crate::compress::Compression;
use crate::kafka::Watermarks;
use crate::load::Protocol;
use crate::payload::Signal;
use crate::sink::unix_ns;

/// The Kafka scenarios: key and description.
pub(super) const KEYS: [(&str, &str); 2] = [
    (
        "kafka-out",
        "traces, OTLP/gRPC in -> batch (1024 spans) -> kafka exporter (otlp_proto, no compression) into a tansu broker; ferrotel and rotel",
    ),
    (
        "kafka-in",
        "traces, a topic pre-filled with requests of 512 spans -> kafka receiver -> batch -> OTLP/gRPC out; ferrotel (rotel's wheel has no Kafka receiver); with the broker's ceiling: the same records produced and consumed by plain librdkafka clients",
    ),
];

const TANSU_VERSION: &str = "0.6.0";
const TOPIC: &str = "otlp_spans";
const PARTITIONS: u32 = 3;
/// Spans per batch in kafka-out: one batch is one record of about 580 KB, under the 1 MB
/// record limit both exporters default to (rotel drops a batch that does not fit).
const OUT_BATCH: usize = 1024;
/// How the kafka receiver and the plain consumer fetch. tansu answers a fetch only when its
/// wait is over, even with records waiting, and with sqlite storage a fetch costs it about
/// the same whatever it returns: with the receiver's defaults (250 ms, 1 MiB) the figure
/// would be the broker's pace, not the agent's.
const FETCH_WAIT_MS: u64 = 1;
const FETCH_BYTES: u64 = 4 << 20;
/// Every start, topic creation and stop waits at most this long.
const WAIT: Duration = Duration::from_secs(30);

/// The stand-in for the kafka-out load: traces over gRPC, no compression.
const OUT_LOAD: Scenario = Scenario {
    key: "kafka-out",
    signal: Signal::Traces,
    protocol: Protocol::Grpc,
    compression: Compression::None,
    overload: false,
};

/// Where tansu keeps records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// `sqlite://tansu.db` in the broker's directory, as the Kafka tests run it.
    Sqlite,
    /// `memory://tansu/`: nothing written to disk.
    Memory,
}

impl Storage {
    fn url(self) -> &'static str {
        match self {
            Storage::Sqlite => "sqlite://tansu.db",
            Storage::Memory => "memory://tansu/",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Storage::Sqlite => "sqlite storage",
            Storage::Memory => "memory storage",
        }
    }
}

/// The tansu binary: `--tansu`, else `$FERROTEL_TANSU`, else
/// `$FERROTEL_CACHE/tansu/bin/tansu` (`FERROTEL_CACHE` defaults to `$HOME/.cache/ferrotel`).
pub(super) fn tansu_binary(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match (arg, std::env::var_os("FERROTEL_TANSU")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => std::env::var_os("FERROTEL_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ferrotel")))
            .context("neither FERROTEL_CACHE nor HOME is set: give --tansu")?
            .join("tansu/bin/tansu"),
    };
    if !path.is_file() {
        bail!(
            "the Kafka scenarios need the tansu broker {TANSU_VERSION} at {}: run ./scripts/test, \
             which installs it, or `cargo install tansu --version {TANSU_VERSION} --locked \
             --features dynostore,libsql --root <dir>` and set FERROTEL_TANSU=<dir>/bin/tansu",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `command` to its end within `limit`, its output in `log`.
fn run_within(command: &mut Command, log: &Path, limit: Duration) -> anyhow::Result<bool> {
    let out = File::create(log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("start a helper command")?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the command did not finish within {limit:?}");
        }
        sleep(Duration::from_millis(20));
    }
}

/// Whether `rotel-agent start --help` offers a Kafka receiver.
fn rotel_has_kafka_receiver(bin: &Path, work: &Path) -> bool {
    let log = work.join("rotel-help.txt");
    let ok = run_within(
        Command::new(bin).args(["start", "--help"]),
        &log,
        Duration::from_secs(10),
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    matches!(ok, Ok(true)) && text.contains("--kafka-receiver")
}

/// A tansu broker on a free loopback port with its sqlite file in its own directory; stopped
/// and its data removed when dropped.
struct Tansu {
    proc: Proc,
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
}

impl Tansu {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn ticks(&self) -> u64 {
        cpu_ticks(self.proc.pid()).unwrap_or(0)
    }

    fn create_topic(&self, name: &str, partitions: u32) -> anyhow::Result<()> {
        let log = self.dir.join(format!("topic-{name}.log"));
        let ok = run_within(
            Command::new(&self.bin)
                .args(["topic", "create", "--broker"])
                .arg(format!("tcp://127.0.0.1:{}", self.port))
                .args(["--partitions", &partitions.to_string(), name]),
            &log,
            WAIT,
        )
        .with_context(|| format!("tansu topic create {name}"))?;
        if !ok {
            bail!(
                "tansu topic create {name} failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default().trim()
            );
        }
        Ok(())
    }

    fn remove_data(dir: &Path) {
        for f in ["tansu.db", "tansu.db-wal", "tansu.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
        Tansu::remove_data(&self.dir);
    }
}

/// One run of one agent (or of a plain client) in a Kafka scenario.
#[derive(Clone, Debug, Default, Serialize)]
struct KMeasure {
    spans_per_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    cpu_s_per_million: f64,
    /// The agent's (or client's) CPU time over the measured wall time, % of one core.
    busy_percent: f64,
    /// The broker's CPU time over the same wall time, % of one core.
    broker_percent: f64,
    idle_mib: f64,
    peak_mib: f64,
    /// Spans the broker held (kafka-out) or the sink received (kafka-in); records and
    /// their bytes.
    spans: u64,
    records: u64,
    bytes: u64,
    secs: f64,
    /// kafka-out: spans the agent acknowledged, and how fast.
    acked_spans: u64,
    acked_per_s: f64,
    refused: u64,
    lost: u64,
    duplicates: u64,
    /// kafka-out: records the broker took after the measurement ended (at shutdown).
    records_after_end: u64,
    /// kafka-in: seconds from the agent's start to the first span at the sink.
    first_span_s: f64,
    /// kafka-in: the sink's CPU time over the measured wall time, % of one core (it shares
    /// the broker's core).
    sink_percent: f64,
    wall_s: f64,
}

#[derive(Default, Serialize)]
pub(super) struct KRow {
    scenario: String,
    key: String,
    agent: String,
    measures: Vec<KMeasure>,
    /// Why there is no figure, when the agent cannot run the scenario.
    not_available: Option<String>,
    errors: Vec<String>,
}

impl KRow {
    fn new(label: &str, key: &str, agent: &str) -> KRow {
        KRow {
            scenario: label.to_string(),
            key: key.to_string(),
            agent: agent.to_string(),
            ..Default::default()
        }
    }

    fn med(&self, f: impl Fn(&KMeasure) -> f64) -> f64 {
        median(self.measures.iter().map(f).collect())
    }

    fn values(&self) -> [f64; COLUMNS] {
        [
            self.med(|m| m.spans_per_s),
            self.med(|m| m.records_per_s),
            self.med(|m| m.mb_per_s),
            self.med(|m| m.cpu_s_per_million),
            self.med(|m| m.busy_percent),
            self.med(|m| m.broker_percent),
            self.med(|m| m.idle_mib),
            self.med(|m| m.peak_mib),
            self.measures.iter().map(|m| m.refused).sum::<u64>() as f64,
            self.measures.iter().map(|m| m.lost).sum::<u64>() as f64,
            self.measures.iter().map(|m| m.duplicates).sum::<u64>() as f64,
        ]
    }
}

const COLUMNS: usize = 11;
const HEADERS: [&str; COLUMNS] = [
    "spans/s",
    "records/s",
    "MB/s",
    "CPU-s/M",
    "busy %",
    "broker %",
    "idle MiB",
    "peak MiB",
    "refused",
    "lost",
    "dup",
];
const WIDTHS: [usize; COLUMNS] = [9, 9, 7, 8, 6, 8, 9, 9, 9, 6, 5];

fn fmt_val(col: usize, v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    match col {
        0 | 4 | 5 | 8..=10 => format!("{v:.0}"),
        1 | 2 | 6 | 7 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// The Kafka table: one line per agent or client, and ferrotel/rotel where both ran.
pub(super) fn table(rows: &[KRow]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<27} {:<15}", "kafka scenario", "agent");
    for (h, w) in HEADERS.iter().zip(WIDTHS) {
        let _ = write!(out, " {h:>w$}");
    }
    out.push('\n');
    let mut previous = "";
    let mut vals: Vec<(String, [f64; COLUMNS])> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let label = if row.scenario == previous {
            ""
        } else {
            row.scenario.as_str()
        };
        previous = &row.scenario;
        let _ = write!(out, "{label:<27} {:<15}", row.agent);
        if let Some(why) = &row.not_available {
            let _ = writeln!(out, " n/a: {why}");
        } else if row.measures.is_empty() {
            let _ = writeln!(
                out,
                " error: {}",
                row.errors.join("; ").lines().next().unwrap_or("")
            );
        } else {
            let v = row.values();
            for (c, w) in WIDTHS.iter().enumerate() {
                let _ = write!(out, " {:>w$}", fmt_val(c, v[c]), w = *w);
            }
            out.push('\n');
            vals.push((row.agent.clone(), v));
        }
        let last_of_scenario = rows.get(i + 1).is_none_or(|n| n.scenario != row.scenario);
        if last_of_scenario {
            let f = vals.iter().find(|(a, _)| a == Kind::Ferrotel.name());
            let r = vals.iter().find(|(a, _)| a == Kind::Rotel.name());
            if let (Some((_, f)), Some((_, r))) = (f, r) {
                let _ = write!(out, "{:<27} {:<15}", "", "ferrotel/rotel");
                for (c, w) in WIDTHS.iter().enumerate() {
                    let cell = if matches!(c, 4 | 5 | 8..=10)
                        || r[c] == 0.0
                        || f[c].is_nan()
                        || r[c].is_nan()
                    {
                        "-".to_string()
                    } else {
                        format!("{:.2}", f[c] / r[c])
                    };
                    let _ = write!(out, " {cell:>w$}", w = *w);
                }
                out.push('\n');
            }
            vals.clear();
        }
    }
    out
}

/// `scenario agent: error` for every error of the Kafka rows.
pub(super) fn errors(rows: &[KRow]) -> Vec<String> {
    rows.iter()
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{} {}: {e}", r.scenario, r.agent))
        })
        .collect()
}

/// Spans lost or duplicated over every Kafka run.
pub(super) fn lost(rows: &[KRow]) -> u64 {
    rows.iter()
        .flat_map(|r| r.measures.iter())
        .map(|m| m.lost + m.duplicates)
        .sum()
}

fn progress(m: &KMeasure) -> String {
    format!(
        "{:.0} spans/s, {:.1} records/s, {:.1} MB/s, {:.2} CPU-s/M, busy {:.0}%, broker {:.0}%, peak {:.1} MiB, spans {}, refused {}, lost {}, dup {} ({:.1} s)",
        m.spans_per_s,
        m.records_per_s,
        m.mb_per_s,
        m.cpu_s_per_million,
        m.busy_percent,
        m.broker_percent,
        m.peak_mib,
        m.spans,
        m.refused,
        m.lost,
        m.duplicates,
        m.wall_s
    )
}

fn f64_of(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// What one kafka-in repetition measured: the plain producer, the plain consumer, the agent.
struct InRep {
    produce: anyhow::Result<KMeasure>,
    consume: anyhow::Result<KMeasure>,
    agent: anyhow::Result<KMeasure>,
    first_span_s: f64,
}

impl Harness {
    fn start_tansu(&mut self) -> anyhow::Result<Tansu> {
        let bin = tansu_binary(self.args.tansu.as_deref())?;
        let id = self.next_id();
        let dir = self.work.join(format!("tansu-{id}"));
        std::fs::create_dir_all(&dir)?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_ports(1)?[0];
            let url = format!("tcp://127.0.0.1:{port}");
            let log = dir.join("tansu.log");
            let out = File::create(&log)?;
            let child = Command::new("taskset")
                .arg("-c")
                .arg(&self.args.load_cpus)
                .arg(&bin)
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", self.args.tansu_storage.url()])
                .current_dir(&dir)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("start tansu ({})", bin.display()))?;
            let mut p = Proc {
                child,
                name: "tansu".into(),
                log,
            };
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline && p.running() && !port_open(port) {
                sleep(Duration::from_millis(20));
            }
            if p.running() && port_open(port) {
                return Ok(Tansu {
                    proc: p,
                    bin,
                    port,
                    dir,
                });
            }
            p.stop(Duration::from_secs(2));
            last = p.log_tail();
            Tansu::remove_data(&dir);
        }
        bail!("tansu did not start:\n{last}")
    }

    /// Runs `ferrotel-bench <args>` (a Kafka client) on the agent's cores and returns the
    /// JSON line it printed.
    fn run_client(
        &mut self,
        args: &[String],
        limit: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let id = self.next_id();
        let out = self.work.join(format!("kafka-client-{id}.json"));
        let log = self.work.join(format!("kafka-client-{id}.log"));
        let child = Command::new("taskset")
            .arg("-c")
            .arg(&self.args.agent_cpus)
            .arg(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&log)?)
            .spawn()
            .context("start the Kafka client")?;
        let mut p = Proc {
            child,
            name: "kafka client".into(),
            log,
        };
        let deadline = Instant::now() + limit;
        while p.running() {
            if Instant::now() > deadline {
                p.stop(Duration::from_secs(1));
                bail!("{} did not finish within {limit:?}", args[0]);
            }
            sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        match text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
        {
            Some(v) => Ok(v),
            None => bail!("{} failed: {}", args[0], p.log_tail()),
        }
    }

    fn saturation_secs(&self) -> f64 {
        self.args
            .duration
            .unwrap_or(if self.args.quick { 3.0 } else { 4.0 })
    }

    /// kafka-out, one run of one agent.
    fn kafka_out_run(&mut self, kind: Kind) -> anyhow::Result<KMeasure> {
        let wall = Instant::now();
        let broker = self.start_tansu()?;
        broker.create_topic(TOPIC, PARTITIONS)?;
        let address = broker.address();
        let ferrotel = |grpc: u16, http: u16| kafka_out_config(grpc, http, &address);
        let rotel = rotel_kafka_args(&address);
        let id = self.next_id();
        let (mut agent, grpc, _) = self.start_agent_with(id, kind, &ferrotel, &rotel)?;
        let marks = Watermarks::new(&address, TOPIC)?;
        sleep(Duration::from_secs(1));
        let pid = agent.pid();
        let idle_kib = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
        let cpu0 = cpu_ticks(pid).unwrap_or(0);
        let broker0 = broker.ticks();
        let duration = self.saturation_secs();
        let extra: Vec<String> = vec![
            "--concurrency".into(),
            SATURATION_CONCURRENCY.to_string(),
            "--connections".into(),
            SATURATION_CONNECTIONS.to_string(),
            "--requests".into(),
            "0".into(),
            "--duration".into(),
            format!("{duration}"),
        ];
        let (load, ranges) = self.run_load(
            &OUT_LOAD,
            grpc,
            &extra,
            true,
            Duration::from_secs_f64(duration + 30.0),
        )?;
        // The end: the last record the broker appended (the topic then stops growing).
        let (end_ns, records_at_end) =
            wait_topic_still(&marks, Duration::from_secs(3), Duration::from_secs(60));
        let cpu1 = cpu_ticks(pid).unwrap_or(cpu0);
        let broker1 = broker.ticks();
        let peak_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
        let alive = agent.running();
        let clean = agent.stop(Duration::from_secs(10));
        let records_after = marks.records().unwrap_or(records_at_end);
        drop(marks);
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
        // Count what the broker holds, span by span, with the agent stopped.
        let group = format!("bench-verify-{}-{id}", std::process::id());
        let mut args = consumer_args(&address, &group);
        args.extend(["--count-items".into(), "--timeout".into(), "240".into()]);
        let held = self.run_client(&args, Duration::from_secs(260))?;
        if let Some(e) = held["error"].as_str() {
            eprintln!("    note: counting the topic: {e}");
        }
        let verdict = crate::check(&ranges, &held)?;
        drop(broker);
        let start_ns = u64_of(&load["start_unix_ns"]);
        let secs = (end_ns.saturating_sub(start_ns) as f64 / 1e9).max(1e-3);
        let spans = u64_of(&held["signals"]["traces"]["unique"]);
        let records = u64_of(&held["records"]);
        let bytes = u64_of(&held["bytes"]);
        let cpu_s = cpu1.saturating_sub(cpu0) as f64 / self.hz;
        let acked = u64_of(&load["acked_items"]);
        let load_secs = f64_of(&load["elapsed_s"]).max(1e-3);
        Ok(KMeasure {
            spans_per_s: spans as f64 / secs,
            records_per_s: records as f64 / secs,
            mb_per_s: bytes as f64 / 1e6 / secs,
            cpu_s_per_million: if spans > 0 {
                cpu_s / spans as f64 * 1e6
            } else {
                f64::NAN
            },
            busy_percent: cpu_s / secs * 100.0,
            broker_percent: broker1.saturating_sub(broker0) as f64 / self.hz / secs * 100.0,
            idle_mib: idle_kib as f64 / 1024.0,
            peak_mib: peak_kib as f64 / 1024.0,
            spans,
            records,
            bytes,
            secs,
            acked_spans: acked,
            acked_per_s: acked as f64 / load_secs,
            refused: u64_of(&load["unacked_items"]),
            lost: verdict.lost,
            duplicates: verdict.duplicates,
            records_after_end: records_after.saturating_sub(records_at_end),
            first_span_s: f64::NAN,
            sink_percent: f64::NAN,
            wall_s: wall.elapsed().as_secs_f64(),
        })
    }

    /// kafka-in, one repetition: a fresh broker and topic, the plain producer fills it, the
    /// plain consumer reads it, then ferrotel reads it into the sink.
    fn kafka_in_rep(&mut self, records: u64) -> anyhow::Result<InRep> {
        let broker = self.start_tansu()?;
        broker.create_topic(TOPIC, PARTITIONS)?;
        let address = broker.address();
        let spans = records * ITEMS_PER_REQUEST as u64;

        let wall = Instant::now();
        let t0 = broker.ticks();
        let args: Vec<String> = [
            "kafka-produce",
            "--brokers",
            &address,
            "--topic",
            TOPIC,
            "--records",
            &records.to_string(),
            "--items-per-record",
            &ITEMS_PER_REQUEST.to_string(),
            "--timeout",
            "240",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = self.run_client(&args, Duration::from_secs(260))?;
        let t1 = broker.ticks();
        if u64_of(&p["delivered"]) != records || u64_of(&p["failed"]) > 0 {
            bail!(
                "the producer wrote {} of {records} records ({} failed: {})",
                p["delivered"],
                p["failed"],
                p["first_error"]
            );
        }
        let secs = f64_of(&p["secs"]).max(1e-3);
        let produce = KMeasure {
            spans_per_s: spans as f64 / secs,
            records_per_s: records as f64 / secs,
            mb_per_s: f64_of(&p["mb_per_s"]),
            cpu_s_per_million: f64_of(&p["cpu_s"]) / spans as f64 * 1e6,
            busy_percent: f64_of(&p["cpu_s"]) / secs * 100.0,
            broker_percent: t1.saturating_sub(t0) as f64 / self.hz / secs * 100.0,
            idle_mib: f64::NAN,
            peak_mib: f64_of(&p["peak_mib"]),
            spans,
            records,
            bytes: u64_of(&p["bytes"]),
            secs,
            first_span_s: f64::NAN,
            wall_s: wall.elapsed().as_secs_f64(),
            ..Default::default()
        };
        let bytes = produce.bytes;

        let consume = (|| {
            let wall = Instant::now();
            let id = self.next_id();
            let group = format!("bench-plain-{}-{id}", std::process::id());
            let mut args = consumer_args(&address, &group);
            args.extend([
                "--records".into(),
                records.to_string(),
                "--timeout".into(),
                "240".into(),
            ]);
            let t0 = broker.ticks();
            let c = self.run_client(&args, Duration::from_secs(260))?;
            let t1 = broker.ticks();
            let got = u64_of(&c["records"]);
            if got != records {
                bail!(
                    "the plain consumer read {got} of {records} records: {}",
                    c["error"]
                );
            }
            let secs = f64_of(&c["secs"]).max(1e-3);
            Ok(KMeasure {
                spans_per_s: spans as f64 / secs,
                records_per_s: records as f64 / secs,
                mb_per_s: f64_of(&c["mb_per_s"]),
                cpu_s_per_million: f64_of(&c["cpu_s"]) / spans as f64 * 1e6,
                busy_percent: f64_of(&c["cpu_s"]) / secs * 100.0,
                broker_percent: t1.saturating_sub(t0) as f64 / self.hz / secs * 100.0,
                idle_mib: f64::NAN,
                peak_mib: f64_of(&c["peak_mib"]),
                spans,
                records,
                bytes: u64_of(&c["bytes"]),
                secs,
                first_span_s: f64::NAN,
                wall_s: wall.elapsed().as_secs_f64(),
                ..Default::default()
            })
        })();

        let mut first_span_s = f64::NAN;
        let agent = self.kafka_in_agent(&broker, records, bytes, &mut first_span_s);
        Ok(InRep {
            produce: Ok(produce),
            consume,
            agent,
            first_span_s,
        })
    }

    /// ferrotel reads the pre-filled topic into the sink; the time until the sink has every
    /// span.
    fn kafka_in_agent(
        &mut self,
        broker: &Tansu,
        records: u64,
        bytes: u64,
        first_span_s: &mut f64,
    ) -> anyhow::Result<KMeasure> {
        let wall = Instant::now();
        let spans = records * ITEMS_PER_REQUEST as u64;
        let (mut sink, sink_port, report) = self.start_sink()?;
        let id = self.next_id();
        let group = format!("bench-gateway-{}-{id}", std::process::id());
        let cfg = self.work.join(format!("ferrotel-{id}.yaml"));
        std::fs::write(&cfg, kafka_in_config(&broker.address(), &group, sink_port))?;
        let log = self.work.join(format!("ferrotel-{id}.out"));
        let started = Instant::now();
        let mut agent = self.spawn(
            &self.args.agent_cpus,
            &self.args.ferrotel,
            &["--config".to_string(), cfg.display().to_string()],
            &log,
            "ferrotel",
        )?;
        let pid = agent.pid();
        // Poll the sink: the first span, the last change, every span.
        let deadline = started + Duration::from_secs(240);
        let stall = Duration::from_secs(15);
        let mut last_unique = 0u64;
        let mut last_change = Instant::now();
        let sink_pid = sink.pid();
        let mut first: Option<(Instant, u64, u64, u64)> = None;
        let mut last: Option<(Instant, u64, u64, u64)> = None;
        loop {
            if !agent.running() {
                bail!("ferrotel exited:\n{}", agent.log_tail());
            }
            let unique = read_json(&report)
                .map(|r| u64_of(&r["signals"]["traces"]["unique"]))
                .unwrap_or(0);
            if unique != last_unique {
                let now = Instant::now();
                let mark = (
                    now,
                    cpu_ticks(pid).unwrap_or(0),
                    broker.ticks(),
                    cpu_ticks(sink_pid).unwrap_or(0),
                );
                if first.is_none() {
                    first = Some(mark);
                    *first_span_s = now.duration_since(started).as_secs_f64();
                }
                last = Some(mark);
                last_unique = unique;
                last_change = now;
            }
            if unique >= spans || Instant::now() > deadline || last_change.elapsed() > stall {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        let cpu_total = cpu_ticks(pid).unwrap_or(0);
        let peak_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
        let clean = agent.stop(Duration::from_secs(10));
        sink.stop(Duration::from_secs(5));
        if !clean {
            eprintln!("    note: ferrotel did not stop within the grace period; killed");
        }
        let Some(final_report) = read_json(&report) else {
            bail!("no sink report");
        };
        // Every span was written: 0..spans, nothing refused.
        let ranges = serde_json::json!({
            "signal": "traces",
            "seq_start": 0,
            "seq_end": spans,
            "unacked": [],
            "unsent": [],
        });
        let verdict = crate::check(&ranges, &final_report)?;
        let s = &final_report["signals"]["traces"];
        let delivered = u64_of(&s["unique"]);
        let secs = (u64_of(&s["last_unix_ns"]).saturating_sub(u64_of(&s["first_unix_ns"])) as f64
            / 1e9)
            .max(1e-3);
        let (busy, broker_busy, sink_busy) = match (first, last) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let w = b.0.duration_since(a.0).as_secs_f64();
                let pct = |t0: u64, t1: u64| t1.saturating_sub(t0) as f64 / self.hz / w * 100.0;
                (pct(a.1, b.1), pct(a.2, b.2), pct(a.3, b.3))
            }
            _ => (f64::NAN, f64::NAN, f64::NAN),
        };
        let delivered_records = delivered as f64 / ITEMS_PER_REQUEST as f64;
        Ok(KMeasure {
            spans_per_s: delivered as f64 / secs,
            records_per_s: delivered_records / secs,
            mb_per_s: bytes as f64 * (delivered as f64 / spans.max(1) as f64) / 1e6 / secs,
            cpu_s_per_million: if delivered > 0 {
                cpu_total as f64 / self.hz / delivered as f64 * 1e6
            } else {
                f64::NAN
            },
            busy_percent: busy,
            broker_percent: broker_busy,
            idle_mib: f64::NAN,
            peak_mib: peak_kib as f64 / 1024.0,
            spans: delivered,
            records,
            bytes,
            secs,
            lost: verdict.lost,
            duplicates: verdict.duplicates,
            first_span_s: *first_span_s,
            sink_percent: sink_busy,
            wall_s: wall.elapsed().as_secs_f64(),
            ..Default::default()
        })
    }
}

/// Polls the topic's record count until it has not changed for `still` (or `max` passed);
/// returns when it last changed (unix ns; the first poll if it never did) and the count.
fn wait_topic_still(marks: &Watermarks, still: Duration, max: Duration) -> (u64, u64) {
    let start = Instant::now();
    let mut count = marks.records();
    let mut changed_ns = unix_ns();
    let mut changed = Instant::now();
    while changed.elapsed() < still && start.elapsed() < max {
        sleep(Duration::from_millis(50));
        let now = marks.records();
        if now.is_some() && now != count {
            count = now;
            changed_ns = unix_ns();
            changed = Instant::now();
        }
    }
    (changed_ns, count.unwrap_or(0))
}

/// `kafka-consume` with the receiver's fetch settings.
fn consumer_args(address: &str, group: &str) -> Vec<String> {
    [
        "kafka-consume",
        "--brokers",
        address,
        "--topic",
        TOPIC,
        "--group",
        group,
        "--set",
        &format!("fetch.wait.max.ms={FETCH_WAIT_MS}"),
        "--set",
        &format!("fetch.max.bytes={FETCH_BYTES}"),
        // What the kafka receiver sets: four fetches ahead at most.
        "--set",
        &format!("queued.max.messages.kbytes={}", FETCH_BYTES * 4 / 1024),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn kafka_out_config(grpc: u16, http: u16, broker: &str) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: \"127.0.0.1:{grpc}\"}}
      http: {{endpoint: \"127.0.0.1:{http}\"}}
processors:
  batch: {{send_batch_size: {OUT_BATCH}, send_batch_max_size: {OUT_BATCH}, timeout: 200ms}}
exporters:
  kafka:
    brokers: [\"{broker}\"]
    traces: {{topic: {TOPIC}, encoding: otlp_proto}}
    producer: {{compression: none}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [kafka]}}
"
    )
}

fn rotel_kafka_args(broker: &str) -> Vec<String> {
    [
        "--exporter",
        "kafka",
        "--kafka-exporter-brokers",
        broker,
        "--kafka-exporter-traces-topic",
        TOPIC,
        "--kafka-exporter-format",
        "protobuf",
        "--kafka-exporter-compression",
        "none",
        "--batch-max-size",
        &OUT_BATCH.to_string(),
        "--batch-timeout",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn kafka_in_config(broker: &str, group: &str, sink: u16) -> String {
    format!(
        "receivers:
  kafka:
    brokers: [\"{broker}\"]
    group_id: {group}
    initial_offset: earliest
    traces: {{topics: [{TOPIC}], encoding: otlp_proto}}
    max_fetch_wait: {FETCH_WAIT_MS}ms
    max_fetch_size: {FETCH_BYTES}
processors:
  batch: {{send_batch_size: 8192, send_batch_max_size: 8192, timeout: 200ms}}
exporters:
  otlp:
    endpoint: \"127.0.0.1:{sink}\"
    tls: {{insecure: true}}
    compression: none
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [kafka], processors: [batch], exporters: [otlp]}}
"
    )
}

/// Runs the selected Kafka scenarios; returns their rows and the notes under the table.
pub(super) fn run(
    h: &mut Harness,
    keys: &[&str],
    kinds: &[Kind],
    reps: usize,
) -> (Vec<KRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = vec![format!(
        "kafka: tansu {TANSU_VERSION} ({}), a fresh broker per run, topic {TOPIC} with {PARTITIONS} partitions; the broker on cpu {} with the load generator and the sink, the agent or the plain client alone on cpu {}",
        h.args.tansu_storage.describe(),
        h.args.load_cpus,
        h.args.agent_cpus
    )];
    if keys.contains(&"kafka-out") {
        let label = "kafka-out grpc>kafka";
        let mut out: Vec<KRow> = kinds
            .iter()
            .map(|k| KRow::new(label, "kafka-out", k.name()))
            .collect();
        for rep in 0..reps {
            let mut order: Vec<usize> = (0..kinds.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for i in order {
                eprint!(
                    "{label:<27} {:<9} saturation {}/{reps} ... ",
                    kinds[i].name(),
                    rep + 1
                );
                match h.kafka_out_run(kinds[i]) {
                    Ok(m) => {
                        eprintln!("{}", progress(&m));
                        out[i].measures.push(m);
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        out[i].errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        let mut line = format!(
            "{label}: {SATURATION_CONCURRENCY} senders on {SATURATION_CONNECTIONS} connections for {} s; batches of {OUT_BATCH} spans, one record each, otlp_proto, no compression, acks 1; spans/s: the spans the broker holds (counted by a consumer afterwards), from the first request to the last record appended; acknowledged",
            h.saturation_secs()
        );
        for row in &out {
            if !row.measures.is_empty() {
                let _ = write!(line, " {} {:.0}/s", row.agent, row.med(|m| m.acked_per_s));
            }
        }
        notes.push(line);
        for row in &out {
            let late: u64 = row.measures.iter().map(|m| m.records_after_end).sum();
            if late > 0 {
                notes.push(format!(
                    "{label}: {} wrote {late} record{} while it shut down (counted, not timed)",
                    row.agent,
                    if late == 1 { "" } else { "s" }
                ));
            }
        }
        rows.extend(out);
    }
    if keys.contains(&"kafka-in") {
        let label = "kafka-in kafka>grpc";
        let ceiling = "broker alone (no agent)";
        let records = h
            .args
            .kafka_records
            .unwrap_or(match h.args.tansu_storage {
                Storage::Sqlite => 1000,
                Storage::Memory => 6000,
            })
            .max(1);
        let mut agent = KRow::new(label, "kafka-in", Kind::Ferrotel.name());
        let mut produce = KRow::new(ceiling, "kafka-in", "rdkafka produce");
        let mut consume = KRow::new(ceiling, "kafka-in", "rdkafka consume");
        let mut first = Vec::new();
        for rep in 0..reps {
            eprint!(
                "{label:<27} {records} records, repetition {}/{reps} ... ",
                rep + 1
            );
            match h.kafka_in_rep(records) {
                Ok(r) => {
                    eprintln!();
                    for (row, result) in [
                        (&mut produce, r.produce),
                        (&mut consume, r.consume),
                        (&mut agent, r.agent),
                    ] {
                        match result {
                            Ok(m) => {
                                eprintln!("    {:<15} {}", row.agent, progress(&m));
                                row.measures.push(m);
                            }
                            Err(e) => {
                                eprintln!("    {:<15} error: {e:#}", row.agent);
                                row.errors.push(format!("{e:#}"));
                            }
                        }
                    }
                    if !r.first_span_s.is_nan() {
                        first.push(r.first_span_s);
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    for row in [&mut produce, &mut consume, &mut agent] {
                        row.errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        let mb = produce
            .measures
            .first()
            .map_or(f64::NAN, |m| m.bytes as f64 / 1e6);
        notes.push(format!(
            "{label}: {records} records of {ITEMS_PER_REQUEST} spans ({mb:.0} MB) written to a fresh broker per repetition by a plain producer (the `rdkafka produce` row: librdkafka, acks 1, linger 10 ms, no compression), read by a plain consumer (`rdkafka consume`), then by ferrotel (kafka receiver -> batch 8192 -> OTLP/gRPC, no compression, to the sink); both readers fetch with a {FETCH_WAIT_MS} ms wait and up to {} MiB per fetch; ferrotel's spans/s counts from the first span at the sink to the last (its first span arrived {:.1} s after it started: joining the group)",
            FETCH_BYTES >> 20,
            median(first)
        ));
        if !agent.measures.is_empty() {
            notes.push(format!(
                "{label}: while ferrotel read, cpu {} was {:.0}% busy: the broker {:.0}%, the sink {:.0}%",
                h.args.load_cpus,
                agent.med(|m| m.broker_percent + m.sink_percent),
                agent.med(|m| m.broker_percent),
                agent.med(|m| m.sink_percent)
            ));
        }
        rows.push(agent);
        if kinds.contains(&Kind::Rotel) {
            let mut row = KRow::new(label, "kafka-in", Kind::Rotel.name());
            let bin = h.args.rotel.clone().unwrap_or_default();
            let version = super::version_of(&bin, "--version");
            row.not_available = Some(if rotel_has_kafka_receiver(&bin, &h.work) {
                format!("{version} has a Kafka receiver, which this harness does not run yet")
            } else {
                format!(
                    "{version} (the PyPI wheel) has no Kafka receiver; upstream added one in a later release"
                )
            });
            rows.push(row);
        }
        rows.push(produce);
        rows.push(consume);
    }
    (rows, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(spans_per_s: f64) -> KMeasure {
        KMeasure {
            spans_per_s,
            records_per_s: spans_per_s / OUT_BATCH as f64,
            cpu_s_per_million: 4.0,
            idle_mib: 10.0,
            peak_mib: 80.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_table_compares_the_agents_and_says_why_a_row_is_missing() {
        let mut f = KRow::new("kafka-out grpc>kafka", "kafka-out", "ferrotel");
        f.measures.push(measure(200_000.0));
        let mut r = KRow::new("kafka-out grpc>kafka", "kafka-out", "rotel");
        r.measures.push(measure(100_000.0));
        let mut a = KRow::new("kafka-in kafka>grpc", "kafka-in", "ferrotel");
        a.errors.push("tansu did not start".into());
        let mut n = KRow::new("kafka-in kafka>grpc", "kafka-in", "rotel");
        n.not_available = Some("no Kafka receiver".into());
        let t = table(&[f, r, a, n]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 6, "{t}");
        assert!(lines[1].starts_with("kafka-out grpc>kafka"), "{t}");
        assert!(
            lines[2].starts_with(' '),
            "the label once per scenario: {t}"
        );
        assert!(
            lines[3].contains("ferrotel/rotel") && lines[3].contains("2.00"),
            "{t}"
        );
        assert!(lines[4].ends_with("error: tansu did not start"), "{t}");
        assert!(lines[5].ends_with("n/a: no Kafka receiver"), "{t}");
        assert_eq!(lost(&[]), 0);
    }

    #[test]
    fn a_missing_broker_says_how_to_install_it() {
        let e = tansu_binary(Some(Path::new("no/such/tansu")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("./scripts/test"), "{e}");
        assert!(e.contains("cargo install tansu --version 0.6.0"), "{e}");
    }
}
