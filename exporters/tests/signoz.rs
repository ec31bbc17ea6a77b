#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The signoz exporter against local OTLP servers: the cloud form (a region) over TLS with
//! both protocols, the self-hosted form in plain text, the ingestion key and its header, the
//! upstream-style otlphttp block that does the same, config errors, and a key that never
//! reaches the logs.
//!
//! A region normally means `ingest.<region>.signoz.cloud:443`, which tests cannot reach:
//! `SignozExporterFactory::with_cloud_host_for_tests` sends every region to a local TLS
//! server instead, through the same resolution and TLS code. The exact production address
//! is asserted by `region_resolves_to_signoz_cloud`.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tonic::Code;

use common::{grpc_server, http_server, pki, start, Reply};
use ferrotel_exporters::otlp_grpc::config::Target;
use ferrotel_exporters::signoz::{OtlpConfig, Protocol, SignozConfig, SignozExporterFactory};
use ferrotel_pipeline::factory::{Registry, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};

const NO_QUEUE: &str = "sending_queue:\n  enabled: false\n";
const NO_RETRY: &str = "retry_on_failure:\n  enabled: false\n";

async fn exporter(factory: &SignozExporterFactory, yaml: &str) -> common::Running {
    start(factory, "signoz", yaml).await
}

fn every_signal() -> Vec<Payload> {
    vec![common::traces(3), common::metrics(4), common::logs(5)]
}

fn signoz_config(factory: &SignozExporterFactory, yaml: &str) -> SignozConfig {
    let config = common::decode_config(factory, yaml).unwrap();
    (config.as_ref() as &dyn std::any::Any)
        .downcast_ref::<SignozConfig>()
        .unwrap()
        .clone()
}

#[test]
fn region_resolves_to_signoz_cloud() {
    let factory = SignozExporterFactory::new();
    let http = signoz_config(&factory, "region: eu\ningestion_key: k\n");
    assert_eq!(http.protocol, Protocol::Http);
    assert_eq!(http.endpoint(), "https://ingest.eu.signoz.cloud:443");
    let OtlpConfig::Http(otlp) = &http.otlp else {
        panic!("http expected")
    };
    assert_eq!(
        otlp.signal_url(Signal::Logs).unwrap(),
        "https://ingest.eu.signoz.cloud:443/v1/logs"
    );

    let grpc = signoz_config(&factory, "region: eu\ningestion_key: k\nprotocol: grpc\n");
    let OtlpConfig::Grpc(otlp) = &grpc.otlp else {
        panic!("grpc expected")
    };
    assert_eq!(
        otlp.target(),
        Target {
            authority: "ingest.eu.signoz.cloud:443".to_string(),
            tls: true,
        }
    );
}

#[tokio::test]
async fn cloud_form_delivers_every_signal_over_tls_with_the_key() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_file(&dir, &pki);
    for protocol in ["http", "grpc"] {
        let server = match protocol {
            "http" => http_server(Some(&pki)).await,
            _ => grpc_server(Some(&pki)).await,
        };
        let factory = SignozExporterFactory::with_cloud_host_for_tests(server.addr.to_string());
        let exp = exporter(
            &factory,
            &format!(
                "region: eu\ningestion_key: cloud-key-0123\nprotocol: {protocol}\ntls:\n  ca_file: {ca}\n{NO_QUEUE}"
            ),
        )
        .await;
        for payload in every_signal() {
            exp.consume(payload).await.unwrap();
        }
        assert_eq!(server.backend.received(), every_signal(), "{protocol}");
        let attempts = server.backend.attempts();
        assert_eq!(attempts.len(), 3, "{protocol}");
        for a in &attempts {
            assert_eq!(
                a.header("signoz-ingestion-key"),
                Some("cloud-key-0123"),
                "{protocol}"
            );
            assert_eq!(a.header("signoz-access-token"), None, "{protocol}");
        }
        if protocol == "http" {
            let paths: Vec<&str> = attempts.iter().map(|a| a.path.as_str()).collect();
            assert_eq!(paths, ["/v1/traces", "/v1/metrics", "/v1/logs"]);
            // TLS with ALPN, as to the real ingestion host.
            assert_eq!(attempts[0].version, http::Version::HTTP_2);
        }
        assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 3.0);
        assert_eq!(exp.metric("otelcol_exporter_sent_metric_points"), 4.0);
        assert_eq!(exp.metric("otelcol_exporter_sent_log_records"), 5.0);
        exp.stop().await;
    }
}

