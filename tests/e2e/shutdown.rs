//! SIGTERM while OTLP/HTTP requests are in flight: every request answered 200 is in the
//! file exporter's output after the agent exits, and the exit code is 0.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{self, Agent};
use crate::traffic;

const SENDERS: u64 = 32;
const MAX_REQUESTS_PER_SENDER: u64 = 400;
const SPANS_PER_REQUEST: u64 = 50;
/// Acknowledged requests before SIGTERM, so the exporter has work of its own to drain.
const ACKED_BEFORE_SIGTERM: u64 = 100;

#[derive(Default)]
struct Outcomes {
    acked: Vec<u64>,
    sent: Vec<u64>,
    other_statuses: Vec<u16>,
    errors: u64,
}

#[test]
fn shutdown_drains_in_flight() {
    let mut agent =
        Agent::start(|ports, dir| harness::otlp_to_file_config(ports, &dir.join("out.jsonl"), ""));
    let out_path = agent.dir.path().join("out.jsonl");
    let port = agent.ports.http;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let acked_total = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (client, acked_total, in_flight) =
                (client.clone(), acked_total.clone(), in_flight.clone());
            rt.spawn(async move {
                let mut out = Outcomes::default();
                for k in 0..MAX_REQUESTS_PER_SENDER {
                    let seed = sender * 10_000 + k;
                    let body = traffic::traces(seed, SPANS_PER_REQUEST);
                    out.sent.push(seed);
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let result = traffic::post(&client, port, "traces", &body).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match result {
                        Ok(200) => {
                            out.acked.push(seed);
                            acked_total.fetch_add(1, Ordering::SeqCst);
                        }
                        // After SIGTERM: refused, reset or an error status; stop sending.
                        Ok(status) => {
                            out.other_statuses.push(status);
                            break;
                        }
                        Err(_) => {
                            out.errors += 1;
                            break;
                        }
                    }
                }
                out
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_total.load(Ordering::SeqCst) < ACKED_BEFORE_SIGTERM {
        assert!(
            Instant::now() < deadline,
            "only {} requests acknowledged in 60 s\n{}",
            acked_total.load(Ordering::SeqCst),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let in_flight_at_sigterm = in_flight.load(Ordering::SeqCst);
    agent.sigterm();
    let status = agent.wait_exit();

    let outcomes: Vec<Outcomes> = rt.block_on(async {
        let mut all = Vec::new();
        for s in senders {
            all.push(tokio::time::timeout(Duration::from_secs(60), s).await);
        }
        all.into_iter()
            .map(|r| r.expect("sender finished").expect("sender task"))
            .collect()
    });
    let log = agent.log();
    assert_eq!(status.code(), Some(0), "agent exit status\n{log}");
    assert!(
        in_flight_at_sigterm > 0,
        "no request was in flight at SIGTERM; the test proved nothing"
    );

    let acked: Vec<u64> = outcomes.iter().flat_map(|o| o.acked.clone()).collect();
    let sent: HashSet<u64> = outcomes.iter().flat_map(|o| o.sent.clone()).collect();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let statuses: Vec<u16> = outcomes
        .iter()
        .flat_map(|o| o.other_statuses.clone())
        .collect();
    let sent_ids: HashSet<String> = sent
        .iter()
        .flat_map(|&seed| (0..SPANS_PER_REQUEST).map(move |i| traffic::span_id(seed, i)))
        .collect();

    let mut written = HashSet::new();
    for request in harness::read_json_lines(&out_path) {
        for rs in request["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    let id = span["spanId"].as_str().expect("spanId").to_string();
                    assert!(sent_ids.contains(&id), "span {id} was never sent");
                    assert!(written.insert(id.clone()), "span {id} written twice");
                }
            }
        }
    }
    let missing: Vec<String> = acked
        .iter()
        .flat_map(|&seed| (0..SPANS_PER_REQUEST).map(move |i| traffic::span_id(seed, i)))
        .filter(|id| !written.contains(id))
        .collect();
    eprintln!(
        "requests sent {}, answered 200 {}, other statuses {:?}, errors {}; in flight at SIGTERM {}; spans written {}",
        sent.len(),
        acked.len(),
        statuses,
        errors,
        in_flight_at_sigterm,
        written.len()
    );
    assert!(
        missing.is_empty(),
        "{} spans of requests answered 200 are missing from the output (first: {:?})\n{log}",
        missing.len(),
        missing.first()
    );
}
