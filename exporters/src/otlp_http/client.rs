//! The HTTP client behind `otlp_http`: hyper's pooled client over rustls, with proxies
//! (`proxy_url`, or the environment as Go reads it) and an optional cookie jar.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Uri};
use http_body_util::Full;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower::ServiceExt;
use tracing::warn;

use super::config::OtlpHttpConfig;

pub(crate) type HttpClient = Client<HttpsConnector<Dialer>, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Go's HTTP/2 ping timeout when `http2_ping_timeout` is 0.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Which requests go through a proxy.
pub(crate) struct Proxies {
    matcher: Matcher,
    /// Environment proxies skip loopback destinations, as Go's do; `proxy_url` does not.
    skip_loopback: bool,
}

impl Proxies {
    /// `proxy_url` when set, else `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (upper case first,
    /// as Go reads them); `None` when no proxy applies.
    pub(crate) fn from_config(config: &OtlpHttpConfig, id: &str) -> Option<Proxies> {
        if !config.proxy_url.is_empty() {
            return Some(Proxies {
                matcher: Matcher::builder().all(config.proxy_url.clone()).build(),
                skip_loopback: false,
            });
        }
        let env = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let http = env(["HTTP_PROXY", "http_proxy"]).filter(|p| usable(p, "HTTP_PROXY", id));
        let https = env(["HTTPS_PROXY", "https_proxy"]).filter(|p| usable(p, "HTTPS_PROXY", id));
        if http.is_none() && https.is_none() {
            return None;
        }
        let mut builder = Matcher::builder();
        if let Some(p) = http {
            builder = builder.http(p);
        }
        if let Some(p) = https {
            builder = builder.https(p);
        }
        if let Some(no) = env(["NO_PROXY", "no_proxy"]) {
            builder = builder.no(no);
        }
        Some(Proxies {
            matcher: builder.build(),
            skip_loopback: true,
        })
    }

    /// The proxy for a destination, if one applies.
    pub(crate) fn intercept(
        &self,
        dst: &Uri,
    ) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        if self.skip_loopback && is_loopback(dst) {
            return None;
        }
        self.matcher.intercept(dst)
    }
}

/// Only plain-text `http://` proxies are supported; others in the environment are ignored.
fn usable(proxy: &str, var: &str, id: &str) -> bool {
    if proxy.starts_with("http://") || !proxy.contains("://") {
        true
    } else {
        warn!(exporter = %id, variable = var, "Ignoring a proxy that is not http:// (not supported yet)");
        false
    }
}

fn is_loopback(dst: &Uri) -> bool {
    let Some(host) = dst.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Opens TCP connections: directly, through a CONNECT tunnel (https destinations behind a
/// proxy), or to the proxy itself for plain http destinations (hyper then sends the request
/// in absolute form).
#[derive(Clone)]
pub(crate) struct Dialer {
    http: HttpConnector,
    proxies: Option<Arc<Proxies>>,
}

type DialFuture = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

impl tower::Service<Uri> for Dialer {
    type Response = Conn;
    type Error = BoxError;
    type Future = DialFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> DialFuture {
        let intercept = self.proxies.as_ref().and_then(|p| p.intercept(&dst));
        let http = self.http.clone();
        Box::pin(async move {
            match intercept {
                None => Ok(Conn {
                    io: http.oneshot(dst).await?,
                    absolute_form: false,
                }),
                Some(proxy) if dst.scheme() == Some(&Scheme::HTTPS) => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Ok(Conn {
                        io: tunnel.oneshot(dst).await?,
                        absolute_form: false,
                    })
                }
                Some(proxy) => Ok(Conn {
                    io: http.oneshot(proxy.uri().clone()).await?,
                    absolute_form: true,
                }),
            }
        })
    }
}

/// A TCP connection that knows whether it leads to a proxy.
pub(crate) struct Conn {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Builds the pooled client. Reads the TLS files, so it runs at start.
pub(crate) fn build(
    config: &OtlpHttpConfig,
    proxies: Option<Arc<Proxies>>,
) -> Result<HttpClient, String> {
    let tls = config.tls.build(&[])?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let dialer = Dialer { http, proxies };
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
        builder.enable_http1().enable_http2().wrap_connector(dialer)
    } else {
        builder.enable_http1().wrap_connector(dialer)
    };
    let mut client = Client::builder(TokioExecutor::new());
    let idle_timeout = config.idle_conn_timeout.get();
    client.pool_idle_timeout(if idle_timeout.is_zero() {
        None
    } else {
        Some(idle_timeout)
    });
    let mut max_idle = usize::MAX;
    if config.max_idle_conns > 0 {
        max_idle = usize::try_from(config.max_idle_conns).unwrap_or(usize::MAX);
    }
    if config.max_idle_conns_per_host > 0 {
        max_idle =
            max_idle.min(usize::try_from(config.max_idle_conns_per_host).unwrap_or(usize::MAX));
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

/// A small cookie jar: the latest value of each cookie per host, sent back on later requests.
/// Attributes other than an expiring `Max-Age` are not interpreted.
#[derive(Default)]
pub(crate) struct CookieJar(Mutex<BTreeMap<String, BTreeMap<String, String>>>);

impl CookieJar {
    pub(crate) fn header(&self, url: &Uri) -> Option<HeaderValue> {
        let host = url.host()?;
        let jar = self.0.lock().ok()?;
        let cookies = jar.get(host).filter(|c| !c.is_empty())?;
        let text = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&text).ok()
    }

    pub(crate) fn store(&self, url: &Uri, headers: &HeaderMap) {
        let Some(host) = url.host() else {
            return;
        };
        let Ok(mut jar) = self.0.lock() else {
            return;
        };
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let name = name.trim().to_string();
            if name.is_empty() {
                continue;
            }
            let expired = parts.any(|attr| {
                attr.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("max-age")
                        && v.trim().parse::<i64>().is_ok_and(|n| n <= 0)
                })
            });
            let host_jar = jar.entry(host.to_string()).or_default();
            if expired {
                host_jar.remove(&name);
            } else {
                host_jar.insert(name, value.trim().to_string());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cookie_jar_keeps_latest_values_and_forgets_expired() {
        let jar = CookieJar::default();
        let url: Uri = "http://h:1/v1/traces".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("a=1; Path=/"),
        );
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("b=2"));
        jar.store(&url, &headers);
        assert_eq!(jar.header(&url).unwrap(), "a=1; b=2");
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("a=; Max-Age=0"),
        );
        jar.store(&url, &headers);
        assert_eq!(jar.header(&url).unwrap(), "b=2");
        assert!(jar.header(&"http://other/".parse().unwrap()).is_none());
    }

    #[test]
    fn loopback_destinations_are_recognised() {
        for u in [
            "http://localhost:1/",
            "http://127.0.0.1:2/",
            "http://[::1]:3/",
        ] {
            assert!(is_loopback(&u.parse().unwrap()), "{u}");
        }
        assert!(!is_loopback(&"http://example.com/".parse().unwrap()));
    }
}
