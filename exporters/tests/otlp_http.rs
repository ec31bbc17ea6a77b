#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The otlp_http exporter against a real hyper OTLP/HTTP server on 127.0.0.1: delivery of
//! every signal in both encodings and every compression, headers, the retry rules for HTTP
//! status codes and Retry-After, partial success, TLS, proxies and cookies; and its
//! configuration.

mod common;

use std::time::Duration;

use common::{http_server, pki, start, Reply};
use ferrotel_exporters::otlp_http::{OtlpHttpConfig, OtlpHttpExporterFactory};
use ferrotel_pipeline::component::ErrorKind;
use ferrotel_pipeline::factory::Registry;
use ferrotel_pipeline::pdata::Signal;

const FAST_RETRY: &str = "retry_on_failure:\n  initial_interval: 100ms\n  max_interval: 200ms\n";
const NO_QUEUE: &str = "sending_queue:\n  enabled: false\n";

async fn exporter(yaml: &str) -> common::Running {
    start(&OtlpHttpExporterFactory, "otlp_http", yaml).await
}

fn base(addr: std::net::SocketAddr, extra: &str) -> String {
    format!("endpoint: http://{addr}\n{extra}")
}

#[tokio::test]
async fn delivers_every_signal_in_both_encodings_and_every_compression() {
    for encoding in ["proto", "json"] {
        for compression in ["gzip", "zstd", "snappy", "zlib", "deflate", "none"] {
            let server = http_server(None).await;
            let exp = exporter(&base(
                server.addr,
                &format!("encoding: {encoding}\ncompression: {compression}\n{NO_QUEUE}"),
            ))
            .await;
            let sent = vec![common::traces(3), common::metrics(4), common::logs(5)];
            for p in &sent {
                exp.consume(p.clone()).await.unwrap();
            }
            let case = format!("{encoding}/{compression}");
            assert_eq!(server.backend.received(), sent, "{case}");
            let attempts = server.backend.attempts();
            let paths: Vec<&str> = attempts.iter().map(|a| a.path.as_str()).collect();
            assert_eq!(paths, ["/v1/traces", "/v1/metrics", "/v1/logs"], "{case}");
            let content_type = if encoding == "json" {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            for a in &attempts {
                assert_eq!(a.header("content-type"), Some(content_type), "{case}");
                let expected = (compression != "none").then_some(compression);
                assert_eq!(a.header("content-encoding"), expected, "{case}");
                assert_eq!(a.version, http::Version::HTTP_11, "{case}");
            }
            assert_eq!(exp.metric("otelcol_exporter_sent_log_records"), 5.0);
            exp.stop().await;
        }
    }
}

#[tokio::test]
async fn configured_headers_and_user_agent_arrive() {
    let server = http_server(None).await;
    let exp = exporter(&base(
        server.addr,
        "headers:\n  Authorization: Api-Token abc\n  X-Scope: 7\n",
    ))
    .await;
    exp.consume(common::logs(1)).await.unwrap();
    server.backend.wait_received(1).await;
    let a = &server.backend.attempts()[0];
    assert_eq!(a.header("authorization"), Some("Api-Token abc"));
    assert_eq!(a.header("x-scope"), Some("7"));
    let agent = a.header("user-agent").unwrap();
    assert!(agent.starts_with("ferrotel/"), "{agent}");
    exp.stop().await;
}

#[tokio::test]
async fn signal_endpoints_override_and_trailing_slash() {
    let server = http_server(None).await;
    let exp = exporter(&format!(
        "endpoint: http://{0}/prefix/\ntraces_endpoint: http://{0}/custom/traces\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::traces(1)).await.unwrap();
    exp.consume(common::metrics(1)).await.unwrap();
    let paths: Vec<String> = server
        .backend
        .attempts()
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(paths, ["/custom/traces", "/prefix/v1/metrics"]);

    // Only a logs URL: other signals are refused for good, with upstream's words.
    let exp = exporter(&format!(
        "logs_endpoint: http://{}/v1/logs\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::logs(1)).await.unwrap();
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert_eq!(
        err.message,
        "either endpoint or traces_endpoint must be specified"
    );
    assert!(!err.kind.is_retryable());
}

#[tokio::test]
async fn status_503_then_200_is_delivered_once() {
    let server = http_server(None).await;
    server.backend.script(vec![Reply::http(503)]);
    let exp = exporter(&base(server.addr, FAST_RETRY)).await;
    exp.consume(common::traces(4)).await.unwrap();
    let got = server.backend.wait_received(1).await;
    assert_eq!(got, vec![common::traces(4)]);
    assert_eq!(server.backend.attempts().len(), 2);
    exp.stop().await;
    assert_eq!(exp.metric("otelcol_exporter_sent_spans"), 4.0);
}

#[tokio::test]
async fn retryable_and_permanent_codes() {
    for (code, retried) in [
        (429, true),
        (502, true),
        (503, true),
        (504, true),
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (413, false),
        (500, false),
    ] {
        let server = http_server(None).await;
        server.backend.script(vec![Reply::http(code)]);
        let exp = exporter(&base(server.addr, &format!("{FAST_RETRY}{NO_QUEUE}"))).await;
        let result = exp.consume(common::metrics(1)).await;
        let attempts = server.backend.attempts().len();
        if retried {
            result.unwrap();
            assert_eq!(attempts, 2, "{code}");
        } else {
            let err = result.unwrap_err();
            assert_eq!(attempts, 1, "{code}");
            assert!(
                err.message.contains(&format!("HTTP Status Code {code}")),
                "{code}: {}",
                err.message
            );
        }
    }
}

#[tokio::test]
async fn status_429_waits_for_retry_after() {
    let server = http_server(None).await;
    server
        .backend
        .script(vec![Reply::http(429).header("Retry-After", "1")]);
    let exp = exporter(&base(server.addr, &format!("{FAST_RETRY}{NO_QUEUE}"))).await;
    exp.consume(common::logs(2)).await.unwrap();
    let attempts = server.backend.attempts();
    assert_eq!(attempts.len(), 2);
    let waited = attempts[1].at - attempts[0].at;
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert_eq!(server.backend.received(), vec![common::logs(2)]);
}

#[tokio::test]
async fn status_400_with_a_status_body_is_one_attempt_with_its_message() {
    let server = http_server(None).await;
    server
        .backend
        .script(vec![Reply::http_status(400, 3, "span name is missing")]);
    let exp = exporter(&base(server.addr, &format!("{FAST_RETRY}{NO_QUEUE}"))).await;
    let err = exp.consume(common::traces(3)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(
        err.message,
        format!(
            "error exporting items, request to http://{}/v1/traces responded with HTTP Status Code 400, Message=span name is missing, Details=[]",
            server.addr
        )
    );
    assert_eq!(server.backend.attempts().len(), 1);
    assert_eq!(exp.metric("otelcol_exporter_send_failed_spans"), 3.0);
}

#[tokio::test]
async fn partial_success_in_both_encodings() {
    for encoding in ["proto", "json"] {
        let server = http_server(None).await;
        *server.backend.partial.lock().unwrap() = Some((1, "one record dropped".into()));
        let exp = exporter(&base(
            server.addr,
            &format!("encoding: {encoding}\n{NO_QUEUE}"),
        ))
        .await;
        let accepted = exp.consume(common::logs(3)).await.unwrap();
        assert_eq!(accepted.rejected_items, 1, "{encoding}");
        assert_eq!(accepted.message, "one record dropped");
        assert_eq!(server.backend.attempts().len(), 1);
        assert_eq!(exp.metric("otelcol_exporter_sent_log_records"), 2.0);
        assert_eq!(exp.metric("otelcol_exporter_send_failed_log_records"), 1.0);
    }
}

#[tokio::test]
async fn unparseable_success_body_is_permanent() {
    let server = http_server(None).await;
    *server.backend.raw_success.lock().unwrap() = Some((
        "application/x-protobuf".into(),
        b"\xff\xff\xff\xff".to_vec(),
    ));
    let exp = exporter(&base(server.addr, &format!("{FAST_RETRY}{NO_QUEUE}"))).await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert!(!err.kind.is_retryable());
    assert!(
        err.message.contains("error parsing protobuf response"),
        "{}",
        err.message
    );
    assert_eq!(server.backend.attempts().len(), 1);

    // Another content type is not read at all.
    *server.backend.raw_success.lock().unwrap() = Some(("text/plain".into(), b"ok".to_vec()));
    exp.consume(common::traces(1)).await.unwrap();
}

#[tokio::test]
async fn tls_with_the_ca_without_it_and_skipping_verification() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_file(&dir, &pki);
    let server = http_server(Some(&pki)).await;

    let exp = exporter(&format!(
        "endpoint: https://{}\ntls:\n  ca_file: {ca}\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::traces(2)).await.unwrap();
    // ALPN picked HTTP/2.
    assert_eq!(server.backend.attempts()[0].version, http::Version::HTTP_2);

    // The name in the certificate instead of the address.
    let exp = exporter(&format!(
        "endpoint: https://{}\ntls:\n  ca_file: {ca}\n  server_name_override: localhost\nforce_attempt_http2: false\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::metrics(1)).await.unwrap();
    assert_eq!(server.backend.attempts()[1].version, http::Version::HTTP_11);

    let exp = exporter(&format!(
        "endpoint: https://{}\nretry_on_failure:\n  enabled: false\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{}", err.message);
    assert!(err.message.contains("certificate"), "{}", err.message);
    assert_eq!(server.backend.attempts().len(), 2);

    let exp = exporter(&format!(
        "endpoint: https://{}\ntls:\n  insecure_skip_verify: true\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::logs(1)).await.unwrap();
    assert_eq!(server.backend.received().len(), 3);
}

#[tokio::test]
async fn network_errors_are_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exp = exporter(&base(
        addr,
        &format!("retry_on_failure:\n  enabled: false\n{NO_QUEUE}"),
    ))
    .await;
    let err = exp.consume(common::traces(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(
        err.message.contains("failed to make an HTTP request"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn plain_requests_go_through_proxy_url() {
    // The "proxy" is the backend itself: it sees the absolute-form request a proxy would.
    let proxy = http_server(None).await;
    let exp = exporter(&format!(
        "endpoint: http://backend.invalid:4318\nproxy_url: http://{}\n{NO_QUEUE}",
        proxy.addr
    ))
    .await;
    exp.consume(common::traces(1)).await.unwrap();
    let a = &proxy.backend.attempts()[0];
    assert_eq!(a.uri, "http://backend.invalid:4318/v1/traces");
    assert_eq!(a.header("host"), Some("backend.invalid:4318"));
}

/// A CONNECT-only proxy that records the targets it was asked for.
async fn connect_proxy() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                record.lock().unwrap().push(target.clone());
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn https_requests_tunnel_through_proxy_url() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_file(&dir, &pki);
    let server = http_server(Some(&pki)).await;
    let (proxy, seen) = connect_proxy().await;
    let exp = exporter(&format!(
        "endpoint: https://{}\nproxy_url: http://{proxy}\ntls:\n  ca_file: {ca}\n{NO_QUEUE}",
        server.addr
    ))
    .await;
    exp.consume(common::traces(2)).await.unwrap();
    assert_eq!(server.backend.received(), vec![common::traces(2)]);
    assert_eq!(*seen.lock().unwrap(), vec![server.addr.to_string()]);
}

#[tokio::test]
async fn cookies_are_sent_back_when_enabled() {
    let server = http_server(None).await;
    server
        .backend
        .response_headers
        .lock()
        .unwrap()
        .push(("set-cookie".into(), "lb=node-3; Path=/".into()));
    let exp = exporter(&base(
        server.addr,
        &format!("cookies:\n  enabled: true\n{NO_QUEUE}"),
    ))
    .await;
    exp.consume(common::traces(1)).await.unwrap();
    exp.consume(common::traces(1)).await.unwrap();
    let attempts = server.backend.attempts();
    assert_eq!(attempts[0].header("cookie"), None);
    assert_eq!(attempts[1].header("cookie"), Some("lb=node-3"));

    let exp = exporter(&base(server.addr, NO_QUEUE)).await;
    exp.consume(common::traces(1)).await.unwrap();
    exp.consume(common::traces(1)).await.unwrap();
    assert_eq!(server.backend.attempts()[3].header("cookie"), None);
}

#[test]
fn config_defaults_and_decoding() {
    let factory = OtlpHttpExporterFactory;
    let config = common::decode_config(&factory, "endpoint: https://ingest.example.com\n").unwrap();
    let config = (config.as_ref() as &dyn std::any::Any)
        .downcast_ref::<OtlpHttpConfig>()
        .unwrap()
        .clone();
    assert_eq!(config.timeout.get(), Duration::from_secs(30));
    assert_eq!(config.compression.encoding(), Some("gzip"));
    assert_eq!(config.encoding.content_type(), "application/x-protobuf");
    assert_eq!(config.idle_conn_timeout.get(), Duration::from_secs(90));
    assert_eq!(config.max_idle_conns, 100);
    assert_eq!(
        config.signal_url(Signal::Traces).unwrap(),
        "https://ingest.example.com/v1/traces"
    );

    let full = "endpoint: https://x:4318\ntraces_endpoint: https://x/t\nmetrics_endpoint: https://x/m\nlogs_endpoint: https://x/l\nencoding: json\ncompression: none\ncompression_params:\n  level: 5\ntimeout: 10s\nheaders:\n  a: b\ntls:\n  ca_file: /ca.pem\nproxy_url: http://proxy:3128\nmax_idle_conns: 10\nmax_idle_conns_per_host: 5\nmax_conns_per_host: 4\nidle_conn_timeout: 30s\nhttp2_read_idle_timeout: 10s\nhttp2_ping_timeout: 5s\ndisable_keep_alives: true\nread_buffer_size: 4096\nwrite_buffer_size: 4096\ncookies: {}\nsending_queue:\n  queue_size: 10\nretry_on_failure:\n  enabled: false\n";
    common::decode_config(&factory, full).unwrap();
}

#[test]
fn config_errors() {
    let factory = OtlpHttpExporterFactory;
    let err = |yaml: &str| common::decode_config(&factory, yaml).unwrap_err();
    assert_eq!(
        err("encoding: json\n"),
        "at least one endpoint must be specified"
    );
    assert!(err("endpoint: localhost:4318\n").starts_with("endpoint must be a valid URL"));
    assert!(err("endpoint: http://x\ntraces_endpoint: ftp://x/t\n")
        .starts_with("traces_endpoint must be a valid URL"));
    assert!(err("endpoint: http://x\nencoding: xml\n").contains("xml"));
    assert!(
        err("endpoint: http://x\nauth:\n  authenticator: basicauth\n")
            .contains("not supported yet")
    );
    assert!(err("endpoint: http://x\nproxy_url: socks5://p:1080\n").contains("proxy_url"));
    assert!(
        err("endpoint: http://x\nheaders:\n  \"bad name\": v\n").contains("invalid header name")
    );
    assert!(err("endpoint: http://x\nsending_queue:\n  queue_size: 0\n").contains("queue_size"));
}

#[test]
fn registered_with_the_deprecated_alias() {
    let mut registry = Registry::default();
    ferrotel_exporters::register(&mut registry);
    assert_eq!(
        registry.exporters.get("otlp_http").unwrap().deprecated_for,
        None
    );
    let alias = registry.exporters.get("otlphttp").unwrap();
    assert_eq!(alias.deprecated_for, Some("otlp_http"));
    alias
        .factory
        .decode(
            &ferrotel_pipeline::config::value::Value::from_yaml_str("endpoint: http://c:4318\n")
                .unwrap(),
        )
        .unwrap();
}
