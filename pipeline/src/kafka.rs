//! What the Kafka receiver and exporter share: upstream's client settings (`configkafka`
//! `ClientConfig`), which both take at the top level of their section beside their own keys
//! (see [`crate::config::decode::decode_squashed`]).

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::config::types::GoDuration;
use crate::pdata::Signal;
use crate::tls::ClientTlsSettings;

/// The topic of each signal when the configuration names none (receiver and exporter).
pub fn default_topic(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "otlp_spans",
        Signal::Metrics => "otlp_metrics",
        Signal::Logs => "otlp_logs",
    }
}

/// The client settings, with upstream's names and defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub brokers: Vec<String>,
    /// Accepted for older configurations; it has no effect (nor has it upstream since
    /// v0.153).
    pub resolve_canonical_bootstrap_servers_only: bool,
    /// The broker version to speak, e.g. `2.1.0`; empty lets the client ask the broker.
    pub protocol_version: String,
    pub client_id: String,
    /// The client's rack (`client.rack`), for fetching from the closest replica.
    pub rack_id: String,
    pub use_leader_epoch: bool,
    /// Connections idle this long are closed.
    pub conn_idle_timeout: GoDuration,
    /// TLS to the brokers; absent means plain text.
    pub tls: Option<ClientTlsSettings>,
    pub auth: Option<Authentication>,
    pub metadata: MetadataSettings,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            brokers: vec!["localhost:9092".to_string()],
            resolve_canonical_bootstrap_servers_only: false,
            protocol_version: String::new(),
            client_id: "otel-collector".to_string(),
            rack_id: String::new(),
            use_leader_epoch: true,
            conn_idle_timeout: GoDuration::from_secs(9 * 60),
            tls: None,
            auth: None,
            metadata: MetadataSettings::default(),
        }
    }
}

/// `auth`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authentication {
    /// Deprecated upstream (v0.123): SASL PLAIN with these credentials.
    pub plain_text: Option<PlainText>,
    pub sasl: Option<Sasl>,
    /// Deprecated upstream (v0.124): used when the top-level `tls` is absent.
    pub tls: Option<ClientTlsSettings>,
    /// Accepted so that a configuration naming it gets a clear error (see `validate`).
    pub kerberos: Option<IgnoredAny>,
}

/// `auth.plain_text`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlainText {
    pub username: String,
    pub password: String,
}

/// `auth.sasl`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sasl {
    pub username: String,
    pub password: String,
    pub mechanism: String,
    /// The SASL handshake version, 0 or 1 (removed upstream in v0.160; the client
    /// negotiates it).
    pub version: i64,
    pub aws_msk: Option<IgnoredAny>,
    pub oauthbearer_token_source: Option<String>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSettings {
    /// Accepted; the client always fetches the metadata of the topics it uses.
    pub full: bool,
    pub refresh_interval: GoDuration,
    pub retry: MetadataRetry,
}

impl Default for MetadataSettings {
    fn default() -> Self {
        MetadataSettings {
            full: true,
            refresh_interval: GoDuration::from_secs(10 * 60),
            retry: MetadataRetry::default(),
        }
    }
}

/// `metadata.retry`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataRetry {
    pub max: i64,
    pub backoff: GoDuration,
}

impl Default for MetadataRetry {
    fn default() -> Self {
        MetadataRetry {
            max: 20,
            backoff: GoDuration::from_millis(250),
        }
    }
}

