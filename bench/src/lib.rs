//! `ferrotel-bench` as a library: the deterministic OTLP payloads, the load generator, the
//! counting sink, the loss check, the synthetic Prometheus target and the side-by-side
//! harness behind the `ferrotel-bench` binary, and what the criterion micro-benchmarks in
//! `benches/` build their inputs from.

pub mod compare;
pub mod compress;
pub mod json;
pub mod kafka;
pub mod load;
pub mod payload;
pub mod prom;
pub mod ranges;
pub mod sink;
pub mod wire;

use anyhow::Context;

use crate::payload::Signal;

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
