//! The Prometheus scrape scenarios of the harness: `ferrotel-bench prom-target` serves a
//! generated exposition (100,000 samples by default) from the load generator's core, and
//! ferrotel, alone on its core, scrapes it every 5 s (timeout 4 s) with the prometheus
//! receiver and exports each scrape (OTLP/gRPC to the sink, or the debug exporter). The
//! harness measures CPU per scrape and per million samples, memory between and during
//! scrapes, and reads back what each scrape reported: `up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped` (from the data at the sink) and the receiver's accepted count
//! (from the agent's own metrics). ferrotel only: rotel has no Prometheus scrape receiver.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::{cpu_ticks, free_ports, median, port_open, proc_status_kib, read_json, Harness, Kind};
use crate::sink::unix_ns;

/// The scrape scenarios: key and description.
pub(super) const KEYS: [(&str, &str); 3] = [
    (
        "prom-scrape",
        "a Prometheus target of 100k samples, OpenMetrics (ferrotel asks for it first), scraped every 5 s for 60 s by the prometheus receiver -> OTLP/gRPC to the sink; ferrotel (rotel has no Prometheus receiver)",
    ),
    (
        "prom-scrape-text",
        "the same target answering in the text format 0.0.4 (as client_golang does unless OpenMetrics is enabled)",
    ),
    (
        "prom-scrape-gzip",
        "the text format, gzipped (as client_golang answers a scraper that accepts gzip)",
    ),
];

const INTERVAL_S: u64 = 5;
const TIMEOUT_S: u64 = 4;
/// The job's name, the resource's `service.name`.
const JOB: &str = "bench";
/// Every start and every wait for data is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// Where each scrape goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PromExporter {
    /// OTLP/gRPC, no compression, to the sink, which decodes the scrape series.
    Otlp,
    /// `debug` with `verbosity: basic`: a log line per scrape, nothing sent.
    Debug,
}

struct Variant {
    key: &'static str,
    label: &'static str,
    text_only: bool,
    gzip: bool,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        key: "prom-scrape",
        label: "prom-scrape openmetrics",
        text_only: false,
        gzip: false,
    },
    Variant {
        key: "prom-scrape-text",
        label: "prom-scrape text",
        text_only: true,
        gzip: false,
    },
    Variant {
        key: "prom-scrape-gzip",
        label: "prom-scrape text gzip",
        text_only: true,
        gzip: true,
    },
];

/// One run of the agent against the target.
#[derive(Clone, Debug, Default, Serialize)]
struct PMeasure {
    /// Scrapes the target served inside the measured window.
    scrapes: u64,
    /// Of those, scrapes whose data said `up` 1 and every sample scraped (and, with the
    /// OTLP exporter, reached the sink with every data point).
    complete: u64,
    samples_per_scrape: f64,
    points_per_scrape: f64,
    /// `scrape_duration_seconds` (fetch, parse, series and staleness bookkeeping; not
    /// translation or export), ms.
    scrape_p50_ms: f64,
    scrape_max_ms: f64,
    /// From the target starting to answer to the scrape's data at the sink, ms.
    to_sink_p50_ms: f64,
    to_sink_max_ms: f64,
    /// The target's time to hand out the body (the agent reading it), ms.
    serve_p50_ms: f64,
    body_bytes: u64,
    cpu_s_per_scrape: f64,
    cpu_s_per_million: f64,
    /// Samples per second one core would take at this cost.
    samples_per_core_s: f64,
    /// The agent's CPU time over the window, % of one core.
    busy_percent: f64,
    /// Resident memory before the first scrape, the median over the second half of the
    /// window, just before the last scrape, and the highest.
    idle_mib: f64,
    steady_mib: f64,
    between_mib: f64,
    peak_mib: f64,
    /// The agent's live heap (allocator figure) once the last scrape was handed on.
    heap_mib: f64,
    /// The receiver's own counters, and what they should say.
    accepted_points: u64,
    expected_points: u64,
    refused_points: u64,
    window_s: f64,
    wall_s: f64,
}

#[derive(Default, Serialize)]
pub(super) struct PRow {
    scenario: String,
    key: String,
    agent: String,
    measures: Vec<PMeasure>,
    not_available: Option<String>,
    errors: Vec<String>,
}

