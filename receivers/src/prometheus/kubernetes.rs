//! Kubernetes service discovery (`kubernetes_sd_configs`), role `pod`: the pods the API server
//! lists, kept current through a watch. Each pod is a target group with Prometheus's
//! `__meta_kubernetes_*` labels and one target per container port (or one per container
//! without ports). A background task per namespace lists, then watches, renews the watch when
//! the server ends it, relists when the resource version has expired, and backs off on errors;
//! the job manager polls a [`KubernetesSd`] handle as it polls file discovery.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use ferrotel_pipeline::tls::ClientTlsSettings;

use super::config::{Authorization, BasicAuth, TlsConfig};
use super::discovery::TargetGroup;

/// Every role Prometheus knows, in the order its messages list them.
const ROLES: [&str; 6] = [
    "pod",
    "service",
    "endpoints",
    "endpointslice",
    "node",
    "ingress",
];
/// Where Kubernetes mounts a pod's service account.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const META: &str = "__meta_kubernetes_";

/// Pods per list page: pages keep each response small when the API server pages lists.
const PAGE_SIZE: &str = "500";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One list page, headers and body.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// Until a watch's response headers arrive.
const WATCH_HEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long past its `timeoutSeconds` a watch may run before it is dropped and renewed.
const WATCH_GRACE: Duration = Duration::from_secs(30);
/// Watches last 5 to 10 minutes, spread so that many agents do not renew together.
const WATCH_MIN_SECONDS: u64 = 300;
/// Bounds on what the server may send: one list page, one watch event, an error body.
const MAX_PAGE_BYTES: usize = 256 << 20;
const MAX_EVENT_BYTES: usize = 16 << 20;
const MAX_ERROR_BYTES: usize = 64 << 10;
/// A watch that lasted this long was healthy even if nothing happened.
const QUIET_WATCH: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// One `kubernetes_sd_configs` entry, with Prometheus's names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    pub role: String,
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<String>,
    pub namespaces: NamespaceDiscovery,
    pub selectors: Vec<SelectorConfig>,
    /// Accepted; node and namespace metadata are not attached yet.
    pub attach_metadata: AttachMetadata,
    // HTTP client settings, which Prometheus allows only with `api_server`.
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    /// Accepted; API servers do not redirect, and redirects are not followed.
    pub follow_redirects: Option<bool>,
    /// Accepted; the API is spoken over HTTP/1.1.
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: Option<bool>,
    pub proxy_connect_header: Option<IgnoredAny>,
    pub oauth2: Option<IgnoredAny>,
    pub http_headers: Option<IgnoredAny>,
}

/// `namespaces`: none named means every namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceDiscovery {
    pub own_namespace: bool,
    pub names: Vec<String>,
}

/// One `selectors` entry: a Kubernetes label and field selector for one role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorConfig {
    pub role: String,
    pub label: String,
    pub field: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachMetadata {
    pub node: bool,
    pub namespace: bool,
}

fn known_role(role: &str) -> Result<(), String> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(format!("unknown Kubernetes SD role {role:?}"))
    }
}

