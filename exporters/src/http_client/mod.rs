//! The HTTP client of the HTTP exporters: hyper's pooled client over rustls with upstream's
//! `confighttp` connection settings, proxies, a limit on requests in flight, and the
//! helpers every such exporter needs (URL checks, error chains, bounded response bodies).

mod proxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use ferrotel_pipeline::component::ComponentError;
use ferrotel_pipeline::exporter::config::{ClientTlsSettings, Headers};
use ferrotel_pipeline::exporter::ExportError;

use proxy::{Dialer, Proxies};

type HttpClient = Client<HttpsConnector<Dialer>, Full<Bytes>>;

/// Go's HTTP/2 ping timeout when `http2_ping_timeout` is 0.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Upstream's client reads at most this much of a response body.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The connection settings of upstream's `confighttp.ClientConfig` that shape the client.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub tls: ClientTlsSettings,
    /// An `http://` proxy for every request; when empty, `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY` apply, as in Go.
    pub proxy_url: String,
    pub max_idle_conns: u64,
    /// 0: no limit of its own (`max_idle_conns` still applies).
    pub max_idle_conns_per_host: u64,
    /// 0: unlimited. Otherwise at most this many requests are in flight at once.
    pub max_conns_per_host: u64,
    /// 0: idle connections are kept until the server closes them.
    pub idle_conn_timeout: Duration,
    /// HTTP/2: ping a connection that has been quiet this long; 0 turns pings off.
    pub http2_read_idle_timeout: Duration,
    /// HTTP/2: close the connection if a ping is not answered in this long; 0 means 15s.
    pub http2_ping_timeout: Duration,
    pub disable_keep_alives: bool,
    /// Offer HTTP/2 in the TLS handshake (ALPN).
    pub force_attempt_http2: bool,
}

/// The [`ConnectionSettings`] of a configuration that has upstream's `confighttp` client fields
/// at its top level (as the HTTP exporters do).
macro_rules! connection_settings {
    ($config:expr) => {
        $crate::http_client::ConnectionSettings {
            tls: $config.tls.clone(),
            proxy_url: $config.proxy_url.clone(),
            max_idle_conns: $config.max_idle_conns,
            max_idle_conns_per_host: $config.max_idle_conns_per_host,
            max_conns_per_host: $config.max_conns_per_host,
            idle_conn_timeout: $config.idle_conn_timeout.get(),
            http2_read_idle_timeout: $config.http2_read_idle_timeout.get(),
            http2_ping_timeout: $config.http2_ping_timeout.get(),
            disable_keep_alives: $config.disable_keep_alives,
            force_attempt_http2: $config.force_attempt_http2,
        }
    };
}
pub(crate) use connection_settings;

/// Checks that `text` is an absolute `http://` or `https://` URL with a host.
pub(crate) fn parse_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text.parse().map_err(|e| format!("{e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(format!(
                "unsupported scheme \"{other}\" (use http or https)"
            ))
        }
        None => return Err("no scheme (start it with http:// or https://)".to_string()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".to_string());
    }
    Ok(uri)
}

/// Checks `proxy_url`, which may be empty: only plain-text `http://` proxies are supported.
pub(crate) fn validate_proxy_url(proxy_url: &str) -> Result<(), String> {
    if proxy_url.is_empty() {
        return Ok(());
    }
    let proxy = parse_url(proxy_url).map_err(|e| format!("proxy_url must be a valid URL: {e}"))?;
    if proxy.scheme_str() != Some("http") {
        return Err("proxy_url: only http:// proxies are supported".to_string());
    }
    Ok(())
}

/// The `User-Agent` every HTTP exporter sends.
pub(crate) fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("ferrotel/", env!("CARGO_PKG_VERSION")))
}

/// Adds the configured `headers` (values marked sensitive, so they are never printed),
/// leaving out those `skip` names. An empty `Host` is dropped: hyper derives Host from the URL
/// unless one is given, and a given one wins.
pub(crate) fn insert_configured(
    out: &mut HeaderMap,
    configured: &Headers,
    mut skip: impl FnMut(&str) -> bool,
) -> Result<(), ComponentError> {
    for (name, value) in configured.iter() {
        if skip(name) {
            continue;
        }
        let bad = || ComponentError::new(format!("headers: invalid header \"{name}\""));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| bad())?;
        value.set_sensitive(true);
        out.insert(name, value);
    }
    if out.get(HOST).is_some_and(HeaderValue::is_empty) {
        out.remove(HOST);
    }
    Ok(())
}

/// The whole error chain, since hyper's own message ("client error (Connect)") says little.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// A response with at most `MAX_RESPONSE_BYTES` of its body; the rest is left unread.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body, or why reading it failed.
    pub body: Result<Bytes, String>,
}

