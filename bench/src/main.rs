//! `ferrotel-bench`: a deterministic OTLP load generator (`load`), a counting and verifying
//! sink (`sink`), a loss check (`check`), a synthetic Prometheus target (`prom-target`) and
//! the side-by-side harness (`compare`) that `bench/run` drives to measure ferrotel and its
//! peers with the same traffic.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ferrotel_bench::{check, compare, kafka, load, prom, sink};

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
    /// Write trace requests to a Kafka topic, one per record; print a JSON summary.
    KafkaProduce(kafka::ProduceArgs),
    /// Read a Kafka topic with a fresh consumer group; count records (and spans); print a
    /// JSON summary.
    KafkaConsume(kafka::ConsumeArgs),
    /// Serve a generated Prometheus exposition of `--series` samples at /metrics (text
    /// format, OpenMetrics when the request asks for it); print one JSON line per scrape.
    PromTarget(prom::TargetArgs),
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
        Command::KafkaProduce(args) => {
            println!("{}", kafka::produce(&args)?);
            Ok(())
        }
        Command::KafkaConsume(args) => {
            println!("{}", kafka::consume(&args)?);
            Ok(())
        }
        Command::PromTarget(args) => runtime()?.block_on(prom::serve(args)),
    }
}

fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}
