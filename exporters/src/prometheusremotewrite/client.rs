//! The HTTP client: hyper's pooled client over rustls, with the `confighttp` settings this
//! exporter takes (no proxies, no cookies).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::config::RemoteWriteConfig;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Go's HTTP/2 ping timeout when `http2_ping_timeout` is 0.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds the pooled client. Reads the TLS files, so it runs at start.
pub(crate) fn build(config: &RemoteWriteConfig) -> Result<HttpClient, String> {
    let tls = config.tls.build(&[])?;
    let mut http = HttpConnector::new();
    // The connector wrapping it decides between http and https.
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http();
    let builder = match &config.tls.server_name_override {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("tls: invalid server_name_override: {e}"))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let connector = if config.force_attempt_http2 {
        builder.enable_http1().enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    let mut client = Client::builder(TokioExecutor::new());
    let idle_timeout = config.idle_conn_timeout.get();
    client.pool_idle_timeout((!idle_timeout.is_zero()).then_some(idle_timeout));
    let limit = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let mut max_idle = usize::MAX;
    if config.max_idle_conns > 0 {
        max_idle = limit(config.max_idle_conns);
    }
    if config.max_idle_conns_per_host > 0 {
        max_idle = max_idle.min(limit(config.max_idle_conns_per_host));
    }
    if config.disable_keep_alives {
        max_idle = 0;
    }
    client.pool_max_idle_per_host(max_idle);
    let ping = config.http2_read_idle_timeout.get();
    if !ping.is_zero() {
        let timeout = config.http2_ping_timeout.get();
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