/// A SASL mechanism the client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// Its name, as upstream and librdkafka write it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials after `auth.plain_text` and `auth.sasl` are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl ClientConfig {
    /// Checks the settings; messages as upstream's, with the path of the field in front
    /// where upstream puts one.
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers.is_empty() {
            return Err("brokers must be specified".to_string());
        }
        if !self.protocol_version.is_empty() && !valid_version(&self.protocol_version) {
            return Err(format!(
                "invalid protocol version: \"{}\"",
                self.protocol_version
            ));
        }
        if self.conn_idle_timeout.get().is_zero() {
            // Durations here are never negative: zero is the one value refused.
            return Err("conn_idle_timeout (0s) must be positive".to_string());
        }
        if self.metadata.retry.max < 0 {
            return Err(format!(
                "metadata::retry::max ({}) must be non-negative",
                self.metadata.retry.max
            ));
        }
        if let Some(auth) = &self.auth {
            if auth.kerberos.is_some() {
                return Err(
                    "auth::kerberos: Kerberos (GSSAPI) authentication is not supported; use auth::sasl (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                        .to_string(),
                );
            }
            if let Some(sasl) = &auth.sasl {
                sasl_mechanism(sasl).map_err(|e| format!("auth::sasl: {e}"))?;
                if sasl.username.is_empty() {
                    return Err("auth::sasl: username is required".to_string());
                }
                if sasl.password.is_empty() {
                    return Err("auth::sasl: password is required".to_string());
                }
                if !matches!(sasl.version, 0 | 1) {
                    return Err(format!(
                        "auth::sasl: version has to be either 0 or 1. configured value {}",
                        sasl.version
                    ));
                }
            }
        }
        if let Some(tls) = self.effective_tls() {
            tls.validate()?;
        }
        // What cannot be said to the client is refused here, not at start.
        self.librdkafka_properties().map(drop)
    }

    /// The TLS settings in effect: the top-level `tls`, else the deprecated `auth.tls`.
    pub fn effective_tls(&self) -> Option<&ClientTlsSettings> {
        self.tls
            .as_ref()
            .or_else(|| self.auth.as_ref().and_then(|a| a.tls.as_ref()))
    }

    /// The SASL credentials in effect: `auth.sasl`, else the deprecated `auth.plain_text` as
    /// PLAIN. `None` when neither is set (or when `validate` would refuse them).
    pub fn sasl(&self) -> Option<SaslCredentials> {
        let auth = self.auth.as_ref()?;
        if let Some(sasl) = &auth.sasl {
            return Some(SaslCredentials {
                mechanism: sasl_mechanism(sasl).ok()?,
                username: sasl.username.clone(),
                password: sasl.password.clone(),
            });
        }
        auth.plain_text.as_ref().map(|p| SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: p.username.clone(),
            password: p.password.clone(),
        })
    }
}

