//! Targets and their scrape loops: target labels built and relabeled as Prometheus builds
//! them, one loop per target (never two scrapes of a target at once), started at a stable
//! offset within the interval, each scrape bounded by the timeout and the body size limit.
//! A scrape's samples get the target's labels and metric relabeling, become OTLP, and go to
//! the pipeline with the synthetic series (`up` ...) and staleness markers for series that
//! went away.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use ferrotel_pipeline::component::{Consumer, Envelope};
use ferrotel_pipeline::pdata::{ExportMetricsServiceRequest, Payload, Signal};
use ferrotel_pipeline::ratelimit::LogLimiter;
use ferrotel_pipeline::telemetry::ReceiverMetrics;

use super::config::{format_prom_duration, Job, TlsConfig};
use super::discovery::FileSd;
use super::kubernetes::KubernetesSd;
use super::parse::{Format, Metadata, MetricType};
use super::relabel::{self, Labels};
use super::samples::{series_of, SampleRules};
use super::staleness::Previous;
use super::translate::{Series, Translator, REPORT_SERIES, STALE_NAN};

/// What Prometheus 2.42 asks for: OpenMetrics first, then the text format.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// The body size bound when `body_size_limit` is not set, so that no target can exhaust
/// memory.
const DEFAULT_BODY_LIMIT: u64 = 64 << 20;

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One job's scrape settings, shared by its targets.
pub struct JobRuntime {
    pub job: Job,
    pub client: HttpClient,
    pub target_rules: Vec<relabel::Compiled>,
    pub metric_rules: Vec<relabel::Compiled>,
}