/// One exporter's client: built at start (it reads the TLS files), dropped at shutdown.
pub(crate) struct PooledClient {
    id: String,
    settings: ConnectionSettings,
    proxies: Option<Arc<Proxies>>,
    /// `max_conns_per_host`: requests in flight at once.
    limit: Option<Semaphore>,
    client: Mutex<Option<HttpClient>>,
}

impl PooledClient {
    /// Reads the proxy environment; the connections are made from `start` on.
    pub(crate) fn new(id: &str, settings: ConnectionSettings) -> PooledClient {
        let proxies = Proxies::new(&settings.proxy_url, id).map(Arc::new);
        let limit = usize::try_from(settings.max_conns_per_host)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| Semaphore::new(n.min(Semaphore::MAX_PERMITS)));
        PooledClient {
            id: id.to_string(),
            settings,
            proxies,
            limit,
            client: Mutex::new(None),
        }
    }

    pub(crate) fn start(&self) -> Result<(), ComponentError> {
        let client = build(&self.settings, self.proxies.clone())
            .map_err(|e| ComponentError::new(format!("{}: {e}", self.id)))?;
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(client);
        }
        Ok(())
    }

    /// Requests still waiting for a connection fail; pooled connections close.
    pub(crate) fn shutdown(&self) {
        if let Ok(mut slot) = self.client.lock() {
            slot.take();
        }
        if let Some(limit) = &self.limit {
            limit.close();
        }
    }

    /// Sends a request and reads the start of its response. Failures to connect or send are
    /// retryable, as upstream treats them.
    pub(crate) async fn send(
        &self,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, ExportError> {
        let client = self
            .client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| ExportError::retryable("the exporter is not running"))?;
        let _permit = match &self.limit {
            Some(limit) => Some(
                limit
                    .acquire()
                    .await
                    .map_err(|_| ExportError::retryable("the exporter is shutting down"))?,
            ),
            None => None,
        };
        // A plain-http request through a proxy carries the proxy's credentials itself; an
        // https one gave them in the CONNECT.
        if request.uri().scheme_str() == Some("http") {
            if let Some(auth) = self
                .proxies
                .as_ref()
                .and_then(|p| p.intercept(request.uri()))
                .and_then(|i| i.basic_auth().cloned())
            {
                request.headers_mut().insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let response = client.request(request).await.map_err(|e| {
            ExportError::retryable(format!(
                "failed to make an HTTP request: {}",
                error_chain(&e)
            ))
        })?;
        let (parts, body) = response.into_parts();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: read_limited(body).await,
        })
    }
}

/// Reads up to `MAX_RESPONSE_BYTES` of a body.
async fn read_limited(mut body: hyper::body::Incoming) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    while out.len() < MAX_RESPONSE_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_RESPONSE_BYTES - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(error_chain(&e)),
            None => break,
        }
    }
    Ok(out.freeze())
}

/// Builds the pooled client. Reads the TLS files, so it runs at start.
fn build(
    settings: &ConnectionSettings,
    proxies: Option<Arc<Proxies>>,
) -> Result<HttpClient, String> {
    let tls = settings.tls.build(&[])?;
    let mut http = HttpConnector::new();
    // The connector wrapping it decides between http and https.
    http.enforce_http(false);
    http.set_nodelay(true);
    let dialer = Dialer { http, proxies };
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http();
    let builder = match &settings.tls.server_name_override {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("tls: invalid server_name_override: {e}"))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let connector = if settings.force_attempt_http2 {
        builder.enable_http1().enable_http2().wrap_connector(dialer)
    } else {
        builder.enable_http1().wrap_connector(dialer)
    };
    let mut client = Client::builder(TokioExecutor::new());
    let idle_timeout = settings.idle_conn_timeout;
    client.pool_idle_timeout((!idle_timeout.is_zero()).then_some(idle_timeout));
    let limit = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let mut max_idle = usize::MAX;
    if settings.max_idle_conns > 0 {
        max_idle = limit(settings.max_idle_conns);
    }
    if settings.max_idle_conns_per_host > 0 {
        max_idle = max_idle.min(limit(settings.max_idle_conns_per_host));
    }
    if settings.disable_keep_alives {
        max_idle = 0;
    }
    client.pool_max_idle_per_host(max_idle);
    let ping = settings.http2_read_idle_timeout;
    if !ping.is_zero() {
        let timeout = settings.http2_ping_timeout;
        client
            .http2_keep_alive_interval(ping)
            .http2_keep_alive_timeout(if timeout.is_zero() {
                DEFAULT_PING_TIMEOUT
            } else {
                timeout
            })
            .http2_keep_alive_while_idle(true);
    }
    Ok(client.build(connector))
}