impl ClientConfig {
    /// The librdkafka properties these settings mean (`bootstrap.servers`, `client.id`,
    /// `security.protocol`, SASL and TLS, metadata refresh, idle connections), for a producer
    /// or a consumer to start from.
    pub fn librdkafka_properties(&self) -> Result<Vec<(&'static str, String)>, String> {
        let mut props: Vec<(&'static str, String)> = vec![
            ("bootstrap.servers", self.brokers.join(",")),
            ("client.id", self.client_id.clone()),
            (
                "topic.metadata.refresh.interval.ms",
                self.metadata.refresh_interval.get().as_millis().to_string(),
            ),
            (
                "connections.max.idle.ms",
                self.conn_idle_timeout.get().as_millis().to_string(),
            ),
        ];
        if !self.rack_id.is_empty() {
            props.push(("client.rack", self.rack_id.clone()));
        }
        if !self.protocol_version.is_empty() {
            // Used when the broker cannot say which versions it speaks.
            props.push(("broker.version.fallback", self.protocol_version.clone()));
        }
        // `tls` with `insecure: true` and no CA means plain text, as upstream reads it.
        let tls = self
            .effective_tls()
            .filter(|t| !t.insecure || t.ca_file.is_some() || t.ca_pem.is_some());
        let sasl = self.sasl();
        let protocol = match (&tls, &sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        props.push(("security.protocol", protocol.to_string()));
        if let Some(sasl) = sasl {
            props.push(("sasl.mechanisms", sasl.mechanism.name().to_string()));
            props.push(("sasl.username", sasl.username));
            props.push(("sasl.password", sasl.password));
        }
        if let Some(tls) = tls {
            if tls.server_name_override.is_some() {
                return Err("tls::server_name_override is not supported for Kafka".to_string());
            }
            let pairs = [
                ("ssl.ca.location", &tls.ca_file),
                ("ssl.ca.pem", &tls.ca_pem),
                ("ssl.certificate.location", &tls.cert_file),
                ("ssl.certificate.pem", &tls.cert_pem),
                ("ssl.key.location", &tls.key_file),
                ("ssl.key.pem", &tls.key_pem),
            ];
            for (key, value) in pairs {
                if let Some(value) = value {
                    props.push((key, value.clone()));
                }
            }
            if tls.insecure_skip_verify {
                props.push(("enable.ssl.certificate.verification", "false".to_string()));
                props.push(("ssl.endpoint.identification.algorithm", "none".to_string()));
            } else {
                props.push(("ssl.endpoint.identification.algorithm", "https".to_string()));
            }
        }
        Ok(props)
    }
}

fn sasl_mechanism(sasl: &Sasl) -> Result<SaslMechanism, String> {
    match sasl.mechanism.as_str() {
        "PLAIN" => Ok(SaslMechanism::Plain),
        "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
        "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
        "AWS_MSK_IAM_OAUTHBEARER" | "OAUTHBEARER" => Err(format!(
            "mechanism {} is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            sasl.mechanism
        )),
        other => Err(format!(
            "mechanism should be one of 'PLAIN', 'AWS_MSK_IAM_OAUTHBEARER', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'. configured value {other}"
        )),
    }
}

/// A Kafka release number: two to four dot-separated integers (`2.1.0`, `3.6`, `0.10.2.1`).
fn valid_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::decode::decode;
    use crate::config::value::Value;

