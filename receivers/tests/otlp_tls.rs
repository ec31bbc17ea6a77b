#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The otlp receiver over TLS, and with mutual TLS: a client that trusts the CA gets through,
//! a client without a certificate is turned away when one is required.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ferrotel_pipeline::component::{
    Accepted, ComponentConfig, ConsumeResult, Consumer, CreateSettings, Envelope, Host,
    ServiceStatus, SignalConsumers,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ReceiverFactory};
use ferrotel_pipeline::pdata::{trace, ExportTraceServiceRequest};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_receivers::otlp::OtlpReceiverFactory;

struct Count(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Consumer for Count {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.0.fetch_add(
            envelope.payload.item_count(),
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(Accepted::default())
    }
}

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: CertificateDer<'static>,
    client_key: PrivateKeyDer<'static>,
    ca_der: CertificateDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.der().clone(),
        client_key: PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
        ca_der: ca.der().clone(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(
    yaml: &str,
) -> (
    Arc<dyn ferrotel_pipeline::Component>,
    Arc<Count>,
    tokio::sync::watch::Sender<ServiceStatus>,
) {
    let factory = OtlpReceiverFactory;
    let config: Box<dyn ComponentConfig> = factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .unwrap();
    let count = Arc::new(Count(Default::default()));
    let consumers = SignalConsumers {
        traces: Some(count.clone()),
        ..Default::default()
    };
    let telemetry = Telemetry::for_tests();
    let receiver = factory
        .create(
            CreateSettings {
                id: ComponentId::new("otlp", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            consumers,
        )
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(ServiceStatus::Ready);
    receiver
        .start(&Host {
            telemetry,
            status: rx,
        })
        .await
        .unwrap();
    (receiver, count, tx)
}

fn client_config(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        builder
            .with_client_auth_cert(vec![pki.client_cert.clone()], pki.client_key.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One HTTP/1.1 POST over TLS; the status code, or the error that ended the exchange.
async fn post(port: u16, config: Arc<rustls::ClientConfig>) -> Result<u16, String> {
    let body = ExportTraceServiceRequest {
        resource_spans: vec![trace::ResourceSpans {
            scope_spans: vec![trace::ScopeSpans {
                spans: vec![trace::Span::default(); 2],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(&body).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response).to_string();
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[tokio::test]
async fn http_over_tls_and_mutual_tls() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cert = write("server.pem", &pki.server_cert);
    let key = write("server-key.pem", &pki.server_key);
    let ca = write("ca.pem", &pki.ca_pem);

    let port = free_port();
    let (receiver, count, _status) = start(&format!(
        "protocols:\n  http:\n    endpoint: 127.0.0.1:{port}\n    tls:\n      cert_file: {cert}\n      key_file: {key}\n"
    ))
    .await;
    assert_eq!(post(port, client_config(&pki, false)).await, Ok(200));
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Plain text to a TLS port gets nothing useful back.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    receiver.shutdown().await.unwrap();

    let port = free_port();
    let (receiver, count, _status) = start(&format!(
        "protocols:\n  http:\n    endpoint: 127.0.0.1:{port}\n    tls:\n      cert_file: {cert}\n      key_file: {key}\n      client_ca_file: {ca}\n"
    ))
    .await;
    assert!(
        post(port, client_config(&pki, false)).await.is_err(),
        "a client without a certificate is refused"
    );
    assert_eq!(post(port, client_config(&pki, true)).await, Ok(200));
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_certificate_files_fail_at_start_with_the_path() {
    let factory = OtlpReceiverFactory;
    let port = free_port();
    let config = factory
        .decode(
            &Value::from_yaml_str(&format!(
                "protocols:\n  grpc:\n    endpoint: 127.0.0.1:{port}\n    tls:\n      cert_file: /nonexistent/cert.pem\n      key_file: /nonexistent/key.pem\n"
            ))
            .unwrap(),
        )
        .unwrap();
    let telemetry = Telemetry::for_tests();
    let receiver = factory
        .create(
            CreateSettings {
                id: ComponentId::new("otlp", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            SignalConsumers::default(),
        )
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(ServiceStatus::Starting);
    let err = match receiver
        .start(&Host {
            telemetry,
            status: rx,
        })
        .await
    {
        Ok(()) => panic!("start must fail"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let _ = receiver.shutdown().await;
}

#[test]
fn tls_without_a_key_is_a_config_error() {
    let err = OtlpReceiverFactory
        .decode(
            &Value::from_yaml_str("protocols:\n  http:\n    tls:\n      cert_file: c.pem\n")
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("a private key is required"),
        "{err}"
    );
}
