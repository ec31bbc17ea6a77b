//! `signoz` configuration: four keys of its own (`region`, `ingestion_key`, `key_header`,
//! `protocol`); every other key belongs to the OTLP exporter the protocol picks, which
//! decodes it with its own rules, defaults and errors.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use ferrotel_pipeline::component::{config_as, ComponentConfig};
use ferrotel_pipeline::config::decode::{decode, DecodeError};
use ferrotel_pipeline::config::value::{Map, Value};
use ferrotel_pipeline::exporter::config::{ClientTlsSettings, Headers};
use ferrotel_pipeline::factory::Factory;

use crate::otlp_grpc::{OtlpGrpcConfig, OtlpGrpcExporterFactory};
use crate::otlp_http::{OtlpHttpConfig, OtlpHttpExporterFactory};

/// The keys only this exporter has; listed in unknown-field errors next to the OTLP ones.
const OWN_KEYS: [&str; 4] = ["region", "ingestion_key", "key_header", "protocol"];

/// How data is sent. HTTP is the default: SigNoz recommends it behind load balancers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Grpc,
    #[default]
    Http,
}

/// The header that carries the ingestion key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum KeyHeader {
    /// What SigNoz Cloud documents today.
    #[default]
    #[serde(rename = "signoz-ingestion-key")]
    IngestionKey,
    /// The older name, which the k8s-infra chart still sends.
    #[serde(rename = "signoz-access-token")]
    AccessToken,
}

impl KeyHeader {
    pub fn name(self) -> &'static str {
        match self {
            KeyHeader::IngestionKey => "signoz-ingestion-key",
            KeyHeader::AccessToken => "signoz-access-token",
        }
    }
}

/// The OTLP exporter config the SigNoz settings were turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum OtlpConfig {
    Http(OtlpHttpConfig),
    Grpc(OtlpGrpcConfig),
}

/// The `signoz` exporter's configuration, resolved: the OTLP exporter config it runs.
#[derive(Clone, PartialEq)]
pub struct SignozConfig {
    pub protocol: Protocol,
    /// The SigNoz Cloud region, when one was given instead of an endpoint.
    pub region: Option<String>,
    /// The header the ingestion key goes in, when a key was given.
    pub key_header: Option<KeyHeader>,
    /// Endpoint, TLS and headers derived; everything else as configured.
    pub otlp: OtlpConfig,
}

impl SignozConfig {
    /// The endpoint the OTLP exporter was given.
    pub fn endpoint(&self) -> &str {
        match &self.otlp {
            OtlpConfig::Http(c) => &c.endpoint,
            OtlpConfig::Grpc(c) => &c.endpoint,
        }
    }
}

// By hand, so the ingestion key (a header of the OTLP config) is never printed.
impl fmt::Debug for SignozConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignozConfig")
            .field("protocol", &self.protocol)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint())
            .field("key_header", &self.key_header.map(KeyHeader::name))
            .finish_non_exhaustive()
    }
}

impl ComponentConfig for SignozConfig {}

/// The SigNoz Cloud ingestion address of a region: both protocols, always TLS.
pub fn cloud_address(region: &str) -> String {
    format!("ingest.{region}.signoz.cloud:443")
}

fn error(field: &str, message: impl Into<String>) -> DecodeError {
    DecodeError {
        path: if field.is_empty() {
            Vec::new()
        } else {
            vec![field.to_string()]
        },
        message: message.into(),
    }
}

/// Removes `key` and decodes it, with errors under its name; null means absent.
fn take<T: DeserializeOwned>(map: &mut Map, key: &str) -> Result<Option<T>, DecodeError> {
    match map.shift_remove(key) {
        None => Ok(None),
        Some(value) => decode::<Option<T>>(&value).map_err(|mut e| {
            e.path.insert(0, key.to_string());
            e
        }),
    }
}