impl PRow {
    fn new(label: &str, key: &str, agent: &str) -> PRow {
        PRow {
            scenario: label.to_string(),
            key: key.to_string(),
            agent: agent.to_string(),
            ..Default::default()
        }
    }

    fn med(&self, f: impl Fn(&PMeasure) -> f64) -> f64 {
        median(self.measures.iter().map(f).collect())
    }

    fn values(&self) -> [f64; COLUMNS] {
        let sum = |f: fn(&PMeasure) -> u64| self.measures.iter().map(f).sum::<u64>() as f64;
        [
            sum(|m| m.scrapes),
            sum(|m| m.complete),
            self.med(|m| m.samples_per_scrape),
            self.med(|m| m.scrape_p50_ms),
            self.med(|m| m.scrape_max_ms),
            self.med(|m| m.to_sink_p50_ms),
            self.med(|m| m.cpu_s_per_scrape),
            self.med(|m| m.cpu_s_per_million),
            self.med(|m| m.samples_per_core_s),
            self.med(|m| m.busy_percent),
            self.med(|m| m.idle_mib),
            self.med(|m| m.steady_mib),
            self.med(|m| m.heap_mib),
            self.med(|m| m.peak_mib),
        ]
    }
}

const COLUMNS: usize = 14;
const HEADERS: [&str; COLUMNS] = [
    "scrapes",
    "up+all",
    "samples",
    "scrape ms",
    "max ms",
    "to sink",
    "CPU-s/scr",
    "CPU-s/M",
    "samples/s",
    "busy %",
    "idle MiB",
    "steady",
    "heap",
    "peak MiB",
];
const WIDTHS: [usize; COLUMNS] = [7, 6, 7, 9, 7, 7, 9, 7, 9, 6, 8, 7, 6, 8];

fn fmt_val(col: usize, v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    match col {
        0..=5 | 8 => format!("{v:.0}"),
        6 => format!("{v:.3}"),
        7 => format!("{v:.2}"),
        _ => format!("{v:.1}"),
    }
}

/// The scrape table: one line per agent.
pub(super) fn table(rows: &[PRow]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<27} {:<9}", "prometheus scenario", "agent");
    for (h, w) in HEADERS.iter().zip(WIDTHS) {
        let _ = write!(out, " {h:>w$}");
    }
    out.push('\n');
    let mut previous = "";
    for row in rows {
        let label = if row.scenario == previous {
            ""
        } else {
            row.scenario.as_str()
        };
        previous = &row.scenario;
        let _ = write!(out, "{label:<27} {:<9}", row.agent);
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
        }
    }
    out
}

/// `scenario agent: error` for every error of the rows.
pub(super) fn errors(rows: &[PRow]) -> Vec<String> {
    rows.iter()
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{} {}: {e}", r.scenario, r.agent))
        })
        .collect()
}

/// Scrapes (over every run) that did not report `up` 1 with every sample.
pub(super) fn incomplete(rows: &[PRow]) -> u64 {
    rows.iter()
        .flat_map(|r| r.measures.iter())
        .map(|m| m.scrapes.saturating_sub(m.complete))
        .sum()
}

fn progress(m: &PMeasure) -> String {
    // Figures the debug exporter cannot give are NaN: shown as `-`.
    let n = |v: f64, decimals: usize| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.decimals$}")
        }
    };
    format!(
        "{} scrapes ({} complete), {} samples, {} points, scrape p50 {} ms max {} ms, to sink p50 {} ms, serve p50 {} ms, {} CPU-s/scrape, {} CPU-s/M, busy {}%, idle {} MiB, steady {} MiB, between {} MiB, heap {} MiB, peak {} MiB, accepted {} of {} points ({:.1} s)",
        m.scrapes,
        m.complete,
        n(m.samples_per_scrape, 0),
        n(m.points_per_scrape, 0),
        n(m.scrape_p50_ms, 0),
        n(m.scrape_max_ms, 0),
        n(m.to_sink_p50_ms, 0),
        n(m.serve_p50_ms, 0),
        n(m.cpu_s_per_scrape, 3),
        n(m.cpu_s_per_million, 2),
        n(m.busy_percent, 1),
        n(m.idle_mib, 1),
        n(m.steady_mib, 1),
        n(m.between_mib, 1),
        n(m.heap_mib, 1),
        n(m.peak_mib, 1),
        m.accepted_points,
        m.expected_points,
        m.wall_s
    )
}

