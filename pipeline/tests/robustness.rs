//! Untrusted input never panics: mutated and random OTLP protobuf and JSON, compressed
//! bodies and configuration text. A fixed seed keeps every run the same.

use ferrotel_pipeline::compression::decompress;
use ferrotel_pipeline::config::decode::decode;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::pdata::{
    json, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};
use prost::Message;

/// xorshift64*: small, deterministic, good enough to shake inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Flips, inserts, deletes or duplicates a few bytes.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            match self.below(5) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 => {
                    let i = self.below(out.len() + 1);
                    out.insert(i, self.next() as u8);
                }
                2 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out.remove(i);
                }
                3 if out.len() > 2 => {
                    let a = self.below(out.len());
                    let b = (a + self.below(16)).min(out.len());
                    let chunk = out[a..b].to_vec();
                    let at = self.below(out.len());
                    out.splice(at..at, chunk);
                }
                _ => {
                    let i = self.below(out.len() + 1);
                    out.truncate(i);
                }
            }
        }
        out
    }
}

const TRACES_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},{"key":"n","value":{"intValue":"3"}},{"key":"l","value":{"arrayValue":{"values":[{"doubleValue":1.5},{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":true}}]}}]}}}]},"scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,"events":[{"name":"e","timeUnixNano":"1"}],"links":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}],"status":{"code":2,"message":"bad"}}]}]}]}"#;
const METRICS_JSON: &str = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asDouble":1.5,"timeUnixNano":"1"}]}},{"name":"s","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"7"}]}},{"name":"h","histogram":{"dataPoints":[{"count":"3","sum":6,"bucketCounts":["1","2"],"explicitBounds":[1.0]}]}},{"name":"q","summary":{"dataPoints":[{"count":"1","sum":2,"quantileValues":[{"quantile":0.5,"value":2}]}]}}]}]}]}"#;
const LOGS_JSON: &str = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","severityNumber":9,"severityText":"INFO","body":{"stringValue":"hello"},"attributes":[{"key":"a","value":{"bytesValue":"AAEC"}}],"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;

#[test]
fn otlp_decoders_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let traces = json::decode_traces(TRACES_JSON.as_bytes()).expect("seed decodes");
    let metrics = json::decode_metrics(METRICS_JSON.as_bytes()).expect("seed decodes");
    let logs = json::decode_logs(LOGS_JSON.as_bytes()).expect("seed decodes");
    let protos = [
        traces.encode_to_vec(),
        metrics.encode_to_vec(),
        logs.encode_to_vec(),
    ];
    let jsons = [
        TRACES_JSON.as_bytes(),
        METRICS_JSON.as_bytes(),
        LOGS_JSON.as_bytes(),
    ];
    for _ in 0..3000 {
        for (p, j) in protos.iter().zip(jsons) {
            let bad = rng.mutate(p);
            let _ = ExportTraceServiceRequest::decode(bad.as_slice());
            let _ = ExportMetricsServiceRequest::decode(bad.as_slice());
            let _ = ExportLogsServiceRequest::decode(bad.as_slice());
            let bad = rng.mutate(j);
            if let Ok(t) = json::decode_traces(&bad) {
                // Whatever decodes must encode again.
                let _ = json::try_encode(&t, json::TRACES_REQUEST).expect("re-encodes");
            }
            let _ = json::decode_metrics(&bad);
            let _ = json::decode_logs(&bad);
        }
    }
}

#[test]
fn decompression_never_panics() {
    let mut rng = Rng(42);
    let data = TRACES_JSON.repeat(20);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, data.as_bytes()).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zs = zstd::encode_all(data.as_bytes(), 3).expect("zstd");
    let sn = snap::raw::Encoder::new()
        .compress_vec(data.as_bytes())
        .expect("snappy");
    for _ in 0..2000 {
        for (enc, body) in [
            ("gzip", &gz),
            ("zstd", &zs),
            ("snappy", &sn),
            ("deflate", &gz),
            ("x-snappy-framed", &sn),
        ] {
            let bad = rng.mutate(body);
            let _ = decompress(enc, bad.into(), 64 * 1024);
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    endpoint: Option<String>,
    port: Option<u16>,
    list: Option<Vec<String>>,
    nested: Option<std::collections::BTreeMap<String, Probe>>,
}

#[test]
fn config_text_never_panics() {
    let mut rng = Rng(7);
    let seed =
        "endpoint: ${env:X:-localhost}:4317\nport: 80\nlist: [a, b]\nnested: {x: {port: 1}}\n";
    for _ in 0..5000 {
        let bad = rng.mutate(seed.as_bytes());
        let text = String::from_utf8_lossy(&bad);
        if let Ok(value) = Value::from_yaml_str(&text) {
            let _ = decode::<Probe>(&value);
            let mut notes = Vec::new();
            let _ = ferrotel_pipeline::config::expand::expand(
                value,
                &|_| Some("$${x}".into()),
                &mut notes,
            );
        }
    }
}