impl JobRuntime {
    pub fn new(job: Job) -> Result<JobRuntime, String> {
        let tls = TlsConfig::client_settings(job.config.tls_config.as_ref()).build(&[])?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(job.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Some(job.interval.saturating_mul(2)))
            .pool_max_idle_per_host(1)
            .build(connector);
        let compile = |rules: &[relabel::RelabelConfig]| {
            rules
                .iter()
                .map(relabel::RelabelConfig::compile)
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(JobRuntime {
            target_rules: compile(&job.config.relabel_configs)?,
            metric_rules: compile(&job.config.metric_relabel_configs)?,
            client,
            job,
        })
    }

    /// The targets of the job's static configs, built and relabeled as Prometheus does;
    /// dropped targets are left out.
    pub fn static_targets(&self) -> Vec<Target> {
        self.job
            .config
            .static_configs
            .iter()
            .flat_map(|group| self.group_targets(&group.targets, &group.labels, None))
            .collect()
    }

    /// The targets of one group (static or discovered); `file` is the group's
    /// `__meta_filepath`.
    pub fn group_targets(
        &self,
        addresses: &[String],
        group_labels: &std::collections::BTreeMap<String, String>,
        file: Option<&str>,
    ) -> Vec<Target> {
        let mut out = Vec::new();
        for address in addresses {
            let mut labels: Vec<(String, String)> =
                vec![("__address__".to_string(), address.clone())];
            if let Some(file) = file {
                labels.push(("__meta_filepath".to_string(), file.to_string()));
            }
            for (k, v) in group_labels {
                if k != "__address__" {
                    labels.push((k.clone(), v.clone()));
                }
            }
            match self.target(labels) {
                Ok(Some(target)) => out.push(target),
                Ok(None) => {
                    debug!(job = %self.job.config.job_name, address, "Target dropped by relabeling")
                }
                Err(err) => {
                    warn!(job = %self.job.config.job_name, address, error = %err, "Invalid target")
                }
            }
        }
        out
    }

    /// A target from its discovered labels (Prometheus's `PopulateLabels`).
    fn target(&self, discovered: Vec<(String, String)>) -> Result<Option<Target>, String> {
        let job = &self.job;
        let resource = super::translate::discovered_resource(&discovered);
        let mut labels = Labels::from_pairs(discovered);
        let defaults = [
            ("job", job.config.job_name.clone()),
            ("__scrape_interval__", format_prom_duration(job.interval)),
            ("__scrape_timeout__", format_prom_duration(job.timeout)),
            ("__metrics_path__", job.metrics_path.clone()),
            ("__scheme__", job.scheme.clone()),
        ];
        for (name, value) in defaults {
            if labels.get(name).is_none_or(str::is_empty) {
                labels.set(name, &value);
            }
        }
        for (name, values) in &job.config.params {
            if let Some(first) = values.first() {
                labels.set(&format!("__param_{name}"), first);
            }
        }
        let Some(mut labels) = relabel::relabel(&labels, &self.target_rules) else {
            return Ok(None);
        };
        let address = labels.get("__address__").unwrap_or_default().to_string();
        if address.is_empty() {
            return Err("no address".to_string());
        }
        let scheme = labels.get("__scheme__").unwrap_or("http").to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!("invalid scheme: {scheme:?}"));
        }
        let duration = |name: &str, what: &str| -> Result<Duration, String> {
            let text = labels.get(name).unwrap_or_default();
            let d = super::config::parse_prom_duration(text)
                .map_err(|e| format!("error parsing scrape {what}: {e}"))?;
            if d.is_zero() {
                return Err(format!("scrape {what} cannot be 0"));
            }
            Ok(d)
        };
        let interval = duration("__scrape_interval__", "interval")?;
        let timeout = duration("__scrape_timeout__", "timeout")?;
        if timeout > interval {
            return Err(format!(
                "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
                format_prom_duration(timeout),
                format_prom_duration(interval)
            ));
        }
        labels.retain(|name, _| !name.starts_with("__meta_"));
        if labels.get("instance").is_none_or(str::is_empty) {
            labels.set("instance", &address);
        }
        let path = labels
            .get("__metrics_path__")
            .unwrap_or("/metrics")
            .to_string();
        let mut query: Vec<(String, String)> = Vec::new();
        for (name, values) in &job.config.params {
            let param = format!("__param_{name}");
            match labels.get(&param) {
                Some(first) => {
                    query.push((name.clone(), first.to_string()));
                    query.extend(values.iter().skip(1).map(|v| (name.clone(), v.clone())));
                }
                None => query.extend(values.iter().map(|v| (name.clone(), v.clone()))),
            }
        }
        for (name, value) in labels.iter() {
            if let Some(param) = name.strip_prefix("__param_") {
                if !job.config.params.contains_key(param) {
                    query.push((param.to_string(), value.to_string()));
                }
            }
        }
        let mut url = format!("{scheme}://{address}{path}");
        if !query.is_empty() {
            url.push(if path.contains('?') { '&' } else { '?' });
            let encoded: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url.push_str(&encoded.join("&"));
        }
        let public: Vec<(String, String)> = labels
            .iter()
            .filter(|(name, _)| !name.starts_with("__"))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Ok(Some(Target {
            labels: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            public,
            url,
            scheme,
            interval,
            timeout,
            discovered: resource,
        }))
    }
}

/// Percent-encoding of a query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A target to scrape.
#[derive(Debug, Clone)]
pub struct Target {
    /// Every label after relabeling, `__` ones included (the target's identity).
    pub labels: Vec<(String, String)>,
    /// The labels every sample gets (`job`, `instance`, ...).
    pub public: Vec<(String, String)>,
    pub url: String,
    pub scheme: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Resource attributes from the discovery labels (`k8s.pod.name` ...).
    pub discovered: Vec<(String, String)>,
}

impl Target {
    fn hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.labels.hash(&mut h);
        self.url.hash(&mut h);
        h.finish()
    }
}

/// Where a scrape's data goes, and how it is counted.
#[derive(Clone)]
pub struct Sink {
    pub consumer: Arc<dyn Consumer>,
    pub metrics: ReceiverMetrics,
    pub trim_suffixes: bool,
    pub external_labels: Vec<(String, String)>,
    pub receiver: String,
}