/// The selector roles each discovery role accepts.
fn allowed_selectors(role: &str) -> &'static [&'static str] {
    match role {
        "pod" => &["pod"],
        "service" => &["service"],
        "endpointslice" => &["pod", "service", "endpointslice"],
        "endpoints" => &["pod", "service", "endpoints"],
        "node" => &["node"],
        "ingress" => &["ingress"],
        _ => &[],
    }
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

impl KubernetesSdConfig {
    /// `api_server`, when set (Prometheus writes an unset one as empty).
    pub fn api_server(&self) -> Option<&str> {
        set(&self.api_server)
    }

    pub fn kubeconfig_file(&self) -> Option<&str> {
        set(&self.kubeconfig_file)
    }

    /// Whether any HTTP client setting differs from Prometheus's defaults.
    fn custom_http_client(&self) -> bool {
        let tls = self.tls_config.as_ref().is_some_and(|t| {
            t.ca_file.is_some()
                || t.ca.is_some()
                || t.cert_file.is_some()
                || t.cert.is_some()
                || t.key_file.is_some()
                || t.key.is_some()
                || t.server_name.is_some()
                || t.insecure_skip_verify
                || t.min_version.is_some()
                || t.max_version.is_some()
        });
        tls || self.basic_auth.is_some()
            || self.authorization.is_some()
            || set(&self.bearer_token).is_some()
            || set(&self.bearer_token_file).is_some()
            || self.follow_redirects == Some(false)
            || self.enable_http2 == Some(false)
            || set(&self.proxy_url).is_some()
            || set(&self.no_proxy).is_some()
            || self.proxy_from_environment == Some(true)
            || self.proxy_connect_header.is_some()
            || self.oauth2.is_some()
            || self.http_headers.is_some()
    }

    /// Prometheus's checks of the HTTP client settings, with its messages.
    fn validate_http_client(&self) -> Result<(), String> {
        let bearer = set(&self.bearer_token).is_some();
        let bearer_file = set(&self.bearer_token_file).is_some();
        if bearer && bearer_file {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && (bearer || bearer_file) {
            return Err(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
                    .into(),
            );
        }
        if let Some(basic) = &self.basic_auth {
            if !basic.username.is_empty() && set(&basic.username_file).is_some() {
                return Err(
                    "at most one of basic_auth username & username_file must be configured".into(),
                );
            }
            if set(&basic.password).is_some() && set(&basic.password_file).is_some() {
                return Err(
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        if let Some(auth) = &self.authorization {
            if bearer || bearer_file {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if set(&auth.credentials).is_some() && set(&auth.credentials_file).is_some() {
                return Err(
                    "at most one of authorization credentials & credentials_file must be configured"
                        .into(),
                );
            }
            if auth
                .kind
                .as_deref()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case("basic"))
            {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        }
        if self.oauth2.is_some() && self.basic_auth.is_some() {
            return Err(
                "at most one of basic_auth, oauth2 & authorization must be configured".into(),
            );
        }
        TlsConfig::client_settings(self.tls_config.as_ref()).validate()
    }

    /// Checks the entry as Prometheus does, with its messages, then refuses what is not
    /// supported yet. Pure: reads no file.
    pub fn validate(&self) -> Result<(), String> {
        if self.role.is_empty() {
            return Err(
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"
                    .into(),
            );
        }
        known_role(&self.role)?;
        for selector in &self.selectors {
            if !selector.role.is_empty() {
                known_role(&selector.role)?;
            }
        }
        self.validate_http_client()?;
        let api_server = self.api_server();
        let kubeconfig = self.kubeconfig_file();
        let custom = self.custom_http_client();
        let own_namespace = self.namespaces.own_namespace;
        if api_server.is_some() && kubeconfig.is_some() {
            return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        if kubeconfig.is_some() && custom {
            return Err(
                "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"
                    .into(),
            );
        }
        if api_server.is_none() && custom {
            return Err(
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
                    .into(),
            );
        }
        if api_server.is_some() && own_namespace {
            return Err(
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously".into(),
            );
        }
        if kubeconfig.is_some() && own_namespace {
            return Err(
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously".into(),
            );
        }
        if let Some(url) = api_server {
            check_api_server(url)?;
        }
        let mut seen: Vec<&str> = Vec::new();
        for selector in &self.selectors {
            if seen.contains(&selector.role.as_str()) {
                return Err(format!("duplicated selector role: {}", selector.role));
            }
            seen.push(&selector.role);
            let allowed = allowed_selectors(&self.role);
            if !allowed.contains(&selector.role.as_str()) {
                return Err(format!(
                    "{} role supports only {} selectors",
                    self.role,
                    allowed.join(", ")
                ));
            }
            check_field_selector(&selector.field)?;
            check_label_selector(&selector.label)?;
        }
        let unsupported = [
            ("proxy_url", set(&self.proxy_url).is_some()),
            ("no_proxy", set(&self.no_proxy).is_some()),
            (
                "proxy_from_environment",
                self.proxy_from_environment == Some(true),
            ),
            ("proxy_connect_header", self.proxy_connect_header.is_some()),
            ("oauth2", self.oauth2.is_some()),
            ("http_headers", self.http_headers.is_some()),
        ];
        if let Some((name, _)) = unsupported.iter().find(|(_, on)| *on) {
            return Err(format!(
                "kubernetes_sd_configs: {name} is not supported yet"
            ));
        }
        if self.role != "pod" {
            return Err(format!(
                "kubernetes_sd_configs: role {:?} is not supported yet (only \"pod\" is)",
                self.role
            ));
        }
        Ok(())
    }

    /// The selectors of the pod role: (label, field).
    fn pod_selectors(&self) -> (&str, &str) {
        self.selectors
            .iter()
            .find(|s| s.role == "pod")
            .map_or(("", ""), |s| (s.label.as_str(), s.field.as_str()))
    }
}

/// An `api_server` must be an absolute http or https URL; a path prefix is kept.
fn check_api_server(url: &str) -> Result<(), String> {
    let bad = |why: &str| format!("invalid api_server URL {url:?}: {why}");
    let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if uri.query().is_some() {
        return Err(bad("a query is not allowed"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Selectors, checked as the API server would parse them
// ---------------------------------------------------------------------------------------

/// Splits on commas that no backslash escapes.
fn split_unescaped(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A field selector: terms `key=value`, `key==value` or `key!=value`, separated by commas;
/// in values, `\`, `,` and `=` are escaped with a backslash.
fn check_field_selector(selector: &str) -> Result<(), String> {
    for term in split_unescaped(selector) {
        if term.is_empty() {
            continue;
        }
        let split = term.char_indices().find_map(|(i, _)| {
            ["!=", "==", "="]
                .iter()
                .find(|op| term[i..].starts_with(**op))
                .map(|op| term[i + op.len()..].to_string())
        });
        let Some(value) = split else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{term}'"
            ));
        };
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\' | ',' | '=') => {}
                    other => {
                        return Err(format!(
                            "invalid field selector {selector:?}: invalid escape sequence \\{}",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                },
                ',' | '=' => {
                    return Err(format!(
                        "invalid field selector {selector:?}: unescaped {c:?} in a value"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A token of a label selector.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Word(&'a str),
    Op(&'static str),
}

fn label_tokens(selector: &str) -> Vec<Token<'_>> {
    const OPS: [&str; 9] = ["!=", "==", "=", "!", "(", ")", ",", ">", "<"];
    let mut tokens = Vec::new();
    let mut rest = selector;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return tokens;
        }
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = &rest[op.len()..];
            continue;
        }
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || "!=(),<>".contains(*c))
            .map_or(rest.len(), |(i, _)| i);
        tokens.push(Token::Word(&rest[..end]));
        rest = &rest[end..];
    }
}

/// A label name part: up to 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn label_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name part.
fn label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            })
    });
    prefix_ok && label_name_part(name)
}

fn label_value(value: &str) -> bool {
    value.is_empty() || label_name_part(value)
}

/// A label selector: requirements `key`, `!key`, `key=value`, `key==value`, `key!=value`,
/// `key in (a,b)`, `key notin (a,b)`, `key>1`, `key<1`, separated by commas.
fn check_label_selector(selector: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("invalid label selector {selector:?}: {why}"));
    let tokens = label_tokens(selector);
    let mut i = 0;
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(*w),
        _ => None,
    };
    while i < tokens.len() {
        let negated = tokens[i] == Token::Op("!");
        if negated {
            i += 1;
        }
        let Some(key) = word(i) else {
            return bad("a label key is expected".into());
        };
        if !label_key(key) {
            return bad(format!("{key:?} is not a valid label key"));
        }
        i += 1;
        if !negated {
            match tokens.get(i) {
                None | Some(Token::Op(",")) => {}
                Some(Token::Op("=" | "==" | "!=")) => {
                    i += 1;
                    let value = word(i).unwrap_or("");
                    if word(i).is_some() {
                        i += 1;
                    }
                    if !label_value(value) {
                        return bad(format!("{value:?} is not a valid label value"));
                    }
                }
                Some(Token::Op(">" | "<")) => {
                    i += 1;
                    match word(i) {
                        Some(n) if n.parse::<i64>().is_ok() => i += 1,
                        _ => return bad(format!("{key:?} must be compared with an integer")),
                    }
                }
                Some(Token::Word("in" | "notin")) => {
                    i += 1;
                    if tokens.get(i) != Some(&Token::Op("(")) {
                        return bad("'(' is expected after in or notin".into());
                    }
                    i += 1;
                    let mut values = 0;
                    loop {
                        if let Some(value) = word(i) {
                            if !label_value(value) {
                                return bad(format!("{value:?} is not a valid label value"));
                            }
                            values += 1;
                            i += 1;
                        }
                        match tokens.get(i) {
                            Some(Token::Op(",")) => i += 1,
                            Some(Token::Op(")")) => {
                                i += 1;
                                break;
                            }
                            _ => return bad("')' is expected".into()),
                        }
                    }
                    if values == 0 {
                        return bad("the values of in and notin cannot be empty".into());
                    }
                }
                Some(other) => return bad(format!("unexpected {other:?} after {key:?}")),
            }
        }
        match tokens.get(i) {
            None => {}
            Some(Token::Op(",")) if i + 1 < tokens.len() => i += 1,
            Some(Token::Op(",")) => return bad("a requirement is expected after ','".into()),
            Some(other) => return bad(format!("unexpected {other:?}")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Pods and their target groups
// ---------------------------------------------------------------------------------------

/// `null` read as the default, as the API may write empty fields either way.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The parts of a Pod the labels come from; everything else is skipped while parsing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Pod {
    #[serde(deserialize_with = "nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "nullable")]
    spec: PodSpec,
    #[serde(deserialize_with = "nullable")]
    status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ObjectMeta {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    namespace: String,
    #[serde(deserialize_with = "nullable")]
    uid: String,
    #[serde(deserialize_with = "nullable")]
    resource_version: String,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    owner_references: Vec<OwnerReference>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OwnerReference {
    #[serde(deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    controller: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodSpec {
    #[serde(deserialize_with = "nullable")]
    node_name: String,
    #[serde(deserialize_with = "nullable")]
    containers: Vec<Container>,
    #[serde(deserialize_with = "nullable")]
    init_containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Container {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    image: String,
    #[serde(deserialize_with = "nullable")]
    ports: Vec<ContainerPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ContainerPort {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    container_port: i64,
    #[serde(deserialize_with = "nullable")]
    protocol: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodStatus {
    #[serde(deserialize_with = "nullable")]
    phase: String,
    #[serde(rename = "podIP", deserialize_with = "nullable")]
    pod_ip: String,
    #[serde(rename = "podIPs", deserialize_with = "nullable")]
    pod_ips: Vec<PodIp>,
    #[serde(rename = "hostIP", deserialize_with = "nullable")]
    host_ip: String,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<PodCondition>,
    #[serde(deserialize_with = "nullable")]
    container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "nullable")]
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodIp {
    #[serde(deserialize_with = "nullable")]
    ip: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodCondition {
    #[serde(rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ContainerStatus {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "containerID", deserialize_with = "nullable")]
    container_id: String,
}

/// One pod's targets, as Prometheus's pod discovery builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodGroup {
    /// `pod/<namespace>/<name>`.
    pub source: String,
    /// The labels every target of the pod shares (empty when the pod has no IP).
    pub labels: BTreeMap<String, String>,
    pub targets: Vec<PodTarget>,
}

/// One container port of a pod, or one container without ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// `podIP:port`, or the pod IP alone (IPv6 in brackets) for a container without ports.
    pub address: String,
    /// The container's labels (name, image, id, init flag, port name, number, protocol).
    pub labels: BTreeMap<String, String>,
}

/// Replaces every character outside `[a-zA-Z0-9_]` with `_`, as Prometheus does.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn meta(name: &str) -> String {
    format!("{META}{name}")
}

fn pod_source(namespace: &str, name: &str) -> String {
    format!("pod/{namespace}/{name}")
}

fn is_ipv4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// The pod's target group.
fn pod_group(pod: &Pod) -> PodGroup {
    let meta_data = &pod.metadata;
    let source = pod_source(&meta_data.namespace, &meta_data.name);
    let pod_ip = pod.status.pod_ip.as_str();
    // A pod that is starting or was evicted has no IP, hence no targets.
    if pod_ip.is_empty() {
        return PodGroup {
            source,
            labels: BTreeMap::new(),
            targets: Vec::new(),
        };
    }
    let ready = pod
        .status
        .conditions
        .iter()
        .find(|c| c.kind == "Ready")
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase());
    let mut labels: BTreeMap<String, String> = [
        ("namespace", meta_data.namespace.clone()),
        ("pod_name", meta_data.name.clone()),
        ("pod_ip", pod_ip.to_string()),
        ("pod_ready", ready),
        ("pod_phase", pod.status.phase.clone()),
        ("pod_node_name", pod.spec.node_name.clone()),
        ("pod_host_ip", pod.status.host_ip.clone()),
        ("pod_uid", meta_data.uid.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (meta(k), v))
    .collect();
    // The first IPv4 and the first IPv6 address of the pod.
    for entry in &pod.status.pod_ips {
        let Ok(ip) = entry.ip.parse::<IpAddr>() else {
            continue;
        };
        let name = if is_ipv4(&ip) {
            meta("pod_ipv4")
        } else {
            meta("pod_ipv6")
        };
        labels.entry(name).or_insert_with(|| entry.ip.clone());
    }
    if let Some(owner) = meta_data.owner_references.iter().find(|o| o.controller) {
        if !owner.kind.is_empty() {
            labels.insert(meta("pod_controller_kind"), owner.kind.clone());
        }
        if !owner.name.is_empty() {
            labels.insert(meta("pod_controller_name"), owner.name.clone());
        }
    }
    for (key, value) in &meta_data.labels {
        let name = sanitize(key);
        labels.insert(meta(&format!("pod_label_{name}")), value.clone());
        labels.insert(meta(&format!("pod_labelpresent_{name}")), "true".into());
    }
    for (key, value) in &meta_data.annotations {
        let name = sanitize(key);
        labels.insert(meta(&format!("pod_annotation_{name}")), value.clone());
        labels.insert(
            meta(&format!("pod_annotationpresent_{name}")),
            "true".into(),
        );
    }

    let bare_address = match pod_ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => format!("[{v6}]"),
        _ => pod_ip.to_string(),
    };
    let containers = pod
        .spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(pod.spec.init_containers.iter().map(|c| (c, true)));
    let mut targets = Vec::new();
    for (container, init) in containers {
        let statuses = if init {
            &pod.status.init_container_statuses
        } else {
            &pod.status.container_statuses
        };
        let id = statuses
            .iter()
            .find(|s| s.name == container.name)
            .map(|s| s.container_id.clone())
            .unwrap_or_default();
        let base: BTreeMap<String, String> = [
            ("pod_container_name", container.name.clone()),
            ("pod_container_id", id),
            ("pod_container_image", container.image.clone()),
            ("pod_container_init", init.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (meta(k), v))
        .collect();
        if container.ports.is_empty() {
            // No port: the address is the pod IP alone, for relabeling to complete.
            targets.push(PodTarget {
                address: bare_address.clone(),
                labels: base,
            });
            continue;
        }
        for port in &container.ports {
            let number = port.container_port.to_string();
            let address = if pod_ip.contains(':') {
                format!("[{pod_ip}]:{number}")
            } else {
                format!("{pod_ip}:{number}")
            };
            let mut target_labels = base.clone();
            target_labels.insert(meta("pod_container_port_name"), port.name.clone());
            target_labels.insert(meta("pod_container_port_number"), number);
            target_labels.insert(meta("pod_container_port_protocol"), port.protocol.clone());
            targets.push(PodTarget {
                address,
                labels: target_labels,
            });
        }
    }
    PodGroup {
        source,
        labels,
        targets,
    }
}

// ---------------------------------------------------------------------------------------
// Where the API server is and how to authenticate
// ---------------------------------------------------------------------------------------

/// A secret given inline or read from a file at each request, so rotated files (the
/// service account token) take effect.
#[derive(Clone)]
enum Secret {
    Inline(String),
    File(PathBuf),
}

impl Secret {
    fn read(&self) -> Result<String, String> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("reading {}: {e}", path.display())),
        }
    }
}

#[derive(Clone)]
enum Credentials {
    None,
    /// `Authorization: <scheme> <secret>`.
    Scheme {
        scheme: String,
        secret: Secret,
    },
    Basic {
        username: Secret,
        password: Option<Secret>,
    },
}

impl Credentials {
    fn from_config(c: &KubernetesSdConfig) -> Credentials {
        if let Some(basic) = &c.basic_auth {
            return Credentials::Basic {
                username: match set(&basic.username_file) {
                    Some(f) => Secret::File(f.into()),
                    None => Secret::Inline(basic.username.clone()),
                },
                password: match (set(&basic.password_file), &basic.password) {
                    (Some(f), _) => Some(Secret::File(f.into())),
                    (None, Some(p)) => Some(Secret::Inline(p.clone())),
                    (None, None) => None,
                },
            };
        }
        if let Some(auth) = &c.authorization {
            let scheme = auth
                .kind
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .unwrap_or("Bearer")
                .to_string();
            let secret = match set(&auth.credentials_file) {
                Some(f) => Secret::File(f.into()),
                None => Secret::Inline(auth.credentials.clone().unwrap_or_default()),
            };
            return Credentials::Scheme { scheme, secret };
        }
        if let Some(token) = set(&c.bearer_token) {
            return Credentials::bearer(Secret::Inline(token.to_string()));
        }
        if let Some(file) = set(&c.bearer_token_file) {
            return Credentials::bearer(Secret::File(file.into()));
        }
        Credentials::None
    }

    fn bearer(secret: Secret) -> Credentials {
        Credentials::Scheme {
            scheme: "Bearer".to_string(),
            secret,
        }
    }

    fn header(&self) -> Result<Option<HeaderValue>, String> {
        let value = match self {
            Credentials::None => return Ok(None),
            Credentials::Scheme { scheme, secret } => format!("{scheme} {}", secret.read()?),
            Credentials::Basic { username, password } => {
                let password = match password {
                    Some(p) => p.read()?,
                    None => String::new(),
                };
                let pair = format!("{}:{password}", username.read()?);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "credentials hold characters a header cannot carry".to_string())?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}

/// The API server, how to reach it, and (in a cluster) the agent's own namespace.
struct Endpoint {
    base: String,
    tls: ClientTlsSettings,
    credentials: Credentials,
    own_namespace: Option<String>,
}

/// Prometheus's TLS settings in the shared client form (`TLS12` becomes `1.2`).
fn endpoint(config: &KubernetesSdConfig) -> Result<Endpoint, String> {
    if let Some(path) = config.kubeconfig_file() {
        return kubeconfig(Path::new(path));
    }
    match config.api_server() {
        Some(url) => Ok(Endpoint {
            base: url.trim_end_matches('/').to_string(),
            tls: TlsConfig::client_settings(config.tls_config.as_ref()),
            credentials: Credentials::from_config(config),
            own_namespace: None,
        }),
        None => in_cluster(
            std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
            Path::new(SERVICE_ACCOUNT_DIR),
            config.namespaces.own_namespace,
        ),
    }
}

/// The in-cluster settings: the service's address from the environment, the service
/// account's token and CA, and its namespace when `own_namespace` asks for it.
fn in_cluster(
    host: Option<&str>,
    port: Option<&str>,
    dir: &Path,
    own_namespace: bool,
) -> Result<Endpoint, String> {
    let (Some(host), Some(port)) = (
        host.filter(|h| !h.is_empty()),
        port.filter(|p| !p.is_empty()),
    ) else {
        return Err("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined".into());
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let token = dir.join("token");
    // Read once now, so that a missing token fails at start rather than at each request.
    Secret::File(token.clone()).read()?;
    let own = if own_namespace {
        let file = dir.join("namespace");
        let name = std::fs::read_to_string(&file)
            .map_err(|e| format!("could not determine the pod's namespace: {e}"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err("could not read own namespace name (empty file)".into());
        }
        Some(name.to_string())
    } else {
        None
    };
    Ok(Endpoint {
        base: format!("https://{host}:{port}"),
        tls: ClientTlsSettings {
            ca_file: Some(dir.join("ca.crt").display().to_string()),
            ..ClientTlsSettings::default()
        },
        credentials: Credentials::bearer(Secret::File(token)),
        own_namespace: own,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct KubeConfig {
    current_context: String,
    #[serde(deserialize_with = "nullable")]
    clusters: Vec<NamedCluster>,
    #[serde(deserialize_with = "nullable")]
    contexts: Vec<NamedContext>,
    #[serde(deserialize_with = "nullable")]
    users: Vec<NamedUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamedCluster {
    name: String,
    cluster: KubeCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct KubeCluster {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamedContext {
    name: String,
    context: KubeContext,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KubeContext {
    cluster: String,
    user: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamedUser {
    name: String,
    user: KubeUser,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct KubeUser {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<IgnoredAny>,
    auth_provider: Option<IgnoredAny>,
}

/// The current context of a kubeconfig file: its cluster's server and TLS settings and its
/// user's token, client certificate or basic credentials. Paths are relative to the file.
fn kubeconfig(path: &Path) -> Result<Endpoint, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading kubeconfig_file {shown}: {e}"))?;
    let config: KubeConfig =
        serde_yaml::from_str(&text).map_err(|e| format!("parsing kubeconfig_file {shown}: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let relative = |p: &str| dir.join(p).display().to_string();
    let decode = |what: &str, data: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("kubeconfig_file {shown}: {what} is not valid base64 PEM"))
    };
    if config.current_context.is_empty() {
        return Err(format!(
            "kubeconfig_file {shown}: current-context is not set"
        ));
    }
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == config.current_context)
        .ok_or_else(|| {
            format!(
                "kubeconfig_file {shown}: no context named {:?}",
                config.current_context
            )
        })?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.context.cluster)
        .map(|c| &c.cluster)
        .ok_or_else(|| {
            format!(
                "kubeconfig_file {shown}: no cluster named {:?}",
                context.context.cluster
            )
        })?;
    let user = config
        .users
        .iter()
        .find(|u| u.name == context.context.user)
        .map(|u| &u.user);
    let default_user = KubeUser::default();
    let user = user.unwrap_or(&default_user);
    if cluster.server.is_empty() {
        return Err(format!(
            "kubeconfig_file {shown}: the cluster has no server"
        ));
    }
    check_api_server(&cluster.server).map_err(|e| format!("kubeconfig_file {shown}: {e}"))?;
    if set(&cluster.proxy_url).is_some() {
        return Err(format!(
            "kubeconfig_file {shown}: proxy-url is not supported yet"
        ));
    }
    let token = set(&user.token);
    if token.is_none() && (user.exec.is_some() || user.auth_provider.is_some()) {
        return Err(format!(
            "kubeconfig_file {shown}: exec and auth-provider credentials are not supported yet"
        ));
    }
    let mut tls = ClientTlsSettings {
        insecure_skip_verify: cluster.insecure_skip_tls_verify,
        server_name_override: set(&cluster.tls_server_name).map(str::to_string),
        ..ClientTlsSettings::default()
    };
    match (
        set(&cluster.certificate_authority_data),
        set(&cluster.certificate_authority),
    ) {
        (Some(data), _) => tls.ca_pem = Some(decode("certificate-authority-data", data)?),
        (None, Some(file)) => tls.ca_file = Some(relative(file)),
        (None, None) => {}
    }
    match (
        set(&user.client_certificate_data),
        set(&user.client_certificate),
    ) {
        (Some(data), _) => tls.cert_pem = Some(decode("client-certificate-data", data)?),
        (None, Some(file)) => tls.cert_file = Some(relative(file)),
        (None, None) => {}
    }
    match (set(&user.client_key_data), set(&user.client_key)) {
        (Some(data), _) => tls.key_pem = Some(decode("client-key-data", data)?),
        (None, Some(file)) => tls.key_file = Some(relative(file)),
        (None, None) => {}
    }
    let credentials = match (token, set(&user.token_file), set(&user.username)) {
        (Some(token), _, _) => Credentials::bearer(Secret::Inline(token.to_string())),
        (None, Some(file), _) => Credentials::bearer(Secret::File(relative(file).into())),
        (None, None, Some(name)) => Credentials::Basic {
            username: Secret::Inline(name.to_string()),
            password: user.password.clone().map(Secret::Inline),
        },
        (None, None, None) => Credentials::None,
    };
    Ok(Endpoint {
        base: cluster.server.trim_end_matches('/').to_string(),
        tls,
        credentials,
        own_namespace: None,
    })
}

// ---------------------------------------------------------------------------------------
// The API client
// ---------------------------------------------------------------------------------------

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

fn build_client(tls: &ClientTlsSettings) -> Result<HttpClient, String> {
    let config = tls.build(&[])?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // Keepalive probes notice a watch connection whose peer vanished.
    http.set_keepalive(Some(Duration::from_secs(30)));
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(config))
        .https_or_http();
    let builder = match &tls.server_name_override {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("tls_config: invalid server_name: {e}"))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let connector = builder.enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Some(Duration::from_secs(90)))
        .pool_max_idle_per_host(2)
        .build(connector))
}

/// Percent-encoding of a path segment or query component.
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

/// The URL of the pods of `namespace` (all when empty), with the selectors and `params`.
fn pods_url(
    base: &str,
    namespace: &str,
    label_selector: &str,
    field_selector: &str,
    params: &[(&str, &str)],
) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    if namespace.is_empty() {
        url.push_str("/api/v1/pods");
    } else {
        url.push_str("/api/v1/namespaces/");
        url.push_str(&encode(namespace));
        url.push_str("/pods");
    }
    let selectors = [
        ("labelSelector", label_selector),
        ("fieldSelector", field_selector),
    ];
    let mut separator = '?';
    for (name, value) in params
        .iter()
        .copied()
        .chain(selectors.into_iter().filter(|(_, v)| !v.is_empty()))
    {
        url.push(separator);
        separator = '&';
        url.push_str(name);
        url.push('=');
        url.push_str(&encode(value));
    }
    url
}

/// A failed request: an expired resource version calls for a fresh list.
#[derive(Debug)]
enum ApiError {
    Expired,
    Other(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Expired => f.write_str("the resource version has expired"),
            ApiError::Other(e) => f.write_str(e),
        }
    }
}

/// A Kubernetes `Status` object, as errors come.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiStatus {
    #[serde(deserialize_with = "nullable")]
    code: u16,
    #[serde(deserialize_with = "nullable")]
    reason: String,
    #[serde(deserialize_with = "nullable")]
    message: String,
}

impl ApiStatus {
    fn expired(&self) -> bool {
        self.code == 410 || self.reason == "Expired" || self.reason == "Gone"
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodList {
    #[serde(deserialize_with = "nullable")]
    metadata: ListMeta,
    #[serde(deserialize_with = "nullable")]
    items: Vec<Pod>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ListMeta {
    #[serde(deserialize_with = "nullable")]
    resource_version: String,
    #[serde(rename = "continue", deserialize_with = "nullable")]
    continue_token: String,
}

#[derive(Debug, Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: serde_json::Value,
}

/// Where a list starts from.
#[derive(Debug, Clone, PartialEq)]
enum ListFrom {
    /// Any version, cheap for the server (its watch cache): the first list.
    Any,
    /// No older than what was already seen: after an error.
    NotOlderThan(String),
    /// The latest version: after the one known has expired.
    Latest,
}

struct Api {
    client: HttpClient,
    base: String,
    credentials: Credentials,
    label_selector: String,
    field_selector: String,
}

impl Api {
    fn url(&self, namespace: &str, params: &[(&str, &str)]) -> String {
        pods_url(
            &self.base,
            namespace,
            &self.label_selector,
            &self.field_selector,
            params,
        )
    }

    /// Sends a GET and returns the response when its status is 200.
    async fn get(&self, url: &str) -> Result<http::Response<Incoming>, ApiError> {
        let mut request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("ferrotel/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = self.credentials.header().map_err(ApiError::Other)? {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| ApiError::Other(format!("invalid request URL {url:?}: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ApiError::Other(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response);
        }
        let body = Limited::new(response.into_body(), MAX_ERROR_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let detail = serde_json::from_slice::<ApiStatus>(&body).unwrap_or_default();
        if status == StatusCode::GONE || detail.expired() {
            return Err(ApiError::Expired);
        }
        let mut message = format!(
            "GET {url}: server returned HTTP status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        if !detail.message.is_empty() {
            message.push_str(": ");
            message.push_str(&detail.message);
        }
        Err(ApiError::Other(message))
    }

    /// Every pod, page by page; with the list's resource version.
    async fn list(&self, namespace: &str, from: &ListFrom) -> Result<(Vec<Pod>, String), ApiError> {
        let mut pods = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut params = vec![("limit", PAGE_SIZE)];
            // A continued list carries its version in the token.
            match (&next, from) {
                (Some(token), _) => params.push(("continue", token.as_str())),
                (None, ListFrom::Any) => params.push(("resourceVersion", "0")),
                (None, ListFrom::NotOlderThan(rv)) => params.push(("resourceVersion", rv.as_str())),
                (None, ListFrom::Latest) => {}
            }
            let url = self.url(namespace, &params);
            let page = tokio::time::timeout(LIST_TIMEOUT, async {
                let response = self.get(&url).await?;
                Limited::new(response.into_body(), MAX_PAGE_BYTES)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            ApiError::Other(format!(
                                "GET {url}: the list is larger than {MAX_PAGE_BYTES} bytes; narrow it with selectors or namespaces"
                            ))
                        } else {
                            ApiError::Other(format!("GET {url}: reading the list: {e}"))
                        }
                    })
            })
            .await
            .map_err(|_| ApiError::Other(format!("GET {url}: timed out after {LIST_TIMEOUT:?}")))??;
            let page: PodList = serde_json::from_slice(&page)
                .map_err(|e| ApiError::Other(format!("GET {url}: invalid pod list: {e}")))?;
            pods.extend(page.items);
            if page.metadata.continue_token.is_empty() {
                return Ok((pods, page.metadata.resource_version));
            }
            next = Some(page.metadata.continue_token);
        }
    }

    /// Watches from `rv` until the server ends the stream, applying each event to `slot` and
    /// advancing `rv`. Returns whether any event came.
    async fn watch(&self, namespace: &str, rv: &mut String, slot: &Slot) -> Result<bool, ApiError> {
        let seconds = WATCH_MIN_SECONDS + jitter(WATCH_MIN_SECONDS);
        let seconds_text = seconds.to_string();
        let url = self.url(
            namespace,
            &[
                ("watch", "true"),
                ("resourceVersion", rv.as_str()),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", &seconds_text),
            ],
        );
        let response = tokio::time::timeout(WATCH_HEADERS_TIMEOUT, self.get(&url))
            .await
            .map_err(|_| {
                ApiError::Other(format!(
                    "GET {url}: no response in {WATCH_HEADERS_TIMEOUT:?}"
                ))
            })??;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds) + WATCH_GRACE;
        let mut body = response.into_body();
        let mut buffer: Vec<u8> = Vec::new();
        let mut scanned = 0;
        let mut active = false;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                // The server should have ended it by now; a new watch replaces it.
                Err(_) => return Ok(active),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(ApiError::Other(format!("reading the watch of pods: {e}")))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(offset) = buffer[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + offset;
                let line: Vec<u8> = buffer.drain(..=end).collect();
                scanned = 0;
                active |= apply_event(&line, rv, slot)?;
            }
            scanned = buffer.len();
            if buffer.len() > MAX_EVENT_BYTES {
                return Err(ApiError::Other(format!(
                    "a watch event is larger than {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
        active |= apply_event(&buffer, rv, slot)?;
        Ok(active)
    }
}

/// Applies one line of a watch stream; true when it held an event.
fn apply_event(line: &[u8], rv: &mut String, slot: &Slot) -> Result<bool, ApiError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let WatchEvent { kind, object } = serde_json::from_slice(line)
        .map_err(|e| ApiError::Other(format!("invalid watch event: {e}")))?;
    let pod = |object: serde_json::Value| {
        serde_json::from_value::<Pod>(object)
            .map_err(|e| ApiError::Other(format!("invalid pod in a {kind} event: {e}")))
    };
    match kind.as_str() {
        "ADDED" | "MODIFIED" => {
            let pod = pod(object)?;
            advance(rv, &pod.metadata.resource_version);
            slot.upsert(pod_group(&pod));
        }
        "DELETED" => {
            let pod = pod(object)?;
            advance(rv, &pod.metadata.resource_version);
            slot.remove(&pod_source(&pod.metadata.namespace, &pod.metadata.name));
        }
        // A bookmark is a pod holding only the version reached.
        "BOOKMARK" => advance(rv, &pod(object)?.metadata.resource_version),
        "ERROR" => {
            let status: ApiStatus = serde_json::from_value(object).unwrap_or_default();
            if status.expired() {
                return Err(ApiError::Expired);
            }
            return Err(ApiError::Other(format!(
                "the watch of pods failed: {} {} {}",
                status.code, status.reason, status.message
            )));
        }
        other => debug!(event = other, "Ignoring an unknown watch event"),
    }
    Ok(true)
}

fn advance(rv: &mut String, seen: &str) {
    if !seen.is_empty() {
        *rv = seen.to_string();
    }
}

/// A random number below `below`, to spread timers.
fn jitter(below: u64) -> u64 {
    if below == 0 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(below);
    hasher.finish() % below
}

// ---------------------------------------------------------------------------------------
// The discovery
// ---------------------------------------------------------------------------------------

/// Per namespace watched, its pods' groups by source.
type Groups = Vec<BTreeMap<String, PodGroup>>;

/// One namespace's share of the groups.
struct Slot {
    groups: watch::Sender<Groups>,
    index: usize,
}

impl Slot {
    fn upsert(&self, group: PodGroup) {
        self.groups.send_if_modified(|all| {
            let Some(mine) = all.get_mut(self.index) else {
                return false;
            };
            if mine.get(&group.source) == Some(&group) {
                return false;
            }
            mine.insert(group.source.clone(), group);
            true
        });
    }

    fn remove(&self, source: &str) {
        self.groups.send_if_modified(|all| {
            all.get_mut(self.index)
                .is_some_and(|mine| mine.remove(source).is_some())
        });
    }

    fn replace(&self, groups: BTreeMap<String, PodGroup>) {
        self.groups
            .send_if_modified(|all| match all.get_mut(self.index) {
                Some(mine) if *mine != groups => {
                    *mine = groups;
                    true
                }
                _ => false,
            });
    }
}

/// A running pod discovery: background tasks keep the pods current; the handle tells what
/// changed. Dropping the handle stops the tasks.
pub struct KubernetesSd {
    groups: watch::Receiver<Groups>,
    _stop: DropGuard,
}

impl KubernetesSd {
    /// Starts discovering for `config` (validated again here). Reads the kubeconfig, the
    /// service account files and the CA now, so their errors come back here. Must be called
    /// within a Tokio runtime; the tasks stop when `shutdown` is cancelled or the handle is
    /// dropped.
    pub fn spawn(
        config: &KubernetesSdConfig,
        job: &str,
        shutdown: CancellationToken,
    ) -> Result<KubernetesSd, String> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "kubernetes_sd_configs needs a Tokio runtime".to_string())?;
        let endpoint = endpoint(config)?;
        let client = build_client(&endpoint.tls)?;
        let (label_selector, field_selector) = config.pod_selectors();
        if label_selector.contains("${") || field_selector.contains("${") {
            warn!(job, label_selector, field_selector,
                "A pod selector holds an unexpanded ${{...}} reference; write it with a single $ to have the configuration expand it");
        }
        if config.attach_metadata.node || config.attach_metadata.namespace {
            warn!(
                job,
                "attach_metadata is accepted, but node and namespace metadata are not attached yet"
            );
        }
        let namespaces = namespaces(config, endpoint.own_namespace.as_deref());
        info!(job, api_server = %endpoint.base, namespaces = ?namespaces, "Discovering Kubernetes pods");
        let api = Arc::new(Api {
            client,
            base: endpoint.base,
            credentials: endpoint.credentials,
            label_selector: label_selector.to_string(),
            field_selector: field_selector.to_string(),
        });
        let (sender, receiver) = watch::channel(vec![BTreeMap::new(); namespaces.len()]);
        let stop = shutdown.child_token();
        for (index, namespace) in namespaces.into_iter().enumerate() {
            let slot = Slot {
                groups: sender.clone(),
                index,
            };
            runtime.spawn(reflect(
                api.clone(),
                namespace,
                slot,
                stop.clone(),
                job.to_string(),
            ));
        }
        Ok(KubernetesSd {
            groups: receiver,
            _stop: stop.drop_guard(),
        })
    }

    /// True when the groups changed since the last poll. Cheap: no I/O.
    pub fn poll(&mut self) -> bool {
        match self.groups.has_changed() {
            Ok(true) => {
                self.groups.borrow_and_update();
                true
            }
            _ => false,
        }
    }

    /// Waits for the next change, for a caller that would rather not poll; the change counts
    /// as seen, so a later poll reports only later ones. Once stopped it never returns, so
    /// wait on it beside the shutdown token.
    pub async fn changed(&mut self) {
        if self.groups.changed().await.is_err() {
            // Stopped: nothing will change any more.
            std::future::pending::<()>().await;
        }
    }

    /// Every pod, with its shared labels and its targets.
    pub fn pods(&self) -> Vec<PodGroup> {
        let all = self.groups.borrow();
        all.iter().flat_map(|m| m.values().cloned()).collect()
    }

    /// Every target now, each as a group of one address: the source is the pod's
    /// (`pod/<namespace>/<name>`), the labels are the pod's with the container's over them
    /// (the target's own labels win, as in Prometheus). Pods without an IP give none.
    pub fn groups(&self) -> Vec<(String, TargetGroup)> {
        let all = self.groups.borrow();
        let mut out = Vec::new();
        for pod in all.iter().flat_map(BTreeMap::values) {
            for target in &pod.targets {
                let mut labels = pod.labels.clone();
                labels.extend(target.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                out.push((
                    pod.source.clone(),
                    TargetGroup {
                        targets: vec![target.address.clone()],
                        labels,
                    },
                ));
            }
        }
        out
    }
}

/// The namespaces to watch: the named ones and the own one, or all (`""`) when none.
fn namespaces(config: &KubernetesSdConfig, own: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let wanted = config
        .namespaces
        .names
        .iter()
        .map(String::as_str)
        .chain(own.filter(|_| config.namespaces.own_namespace));
    for name in wanted {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.is_empty() || names.iter().any(String::is_empty) {
        return vec![String::new()];
    }
    names
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(BACKOFF_START)
    }

    /// The next wait, with up to half again added so that agents spread out.
    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        wait + Duration::from_millis(jitter(millis / 2 + 1))
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_START;
    }
}

/// Waits `wait` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// One namespace: list, then watch, renewing the watch when the server ends it and listing
/// again when the version expired or a request failed.
async fn reflect(
    api: Arc<Api>,
    namespace: String,
    slot: Slot,
    stop: CancellationToken,
    job: String,
) {
    let shown = if namespace.is_empty() {
        "(all)"
    } else {
        namespace.as_str()
    };
    let mut backoff = Backoff::new();
    let mut from = ListFrom::Any;
    loop {
        let listed = tokio::select! {
            () = stop.cancelled() => return,
            listed = api.list(&namespace, &from) => listed,
        };
        let mut rv = match listed {
            Ok((pods, rv)) => {
                let groups: BTreeMap<String, PodGroup> = pods
                    .iter()
                    .map(pod_group)
                    .map(|g| (g.source.clone(), g))
                    .collect();
                debug!(job, namespace = shown, pods = groups.len(), resource_version = %rv, "Listed pods");
                slot.replace(groups);
                rv
            }
            Err(err) => {
                if matches!(err, ApiError::Expired) {
                    from = ListFrom::Latest;
                }
                warn!(job, namespace = shown, error = %err, "Listing pods failed; trying again");
                if !pause(&stop, backoff.next()).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let started = tokio::time::Instant::now();
            let watched = tokio::select! {
                () = stop.cancelled() => return,
                watched = api.watch(&namespace, &mut rv, &slot) => watched,
            };
            match watched {
                Ok(active) if active || started.elapsed() >= QUIET_WATCH => backoff.reset(),
                // A stream that ended at once with nothing in it is renewed, but not in a
                // tight loop.
                Ok(_) => {
                    if !pause(&stop, backoff.next()).await {
                        return;
                    }
                }
                Err(ApiError::Expired) => {
                    debug!(
                        job,
                        namespace = shown,
                        "The watch's resource version expired; listing again"
                    );
                    from = ListFrom::Latest;
                    break;
                }
                Err(ApiError::Other(err)) => {
                    warn!(job, namespace = shown, error = %err, "Watching pods failed; listing again");
                    from = if rv.is_empty() {
                        ListFrom::Any
                    } else {
                        ListFrom::NotOlderThan(rv.clone())
                    };
                    if !pause(&stop, backoff.next()).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::Mutex;

    use http_body_util::combinators::BoxBody;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::json;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    /// A pod as the API serves one: two containers (one with two ports, one without), an
    /// init container, labels and annotations with dots, dashes and slashes, a controller.
    const WEB_POD: &str = r#"{
      "apiVersion": "v1",
      "kind": "Pod",
      "metadata": {
        "name": "web-6b7f9c8d4-q2vxk",
        "generateName": "web-6b7f9c8d4-",
        "namespace": "shop",
        "uid": "3c1f2a9e-7d45-4b8a-9e21-5a0c6f1d8b42",
        "resourceVersion": "481516",
        "creationTimestamp": "2024-05-02T09:14:07Z",
        "labels": {
          "app.kubernetes.io/name": "web",
          "pod-template-hash": "6b7f9c8d4",
          "tier": "front-end"
        },
        "annotations": {
          "prometheus.io/scrape": "true",
          "prometheus.io/port": "9102",
          "kubectl.kubernetes.io/restartedAt": "2024-05-02T09:14:00Z"
        },
        "ownerReferences": [
          {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-6b7f9c8d4",
            "uid": "0e8d1b57-2f3a-4c6d-8b9e-1a2b3c4d5e6f",
            "controller": true,
            "blockOwnerDeletion": true
          }
        ]
      },
      "spec": {
        "nodeName": "node-a",
        "serviceAccountName": "web",
        "initContainers": [
          {"name": "migrate", "image": "registry.example/shop/migrate:1.4.0",
           "command": ["/migrate", "--up"]}
        ],
        "containers": [
          {
            "name": "app",
            "image": "registry.example/shop/web:2.3.1",
            "ports": [
              {"name": "http", "containerPort": 8080, "protocol": "TCP"},
              {"name": "metrics", "containerPort": 9102, "protocol": "TCP"}
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
          },
          {"name": "log-shipper", "image": "registry.example/tools/shipper:0.9"}
        ]
      },
      "status": {
        "phase": "Running",
        "hostIP": "192.168.10.4",
        "podIP": "10.244.1.17",
        "podIPs": [{"ip": "10.244.1.17"}, {"ip": "fd00:10:244:1::17"}],
        "conditions": [
          {"type": "Initialized", "status": "True"},
          {"type": "Ready", "status": "True"},
          {"type": "ContainersReady", "status": "True"},
          {"type": "PodScheduled", "status": "True"}
        ],
        "initContainerStatuses": [
          {"name": "migrate", "ready": true, "restartCount": 0,
           "containerID": "containerd://9a8b7c6d5e4f"}
        ],
        "containerStatuses": [
          {"name": "app", "ready": true, "restartCount": 1,
           "containerID": "containerd://1f2e3d4c5b6a"},
          {"name": "log-shipper", "ready": true, "restartCount": 0,
           "containerID": "containerd://0a1b2c3d4e5f"}
        ]
      }
    }"#;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{META}{k}"), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_pod_gives_prometheus_labels_and_one_target_per_port() {
        let pod: Pod = serde_json::from_str(WEB_POD).unwrap();
        let group = pod_group(&pod);
        assert_eq!(group.source, "pod/shop/web-6b7f9c8d4-q2vxk");
        assert_eq!(
            group.labels,
            labels(&[
                ("namespace", "shop"),
                ("pod_name", "web-6b7f9c8d4-q2vxk"),
                ("pod_ip", "10.244.1.17"),
                ("pod_ipv4", "10.244.1.17"),
                ("pod_ipv6", "fd00:10:244:1::17"),
                ("pod_ready", "true"),
                ("pod_phase", "Running"),
                ("pod_node_name", "node-a"),
                ("pod_host_ip", "192.168.10.4"),
                ("pod_uid", "3c1f2a9e-7d45-4b8a-9e21-5a0c6f1d8b42"),
                ("pod_controller_kind", "ReplicaSet"),
                ("pod_controller_name", "web-6b7f9c8d4"),
                ("pod_label_app_kubernetes_io_name", "web"),
                ("pod_labelpresent_app_kubernetes_io_name", "true"),
                ("pod_label_pod_template_hash", "6b7f9c8d4"),
                ("pod_labelpresent_pod_template_hash", "true"),
                ("pod_label_tier", "front-end"),
                ("pod_labelpresent_tier", "true"),
                ("pod_annotation_prometheus_io_scrape", "true"),
                ("pod_annotationpresent_prometheus_io_scrape", "true"),
                ("pod_annotation_prometheus_io_port", "9102"),
                ("pod_annotationpresent_prometheus_io_port", "true"),
                (
                    "pod_annotation_kubectl_kubernetes_io_restartedAt",
                    "2024-05-02T09:14:00Z"
                ),
                (
                    "pod_annotationpresent_kubectl_kubernetes_io_restartedAt",
                    "true"
                ),
            ])
        );
        let addresses: Vec<&str> = group.targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "10.244.1.17:8080",
                "10.244.1.17:9102",
                "10.244.1.17",
                "10.244.1.17"
            ]
        );
        assert_eq!(
            group.targets[1].labels,
            labels(&[
                ("pod_container_name", "app"),
                ("pod_container_id", "containerd://1f2e3d4c5b6a"),
                ("pod_container_image", "registry.example/shop/web:2.3.1"),
                ("pod_container_init", "false"),
                ("pod_container_port_name", "metrics"),
                ("pod_container_port_number", "9102"),
                ("pod_container_port_protocol", "TCP"),
            ])
        );
        // A container without ports: no port labels.
        assert_eq!(
            group.targets[2].labels,
            labels(&[
                ("pod_container_name", "log-shipper"),
                ("pod_container_id", "containerd://0a1b2c3d4e5f"),
                ("pod_container_image", "registry.example/tools/shipper:0.9"),
                ("pod_container_init", "false"),
            ])
        );
        // Init containers come last, flagged.
        assert_eq!(
            group.targets[3].labels,
            labels(&[
                ("pod_container_name", "migrate"),
                ("pod_container_id", "containerd://9a8b7c6d5e4f"),
                ("pod_container_image", "registry.example/shop/migrate:1.4.0"),
                ("pod_container_init", "true"),
            ])
        );
    }

    #[test]
    fn pods_without_ip_ipv6_pods_and_missing_fields() {
        let pending: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": null},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Pending"}
        }))
        .unwrap();
        let group = pod_group(&pending);
        assert_eq!(group.source, "pod/ns/p");
        assert!(group.targets.is_empty() && group.labels.is_empty());

        let v6: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns",
                "ownerReferences": [{"kind": "Node", "name": "n1"}]},
            "spec": {"containers": [
                {"name": "a", "ports": [{"containerPort": 8080, "protocol": "UDP"}]},
                {"name": "b"}
            ]},
            "status": {"podIP": "fd00::0017", "podIPs": null}
        }))
        .unwrap();
        let group = pod_group(&v6);
        let addresses: Vec<&str> = group.targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["[fd00::0017]:8080", "[fd00::17]"]);
        assert_eq!(group.labels[&meta("pod_ready")], "unknown");
        // An owner that is not the controller gives no controller labels.
        assert!(!group.labels.contains_key(&meta("pod_controller_kind")));
        assert_eq!(group.targets[1].labels[&meta("pod_container_id")], "");
    }

    #[test]
    fn selectors_go_into_the_query_string() {
        assert_eq!(
            pods_url(
                "https://10.96.0.1:443/",
                "",
                "app.kubernetes.io/name in (web,api),tier!=db",
                "spec.nodeName=node-a",
                &[("limit", "500"), ("resourceVersion", "0")]
            ),
            "https://10.96.0.1:443/api/v1/pods?limit=500&resourceVersion=0\
             &labelSelector=app.kubernetes.io%2Fname%20in%20%28web%2Capi%29%2Ctier%21%3Ddb\
             &fieldSelector=spec.nodeName%3Dnode-a"
        );
        assert_eq!(
            pods_url("http://h:8080/prefix", "kube-system", "", "", &[]),
            "http://h:8080/prefix/api/v1/namespaces/kube-system/pods"
        );
        let config = KubernetesSdConfig {
            role: "pod".into(),
            selectors: vec![SelectorConfig {
                role: "pod".into(),
                label: "app=web".into(),
                field: String::new(),
            }],
            ..KubernetesSdConfig::default()
        };
        assert_eq!(config.pod_selectors(), ("app=web", ""));
    }

    #[test]
    fn selector_syntax_is_checked() {
        for ok in [
            "",
            "app=web",
            "app==web,tier!=db",
            "app.kubernetes.io/name in (web, api)",
            "env notin (dev),!canary,release",
            "replicas>2",
            "app=",
        ] {
            assert!(check_label_selector(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app in ()",
            "app in web",
            "a b",
            "=web",
            "app=we b",
            "-app=web",
            "app=web,",
            "replicas>two",
            "app=-web",
        ] {
            assert!(check_label_selector(bad).is_err(), "{bad}");
        }
        for ok in [
            "",
            "spec.nodeName=node-a",
            "spec.nodeName==node-a,status.phase!=Failed",
            r"metadata.name=a\,b",
        ] {
            assert!(check_field_selector(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_field_selector("spec.nodeName").unwrap_err(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        assert!(check_field_selector(r"metadata.name=a\x").is_err());
        assert!(check_field_selector("metadata.name=a=b").is_err());
    }

    fn sd(yaml: &str) -> KubernetesSdConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn validation_uses_prometheus_messages() {
        let err = |yaml: &str| sd(yaml).validate().unwrap_err();
        assert!(sd("role: pod").validate().is_ok());
        assert!(
            sd("{role: pod, api_server: 'http://127.0.0.1:8001', bearer_token: t}")
                .validate()
                .is_ok()
        );
        assert!(sd(
            "{role: pod, namespaces: {own_namespace: true, names: [a]}, attach_metadata: {node: true}, \
             selectors: [{role: pod, field: 'spec.nodeName=n'}]}"
        )
        .validate()
        .is_ok());
        for (yaml, message) in [
            (
                "{}",
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
            ),
            ("role: pods", "unknown Kubernetes SD role \"pods\""),
            (
                "{role: pod, selectors: [{role: nod}]}",
                "unknown Kubernetes SD role \"nod\"",
            ),
            (
                "{role: pod, selectors: [{role: node, label: a=b}]}",
                "pod role supports only pod selectors",
            ),
            (
                "{role: endpoints, selectors: [{role: node}]}",
                "endpoints role supports only pod, service, endpoints selectors",
            ),
            (
                "{role: pod, selectors: [{role: pod}, {role: pod}]}",
                "duplicated selector role: pod",
            ),
            (
                "{role: pod, bearer_token: t}",
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
            ),
            (
                "{role: pod, api_server: 'https://k', kubeconfig_file: /k}",
                "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
            ),
            (
                "{role: pod, kubeconfig_file: /k, tls_config: {insecure_skip_verify: true}}",
                "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
            ),
            (
                "{role: pod, api_server: 'https://k', namespaces: {own_namespace: true}}",
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
            ),
            (
                "{role: pod, kubeconfig_file: /k, namespaces: {own_namespace: true}}",
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
            ),
            (
                "{role: pod, api_server: 'https://k', bearer_token: a, bearer_token_file: b}",
                "at most one of bearer_token & bearer_token_file must be configured",
            ),
            (
                "{role: pod, api_server: 'https://k', bearer_token: a, basic_auth: {username: u}}",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ),
            (
                "{role: pod, api_server: 'https://k', authorization: {type: Basic}}",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            ),
            (
                "{role: pod, api_server: 'https://k', proxy_url: 'http://p:3128'}",
                "kubernetes_sd_configs: proxy_url is not supported yet",
            ),
            (
                "role: node",
                "kubernetes_sd_configs: role \"node\" is not supported yet (only \"pod\" is)",
            ),
            (
                "{role: pod, api_server: 'ftp://k'}",
                "invalid api_server URL \"ftp://k\": the scheme must be http or https",
            ),
        ] {
            assert_eq!(err(yaml), message, "{yaml}");
        }
        // Defaults written out in full are not a custom client.
        assert!(
            sd("{role: pod, follow_redirects: true, enable_http2: true, tls_config: {}}")
                .validate()
                .is_ok()
        );
        let unknown = serde_yaml::from_str::<KubernetesSdConfig>("{role: pod, namespace: a}");
        assert!(unknown.unwrap_err().to_string().contains("namespace"));
    }

    #[test]
    fn the_receiver_config_accepts_pod_discovery() {
        use super::super::config::PrometheusReceiverConfig;
        use ferrotel_pipeline::config::decode::decode;
        use ferrotel_pipeline::config::value::Value;

        let config: PrometheusReceiverConfig = decode(
            &Value::from_yaml_str(
                "config:\n  scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs:\n    \
                 - role: pod\n      selectors:\n      - role: pod\n        field: spec.nodeName=node-a\n",
            )
            .unwrap(),
        )
        .unwrap();
        config.validate().unwrap();
        let jobs = config.config.jobs().unwrap();
        assert_eq!(jobs[0].config.kubernetes_sd_configs[0].role, "pod");
        let bad: PrometheusReceiverConfig = decode(
            &Value::from_yaml_str(
                "config: {scrape_configs: [{job_name: x, kubernetes_sd_configs: [{role: service}]}]}",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            bad.validate().unwrap_err(),
            "scrape config for job \"x\": kubernetes_sd_configs: role \"service\" is not supported yet (only \"pod\" is)"
        );
    }

    #[test]
    fn in_cluster_defaults_come_from_the_service_account() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "first\n").unwrap();
        std::fs::write(dir.path().join("namespace"), "monitoring").unwrap();
        let endpoint = in_cluster(Some("10.96.0.1"), Some("443"), dir.path(), true).unwrap();
        assert_eq!(endpoint.base, "https://10.96.0.1:443");
        assert_eq!(endpoint.own_namespace.as_deref(), Some("monitoring"));
        assert_eq!(
            endpoint.tls.ca_file,
            Some(dir.path().join("ca.crt").display().to_string())
        );
        let header = |e: &Endpoint| e.credentials.header().unwrap().unwrap();
        assert_eq!(header(&endpoint), "Bearer first");
        // The token is read again for each request, so a rotated one is used.
        std::fs::write(dir.path().join("token"), "second").unwrap();
        assert_eq!(header(&endpoint), "Bearer second");

        let v6 = in_cluster(Some("fd00::1"), Some("443"), dir.path(), false).unwrap();
        assert_eq!(v6.base, "https://[fd00::1]:443");
        assert!(v6.own_namespace.is_none());
        assert!(in_cluster(None, Some("443"), dir.path(), false)
            .err()
            .unwrap()
            .contains("KUBERNETES_SERVICE_HOST"));
        std::fs::write(dir.path().join("namespace"), "").unwrap();
        assert_eq!(
            in_cluster(Some("h"), Some("1"), dir.path(), true)
                .err()
                .unwrap(),
            "could not read own namespace name (empty file)"
        );

        let config = sd("{role: pod, namespaces: {own_namespace: true, names: [a, monitoring]}}");
        assert_eq!(namespaces(&config, Some("monitoring")), ["a", "monitoring"]);
        assert_eq!(namespaces(&sd("role: pod"), None), [""]);
    }

    #[test]
    fn kubeconfig_files_give_server_tls_and_user() {
        let dir = tempfile::tempdir().unwrap();
        let ca = base64::engine::general_purpose::STANDARD.encode("-----BEGIN CERTIFICATE-----\n");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: dev\n\
                 clusters:\n- name: c1\n  cluster:\n    server: https://k.example:6443/\n    certificate-authority-data: {ca}\n\
                 - name: c2\n  cluster:\n    server: https://other:6443\n\
                 contexts:\n- name: dev\n  context: {{cluster: c1, user: u1, namespace: shop}}\n\
                 users:\n- name: u1\n  user:\n    tokenFile: token\n    client-key: key.pem\n    client-certificate: cert.pem\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("token"), "from-file").unwrap();
        let endpoint = kubeconfig(&path).unwrap();
        assert_eq!(endpoint.base, "https://k.example:6443");
        assert_eq!(
            endpoint.tls.ca_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\n")
        );
        assert_eq!(
            endpoint.tls.cert_file,
            Some(dir.path().join("cert.pem").display().to_string())
        );
        assert_eq!(
            endpoint.credentials.header().unwrap().unwrap(),
            "Bearer from-file"
        );
        std::fs::write(
            &path,
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
             clusters: [{name: c, cluster: {server: 'https://k'}}]\n\
             users: [{name: u, user: {exec: {command: aws}}}]\n",
        )
        .unwrap();
        assert!(kubeconfig(&path)
            .err()
            .unwrap()
            .contains("exec and auth-provider credentials are not supported yet"));
    }

    #[test]
    fn broken_watch_lines_are_errors_not_panics() {
        let (sender, _receiver) = watch::channel(vec![BTreeMap::new()]);
        let slot = Slot {
            groups: sender,
            index: 0,
        };
        let mut rv = "1".to_string();
        for line in [
            &b"not json"[..],
            br#"{"type": "ADDED", "object": {"metadata": 7}}"#,
            br#"{"type": "ERROR", "object": {"code": 500, "message": "boom"}}"#,
        ] {
            assert!(matches!(
                apply_event(line, &mut rv, &slot),
                Err(ApiError::Other(_))
            ));
        }
        assert!(matches!(
            apply_event(
                br#"{"type": "ERROR", "object": {"code": 410}}"#,
                &mut rv,
                &slot
            ),
            Err(ApiError::Expired)
        ));
        assert!(!apply_event(b"  \r", &mut rv, &slot).unwrap());
        assert_eq!(rv, "1");
    }

    #[test]
    fn start_errors_are_returned() {
        let config = sd("{role: pod, api_server: 'https://127.0.0.1:1'}");
        assert_eq!(
            KubernetesSd::spawn(&config, "pods", CancellationToken::new())
                .err()
                .unwrap(),
            "kubernetes_sd_configs needs a Tokio runtime"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let missing_ca = sd(
            "{role: pod, api_server: 'https://127.0.0.1:1', tls_config: {ca_file: /nonexistent/ca.crt}}",
        );
        assert!(KubernetesSd::spawn(&missing_ca, "pods", CancellationToken::new()).is_err());
        let invalid = sd("{role: pod, selectors: [{role: pod, label: 'a in ()'}]}");
        assert!(KubernetesSd::spawn(&invalid, "pods", CancellationToken::new()).is_err());
    }

    // ---- A fake API server -----------------------------------------------------------

    type Body = BoxBody<Bytes, Infallible>;
    type EventSender = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

    #[derive(Default)]
    struct FakeApi {
        /// The bodies of the next list requests, in order.
        lists: Mutex<VecDeque<String>>,
        /// Every request's path and query.
        requests: Mutex<Vec<String>>,
    }

    impl FakeApi {
        fn push_list(&self, resource_version: &str, pods: &[serde_json::Value]) {
            let body = json!({
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": resource_version},
                "items": pods,
            });
            self.lists.lock().unwrap().push_back(body.to_string());
        }

        fn lists_requested(&self) -> Vec<String> {
            let requests = self.requests.lock().unwrap();
            requests
                .iter()
                .filter(|r| !r.contains("watch=true"))
                .cloned()
                .collect()
        }
    }

    /// Serves lists from the queue; hands each watch's event sender to the test.
    async fn serve(api: Arc<FakeApi>, watches: mpsc::Sender<(String, EventSender)>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let api = api.clone();
                let watches = watches.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let api = api.clone();
                    let watches = watches.clone();
                    async move {
                        let uri = request.uri().to_string();
                        api.requests.lock().unwrap().push(uri.clone());
                        let body: Body = if uri.contains("watch=true") {
                            let (sender, receiver) = mpsc::channel(16);
                            let _ = watches.send((uri, sender)).await;
                            BodyExt::boxed(StreamBody::new(ReceiverStream::new(receiver)))
                        } else {
                            let list = api.lists.lock().unwrap().pop_front();
                            let list = list.expect("a list was expected");
                            BodyExt::boxed(Full::new(Bytes::from(list)))
                        };
                        Ok::<_, Infallible>(http::Response::new(body))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        port
    }

    fn pod(name: &str, ip: &str, port: u16, resource_version: &str) -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                         "resourceVersion": resource_version, "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "app", "image": "web:1",
                 "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}]}
            ]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    async fn send(events: &EventSender, kind: &str, object: serde_json::Value) {
        let line = format!("{}\n", json!({"type": kind, "object": object}));
        // In two pieces, as a stream may cut an event anywhere.
        let (head, tail) = line.split_at(line.len() / 2);
        for piece in [head, tail] {
            events
                .send(Ok(Frame::data(Bytes::from(piece.to_string()))))
                .await
                .unwrap();
        }
    }

    async fn next_watch(
        watches: &mut mpsc::Receiver<(String, EventSender)>,
    ) -> (String, EventSender) {
        tokio::time::timeout(Duration::from_secs(10), watches.recv())
            .await
            .expect("a watch request in time")
            .unwrap()
    }

    /// Waits until a poll reports a change.
    async fn changed(sd: &mut KubernetesSd) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !sd.poll() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a change in time");
    }

    fn addresses(sd: &KubernetesSd) -> Vec<String> {
        sd.groups()
            .into_iter()
            .flat_map(|(_, group)| group.targets)
            .collect()
    }

    #[tokio::test]
    async fn lists_then_follows_the_watch_and_reconnects() {
        let api = Arc::new(FakeApi::default());
        let (watch_sender, mut watches) = mpsc::channel(4);
        api.push_list(
            "100",
            &[
                pod("a", "10.0.0.1", 8080, "90"),
                pod("b", "10.0.0.2", 8080, "95"),
            ],
        );
        let port = serve(api.clone(), watch_sender).await;
        let config = sd(&format!(
            "{{role: pod, api_server: 'http://127.0.0.1:{port}', \
              selectors: [{{role: pod, label: app=web, field: spec.nodeName=node-a}}]}}"
        ));
        let shutdown = CancellationToken::new();
        let mut discovery = KubernetesSd::spawn(&config, "pods", shutdown.clone()).unwrap();
        let selectors = "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dnode-a";

        changed(&mut discovery).await;
        assert_eq!(addresses(&discovery), ["10.0.0.1:8080", "10.0.0.2:8080"]);
        assert_eq!(
            api.lists_requested(),
            [format!(
                "/api/v1/pods?limit=500&resourceVersion=0&{selectors}"
            )]
        );
        let (source, group) = &discovery.groups()[0];
        assert_eq!(source, "pod/shop/a");
        assert_eq!(group.labels[&meta("pod_container_port_name")], "http");
        assert_eq!(group.labels[&meta("pod_label_app")], "web");
        assert_eq!(group.labels[&meta("pod_ready")], "true");

        let (uri, events) = next_watch(&mut watches).await;
        assert!(
            uri.starts_with(
                "/api/v1/pods?watch=true&resourceVersion=100&allowWatchBookmarks=true&timeoutSeconds="
            ),
            "{uri}"
        );
        assert!(uri.ends_with(selectors), "{uri}");

        send(&events, "ADDED", pod("c", "10.0.0.3", 9090, "101")).await;
        changed(&mut discovery).await;
        assert_eq!(
            addresses(&discovery),
            ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:9090"]
        );

        send(&events, "MODIFIED", pod("a", "10.0.0.1", 8081, "102")).await;
        changed(&mut discovery).await;
        assert_eq!(
            addresses(&discovery),
            ["10.0.0.1:8081", "10.0.0.2:8080", "10.0.0.3:9090"]
        );

        send(&events, "DELETED", pod("b", "10.0.0.2", 8080, "103")).await;
        changed(&mut discovery).await;
        assert_eq!(addresses(&discovery), ["10.0.0.1:8081", "10.0.0.3:9090"]);

        // A modification that changes no label, and a bookmark: no change to report.
        send(&events, "MODIFIED", pod("c", "10.0.0.3", 9090, "104")).await;
        send(
            &events,
            "BOOKMARK",
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "200"}}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!discovery.poll());

        // The server ends the stream: a new watch starts where the bookmark left off.
        drop(events);
        let (uri, events) = next_watch(&mut watches).await;
        assert!(uri.contains("&resourceVersion=200&"), "{uri}");

        // The version expired: a fresh list of the latest state, then a watch from it.
        api.push_list(
            "300",
            &[
                pod("a", "10.0.0.1", 8081, "102"),
                pod("d", "10.0.0.4", 8080, "290"),
            ],
        );
        send(
            &events,
            "ERROR",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": "too old resource version: 200 (250)", "reason": "Expired",
                   "code": 410}),
        )
        .await;
        changed(&mut discovery).await;
        assert_eq!(addresses(&discovery), ["10.0.0.1:8081", "10.0.0.4:8080"]);
        assert_eq!(
            api.lists_requested()[1],
            format!("/api/v1/pods?limit=500&{selectors}")
        );
        let (uri, _events) = next_watch(&mut watches).await;
        assert!(uri.contains("&resourceVersion=300&"), "{uri}");

        let pods = discovery.pods();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[1].labels[&meta("pod_name")], "d");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn failing_requests_are_retried() {
        // A port with nothing behind it: the discovery keeps trying, with nothing found.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = sd(&format!(
            "{{role: pod, api_server: 'http://127.0.0.1:{port}'}}"
        ));
        let shutdown = CancellationToken::new();
        let mut discovery = KubernetesSd::spawn(&config, "pods", shutdown.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!discovery.poll());
        assert!(discovery.groups().is_empty());
        shutdown.cancel();
    }
}
