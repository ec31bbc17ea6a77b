//! Proxies for the HTTP client: `proxy_url`, or the environment as Go reads it, and the
//! connector that dials through them.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::Scheme;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;
use tower::ServiceExt;
use tracing::warn;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which requests go through a proxy.
pub(crate) struct Proxies {
    matcher: Matcher,
    /// Environment proxies skip loopback destinations, as Go's do; `proxy_url` does not.
    skip_loopback: bool,
}

impl Proxies {
    /// `proxy_url` when set, else `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (upper case first,
    /// as Go reads them); `None` when no proxy applies.
    pub(crate) fn new(proxy_url: &str, id: &str) -> Option<Proxies> {
        if !proxy_url.is_empty() {
            return Some(Proxies {
                matcher: Matcher::builder().all(proxy_url.to_string()).build(),
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
    pub(crate) http: HttpConnector,
    pub(crate) proxies: Option<Arc<Proxies>>,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