/// A job's targets, kept in step with its discovery: a loop per target, started when the
/// target appears and stopped (with staleness markers) when it goes.
pub async fn manage(job: Arc<JobRuntime>, sink: Sink, shutdown: CancellationToken) {
    let name = job.job.config.job_name.clone();
    let mut discoveries: Vec<FileSd> = job
        .job
        .config
        .file_sd_configs
        .iter()
        .map(FileSd::new)
        .collect();
    let mut clusters: Vec<KubernetesSd> = Vec::new();
    for sd in &job.job.config.kubernetes_sd_configs {
        match KubernetesSd::spawn(sd, &name, shutdown.clone()) {
            Ok(k) => clusters.push(k),
            // As Prometheus does, the job goes on with its other targets.
            Err(err) => warn!(receiver = %sink.receiver, job = %name, error = %err,
                "Kubernetes discovery cannot start; its targets are not scraped"),
        }
    }
    let statics = job.static_targets();
    let mut running: HashMap<Vec<(String, String)>, Running> = HashMap::new();
    let mut first = true;
    loop {
        let mut changed = first;
        for sd in &mut discoveries {
            changed |= sd.poll(&name);
        }
        for k in &mut clusters {
            changed |= k.poll();
        }
        if changed {
            let mut wanted: HashMap<Vec<(String, String)>, Target> = HashMap::new();
            for target in statics.iter().cloned() {
                wanted.entry(target.labels.clone()).or_insert(target);
            }
            for sd in &discoveries {
                for (file, group) in sd.groups() {
                    for target in job.group_targets(&group.targets, &group.labels, Some(&file)) {
                        wanted.entry(target.labels.clone()).or_insert(target);
                    }
                }
            }
            for k in &clusters {
                for (_, group) in k.groups() {
                    for target in job.group_targets(&group.targets, &group.labels, None) {
                        wanted.entry(target.labels.clone()).or_insert(target);
                    }
                }
            }
            running.retain(|labels, r| {
                let keep = wanted.contains_key(labels);
                if !keep {
                    r.removed.store(true, Ordering::Release);
                    r.stop.cancel();
                }
                keep
            });
            for (labels, target) in wanted {
                if running.contains_key(&labels) {
                    continue;
                }
                let stop = shutdown.child_token();
                let removed = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(run(
                    job.clone(),
                    target,
                    sink.clone(),
                    stop.clone(),
                    removed.clone(),
                ));
                running.insert(
                    labels,
                    Running {
                        stop,
                        removed,
                        task,
                    },
                );
            }
            info!(receiver = %sink.receiver, job = %name, targets = running.len(), "Scraping");
        }
        first = false;
        let wait = if discoveries.is_empty() && clusters.is_empty() {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    let tasks: Vec<_> = running.into_values().map(|r| r.task).collect();
    futures::future::join_all(tasks).await;
}

/// A running target loop.
struct Running {
    stop: CancellationToken,
    removed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// One target's scrape loop, until `stop`; a target that went away (`removed`) marks its
/// series stale as it stops.
async fn run(
    job: Arc<JobRuntime>,
    target: Target,
    sink: Sink,
    stop: CancellationToken,
    removed: Arc<AtomicBool>,
) {
    let mut state = LoopState::default();
    scrape_loop(&job, &target, &sink, &stop, &mut state).await;
    if removed.load(Ordering::Acquire) {
        if let Some(request) = stale_request(&target, &sink, &state) {
            push(&sink, request).await;
        }
    }
}

/// Staleness markers for every series of a target that went away, and its scrape series.
fn stale_request(
    target: &Target,
    sink: &Sink,
    state: &LoopState,
) -> Option<ExportMetricsServiceRequest> {
    let timestamp_ms = unix_ms();
    let stale = f64::from_bits(STALE_NAN);
    let mut series: Vec<Series> = state.previous.all_stale(timestamp_ms);
    if state.scraped_once {
        let mut labels = target.public.clone();
        labels.extend(sink.external_labels.iter().cloned());
        for (name, _, _) in REPORT_SERIES {
            series.push(Series {
                name: name.to_string(),
                labels: labels.clone(),
                value: stale,
                timestamp_ms,
                exemplar: None,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let metadata = HashMap::new();
    let translator = Translator {
        scheme: &target.scheme,
        metadata: &metadata,
        trim_suffixes: sink.trim_suffixes,
        scope_version: env!("CARGO_PKG_VERSION"),
        discovered: &target.discovered,
    };
    Some(ExportMetricsServiceRequest {
        resource_metrics: translator.translate(&series),
    })
}

async fn scrape_loop(
    job: &JobRuntime,
    target: &Target,
    sink: &Sink,
    shutdown: &CancellationToken,
    state: &mut LoopState,
) {
    // A stable phase within the interval, so that targets spread out and keep their rhythm.
    let interval = target.interval;
    let phase = target.hash() % u64::try_from(interval.as_millis().max(1)).unwrap_or(1);
    let now_ms = unix_ms();
    let into = u64::try_from(now_ms).unwrap_or(0)
        % u64::try_from(interval.as_millis().max(1)).unwrap_or(1);
    let wait_ms = (phase + u64::try_from(interval.as_millis()).unwrap_or(0) - into)
        % u64::try_from(interval.as_millis().max(1)).unwrap_or(1);
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
    }
    let mut ticker = tokio::time::interval(interval);
    // A scrape that runs long delays the next rather than piling up behind it.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let scrape = tokio::select! {
            () = shutdown.cancelled() => return,
            s = scrape_once(job, target, sink, state) => s,
        };
        state.scraped_once = true;
        if let Some(request) = scrape {
            push(sink, request).await;
        }
    }
}

/// What a loop remembers between scrapes.
#[derive(Default)]
struct LoopState {
    /// The series of the last scrape, for staleness markers.
    previous: Previous,
    errors: Option<LogLimiter>,
    scraped_once: bool,
}

/// Scrapes once and builds what goes to the pipeline.
async fn scrape_once(
    job: &JobRuntime,
    target: &Target,
    sink: &Sink,
    state: &mut LoopState,
) -> Option<ExportMetricsServiceRequest> {
    let started = Instant::now();
    let timestamp_ms = unix_ms();
    let outcome = match tokio::time::timeout(target.timeout, fetch(job, target)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "scrape timed out after {}",
            format_prom_duration(target.timeout)
        )),
    };
    let mut metadata: HashMap<String, Metadata> = HashMap::new();
    let (series, scraped, post_relabel, up) = match outcome.and_then(|(body, format)| {
        let target_labels: Vec<(String, String)> = target
            .public
            .iter()
            .chain(&sink.external_labels)
            .cloned()
            .collect();
        let rules = SampleRules {
            target_labels: &target_labels,
            honor_labels: job.job.config.honor_labels,
            honor_timestamps: job.job.honor_timestamps,
            metric_rules: &job.metric_rules,
            label_limit: job.job.label_limit,
            sample_limit: job.job.sample_limit,
        };
        series_of(&body, format, &rules, timestamp_ms, &mut metadata)
    }) {
        Ok((series, scraped)) => {
            let n = series.len();
            (series, scraped, n, 1.0)
        }
        Err(err) => {
            let limiter = state
                .errors
                .get_or_insert_with(|| LogLimiter::new(Duration::from_secs(60)));
            if let Some(folded) = limiter.check() {
                warn!(receiver = %sink.receiver, target = %target.url, error = %err, also = folded,
                    "Failed to scrape Prometheus endpoint");
            }
            (Vec::new(), 0, 0, 0.0)
        }
    };
    let mut series = series;
    // Series that went away are marked stale, once.
    let compared = state.previous.compare(&mut series, timestamp_ms);
    let added = compared.added;
    let duration = started.elapsed().as_secs_f64();
    let report = [
        up,
        duration,
        scraped as f64,
        post_relabel as f64,
        added as f64,
    ];
    for ((name, help, unit), value) in REPORT_SERIES.iter().zip(report) {
        metadata.insert(
            (*name).to_string(),
            Metadata {
                kind: Some(MetricType::Gauge),
                help: Some((*help).to_string()),
                unit: unit.map(str::to_string),
            },
        );
        let mut labels = target.public.clone();
        labels.extend(sink.external_labels.iter().cloned());
        series.push(Series {
            name: (*name).to_string(),
            labels,
            value,
            timestamp_ms,
            exemplar: None,
        });
    }
    let translator = Translator {
        scheme: &target.scheme,
        metadata: &metadata,
        trim_suffixes: sink.trim_suffixes,
        scope_version: env!("CARGO_PKG_VERSION"),
        discovered: &target.discovered,
    };
    let resource_metrics = translator.translate(&series);
    state.previous.replace(compared, series);
    Some(ExportMetricsServiceRequest { resource_metrics })
}

/// GETs the target: the body, decompressed, and its format.
async fn fetch(job: &JobRuntime, target: &Target) -> Result<(Bytes, Format), String> {
    let timeout = target.timeout.as_secs_f64();
    let mut request = Request::get(&target.url)
        .header(header::ACCEPT, ACCEPT)
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(
            header::USER_AGENT,
            concat!("ferrotel/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{timeout}"));
    if let Some(value) = authorization(&job.job.config)? {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| format!("invalid scrape URL {:?}: {e}", target.url))?;
    let response = job
        .client
        .request(request)
        .await
        .map_err(|e| format!("Get {:?}: {e}", target.url))?;
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(format!(
            "server returned HTTP status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
    }
    let headers = response.headers().clone();
    let limit = match job.job.body_size_limit {
        0 => DEFAULT_BODY_LIMIT,
        n => n,
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                "body size limit exceeded".to_string()
            } else {
                format!("reading the response: {e}")
            }
        })?
        .to_bytes();
    let body = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        Some(encoding) if !encoding.eq_ignore_ascii_case("identity") => {
            ferrotel_pipeline::compression::decompress(encoding, body, limit)
                .map_err(|e| e.to_string())?
        }
        _ => body,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    Ok((body, Format::from_content_type(content_type)))
}

/// The Authorization header of a job's credentials (files are read at each scrape, as
/// Prometheus reads them, so rotated credentials take effect).
fn authorization(c: &super::config::ScrapeConfig) -> Result<Option<HeaderValue>, String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("reading {path}: {e}"))
    };
    let value = if let Some(basic) = &c.basic_auth {
        let username = match &basic.username_file {
            Some(f) => read(f)?,
            None => basic.username.clone(),
        };
        let password = match (&basic.password, &basic.password_file) {
            (_, Some(f)) => read(f)?,
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        )
    } else if let Some(auth) = &c.authorization {
        let kind = auth.kind.clone().unwrap_or_else(|| "Bearer".to_string());
        let credentials = match (&auth.credentials, &auth.credentials_file) {
            (_, Some(f)) => read(f)?,
            (Some(c), None) => c.clone(),
            (None, None) => String::new(),
        };
        format!("{kind} {credentials}")
    } else if let Some(token) = &c.bearer_token {
        format!("Bearer {token}")
    } else if let Some(file) = &c.bearer_token_file {
        format!("Bearer {}", read(file)?)
    } else {
        return Ok(None);
    };
    HeaderValue::from_str(&value)
        .map(Some)
        .map_err(|_| "credentials hold characters a header cannot carry".to_string())
}

/// Hands a scrape to the pipeline; a refusal loses that scrape (a pull receiver has no one
/// to ask again), and is counted.
async fn push(sink: &Sink, request: ExportMetricsServiceRequest) {
    let payload = Payload::from(request);
    let items = payload.item_count();
    if items == 0 {
        return;
    }
    match sink.consumer.consume(Envelope::new(payload)).await {
        Ok(accepted) => {
            let rejected = usize::try_from(accepted.rejected_items)
                .unwrap_or(items)
                .min(items);
            sink.metrics.accepted.add(Signal::Metrics, items - rejected);
            sink.metrics.refused.add(Signal::Metrics, rejected);
        }
        Err(err) => {
            sink.metrics.refused.add(Signal::Metrics, items);
            debug!(receiver = %sink.receiver, error = %err, "The pipeline refused a scrape");
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode("a b&c"), "a%20b%26c");
        assert_eq!(encode("node_exporter"), "node_exporter");
    }
}
