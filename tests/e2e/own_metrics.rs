//! Reads the agent's own metrics from its Prometheus endpoint.

use std::time::{Duration, Instant};

use crate::harness;

/// The exposition text of the agent's metrics endpoint.
pub fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    match harness::http_get(&url) {
        Ok((200, body)) => body,
        other => panic!("GET {url}: {other:?}"),
    }
}

/// The sum of the samples of `name` whose labels include all of `labels`; `None` when
/// there is no such sample.
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(parts) => parts,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let has = |k: &str, v: &str| label_text.contains(&format!("{k}=\"{v}\""));
        if labels.iter().all(|(k, v)| has(k, v)) {
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// Like `sample`, with an absent sample counting as 0.
pub fn count(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(exposition, name, labels).unwrap_or(0.0)
}

/// A sample expected: metric name, labels it must have, value.
pub type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Scrapes until every `(name, labels, value)` holds, at most `timeout`; panics listing
/// what differs. Counters move a moment after the data they count, so tests poll.
pub fn wait_for(
    port: u16,
    timeout: Duration,
    expected: &[Expected],
    context: impl Fn() -> String,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = scrape(port);
        let wrong: Vec<String> = expected
            .iter()
            .filter_map(|(name, labels, want)| {
                let got = sample(&text, name, labels);
                (got != Some(*want)).then(|| format!("{name}{labels:?} = {got:?}, want {want}"))
            })
            .collect();
        if wrong.is_empty() {
            return text;
        }
        if Instant::now() >= deadline {
            panic!(
                "agent metrics not as expected within {timeout:?}:\n{}\n\n{}\n{}",
                wrong.join("\n"),
                text.lines()
                    .filter(|l| l.starts_with("otelcol_"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
