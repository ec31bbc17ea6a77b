//! The `health_check` extension: an HTTP endpoint that answers 200 once every pipeline is
//! running and 503 before that and during shutdown, with upstream's JSON bodies.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, CreateSettings, Host, ServiceStatus,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::types::format_go_duration;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, ExtensionFactory, Factory, Stability, Validate};
use ferrotel_pipeline::net;
use ferrotel_pipeline::tls::ServerTlsSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    pub endpoint: String,
    pub path: String,
    /// Custom bodies: `{healthy: "...", unhealthy: "..."}`.
    pub response_body: Option<ResponseBody>,
    pub tls: Option<ServerTlsSettings>,
    /// Deprecated upstream and not implemented there either; accepted and ignored.
    pub check_collector_pipeline: Option<IgnoredAny>,
    pub cors: Option<IgnoredAny>,
    pub include_metadata: bool,
    pub max_request_body_size: Option<u64>,
    pub response_headers: Option<IgnoredAny>,
    pub auth: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseBody {
    pub healthy: String,
    pub unhealthy: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "localhost:13133".to_string(),
            path: "/".to_string(),
            response_body: None,
            tls: None,
            check_collector_pipeline: None,
            cors: None,
            include_metadata: false,
            max_request_body_size: None,
            response_headers: None,
            auth: None,
        }
    }
}

impl Validate for HealthCheckConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path must start with \"/\", got \"{}\"", self.path));
        }
        if ferrotel_pipeline::config::split_host_port(&self.endpoint).is_none() {
            return Err(format!("endpoint \"{}\" is not host:port", self.endpoint));
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        Ok(())
    }
}

impl ComponentConfig for HealthCheckConfig {
    fn listen_endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }
}

pub struct HealthCheckFactory;

impl Factory for HealthCheckFactory {
    fn type_name(&self) -> &'static str {
        "health_check"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<HealthCheckConfig>(value)
    }
}

impl ExtensionFactory for HealthCheckFactory {
    fn stability(&self) -> Stability {
        Stability::Beta
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        Ok(Arc::new(HealthCheck {
            id: settings.id.to_string(),
            config: config_as::<HealthCheckConfig>(config)?.clone(),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        }))
    }
}

struct HealthCheck {
    id: String,
    config: HealthCheckConfig,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// RFC 3339 with nanoseconds in UTC, as Go prints `time.Time` in JSON.
fn rfc3339(t: SystemTime) -> String {
    ferrotel_pipeline::timefmt::UtcTime::from_system_time(t).rfc3339_nanos()
}

#[async_trait]
impl Component for HealthCheck {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        let listener = net::bind(&self.config.endpoint)
            .await
            .map_err(|e| ComponentError::new(e.to_string()))?;
        let tls = match &self.config.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                t.build(&[b"h2", b"http/1.1"])
                    .map_err(ComponentError::new)?,
            )),
            None => None,
        };
        info!(extension = %self.id, endpoint = ?listener.local_addr().ok(), "Starting health_check extension");
        let status = host.status.clone();
        let path = self.config.path.clone();
        let bodies = self.config.response_body.clone();
        // Readiness time, recorded when the status first turns Ready.
        let ready_since: Arc<Mutex<Option<(SystemTime, std::time::Instant)>>> =
            Arc::new(Mutex::new(None));
        {
            let mut watch = host.status.clone();
            let ready_since = ready_since.clone();
            let stop = self.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    ready = watch.wait_for(|s| *s == ServiceStatus::Ready) => {
                        if ready.is_ok() {
                            if let Ok(mut slot) = ready_since.lock() {
                                slot.get_or_insert((SystemTime::now(), std::time::Instant::now()));
                            }
                        }
                    }
                }
            });
        }
        let task = net::serve_http(
            listener,
            tls,
            move |req, _peer| {
                let status = *status.borrow();
                let path = path.clone();
                let bodies = bodies.clone();
                let ready_since = ready_since.clone();
                async move {
                    if req.uri().path() != path {
                        return net::response(
                            404,
                            "text/plain; charset=utf-8",
                            "404 page not found",
                        );
                    }
                    let since =
                        match ready_since.lock() {
                            Ok(mut slot) => {
                                if status == ServiceStatus::Ready {
                                    Some(*slot.get_or_insert((
                                        SystemTime::now(),
                                        std::time::Instant::now(),
                                    )))
                                } else {
                                    *slot
                                }
                            }
                            Err(_) => None,
                        };
                    match (status, since) {
                        (ServiceStatus::Ready, Some((wall, mono))) => {
                            let body = match &bodies {
                                Some(b) => b.healthy.clone(),
                                None => format!(
                                    "{{\"status\":\"Server available\",\"upSince\":\"{}\",\"uptime\":\"{}\"}}",
                                    rfc3339(wall),
                                    format_go_duration(mono.elapsed())
                                ),
                            };
                            net::response(200, "application/json", body)
                        }
                        _ => {
                            let body = match &bodies {
                                Some(b) => b.unhealthy.clone(),
                                None => "{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}".to_string(),
                            };
                            net::response(503, "application/json", body)
                        }
                    }
                }
            },
            self.stop.clone(),
            Duration::from_secs(5),
        );
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time_like_go() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
    }
}
