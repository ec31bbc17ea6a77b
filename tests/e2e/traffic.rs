//! OTLP/JSON payloads and an HTTP client to post them.

use serde_json::{json, Value};

/// A trace request with `n` spans whose ids are derived from `seed` (unique per seed and index).
pub fn traces(seed: u64, n: u64) -> Value {
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "traceId": format!("{:016x}{:016x}", seed + 1, i + 1),
                "spanId": span_id(seed, i),
                "name": "e2e-span",
                "kind": 2,
                "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000001000000",
                "attributes": [{"key": "i", "value": {"intValue": i.to_string()}}],
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "e2e-traffic"}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": spans}],
    }]})
}

/// The span id `traces(seed, _)` gives its span number `i`.
pub fn span_id(seed: u64, i: u64) -> String {
    format!("{:08x}{:08x}", seed + 1, i + 1)
}

pub fn metrics(n: u64) -> Value {
    let points: Vec<Value> = (0..n)
        .map(|i| {
            json!({"asInt": (i + 1).to_string(), "timeUnixNano": "1700000000000000000",
            "attributes": [{"key": "i", "value": {"intValue": i.to_string()}}]})
        })
        .collect();
    json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "e2e.gauge", "gauge": {"dataPoints": points}}
    ]}]}]})
}

pub fn logs(n: u64) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"severityNumber": 9, "body": {"stringValue": format!("log {i}")}}))
        .collect();
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})
}

/// POSTs OTLP/JSON to `http://127.0.0.1:{port}/v1/{signal}`; the response status.
pub async fn post(
    client: &reqwest::Client,
    port: u16,
    signal: &str,
    body: &Value,
) -> Result<u16, reqwest::Error> {
    let resp = client
        .post(format!("http://127.0.0.1:{port}/v1/{signal}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    Ok(status)
}
