#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The otlp_grpc exporter against a real tonic OTLP server on 127.0.0.1: delivery of every
//! signal, compression, metadata, the retry rules for gRPC codes, partial success, TLS and
//! the endpoint forms; and its configuration.

mod common;

use std::time::Duration;

use tonic::Code;

use common::{grpc_server, pki, start, Reply};
use ferrotel_exporters::otlp_grpc::{OtlpGrpcConfig, OtlpGrpcExporterFactory};
use ferrotel_pipeline::component::ErrorKind;
use ferrotel_pipeline::factory::Registry;

const FAST_RETRY: &str = "retry_on_failure:\n  initial_interval: 100ms\n  max_interval: 200ms\n";
const NO_QUEUE: &str = "sending_queue:\n  enabled: false\n";

async fn exporter(yaml: &str) -> common::Running {
    start(&OtlpGrpcExporterFactory, "otlp_grpc", yaml).await
}

fn plain(addr: std::net::SocketAddr, extra: &str) -> String {
    format!("endpoint: {addr}\ntls:\n  insecure: true\n{extra}")
}

#[tokio::test]
async fn delivers_every_signal_with_each_compression() {
    for compression in ["gzip", "zstd", "none"] {
        let server = grpc_server(None).await;
        let exp = exporter(&plain(
            server.addr,
            &format!("compression: {compression}\n"),
        ))
        .await;
        let sent = vec![common::traces(3), common::metrics(4), common::logs(5)];
        for p in &sent {
            exp.consume(p.clone()).await.unwrap();
        }
        let mut got = server.backend.wait_received(3).await;
        got.sort_by_key(|p| p.signal());
        assert_eq!(got, sent, "{compression}");
        for attempt in server.backend.attempts() {
            let expected = if compression == "none" {
                None
            } else {
                Some(compression)
            };
            assert_eq!(attempt.header("grpc-encoding"), expected, "{compression}");
        }
        exp.stop().await;
        assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 3.0);
        assert_eq!(exp.metric("otelcol_exporter_sent_metric_points"), 4.0);
        assert_eq!(exp.metric("otelcol_exporter_sent_log_records"), 5.0);
    }
}

#[tokio::test]
async fn configured_headers_arrive_as_metadata() {
    let server = grpc_server(None).await;
    let exp = exporter(&plain(
        server.addr,
        "headers:\n  signoz-ingestion-key: secret-key\n  X-Tenant: 42\n",
    ))
    .await;
    exp.consume(common::traces(1)).await.unwrap();
    server.backend.wait_received(1).await;
    let attempt = &server.backend.attempts()[0];
    assert_eq!(attempt.header("signoz-ingestion-key"), Some("secret-key"));
    assert_eq!(attempt.header("x-tenant"), Some("42"));
    let agent = attempt.header("user-agent").unwrap();
    assert!(agent.starts_with("ferrotel/"), "{agent}");
    // The attempt's deadline (the default timeout, 5 s), as a Go client sends it.
    assert_eq!(attempt.header("grpc-timeout"), Some("5000000u"));
    assert_eq!(attempt.header("content-type"), Some("application/grpc"));
    assert_eq!(attempt.header("te"), Some("trailers"));
    exp.stop().await;
}