    fn client(yaml: &str) -> ClientConfig {
        let value = Value::from_yaml_str(yaml).unwrap();
        decode(&value).unwrap()
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = ClientConfig::default();
        assert_eq!(c.brokers, vec!["localhost:9092"]);
        assert_eq!(c.client_id, "otel-collector");
        assert_eq!(c.protocol_version, "");
        assert_eq!(c.conn_idle_timeout.get().as_secs(), 540);
        assert_eq!(c.metadata.refresh_interval.get().as_secs(), 600);
        assert_eq!(c.metadata.retry.max, 20);
        assert_eq!(c.metadata.retry.backoff.get().as_millis(), 250);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn credentials_from_sasl_or_the_deprecated_plain_text() {
        let c = client("auth: {sasl: {username: u, password: p, mechanism: SCRAM-SHA-512}}");
        assert!(c.validate().is_ok());
        let sasl = c.sasl().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!((sasl.username.as_str(), sasl.password.as_str()), ("u", "p"));
        let c = client("auth: {plain_text: {username: a, password: b}}");
        assert_eq!(c.sasl().unwrap().mechanism, SaslMechanism::Plain);
        assert!(client("{}").sasl().is_none());
    }

    #[test]
    fn tls_from_the_top_level_or_the_deprecated_auth_tls() {
        let c = client("auth: {tls: {insecure_skip_verify: true}}");
        assert!(c.effective_tls().unwrap().insecure_skip_verify);
        let c = client("tls: {insecure: true}\nauth: {tls: {insecure_skip_verify: true}}");
        assert!(!c.effective_tls().unwrap().insecure_skip_verify);
        assert!(client("{}").effective_tls().is_none());
    }

    #[test]
    fn errors_read_as_upstreams() {
        let cases = [
            ("brokers: []", "brokers must be specified"),
            ("protocol_version: none", "invalid protocol version: \"none\""),
            ("conn_idle_timeout: 0s", "conn_idle_timeout (0s) must be positive"),
            (
                "metadata: {retry: {max: -1}}",
                "metadata::retry::max (-1) must be non-negative",
            ),
            (
                "auth: {sasl: {mechanism: PLAIN, password: p}}",
                "auth::sasl: username is required",
            ),
            (
                "auth: {sasl: {mechanism: PLAIN, username: u}}",
                "auth::sasl: password is required",
            ),
            (
                "auth: {sasl: {mechanism: MD5, username: u, password: p}}",
                "auth::sasl: mechanism should be one of 'PLAIN', 'AWS_MSK_IAM_OAUTHBEARER', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'. configured value MD5",
            ),
            (
                "auth: {sasl: {mechanism: PLAIN, username: u, password: p, version: 2}}",
                "auth::sasl: version has to be either 0 or 1. configured value 2",
            ),
        ];
        for (yaml, message) in cases {
            assert_eq!(client(yaml).validate().unwrap_err(), message, "{yaml}");
        }
        let err = client("auth: {kerberos: {realm: R}}")
            .validate()
            .unwrap_err();
        assert!(err.starts_with("auth::kerberos: "), "{err}");
        let err = client("auth: {sasl: {mechanism: OAUTHBEARER, username: u, password: p}}")
            .validate()
            .unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        assert!(client("protocol_version: 2.1.0").validate().is_ok());
        assert!(client("protocol_version: 0.10.2.1").validate().is_ok());
    }

    fn props(yaml: &str) -> Vec<(&'static str, String)> {
        client(yaml).librdkafka_properties().unwrap()
    }

    fn prop(props: &[(&'static str, String)], key: &str) -> Option<String> {
        props
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn librdkafka_properties_for_each_security_setting() {
        let p = props(
            "brokers: [a:9092, b:9092]\nclient_id: agent\nrack_id: r1\nprotocol_version: 2.1.0",
        );
        assert_eq!(
            prop(&p, "bootstrap.servers").as_deref(),
            Some("a:9092,b:9092")
        );
        assert_eq!(prop(&p, "client.id").as_deref(), Some("agent"));
        assert_eq!(prop(&p, "client.rack").as_deref(), Some("r1"));
        assert_eq!(
            prop(&p, "broker.version.fallback").as_deref(),
            Some("2.1.0")
        );
        assert_eq!(prop(&p, "security.protocol").as_deref(), Some("plaintext"));
        assert_eq!(
            prop(&p, "topic.metadata.refresh.interval.ms").as_deref(),
            Some("600000")
        );
        assert_eq!(
            prop(&p, "connections.max.idle.ms").as_deref(),
            Some("540000")
        );

        let p = props("auth: {sasl: {mechanism: SCRAM-SHA-256, username: u, password: p}}");
        assert_eq!(
            prop(&p, "security.protocol").as_deref(),
            Some("sasl_plaintext")
        );
        assert_eq!(
            prop(&p, "sasl.mechanisms").as_deref(),
            Some("SCRAM-SHA-256")
        );
        assert_eq!(prop(&p, "sasl.username").as_deref(), Some("u"));

        let p = props("tls: {ca_file: /ca.pem}\nauth: {plain_text: {username: u, password: p}}");
        assert_eq!(prop(&p, "security.protocol").as_deref(), Some("sasl_ssl"));
        assert_eq!(prop(&p, "sasl.mechanisms").as_deref(), Some("PLAIN"));
        assert_eq!(prop(&p, "ssl.ca.location").as_deref(), Some("/ca.pem"));
        assert_eq!(
            prop(&p, "ssl.endpoint.identification.algorithm").as_deref(),
            Some("https")
        );

        let p = props("tls: {insecure_skip_verify: true}");
        assert_eq!(prop(&p, "security.protocol").as_deref(), Some("ssl"));
        assert_eq!(
            prop(&p, "enable.ssl.certificate.verification").as_deref(),
            Some("false")
        );
        // `insecure: true` without a CA: plain text.
        let p = props("tls: {insecure: true}");
        assert_eq!(prop(&p, "security.protocol").as_deref(), Some("plaintext"));
        assert_eq!(
            client("tls: {server_name_override: x}")
                .validate()
                .unwrap_err(),
            "tls::server_name_override is not supported for Kafka"
        );
    }
}