/// The JSON lines of a log (the target's `ready` line and one per scrape).
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The value of the first series of `metric` whose labels contain `labels`, in a Prometheus
/// text body.
fn series_value(body: &str, metric: &str, labels: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
}

/// GETs `/metrics` of the agent's own telemetry endpoint.
fn own_metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The receiver's accepted and refused data points, and the agent's live heap in bytes,
/// from its own metrics.
fn own_figures(port: u16) -> Option<(u64, u64, f64)> {
    let body = own_metrics(port)?;
    let label = "receiver=\"prometheus\"";
    let accepted = series_value(&body, "otelcol_receiver_accepted_metric_points", label)?;
    let refused =
        series_value(&body, "otelcol_receiver_refused_metric_points", label).unwrap_or(0.0);
    let heap =
        series_value(&body, "otelcol_process_runtime_heap_alloc_bytes", "").unwrap_or(f64::NAN);
    Some((accepted as u64, refused as u64, heap))
}

fn config(target: u16, telemetry: u16, exporter: PromExporter, sink: Option<u16>) -> String {
    let exporters = match (exporter, sink) {
        (PromExporter::Otlp, Some(port)) => format!(
            "  otlp:\n    endpoint: \"127.0.0.1:{port}\"\n    tls: {{insecure: true}}\n    compression: none\n"
        ),
        _ => "  debug:\n    verbosity: basic\n".to_string(),
    };
    let name = match exporter {
        PromExporter::Otlp => "otlp",
        PromExporter::Debug => "debug",
    };
    format!(
        "receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: {JOB}
          scrape_interval: {INTERVAL_S}s
          scrape_timeout: {TIMEOUT_S}s
          static_configs:
            - targets: ['127.0.0.1:{target}']
exporters:
{exporters}service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus: {{host: 127.0.0.1, port: {telemetry}}}
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [{name}]}}
"
    )
}

/// One poll of the agent.
#[derive(Clone, Copy)]
struct Poll {
    unix_ns: u64,
    ticks: u64,
    rss_kib: u64,
}

fn p50_max(mut v: Vec<f64>) -> (f64, f64) {
    v.retain(|x| x.is_finite());
    let max = v.iter().copied().fold(f64::NAN, f64::max);
    (median(v), max)
}

impl Harness {
    fn prom_duration(&self) -> f64 {
        self.args.prom_duration.max(INTERVAL_S as f64)
    }

    /// Starts the target on the load generator's core; returns it, its port and its
    /// `ready` line.
    fn start_prom_target(
        &mut self,
        v: &Variant,
    ) -> anyhow::Result<(super::Proc, u16, serde_json::Value)> {
        let id = self.next_id();
        for _ in 0..3 {
            let port = free_ports(1)?[0];
            let mut args = vec![
                "prom-target".to_string(),
                "--series".into(),
                self.args.prom_series.to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ];
            if v.text_only {
                args.push("--text-only".into());
            }
            if v.gzip {
                args.push("--gzip".into());
            }
            let log = self.work.join(format!("prom-target-{id}.log"));
            let mut p = self.spawn(&self.args.load_cpus, &self.exe, &args, &log, "prom-target")?;
            let deadline = Instant::now() + WAIT * 2;
            while Instant::now() < deadline && p.running() && !port_open(port) {
                sleep(Duration::from_millis(50));
            }
            let ready = json_lines(&log)
                .into_iter()
                .find(|l| l.get("ready").is_some());
            if let (true, Some(ready)) = (p.running() && port_open(port), ready) {
                return Ok((p, port, ready));
            }
            p.stop(Duration::from_secs(1));
        }
        bail!("the Prometheus target did not start")
    }