#[tokio::test]
async fn unavailable_then_success_is_delivered_once() {
    let server = grpc_server(None).await;
    server
        .backend
        .script(vec![Reply::grpc(Code::Unavailable, "try later")]);
    let exp = exporter(&plain(server.addr, FAST_RETRY)).await;
    exp.consume(common::traces(4)).await.unwrap();
    let got = server.backend.wait_received(1).await;
    assert_eq!(got, vec![common::traces(4)]);
    assert_eq!(server.backend.attempts().len(), 2);
    exp.stop().await;
    assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 4.0);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_spans"), 0.0);
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_waits_the_delay() {
    let server = grpc_server(None).await;
    server.backend.script(vec![Reply::Grpc {
        code: Code::ResourceExhausted,
        message: "slow down".into(),
        retry: Some(Duration::from_secs(1)),
    }]);
    let exp = exporter(&format!("{}{NO_QUEUE}", plain(server.addr, FAST_RETRY))).await;
    exp.consume(common::metrics(2)).await.unwrap();
    let attempts = server.backend.attempts();
    assert_eq!(attempts.len(), 2);
    let waited = attempts[1].at - attempts[0].at;
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert_eq!(server.backend.received(), vec![common::metrics(2)]);
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_is_not_retried() {
    let server = grpc_server(None).await;
    server
        .backend
        .script(vec![Reply::grpc(Code::ResourceExhausted, "quota")]);
    let exp = exporter(&format!("{}{NO_QUEUE}", plain(server.addr, FAST_RETRY))).await;
    let err = exp.consume(common::logs(3)).await.unwrap_err();
    assert!(err.message.contains("ResourceExhausted"), "{}", err.message);
    assert_eq!(server.backend.attempts().len(), 1);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_log_records"), 3.0);
}

#[tokio::test]
async fn invalid_argument_is_one_attempt_and_counted() {
    let server = grpc_server(None).await;
    server
        .backend
        .script(vec![Reply::grpc(Code::InvalidArgument, "bad span")]);
    // With the queue on: the batch is accepted, then dropped after one attempt.
    let exp = exporter(&plain(server.addr, FAST_RETRY)).await;
    exp.consume(common::traces(5)).await.unwrap();
    let deadline = tokio::time::Instant::now() + common::LIMIT;
    while exp.metric("otelcol_exporter_send_failed_spans") < 5.0 {
        assert!(tokio::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Long enough for a retry to have happened if there were one.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.backend.attempts().len(), 1);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_spans"), 5.0);
    assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 0.0);
    exp.stop().await;

    // Without the queue the caller hears the permanent error and its message.
    server
        .backend
        .script(vec![Reply::grpc(Code::InvalidArgument, "bad span")]);
    let exp = exporter(&format!("{}{NO_QUEUE}", plain(server.addr, FAST_RETRY))).await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert!(!err.kind.is_retryable());
    assert!(
        err.message.contains("InvalidArgument") && err.message.contains("bad span"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn partial_success_is_reported_and_not_retried() {
    let server = grpc_server(None).await;
    *server.backend.partial.lock().unwrap() = Some((2, "two spans too old".into()));
    let exp = exporter(&format!("{}{NO_QUEUE}", plain(server.addr, FAST_RETRY))).await;
    let accepted = exp.consume(common::traces(5)).await.unwrap();
    assert_eq!(accepted.rejected_items, 2);
    assert_eq!(accepted.message, "two spans too old");
    assert_eq!(server.backend.attempts().len(), 1);
    assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 3.0);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_spans"), 2.0);
}

#[tokio::test]
async fn tls_with_the_ca_and_without_it() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_file(&dir, &pki);
    let server = grpc_server(Some(&pki)).await;

    // A bare host:port means TLS; the CA makes the server's certificate trusted.
    let exp = exporter(&format!(
        "endpoint: {}\ntls:\n  ca_file: {ca}\n",
        server.addr
    ))
    .await;
    exp.consume(common::traces(2)).await.unwrap();
    server.backend.wait_received(1).await;
    exp.stop().await;

    // https:// with the CA given inline, checked against the name "localhost".
    let exp = exporter(&format!(
        "endpoint: https://{}\ntls:\n  ca_pem: |\n{}  server_name_override: localhost\n",
        server.addr,
        indent(&pki.ca_pem, 4)
    ))
    .await;
    exp.consume(common::logs(1)).await.unwrap();
    server.backend.wait_received(2).await;
    exp.stop().await;

    // Without the CA the handshake fails: retryable, nothing delivered.
    let exp = exporter(&format!(
        "endpoint: https://{}\nretry_on_failure:\n  enabled: false\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{}", err.message);
    assert!(err.message.contains("certificate"), "{}", err.message);
    assert_eq!(server.backend.received().len(), 2);
    assert_eq!(server.backend.attempts().len(), 2);

    // insecure_skip_verify accepts the certificate without the CA.
    let exp = exporter(&format!(
        "endpoint: {}\ntls:\n  insecure_skip_verify: true\n",
        server.addr
    ))
    .await;
    exp.consume(common::metrics(1)).await.unwrap();
    server.backend.wait_received(3).await;
    exp.stop().await;
}

fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

#[tokio::test]
async fn endpoint_forms() {
    let server = grpc_server(None).await;
    for endpoint in [
        format!("{}", server.addr),
        format!("http://{}", server.addr),
        format!("dns:///{}", server.addr),
    ] {
        let exp = exporter(&format!("endpoint: {endpoint}\ntls:\n  insecure: true\n")).await;
        exp.consume(common::traces(1)).await.unwrap();
        exp.stop().await;
    }
    assert_eq!(server.backend.received().len(), 3);

    // https:// forces TLS even with insecure: true, so a plain server is not reached.
    let exp = exporter(&format!(
        "endpoint: https://{}\ntls:\n  insecure: true\nretry_on_failure:\n  enabled: false\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    assert!(exp.consume(common::traces(1)).await.is_err());
    assert_eq!(server.backend.received().len(), 3);
}

#[tokio::test]
async fn starts_while_the_backend_is_down_and_delivers_once_it_is_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exp = exporter(&format!(
        "endpoint: {addr}\ntls:\n  insecure: true\nretry_on_failure:\n  enabled: false\n{NO_QUEUE}"
    ))
    .await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{}", err.message);
    assert!(err.message.contains("Unavailable"), "{}", err.message);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_spans"), 1.0);

    // The same channel connects once something listens.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = common::grpc_server_on(listener, None).await;
    exp.consume(common::traces(2)).await.unwrap();
    assert_eq!(server.backend.received(), vec![common::traces(2)]);
    assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 2.0);
}

#[tokio::test]
async fn wait_for_ready_waits_for_the_backend() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exp = exporter(&format!(
        "endpoint: {addr}\ntls:\n  insecure: true\nwait_for_ready: true\ntimeout: 10s\nretry_on_failure:\n  enabled: false\n{NO_QUEUE}"
    ))
    .await;
    let send = tokio::spawn(async move {
        let r = exp.consume(common::traces(1)).await;
        (r, exp)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!send.is_finished(), "the call waits for the connection");
    // Bring a server up on the same port.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = common::grpc_server_on(listener, None).await;
    let (result, exp) = send.await.unwrap();
    result.unwrap();
    assert_eq!(server.backend.received().len(), 1);
    exp.stop().await;
}

#[test]
fn config_defaults_and_decoding() {
    let factory = OtlpGrpcExporterFactory;
    let config = common::decode_config(&factory, "endpoint: collector:4317\n").unwrap();
    let config = (config.as_ref() as &dyn std::any::Any)
        .downcast_ref::<OtlpGrpcConfig>()
        .unwrap()
        .clone();
    assert_eq!(config.timeout.get(), Duration::from_secs(5));
    assert_eq!(config.compression.encoding(), Some("gzip"));
    assert_eq!(config.write_buffer_size, 512 * 1024);
    assert!(config.retry_on_failure.enabled);
    assert_eq!(config.sending_queue.queue_size, 1000);
    assert!(config.target().tls);

    let full = "endpoint: https://collector:4317\ncompression: zstd\ntimeout: 10s\nheaders:\n  a: b\nbalancer_name: round_robin\nkeepalive:\n  time: 20s\n  timeout: 30s\n  permit_without_stream: true\nwrite_buffer_size: 1024\nread_buffer_size: 1024\nwait_for_ready: true\ntls:\n  insecure_skip_verify: true\nsending_queue:\n  num_consumers: 2\nretry_on_failure:\n  max_elapsed_time: 1m\n";
    common::decode_config(&factory, full).unwrap();

    // The list form of headers, as upstream's MapList reads it.
    common::decode_config(
        &factory,
        "endpoint: c:4317\nheaders:\n  - name: a\n    value: b\n",
    )
    .unwrap();
}

#[test]
fn config_errors() {
    let factory = OtlpGrpcExporterFactory;
    let err = |yaml: &str| common::decode_config(&factory, yaml).unwrap_err();
    assert_eq!(
        err("compression: gzip\n"),
        r#"requires a non-empty "endpoint""#
    );
    assert_eq!(
        err("endpoint: \"\"\n"),
        r#"requires a non-empty "endpoint""#
    );
    assert_eq!(
        err("endpoint: collector\n"),
        "address collector: missing port in address"
    );
    assert_eq!(err("endpoint: collector:x\n"), "invalid port \"x\"");
    assert!(
        err("endpoint: c:4317\nauth:\n  authenticator: oauth2client\n")
            .contains("not supported yet")
    );
    assert!(err("endpoint: c:4317\ncompression: snappy\n").contains("snappy"));
    assert_eq!(
        err("endpoint: c:4317\ncompression: deflate\n"),
        "unsupported compression type \"deflate\""
    );
    assert_eq!(
        err("endpoint: c:4317\nbalancer_name: nope\n"),
        "invalid balancer_name: nope"
    );
    assert!(err("endpoint: c:4317\nnope: 1\n").contains("nope"));
    assert!(err(
        "endpoint: c:4317\nheaders:\n  - name: a\n    value: b\n  - name: a\n    value: c\n"
    )
    .contains("duplicate keys"));
    assert!(
        err("endpoint: c:4317\nretry_on_failure:\n  initial_interval: 10m\n")
            .contains("max_elapsed_time")
    );
}

#[test]
fn registered_with_the_deprecated_alias() {
    let mut registry = Registry::default();
    ferrotel_exporters::register(&mut registry);
    let current = registry.exporters.get("otlp_grpc").unwrap();
    assert_eq!(current.deprecated_for, None);
    let alias = registry.exporters.get("otlp").unwrap();
    assert_eq!(alias.deprecated_for, Some("otlp_grpc"));
    alias
        .factory
        .decode(
            &ferrotel_pipeline::config::value::Value::from_yaml_str("endpoint: c:4317\n").unwrap(),
        )
        .unwrap();
}
