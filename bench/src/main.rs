//! `ferrotel-bench`: a deterministic OTLP load generator (`load`), a counting and verifying
//! sink (`sink`), a loss check (`check`) and the side-by-side harness (`compare`) that
//! `bench/run` drives to measure ferrotel and its peers with the same traffic.

mod compare;
mod compress;
mod json;
mod load;
mod payload;
mod ranges;
mod sink;
mod wire;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::payload::Signal;

#[derive(Parser)]
#[command(
    name = "ferrotel-bench",
    version,
    about = "OTLP load generator, counting sink and side-by-side benchmark harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send OTLP requests (gRPC, HTTP protobuf or HTTP JSON) and print a JSON summary.
    Load(load::LoadArgs),
    /// Accept OTLP/gRPC and OTLP/HTTP, count items, check sequence numbers, report as JSON.
    Sink(sink::SinkArgs),
    /// Hold a sink report against what `load --ranges-file` says was sent; exit 1 on loss
    /// or duplicates.
    Check {
        /// The file `load --ranges-file` wrote.
        #[arg(long)]
        ranges: PathBuf,
        /// The sink's `--report-file`.
        #[arg(long)]
        sink_report: PathBuf,
    },
    /// Run the side-by-side benchmark (see bench/run) and print one table.
    Compare(compare::CompareArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => runtime()?.block_on(load::run(args)),
        Command::Sink(args) => runtime()?.block_on(sink::run(args)),
        Command::Check {
            ranges,
            sink_report,
        } => {
            let r: serde_json::Value = read_json(&ranges)?;
            let s: serde_json::Value = read_json(&sink_report)?;
            let v = check(&r, &s)?;
            println!("{}", serde_json::to_string(&v)?);
            if v.lost > 0 || v.duplicates > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Compare(args) => compare::run(args),
    }
}

fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

fn range_list(v: &serde_json::Value) -> Vec<ranges::Range> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| Some((r.get(0)?.as_u64()?, r.get(1)?.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The verdict for one load run (its ranges file) against a sink report.
pub fn check(
    ranges_file: &serde_json::Value,
    sink: &serde_json::Value,
) -> anyhow::Result<ranges::Verdict> {
    let signal = ranges_file["signal"]
        .as_str()
        .context("ranges file: signal")?;
    if !Signal::ALL.iter().any(|s| s.name() == signal) {
        anyhow::bail!("ranges file: unknown signal {signal}");
    }
    let start = ranges_file["seq_start"]
        .as_u64()
        .context("ranges file: seq_start")?;
    let end = ranges_file["seq_end"]
        .as_u64()
        .context("ranges file: seq_end")?;
    let unacked = range_list(&ranges_file["unacked"]);
    let unsent = ranges::normalize(range_list(&ranges_file["unsent"]));
    let s = &sink["signals"][signal];
    let present = range_list(&s["present"]);
    let duplicates = s["duplicates"].as_u64().unwrap_or(0);
    let sent = ranges::subtract(&[(start, end)], &unsent);
    Ok(ranges::verdict(&sent, &unacked, &present, duplicates))
}
