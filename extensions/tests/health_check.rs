//! The `health_check` extension over a real loopback socket, driven through the service status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use ferrotel_extensions::health_check::HealthCheckFactory;
use ferrotel_pipeline::component::{Component, CreateSettings, Host, ServiceStatus};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{ExtensionFactory, Factory};
use ferrotel_pipeline::telemetry::Telemetry;

const WAIT: Duration = Duration::from_secs(15);
const UNHEALTHY: &str =
    r#"{"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}"#;

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

struct Running {
    extension: Arc<dyn Component>,
    status: watch::Sender<ServiceStatus>,
    port: u16,
}

/// Starts the extension on a free loopback port; `extra` adds config lines.
async fn start(extra: &str) -> Running {
    let port = free_port();
    let yaml = format!("endpoint: 127.0.0.1:{port}\n{extra}");
    let factory = HealthCheckFactory;
    let config = factory
        .decode(&Value::from_yaml_str(&yaml).unwrap())
        .unwrap_or_else(|e| panic!("config {yaml}: {e:?}"));
    let telemetry = Telemetry::for_tests();
    let extension = factory
        .create(
            CreateSettings {
                id: ComponentId::new("health_check", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
        )
        .unwrap();
    let (status, status_rx) = watch::channel(ServiceStatus::Starting);
    let host = Host {
        telemetry,
        status: status_rx,
    };
    within("start", extension.start(&host)).await.unwrap();
    Running {
        extension,
        status,
        port,
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Running {
    async fn get(&self, path: &str) -> Reply {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("http://127.0.0.1:{}{path}", self.port))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = within("GET", client.request(request)).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = within("body", response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        Reply {
            status,
            content_type,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn stop(&self) {
        within("shutdown", self.extension.shutdown()).await.unwrap();
    }
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS[.fff]Z`),
/// or `None` if the text is not in that form.
fn rfc3339_utc_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let rest = &text[19..text.len() - 1];
    if !rest.is_empty() {
        let frac = rest.strip_prefix('.')?;
        if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[test]
fn rfc3339_helper_reads_known_times() {
    assert_eq!(rfc3339_utc_seconds("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_utc_seconds("2023-11-14T22:13:20.000000005Z"),
        Some(1_700_000_000)
    );
    assert_eq!(rfc3339_utc_seconds("2023-11-14 22:13:20Z"), None);
    assert_eq!(rfc3339_utc_seconds("2023-11-14T22:13:20"), None);
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn starting_is_503_with_the_unhealthy_body() {
    let hc = start("").await;
    let reply = hc.get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body, UNHEALTHY);
    hc.stop().await;
}

#[tokio::test]
async fn ready_is_200_with_up_since_and_uptime() {
    let hc = start("").await;
    let before = now_seconds();
    hc.status.send(ServiceStatus::Ready).unwrap();
    // Long enough for the uptime to pass one second.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let reply = hc.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 3, "{body}");
    assert_eq!(body["status"], "Server available");

    let up_since = body["upSince"].as_str().unwrap();
    let since = rfc3339_utc_seconds(up_since)
        .unwrap_or_else(|| panic!("upSince {up_since:?} is not RFC 3339 UTC"));
    assert!(
        since >= before - 1 && since <= now_seconds(),
        "upSince {up_since} is not when the service became ready"
    );

    // A Go duration of at least one second, such as "1.1002s".
    let uptime = body["uptime"].as_str().unwrap();
    let seconds: f64 = uptime
        .strip_suffix('s')
        .filter(|n| !n.ends_with(['m', 'µ', 'n']))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("uptime {uptime:?}"));
    assert!(seconds >= 1.0, "uptime {uptime}");

    // upSince stays put while ready.
    let again: serde_json::Value = serde_json::from_str(&hc.get("/").await.body).unwrap();
    assert_eq!(again["upSince"], up_since);
    hc.stop().await;
}

#[tokio::test]
async fn stopping_is_503_again() {
    let hc = start("").await;
    hc.status.send(ServiceStatus::Ready).unwrap();
    assert_eq!(hc.get("/").await.status, StatusCode::OK);
    hc.status.send(ServiceStatus::Stopping).unwrap();
    let reply = hc.get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body, UNHEALTHY);
    hc.stop().await;
}

#[tokio::test]
async fn custom_path_is_served_and_other_paths_are_404() {
    let hc = start("path: /health/status").await;
    let reply = hc.get("/health/status").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, UNHEALTHY);
    hc.status.send(ServiceStatus::Ready).unwrap();
    assert_eq!(hc.get("/health/status").await.status, StatusCode::OK);
    for path in ["/", "/health", "/health/status/x", "/metrics"] {
        let reply = hc.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    hc.stop().await;
}

#[tokio::test]
async fn default_path_only_answers_at_the_root() {
    let hc = start("").await;
    hc.status.send(ServiceStatus::Ready).unwrap();
    assert_eq!(hc.get("/").await.status, StatusCode::OK);
    assert_eq!(hc.get("/status").await.status, StatusCode::NOT_FOUND);
    hc.stop().await;
}

#[tokio::test]
async fn custom_response_bodies() {
    let hc = start("response_body:\n  healthy: I'm OK\n  unhealthy: I'm not well").await;
    let reply = hc.get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "I'm not well");
    hc.status.send(ServiceStatus::Ready).unwrap();
    let reply = hc.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "I'm OK");
    hc.stop().await;
}

#[tokio::test]
async fn shutdown_is_prompt_and_closes_the_port() {
    let hc = start("").await;
    assert_eq!(hc.get("/").await.status, StatusCode::SERVICE_UNAVAILABLE);
    let started = Instant::now();
    hc.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let connect = within(
        "connect",
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, hc.port)),
    )
    .await;
    assert!(connect.is_err(), "port still open after shutdown");
}
