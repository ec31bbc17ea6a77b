//! The `prometheus` exporter: serves the metrics it receives on `/metrics` for a Prometheus
//! server to scrape, in the text format 0.0.4 or (when enabled and asked for) OpenMetrics
//! 1.0, named as the Collector names them. Taking a batch only updates the latest value of
//! each series in memory, so there is no queue.

pub mod config;
mod exposition;
mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope, Host,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability};
use ferrotel_pipeline::net;
use ferrotel_pipeline::pdata::{Payload, Signal};
use ferrotel_pipeline::prometheus::MetricNamer;
use ferrotel_pipeline::telemetry::ExporterMetrics;

pub use config::PrometheusConfig;
use store::{Settings, Store};

/// How long open scrapes may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Expired series are swept at least this far apart, whatever `metric_expiration` says.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Upstream's sweep interval when `metric_expiration` is 0.
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

pub struct PrometheusExporterFactory;

impl Factory for PrometheusExporterFactory {
    fn type_name(&self) -> &'static str {
        "prometheus"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<PrometheusConfig>(value)
    }
}

impl ExporterFactory for PrometheusExporterFactory {
    fn stability(&self, signal: Signal) -> Option<Stability> {
        (signal == Signal::Metrics).then_some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<PrometheusConfig>(config)?.clone();
        let id = settings.id.to_string();
        let strategy = config.strategy().map_err(ComponentError::new)?;
        let store = Store::new(
            &id,
            Settings {
                namer: MetricNamer::new(&config.namespace, strategy.adds_suffixes()),
                without_scope_info: config.without_scope_info,
                const_labels: config.const_label_pairs().map_err(ComponentError::new)?,
                send_timestamps: config.send_timestamps,
                expiration: config.metric_expiration.get(),
                resource_to_labels: config.resource_to_telemetry_conversion.enabled.then_some(
                    config
                        .resource_to_telemetry_conversion
                        .exclude_service_attributes,
                ),
                target_info_name: store::target_info_name(&config.namespace),
            },
        );
        Ok(Arc::new(PrometheusExporter {
            metrics: settings.telemetry.exporter(&id),
            id,
            config,
            store: Arc::new(Mutex::new(store)),
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }))
    }
}

struct PrometheusExporter {
    id: String,
    config: PrometheusConfig,
    metrics: ExporterMetrics,
    store: Arc<Mutex<Store>>,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Consumer for PrometheusExporter {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let signal = envelope.payload.signal();
        let items = envelope.payload.item_count();
        let payload = match envelope.payload.decoded() {
            Ok(p) => p,
            Err(err) => {
                self.metrics.send_failed.add(signal, items);
                return Err(ConsumeError::permanent(err.to_string()));
            }
        };
        let Payload::Metrics(metrics) = &*payload else {
            self.metrics.send_failed.add(signal, items);
            return Err(ConsumeError::permanent(format!(
                "the prometheus exporter takes metrics, not {signal}"
            )));
        };
        match self.store.lock() {
            Ok(mut store) => {
                let now = Instant::now();
                for rm in &metrics.0.resource_metrics {
                    store.accumulate(rm, now);
                }
            }
            Err(_) => {
                self.metrics.send_failed.add(signal, items);
                return Err(ConsumeError::permanent(
                    "the prometheus exporter's store is unusable after a panic",
                ));
            }
        }
        self.metrics.sent.add(signal, items);
        Ok(Accepted::default())
    }
}

/// What the `/metrics` handler needs.
struct Endpoint {
    store: Arc<Mutex<Store>>,
    open_metrics: bool,
    response_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whether an `Accept-Encoding` header allows gzip (with a weight above 0).
fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|entry| {
            let mut parts = entry.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .and_then(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            coding.eq_ignore_ascii_case("gzip") && q > 0.0
        })
    })
}

impl Endpoint {
    fn handle(&self, req: &http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
        if req.uri().path() != "/metrics" {
            return net::response(404, "text/plain; charset=utf-8", "404 page not found\n");
        }
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let format = exposition::negotiate(header(ACCEPT), self.open_metrics);
        let families = match self.store.lock() {
            Ok(mut store) => store.families(Instant::now()),
            Err(_) => {
                return net::response(
                    500,
                    "text/plain; charset=utf-8",
                    "the exporter's store is unusable after a panic\n",
                )
            }
        };
        let body = exposition::write(&families, format).into_bytes();
        let mut response = if accepts_gzip(header(ACCEPT_ENCODING)) {
            match ferrotel_pipeline::compression::compress(Some("gzip"), &body) {
                Ok(zipped) => {
                    let mut r = net::response(200, format.content_type(), zipped);
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    r
                }
                Err(_) => net::response(200, format.content_type(), body),
            }
        } else {
            net::response(200, format.content_type(), body)
        };
        for (name, value) in &self.response_headers {
            if name != CONTENT_TYPE && name != CONTENT_ENCODING {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }
}

impl PrometheusExporter {
    fn keep(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    async fn serve(&self) -> Result<(), ComponentError> {
        let listener = net::bind(&self.config.endpoint)
            .await
            .map_err(|e| ComponentError::new(format!("{}: endpoint: {e}", self.id)))?;
        let tls = match &self.config.tls {
            Some(t) => Some(
                t.build(&[b"h2", b"http/1.1"])
                    .map_err(|e| ComponentError::new(format!("{}: tls: {e}", self.id)))?
                    .into(),
            ),
            None => None,
        };
        let mut response_headers = Vec::new();
        for (k, v) in &self.config.response_headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                ComponentError::new(format!("response_headers: invalid header name \"{k}\""))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                ComponentError::new(format!("response_headers: invalid value for \"{k}\""))
            })?;
            response_headers.push((name, value));
        }
        let endpoint = Arc::new(Endpoint {
            store: self.store.clone(),
            open_metrics: self.config.enable_open_metrics,
            response_headers,
        });
        info!(exporter = %self.id, endpoint = ?listener.local_addr().ok(), "Starting Prometheus exporter");
        self.keep(net::serve_http(
            listener,
            tls,
            move |req, _peer| {
                let endpoint = endpoint.clone();
                async move { endpoint.handle(&req) }
            },
            self.stop.clone(),
            SHUTDOWN_GRACE,
        ));

        // Series also expire when nobody scrapes, so memory stays bounded.
        let ttl = self.config.metric_expiration.get();
        let every = if ttl.is_zero() {
            DEFAULT_SWEEP_INTERVAL
        } else {
            ttl.max(MIN_SWEEP_INTERVAL)
        };
        let store = self.store.clone();
        let stop = self.stop.clone();
        self.keep(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Ok(mut store) = store.lock() {
                            store.expire(Instant::now());
                        }
                    }
                }
            }
        }));
        Ok(())
    }
}

#[async_trait]
impl Component for PrometheusExporter {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let result = self.serve().await;
        if result.is_err() {
            // Whatever did start must not outlive a failed start.
            self.stop.cancel();
        }
        result
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let tasks: Vec<JoinHandle<()>> = match self.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), all)
            .await
            .is_err()
        {
            warn!(exporter = %self.id, "Open scrapes did not finish in time");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_when_accepted() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, GZIP;q=0.5, br")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