    fn prom_run(&mut self, v: &Variant) -> anyhow::Result<PMeasure> {
        let wall = Instant::now();
        let exporter = self.args.prom_exporter;
        let (mut target, target_port, ready) = self.start_prom_target(v)?;
        let target_log = target.log.clone();
        let samples = ready["samples"].as_u64().unwrap_or(0);
        let points = ready["points"].as_u64().unwrap_or(0) + 5;
        let mut sink = match exporter {
            PromExporter::Otlp => Some(self.start_sink_with(&["--scrape-series".to_string()])?),
            PromExporter::Debug => None,
        };
        let id = self.next_id();
        let telemetry = free_ports(1)?[0];
        let cfg = self.work.join(format!("ferrotel-{id}.yaml"));
        std::fs::write(
            &cfg,
            config(target_port, telemetry, exporter, sink.as_ref().map(|s| s.1)),
        )?;
        let log = self.work.join(format!("ferrotel-{id}.out"));
        let args = vec!["--config".to_string(), cfg.display().to_string()];
        let mut agent = self.spawn(
            &self.args.agent_cpus,
            &self.args.ferrotel,
            &args,
            &log,
            "ferrotel",
        )?;
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline && agent.running() && !port_open(telemetry) {
            sleep(Duration::from_millis(20));
        }
        if !(agent.running() && port_open(telemetry)) {
            bail!("ferrotel did not start:\n{}", agent.log_tail());
        }
        let pid = agent.pid();
        let poll = || Poll {
            unix_ns: unix_ns(),
            ticks: cpu_ticks(pid).unwrap_or(0),
            rss_kib: proc_status_kib(pid, "VmRSS:").unwrap_or(0),
        };
        // Poll until the window is over: from the first scrape's start to half an interval
        // after the last scrape that starts within the duration, so that no scrape is cut.
        let rounds = (self.prom_duration() / INTERVAL_S as f64).floor() as u64;
        let mut polls: Vec<Poll> = Vec::new();
        let first_deadline = Instant::now() + Duration::from_secs(INTERVAL_S * 3);
        let mut first_start: Option<u64> = None;
        loop {
            polls.push(poll());
            if first_start.is_none() {
                first_start = json_lines(&target_log)
                    .iter()
                    .find_map(|l| l["start_unix_ns"].as_u64());
                if first_start.is_none() && Instant::now() > first_deadline {
                    bail!(
                        "ferrotel did not scrape the target within {} s:\n{}",
                        INTERVAL_S * 3,
                        agent.log_tail()
                    );
                }
            }
            if let Some(t0) = first_start {
                let end = t0 + (rounds * INTERVAL_S) * 1_000_000_000 + INTERVAL_S * 500_000_000;
                if unix_ns() >= end {
                    break;
                }
            }
            if !agent.running() {
                bail!("ferrotel exited during the run:\n{}", agent.log_tail());
            }
            sleep(Duration::from_millis(50));
        }
        let t0 = first_start.unwrap_or(0);
        let served: Vec<serde_json::Value> = json_lines(&target_log)
            .into_iter()
            .filter(|l| l.get("scrape").is_some())
            .collect();
        let n = served.len() as u64;
        // Wait until the receiver has handed every scrape on (and the sink has them).
        let drained = Instant::now() + WAIT;
        let mut counts = (0, 0, f64::NAN);
        loop {
            if let Some(c) = own_figures(telemetry) {
                counts = c;
            }
            let at_sink = sink
                .as_ref()
                .and_then(|(_, _, report)| read_json(report))
                .map(|r| r["scrapes"].as_array().map_or(0, Vec::len) as u64);
            let done = counts.0 + counts.1 >= n * points && at_sink.is_none_or(|s| s >= n);
            if done || Instant::now() > drained {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        let end = poll();
        polls.push(end);
        // The live heap between scrapes: what the receiver keeps from one to the next.
        let heap_mib = own_figures(telemetry).map_or(f64::NAN, |c| c.2 / (1024.0 * 1024.0));
        let peak_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
        let served_after = json_lines(&target_log)
            .iter()
            .filter(|l| l.get("scrape").is_some())
            .count() as u64;
        if served_after > n {
            eprintln!("    note: a scrape started while the harness waited for the last one; its CPU is counted");
        }
        let clean = agent.stop(Duration::from_secs(10));
        if !clean {
            eprintln!("    note: ferrotel did not stop within the grace period; killed");
        }
        let report = match sink.as_mut() {
            Some((proc, _, report)) => {
                proc.stop(Duration::from_secs(5));
                read_json(report)
            }
            None => None,
        };
        target.stop(Duration::from_secs(5));

        let before = |t: u64| polls.iter().rev().find(|p| p.unix_ns <= t).copied();
        let start = before(t0).or(polls.first().copied()).context("no polls")?;
        let cpu_s = end.ticks.saturating_sub(start.ticks) as f64 / self.hz;
        let window_s = (end.unix_ns.saturating_sub(t0) as f64 / 1e9).max(1e-3);
        let half = t0 + (end.unix_ns.saturating_sub(t0)) / 2;
        let steady: Vec<f64> = polls
            .iter()
            .filter(|p| p.unix_ns >= half)
            .map(|p| p.rss_kib as f64 / 1024.0)
            .collect();
        let last_start = served
            .last()
            .and_then(|l| l["start_unix_ns"].as_u64())
            .unwrap_or(t0);
        let between = before(last_start).map_or(f64::NAN, |p| p.rss_kib as f64 / 1024.0);

        // What each scrape said about itself, at the sink.
        let scrapes: Vec<serde_json::Value> = report
            .as_ref()
            .and_then(|r| r["scrapes"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .take(n as usize)
            .collect();
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        let complete = match exporter {
            PromExporter::Otlp => scrapes
                .iter()
                .filter(|s| {
                    f(&s["up"]) == 1.0
                        && f(&s["samples_scraped"]) == samples as f64
                        && f(&s["samples_post_relabeling"]) == samples as f64
                        && s["points"].as_u64() == Some(points)
                })
                .count() as u64,
            // Without the data, the receiver's count says whether every point went on.
            PromExporter::Debug if counts.0 >= n * points && counts.1 == 0 => n,
            PromExporter::Debug => 0,
        };
        let (scrape_p50_ms, scrape_max_ms) =
            p50_max(scrapes.iter().map(|s| f(&s["duration_s"]) * 1e3).collect());
        let (to_sink_p50_ms, to_sink_max_ms) = p50_max(
            served
                .iter()
                .zip(&scrapes)
                .map(|(t, s)| {
                    let a = t["start_unix_ns"].as_u64().unwrap_or(0);
                    let b = s["received_unix_ns"].as_u64().unwrap_or(0);
                    b.saturating_sub(a) as f64 / 1e6
                })
                .collect(),
        );
        let (serve_p50_ms, _) = p50_max(served.iter().map(|s| f(&s["serve_ms"])).collect());
        let cpu_s_per_scrape = cpu_s / n.max(1) as f64;
        Ok(PMeasure {
            scrapes: n,
            complete,
            samples_per_scrape: median(
                scrapes
                    .iter()
                    .map(|s| f(&s["samples_scraped"]))
                    .filter(|x| x.is_finite())
                    .collect(),
            ),
            points_per_scrape: median(
                scrapes
                    .iter()
                    .filter_map(|s| s["points"].as_f64())
                    .collect(),
            ),
            scrape_p50_ms,
            scrape_max_ms,
            to_sink_p50_ms,
            to_sink_max_ms,
            serve_p50_ms,
            body_bytes: served
                .first()
                .and_then(|s| s["bytes"].as_u64())
                .unwrap_or(0),
            cpu_s_per_scrape,
            cpu_s_per_million: cpu_s_per_scrape / samples.max(1) as f64 * 1e6,
            samples_per_core_s: samples as f64 / cpu_s_per_scrape,
            busy_percent: cpu_s / window_s * 100.0,
            idle_mib: start.rss_kib as f64 / 1024.0,
            steady_mib: median(steady),
            between_mib: between,
            heap_mib,
            peak_mib: peak_kib as f64 / 1024.0,
            accepted_points: counts.0,
            expected_points: served_after * points,
            refused_points: counts.1,
            window_s,
            wall_s: wall.elapsed().as_secs_f64(),
        })
    }
}

/// Runs the selected scrape scenarios; returns their rows and the notes under the table.
pub(super) fn run(
    h: &mut Harness,
    keys: &[&str],
    kinds: &[Kind],
    reps: usize,
) -> (Vec<PRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut bodies = Vec::new();
    for v in VARIANTS.iter().filter(|v| keys.contains(&v.key)) {
        let mut row = PRow::new(v.label, v.key, Kind::Ferrotel.name());
        for rep in 0..reps {
            eprint!("{:<27} ferrotel  {}/{reps} ... ", v.label, rep + 1);
            match h.prom_run(v) {
                Ok(m) => {
                    eprintln!("{}", progress(&m));
                    if row.measures.is_empty() {
                        bodies.push(format!(
                            "{} {:.1} MB, served in {:.0} ms (p50)",
                            v.label.trim_start_matches("prom-scrape "),
                            m.body_bytes as f64 / 1e6,
                            m.serve_p50_ms
                        ));
                    }
                    row.measures.push(m);
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    row.errors.push(format!("{e:#}"));
                }
            }
        }
        rows.push(row);
        if kinds.contains(&Kind::Rotel) {
            let mut row = PRow::new(v.label, v.key, Kind::Rotel.name());
            row.not_available = Some("no Prometheus scrape receiver".into());
            rows.push(row);
        }
    }
    let exporter = match h.args.prom_exporter {
        PromExporter::Otlp => "OTLP/gRPC to the sink, no compression, no batch processor (the sink decodes each request and reads the scrape series back)",
        PromExporter::Debug => "the debug exporter, verbosity basic, no batch processor (scrape durations are not read back: `-`)",
    };
    notes.push(format!(
        "prom-scrape: {reps} run(s) per scenario, medians; `ferrotel-bench prom-target --series {}` on cpu {} (the exposition built once; {}); ferrotel alone on cpu {}: prometheus receiver, one static target, scrape_interval {INTERVAL_S}s, scrape_timeout {TIMEOUT_S}s -> {exporter}; the window runs from the first scrape to half an interval after the last one that starts within {} s",
        h.args.prom_series,
        h.args.load_cpus,
        bodies.join("; "),
        h.args.agent_cpus,
        h.prom_duration(),
    ));
    notes.push("prom-scrape columns: scrapes served and how many reported up 1 with every sample (and arrived whole); samples per scrape (scrape_samples_scraped); scrape ms: the median scrape_duration_seconds (fetch, parse, series, staleness bookkeeping; not translation or export), max ms its highest; to sink: the median time from the target starting to answer to the scrape's data at the sink; CPU-s/scr and CPU-s/M: the agent's CPU time over the window per scrape and per million samples; samples/s: samples one core takes at that cost; busy %: CPU over the window; resident memory: idle MiB before the first scrape, steady: the median over the second half of the window, peak: VmHWM; heap: the allocator's live bytes once the last scrape was handed on".to_string());
    for row in &rows {
        for m in &row.measures {
            if m.accepted_points != m.expected_points || m.refused_points > 0 {
                notes.push(format!(
                    "{}: the receiver counted {} data points accepted and {} refused; {} expected",
                    row.scenario, m.accepted_points, m.refused_points, m.expected_points
                ));
            }
        }
    }
    (rows, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_metrics_are_read_by_receiver() {
        let body = "# HELP x\notelcol_receiver_accepted_metric_points{receiver=\"otlp\",transport=\"grpc\"} 5\notelcol_receiver_accepted_metric_points{receiver=\"prometheus\",transport=\"http\"} 361650\n";
        assert_eq!(
            series_value(
                body,
                "otelcol_receiver_accepted_metric_points",
                "receiver=\"prometheus\""
            ),
            Some(361_650.0)
        );
        assert_eq!(
            series_value(body, "otelcol_receiver_refused_metric_points", "x"),
            None
        );
    }

    #[test]
    fn the_config_scrapes_the_target() {
        let c = config(9464, 8888, PromExporter::Otlp, Some(4317));
        assert!(c.contains("- targets: ['127.0.0.1:9464']"), "{c}");
        assert!(c.contains("scrape_timeout: 4s"), "{c}");
        assert!(c.contains("exporters: [otlp]"), "{c}");
        let d = config(9464, 8888, PromExporter::Debug, None);
        assert!(
            d.contains("verbosity: basic") && d.contains("exporters: [debug]"),
            "{d}"
        );
    }

    #[test]
    fn the_table_says_why_rotel_has_no_row() {
        let mut f = PRow::new("prom-scrape text", "prom-scrape-text", "ferrotel");
        f.measures.push(PMeasure {
            scrapes: 13,
            complete: 13,
            cpu_s_per_scrape: 0.25,
            ..Default::default()
        });
        let mut r = PRow::new("prom-scrape text", "prom-scrape-text", "rotel");
        r.not_available = Some("no Prometheus scrape receiver".into());
        let t = table(&[f, r]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[1].contains(" 13 "), "{t}");
        assert!(
            lines[2].ends_with("n/a: no Prometheus scrape receiver"),
            "{t}"
        );
    }
}
