//! Listening sockets and a small HTTP server shared by receivers, extensions and the
//! agent's own metrics endpoint: TLS optional, HTTP/1.1 and HTTP/2, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Binds `host:port` as the Collector does: an empty host (`:4317`) is every interface,
/// `localhost` is the loopback address.
pub async fn bind(endpoint: &str) -> io::Result<TcpListener> {
    let endpoint = endpoint.trim();
    let target = if let Some(port) = endpoint.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        endpoint.to_string()
    };
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve \"{endpoint}\": {e}")))?
        .collect();
    // Prefer IPv4, as "localhost" usually means 127.0.0.1 to the people configuring it.
    addrs.sort_by_key(|a| !a.is_ipv4());
    let mut last_err = io::Error::new(
        io::ErrorKind::NotFound,
        format!("no address for \"{endpoint}\""),
    );
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                last_err = io::Error::new(e.kind(), format!("listen on {addr}: {e}"));
            }
        }
    }
    Err(last_err)
}

/// A plain response with a body.
pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        res.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    res
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then lets open requests finish
/// (up to `grace`). The returned task ends when every connection has closed.
pub fn serve_http<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: F,
    shutdown: CancellationToken,
    grace: Duration,
) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = Builder::new(TokioExecutor::new());
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    debug!(error = %err, "accept failed");
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |req| {
                let fut = handler(req, peer);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            match &tls {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn.into_owned());
                    tokio::spawn(async move {
                        if let Err(err) = conn.await {
                            debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let stream = match tokio::time::timeout(
                            Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(err)) => {
                                debug!(error = %err, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        if let Err(err) = watcher.watch(conn.into_owned()).await {
                            debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    })
}