/// Text that is empty counts as absent: `${env:X}` of an unset variable leaves a key unset.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// A region is one DNS label: lowercase letters, digits and `-`, not at either end.
fn check_region(region: &str) -> Result<(), DecodeError> {
    let shape_ok = region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if shape_ok {
        Ok(())
    } else {
        Err(error(
            "region",
            format!("invalid region \"{region}\": a SigNoz Cloud region is lowercase letters, digits and '-', such as us, eu, in or in2"),
        ))
    }
}

/// Names this exporter's own keys in an unknown-field error of the OTLP exporter.
fn with_own_keys(mut e: DecodeError) -> DecodeError {
    if e.path.is_empty() && e.message.starts_with("unknown field") {
        let own = OWN_KEYS.join(", ");
        e.message = e
            .message
            .replacen("expected one of ", &format!("expected one of {own}, "), 1);
    }
    e
}

/// Decodes a `signoz` section. `cloud_host` replaces every region's address (tests only).
pub fn decode_signoz(value: &Value, cloud_host: Option<&str>) -> Result<SignozConfig, DecodeError> {
    let mut map = match value.typed() {
        Value::Null => Map::new(),
        Value::Map(map) => map.clone(),
        other => return Err(error("", format!("expected a map, got {}", other.kind()))),
    };
    let region = non_empty(take::<String>(&mut map, "region")?);
    let ingestion_key = non_empty(take::<String>(&mut map, "ingestion_key")?.map(|k| {
        // A key read from a file or a secret often ends in a newline.
        k.trim().to_string()
    }));
    let key_header = take::<KeyHeader>(&mut map, "key_header")?.unwrap_or_default();
    let protocol = take::<Protocol>(&mut map, "protocol")?.unwrap_or_default();
    let endpoint = match map.get("endpoint") {
        Some(v) => non_empty(decode::<Option<String>>(v).map_err(|mut e| {
            e.path.insert(0, "endpoint".to_string());
            e
        })?),
        None => None,
    };
    // What TLS the user asked for; a malformed `tls` is reported by the OTLP exporter.
    let tls: ClientTlsSettings = map
        .get("tls")
        .and_then(|v| decode(v).ok())
        .unwrap_or_default();
    let has_ca = tls.ca_file.is_some() || tls.ca_pem.is_some();

    let plain_text = match (&region, &endpoint) {
        (Some(_), Some(_)) => {
            return Err(error(
                "",
                "region and endpoint are mutually exclusive: set region for SigNoz Cloud, or endpoint for a self-hosted SigNoz",
            ))
        }
        (None, None) => {
            return Err(error(
                "",
                "either region (SigNoz Cloud) or endpoint (self-hosted SigNoz) must be set",
            ))
        }
        (Some(region), None) => {
            check_region(region)?;
            if ingestion_key.is_none() {
                return Err(error(
                    "ingestion_key",
                    "required with region: SigNoz Cloud refuses data without the ingestion key",
                ));
            }
            let address = cloud_host.map_or_else(|| cloud_address(region), str::to_string);
            // https:// makes TLS certain for both protocols, whatever `tls.insecure` says.
            map.insert("endpoint".into(), Value::String(format!("https://{address}")));
            false
        }
        (None, Some(endpoint)) => {
            if endpoint.starts_with("http://") {
                if has_ca {
                    return Err(error(
                        "endpoint",
                        "an http:// endpoint means plain text, but tls sets a CA (ca_file or ca_pem); use https:// for TLS",
                    ));
                }
                true
            } else {
                if protocol == Protocol::Http && !endpoint.contains("://") {
                    // A bare host:port follows the gRPC exporter's rule: TLS unless
                    // tls.insecure is set without a CA.
                    let scheme = if !tls.insecure || has_ca {
                        "https"
                    } else {
                        "http"
                    };
                    map.insert(
                        "endpoint".into(),
                        Value::String(format!("{scheme}://{endpoint}")),
                    );
                }
                false
            }
        }
    };

    let value = Value::Map(map);
    let mut otlp = match protocol {
        Protocol::Http => {
            let decoded = OtlpHttpExporterFactory
                .decode(&value)
                .map_err(with_own_keys)?;
            let config = config_as::<OtlpHttpConfig>(decoded.as_ref())
                .map_err(|e| error("", e.to_string()))?;
            OtlpConfig::Http(config.clone())
        }
        Protocol::Grpc => {
            let decoded = OtlpGrpcExporterFactory
                .decode(&value)
                .map_err(with_own_keys)?;
            let mut config = config_as::<OtlpGrpcConfig>(decoded.as_ref())
                .map_err(|e| error("", e.to_string()))?
                .clone();
            if plain_text {
                // The gRPC exporter alone keeps TLS on for http://, as upstream does.
                config.tls.insecure = true;
            }
            OtlpConfig::Grpc(config)
        }
    };

    if let Some(key) = &ingestion_key {
        if http::HeaderValue::from_str(key).is_err() {
            return Err(error(
                "ingestion_key",
                "not a valid header value (it may hold visible ASCII characters and spaces only)",
            ));
        }
        let headers: &mut Headers = match &mut otlp {
            OtlpConfig::Http(c) => &mut c.headers,
            OtlpConfig::Grpc(c) => &mut c.headers,
        };
        let name = key_header.name();
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(error(
                "headers",
                format!("\"{name}\" is also set by ingestion_key: give the key in one place"),
            ));
        }
        headers.0.push((name.to_string(), key.clone()));
    }

    Ok(SignozConfig {
        protocol,
        region,
        key_header: ingestion_key.as_ref().map(|_| key_header),
        otlp,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::otlp_grpc::config::Target;
    use ferrotel_pipeline::pdata::Signal;

    fn decoded(yaml: &str) -> SignozConfig {
        decode_signoz(&Value::from_yaml_str(yaml).unwrap(), None).unwrap()
    }

    fn failure(yaml: &str) -> String {
        decode_signoz(&Value::from_yaml_str(yaml).unwrap(), None)
            .unwrap_err()
            .to_string()
    }

    fn http(config: &SignozConfig) -> &OtlpHttpConfig {
        match &config.otlp {
            OtlpConfig::Http(c) => c,
            OtlpConfig::Grpc(_) => panic!("expected http"),
        }
    }

    fn grpc(config: &SignozConfig) -> &OtlpGrpcConfig {
        match &config.otlp {
            OtlpConfig::Grpc(c) => c,
            OtlpConfig::Http(_) => panic!("expected grpc"),
        }
    }

    #[test]
    fn a_region_resolves_to_signoz_cloud_over_tls() {
        let c = decoded("region: eu\ningestion_key: k-123\n");
        assert_eq!(c.protocol, Protocol::Http);
        assert_eq!(c.region.as_deref(), Some("eu"));
        let h = http(&c);
        assert_eq!(h.endpoint, "https://ingest.eu.signoz.cloud:443");
        assert_eq!(
            h.signal_url(Signal::Traces).unwrap(),
            "https://ingest.eu.signoz.cloud:443/v1/traces"
        );
        assert_eq!(
            h.headers.0,
            vec![("signoz-ingestion-key".to_string(), "k-123".to_string())]
        );

        let c = decoded("region: eu\ningestion_key: k-123\nprotocol: grpc\n");
        let g = grpc(&c);
        assert_eq!(
            g.target(),
            Target {
                authority: "ingest.eu.signoz.cloud:443".to_string(),
                tls: true
            }
        );
        assert_eq!(
            g.headers.0,
            vec![("signoz-ingestion-key".to_string(), "k-123".to_string())]
        );

        // TLS even when the copied chart settings say insecure.
        let c = decoded("region: in2\ningestion_key: k\nprotocol: grpc\ntls:\n  insecure: true\n");
        assert_eq!(
            grpc(&c).target(),
            Target {
                authority: "ingest.in2.signoz.cloud:443".to_string(),
                tls: true
            }
        );
        assert_eq!(cloud_address("us"), "ingest.us.signoz.cloud:443");
    }

    #[test]
    fn the_other_settings_keep_the_otlp_defaults() {
        let h = http(&decoded("region: us\ningestion_key: k\n")).clone();
        let expected = OtlpHttpConfig {
            endpoint: "https://ingest.us.signoz.cloud:443".into(),
            headers: Headers(vec![("signoz-ingestion-key".into(), "k".into())]),
            ..OtlpHttpConfig::default()
        };
        assert_eq!(h, expected);
        let g = grpc(&decoded("region: us\ningestion_key: k\nprotocol: grpc\n")).clone();
        let expected = OtlpGrpcConfig {
            endpoint: "https://ingest.us.signoz.cloud:443".into(),
            headers: Headers(vec![("signoz-ingestion-key".into(), "k".into())]),
            ..OtlpGrpcConfig::default()
        };
        assert_eq!(g, expected);

        let c = decoded("region: us\ningestion_key: k\ncompression: zstd\ntimeout: 7s\nencoding: json\nsending_queue:\n  queue_size: 9\n");
        let h = http(&c);
        assert_eq!(h.compression.encoding(), Some("zstd"));
        assert_eq!(h.timeout.get(), std::time::Duration::from_secs(7));
        assert_eq!(h.encoding.content_type(), "application/json");
        assert_eq!(h.sending_queue.queue_size, 9);
    }

    #[test]
    fn self_hosted_endpoints_and_their_schemes() {
        // http:// is plain text for both protocols.
        let c = decoded("endpoint: http://signoz-otel-collector:4318\n");
        assert_eq!(http(&c).endpoint, "http://signoz-otel-collector:4318");
        assert!(http(&c).headers.0.is_empty());
        assert_eq!(c.key_header, None);
        let c = decoded("endpoint: http://signoz-otel-collector:4317\nprotocol: grpc\n");
        assert_eq!(
            grpc(&c).target(),
            Target {
                authority: "signoz-otel-collector:4317".to_string(),
                tls: false
            }
        );
        // https:// is TLS.
        let c = decoded("endpoint: https://otel.example.com:4317\nprotocol: grpc\n");
        assert!(grpc(&c).target().tls);
        // A bare host:port: TLS unless tls.insecure, for both protocols.
        let c = decoded("endpoint: collector:4317\nprotocol: grpc\n");
        assert!(grpc(&c).target().tls);
        let c = decoded("endpoint: collector:4317\nprotocol: grpc\ntls:\n  insecure: true\n");
        assert!(!grpc(&c).target().tls);
        let c = decoded("endpoint: collector:4318\n");
        assert_eq!(http(&c).endpoint, "https://collector:4318");
        let c = decoded("endpoint: collector:4318\ntls:\n  insecure: true\n");
        assert_eq!(http(&c).endpoint, "http://collector:4318");
        let c = decoded("endpoint: collector:4318\ntls:\n  insecure: true\n  ca_file: /ca.pem\n");
        assert_eq!(http(&c).endpoint, "https://collector:4318");
        // An unset variable leaves region empty: the endpoint is used.
        let c = decoded("region: \"\"\nendpoint: http://c:4318\n");
        assert_eq!(c.region, None);
    }

    #[test]
    fn the_key_and_its_header() {
        let c = decoded("endpoint: http://c:4318\ningestion_key: \" abc \\n\"\n");
        assert_eq!(
            http(&c).headers.0,
            vec![("signoz-ingestion-key".to_string(), "abc".to_string())]
        );
        assert_eq!(c.key_header, Some(KeyHeader::IngestionKey));
        let c = decoded(
            "endpoint: http://c:4318\ningestion_key: abc\nkey_header: signoz-access-token\nheaders:\n  x-team: a\n",
        );
        assert_eq!(
            http(&c).headers.0,
            vec![
                ("x-team".to_string(), "a".to_string()),
                ("signoz-access-token".to_string(), "abc".to_string())
            ]
        );
        // No key: no header, whatever key_header says.
        let c = decoded("endpoint: http://c:4318\nkey_header: signoz-access-token\n");
        assert!(http(&c).headers.0.is_empty());
        assert_eq!(c.key_header, None);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let c = decoded("region: us\ningestion_key: very-secret-key\n");
        let text = format!("{c:?}");
        assert!(!text.contains("very-secret-key"), "{text}");
        assert!(text.contains("signoz-ingestion-key"), "{text}");
        assert!(
            text.contains("https://ingest.us.signoz.cloud:443"),
            "{text}"
        );
    }

    #[test]
    fn errors_name_the_signoz_field() {
        let both = "region and endpoint are mutually exclusive: set region for SigNoz Cloud, or endpoint for a self-hosted SigNoz";
        assert_eq!(
            failure("region: us\nendpoint: http://c:4318\ningestion_key: k\n"),
            both
        );
        let neither = "either region (SigNoz Cloud) or endpoint (self-hosted SigNoz) must be set";
        assert_eq!(failure("ingestion_key: k\n"), neither);
        assert_eq!(failure("{}"), neither);
        assert_eq!(failure("null"), neither);
        for bad in [
            "EU",
            "eu.west",
            "-eu",
            "eu-",
            "e u",
            "ingest.eu.signoz.cloud",
        ] {
            assert_eq!(
                failure(&format!("region: \"{bad}\"\ningestion_key: k\n")),
                format!("region: invalid region \"{bad}\": a SigNoz Cloud region is lowercase letters, digits and '-', such as us, eu, in or in2"),
            );
        }
        assert_eq!(
            failure("region: us\n"),
            "ingestion_key: required with region: SigNoz Cloud refuses data without the ingestion key"
        );
        assert_eq!(
            failure("region: us\ningestion_key: \"\"\n"),
            "ingestion_key: required with region: SigNoz Cloud refuses data without the ingestion key"
        );
        assert_eq!(
            failure("region: us\ningestion_key: k\nprotocol: udp\n"),
            "protocol: invalid value \"udp\", expected one of grpc, http"
        );
        assert_eq!(
            failure("region: us\ningestion_key: k\nkey_header: authorization\n"),
            "key_header: invalid value \"authorization\", expected one of signoz-ingestion-key, signoz-access-token"
        );
        assert_eq!(
            failure("region: us\ningestion_key: \"a\\u0001b\"\n"),
            "ingestion_key: not a valid header value (it may hold visible ASCII characters and spaces only)"
        );
        assert_eq!(
            failure("region: us\ningestion_key: k\nheaders:\n  Signoz-Ingestion-Key: other\n"),
            "headers: \"signoz-ingestion-key\" is also set by ingestion_key: give the key in one place"
        );
        assert_eq!(
            failure("endpoint: http://c:4317\nprotocol: grpc\ntls:\n  ca_file: /ca.pem\n"),
            "endpoint: an http:// endpoint means plain text, but tls sets a CA (ca_file or ca_pem); use https:// for TLS"
        );
        assert_eq!(failure("- a\n"), "expected a map, got list");
    }

    #[test]
    fn unknown_fields_list_both_kinds_of_keys() {
        let e = failure("region: us\ningestion_key: k\nregoin: eu\n");
        assert!(
            e.starts_with("unknown field \"regoin\", expected one of region, ingestion_key, key_header, protocol, endpoint, traces_endpoint,"),
            "{e}"
        );
        // gRPC-only settings are unknown over HTTP, and the other way round.
        let e = failure("region: us\ningestion_key: k\nkeepalive:\n  time: 10s\n");
        assert!(e.starts_with("unknown field \"keepalive\""), "{e}");
        let e = failure("region: us\ningestion_key: k\nprotocol: grpc\nencoding: json\n");
        assert!(e.starts_with("unknown field \"encoding\", expected one of region, ingestion_key, key_header, protocol, endpoint, tls,"), "{e}");
        // Nested errors keep the OTLP exporter's path and words.
        assert_eq!(
            failure("region: us\ningestion_key: k\nretry_on_failure:\n  enabled: maybe\n"),
            "retry_on_failure::enabled: expected a bool, got string \"maybe\""
        );
        assert_eq!(
            failure("endpoint: collector\nprotocol: grpc\n"),
            "address collector: missing port in address"
        );
    }
}