#[tokio::test]
async fn a_region_never_falls_back_to_plain_text() {
    // A plain-text server: a region must not reach it, even with tls.insecure.
    for protocol in ["http", "grpc"] {
        let server = match protocol {
            "http" => http_server(None).await,
            _ => grpc_server(None).await,
        };
        let factory = SignozExporterFactory::with_cloud_host_for_tests(server.addr.to_string());
        let exp = exporter(
            &factory,
            &format!(
                "region: us\ningestion_key: k\nprotocol: {protocol}\ntls:\n  insecure: true\n{NO_RETRY}{NO_QUEUE}"
            ),
        )
        .await;
        let err = exp.consume(common::traces(1)).await.unwrap_err();
        assert!(err.kind.is_retryable(), "{protocol}: {}", err.message);
        assert!(server.backend.received().is_empty(), "{protocol}");
    }
}

#[tokio::test]
async fn self_hosted_plain_text_with_and_without_a_key() {
    for protocol in ["http", "grpc"] {
        let server = match protocol {
            "http" => http_server(None).await,
            _ => grpc_server(None).await,
        };
        let endpoint = format!("http://{}", server.addr);
        let factory = SignozExporterFactory::new();

        // No key: nothing SigNoz-specific is sent.
        let exp = exporter(
            &factory,
            &format!("endpoint: {endpoint}\nprotocol: {protocol}\n{NO_QUEUE}"),
        )
        .await;
        for payload in every_signal() {
            exp.consume(payload).await.unwrap();
        }
        exp.stop().await;

        // A key, in the default header.
        let exp = exporter(
            &factory,
            &format!(
                "endpoint: {endpoint}\nprotocol: {protocol}\ningestion_key: self-key\n{NO_QUEUE}"
            ),
        )
        .await;
        exp.consume(common::logs(2)).await.unwrap();
        exp.stop().await;

        // The older header name, as the k8s-infra chart sends it.
        let exp = exporter(
            &factory,
            &format!("endpoint: {endpoint}\nprotocol: {protocol}\ningestion_key: old-key\nkey_header: signoz-access-token\n{NO_QUEUE}"),
        )
        .await;
        exp.consume(common::metrics(1)).await.unwrap();
        exp.stop().await;

        let mut expected = every_signal();
        expected.push(common::logs(2));
        expected.push(common::metrics(1));
        assert_eq!(server.backend.received(), expected, "{protocol}");
        let keys: Vec<(Option<String>, Option<String>)> = server
            .backend
            .attempts()
            .iter()
            .map(|a| {
                (
                    a.header("signoz-ingestion-key").map(str::to_string),
                    a.header("signoz-access-token").map(str::to_string),
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                (None, None),
                (None, None),
                (None, None),
                (Some("self-key".to_string()), None),
                (None, Some("old-key".to_string())),
            ],
            "{protocol}"
        );
    }
}

#[tokio::test]
async fn bare_host_port_with_insecure_is_plain_text_for_both_protocols() {
    // What the k8s-infra chart passes: no scheme, tls.insecure: true.
    for protocol in ["http", "grpc"] {
        let server = match protocol {
            "http" => http_server(None).await,
            _ => grpc_server(None).await,
        };
        let exp = exporter(
            &SignozExporterFactory::new(),
            &format!(
                "endpoint: {}\nprotocol: {protocol}\ntls:\n  insecure: true\ningestion_key: k\n{NO_QUEUE}",
                server.addr
            ),
        )
        .await;
        exp.consume(common::traces(2)).await.unwrap();
        assert_eq!(
            server.backend.received(),
            vec![common::traces(2)],
            "{protocol}"
        );
        assert_eq!(
            server.backend.attempts()[0].header("signoz-ingestion-key"),
            Some("k")
        );
    }
}

#[tokio::test]
async fn configured_headers_and_settings_are_kept() {
    let server = http_server(None).await;
    let exp = exporter(
        &SignozExporterFactory::new(),
        &format!(
            "endpoint: http://{}\ningestion_key: k\nheaders:\n  x-tenant: team-a\ncompression: zstd\nencoding: json\n{NO_QUEUE}",
            server.addr
        ),
    )
    .await;
    exp.consume(common::logs(3)).await.unwrap();
    assert_eq!(server.backend.received(), vec![common::logs(3)]);
    let a = &server.backend.attempts()[0];
    assert_eq!(a.header("x-tenant"), Some("team-a"));
    assert_eq!(a.header("signoz-ingestion-key"), Some("k"));
    assert_eq!(a.header("content-encoding"), Some("zstd"));
    assert_eq!(a.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn the_upstream_style_otlphttp_block_keeps_working() {
    let mut registry = Registry::default();
    ferrotel_exporters::register(&mut registry);
    let otlphttp = registry.exporters.get("otlphttp").unwrap().factory.clone();
    let server = http_server(None).await;

    // As the k8s-infra chart renders it.
    let upstream = start(
        otlphttp.as_ref(),
        "otlphttp",
        &format!(
            "endpoint: http://{}\nheaders:\n  signoz-access-token: chart-key\ntls:\n  insecure: true\n  insecure_skip_verify: false\n{NO_QUEUE}",
            server.addr
        ),
    )
    .await;
    upstream.consume(common::traces(2)).await.unwrap();

    // The one-block form with the same header.
    let signoz = exporter(
        &SignozExporterFactory::new(),
        &format!(
            "endpoint: http://{}\ningestion_key: chart-key\nkey_header: signoz-access-token\n{NO_QUEUE}",
            server.addr
        ),
    )
    .await;
    signoz.consume(common::traces(2)).await.unwrap();

    assert_eq!(
        server.backend.received(),
        vec![common::traces(2), common::traces(2)]
    );
    let attempts = server.backend.attempts();
    assert_eq!(attempts[0].header("signoz-access-token"), Some("chart-key"));
    // Both send exactly the same request.
    let sorted = |i: usize| {
        let mut h = attempts[i].headers.clone();
        h.sort();
        h
    };
    assert_eq!(sorted(0), sorted(1));
    assert_eq!(attempts[0].path, attempts[1].path);
}

#[test]
fn config_errors() {
    let factory = SignozExporterFactory::new();
    let err = |yaml: &str| common::decode_config(&factory, yaml).unwrap_err();
    assert_eq!(
        err("region: us\nendpoint: https://ingest.us.signoz.cloud:443\ningestion_key: k\n"),
        "region and endpoint are mutually exclusive: set region for SigNoz Cloud, or endpoint for a self-hosted SigNoz"
    );
    assert_eq!(
        err("ingestion_key: k\nprotocol: grpc\n"),
        "either region (SigNoz Cloud) or endpoint (self-hosted SigNoz) must be set"
    );
    assert_eq!(
        err("region: Europe\ningestion_key: k\n"),
        "region: invalid region \"Europe\": a SigNoz Cloud region is lowercase letters, digits and '-', such as us, eu, in or in2"
    );
    assert_eq!(
        err("region: eu\ningestion_key: k\nprotocol: http/protobuf\n"),
        "protocol: invalid value \"http/protobuf\", expected one of grpc, http"
    );
    assert_eq!(
        err("region: eu\nprotocol: grpc\n"),
        "ingestion_key: required with region: SigNoz Cloud refuses data without the ingestion key"
    );
    assert_eq!(
        err("region: eu\ningestion_key: k\nkey_header: x-api-key\n"),
        "key_header: invalid value \"x-api-key\", expected one of signoz-ingestion-key, signoz-access-token"
    );
    assert_eq!(
        err("region: eu\ningestion_key: k\nheaders:\n  signoz-ingestion-key: k2\n"),
        "headers: \"signoz-ingestion-key\" is also set by ingestion_key: give the key in one place"
    );
    let unknown = err("region: eu\ningestion_key: k\ningestion_token: k\n");
    assert!(
        unknown.starts_with("unknown field \"ingestion_token\", expected one of region, ingestion_key, key_header, protocol, endpoint,"),
        "{unknown}"
    );
    // The OTLP exporter's own checks and words, unchanged.
    assert_eq!(
        err("endpoint: http://c:4317\nprotocol: grpc\ncompression: deflate\n"),
        "unsupported compression type \"deflate\""
    );
    assert_eq!(
        err("endpoint: ftp://c:4318\n"),
        "endpoint must be a valid URL: unsupported scheme \"ftp\" (use http or https)"
    );
}

#[test]
fn registered_as_alpha_for_every_signal() {
    let mut registry = Registry::default();
    ferrotel_exporters::register(&mut registry);
    let registered = registry.exporters.get("signoz").unwrap();
    assert_eq!(registered.deprecated_for, None);
    for signal in Signal::ALL {
        assert_eq!(registered.factory.stability(signal), Some(Stability::Alpha));
    }
    // The registered factory resolves regions to SigNoz Cloud, not to a test host.
    let config = registered
        .factory
        .decode(
            &ferrotel_pipeline::config::value::Value::from_yaml_str(
                "region: in\ningestion_key: k\n",
            )
            .unwrap(),
        )
        .unwrap();
    let config = (config.as_ref() as &dyn std::any::Any)
        .downcast_ref::<SignozConfig>()
        .unwrap();
    assert_eq!(config.endpoint(), "https://ingest.in.signoz.cloud:443");
}

// ---------------------------------------------------------------- logs

/// Every event and span field, as text: what any log output could show.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

struct FieldText<'a>(&'a mut String);

impl tracing::field::Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

struct CaptureAll {
    out: Captured,
    next_id: std::sync::atomic::AtomicU64,
}

impl tracing::Subscriber for CaptureAll {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut out = self.out.0.lock().unwrap();
        let _ = write!(out, "span {}", span.metadata().name());
        span.record(&mut FieldText(&mut out));
        out.push('\n');
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(id + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut out = self.out.0.lock().unwrap();
        values.record(&mut FieldText(&mut out));
        out.push('\n');
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.out.0.lock().unwrap();
        let m = event.metadata();
        let _ = write!(out, "{} {}", m.level(), m.target());
        event.record(&mut FieldText(&mut out));
        out.push('\n');
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// A current-thread runtime: the exporter's tasks run on this thread, under this subscriber.
#[tokio::test]
async fn the_key_never_reaches_the_logs() {
    const KEY: &str = "sz-4f9c2e7a1b-secret";
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(CaptureAll {
        out: captured.clone(),
        next_id: Default::default(),
    });
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_file(&dir, &pki);

    for protocol in ["http", "grpc"] {
        // The server refuses the key: a permanent error, logged with the server's answer.
        let server = match protocol {
            "http" => {
                let s = http_server(Some(&pki)).await;
                s.backend
                    .script(vec![Reply::http_status(401, 16, "invalid ingestion key")]);
                s
            }
            _ => {
                let s = grpc_server(Some(&pki)).await;
                s.backend.script(vec![Reply::grpc(
                    Code::Unauthenticated,
                    "invalid ingestion key",
                )]);
                s
            }
        };
        let factory = SignozExporterFactory::with_cloud_host_for_tests(server.addr.to_string());
        let exp = exporter(
            &factory,
            &format!("region: eu\ningestion_key: {KEY}\nprotocol: {protocol}\ntls:\n  ca_file: {ca}\n{NO_QUEUE}"),
        )
        .await;
        let err = exp.consume(common::logs(1)).await.unwrap_err();
        assert!(!err.kind.is_retryable(), "{}", err.message);
        assert!(!err.message.contains(KEY), "{}", err.message);
        assert_eq!(
            server.backend.attempts()[0].header("signoz-ingestion-key"),
            Some(KEY)
        );
        exp.stop().await;

        // Nothing listens: a network error, logged as the request's failure.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let factory = SignozExporterFactory::with_cloud_host_for_tests(closed.to_string());
        let exp = exporter(
            &factory,
            &format!("region: eu\ningestion_key: {KEY}\nprotocol: {protocol}\ntls:\n  ca_file: {ca}\n{NO_RETRY}{NO_QUEUE}"),
        )
        .await;
        let err = exp.consume(common::traces(1)).await.unwrap_err();
        assert!(err.kind.is_retryable(), "{}", err.message);
        assert!(!err.message.contains(KEY), "{}", err.message);
        exp.stop().await;
    }

    let logs = captured.text();
    assert_eq!(
        logs.matches("Exporting failed. Dropping data: the error is permanent")
            .count(),
        2,
        "{logs}"
    );
    assert_eq!(
        logs.matches("Exporting failed. Dropping data: retry_on_failure is disabled")
            .count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("invalid ingestion key"), "{logs}");
    assert!(!logs.contains(KEY), "the key was logged:\n{logs}");
}
