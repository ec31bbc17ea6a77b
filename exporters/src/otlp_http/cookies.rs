//! `cookies`: a small jar for `otlp_http`, as upstream's client keeps one when the section is
//! present.

use std::collections::BTreeMap;
use std::sync::Mutex;

use http::{HeaderMap, HeaderValue, Uri};

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
}
