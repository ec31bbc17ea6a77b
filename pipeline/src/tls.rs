//! TLS settings with upstream's field names (`configtls`), built into rustls configurations.

use std::io::BufReader;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};
use serde::Deserialize;

use crate::config::types::GoDuration;

/// Server-side TLS (`tls:` under a receiver or extension endpoint).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsSettings {
    pub cert_file: Option<String>,
    pub cert_pem: Option<String>,
    pub key_file: Option<String>,
    pub key_pem: Option<String>,
    pub ca_file: Option<String>,
    pub ca_pem: Option<String>,
    /// Clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca_file: Option<String>,
    pub client_ca_file_reload: bool,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Vec<String>,
    pub curve_preferences: Vec<String>,
    pub include_system_ca_certs_pool: bool,
    pub reload_interval: Option<GoDuration>,
}

fn version(text: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match text {
        "1.2" => Ok(&rustls::version::TLS12),
        "1.3" => Ok(&rustls::version::TLS13),
        "1.0" | "1.1" => Err(format!(
            "TLS version {text} is not supported (valid values: 1.2, 1.3)"
        )),
        other => Err(format!(
            "invalid TLS version \"{other}\" (valid values: 1.2, 1.3)"
        )),
    }
}

fn read_pem(
    file: &Option<String>,
    pem: &Option<String>,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    match (file, pem) {
        (Some(_), Some(_)) => Err(format!(
            "provide either {what}_file or {what}_pem, not both"
        )),
        (Some(path), None) => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("failed to read {what} file \"{path}\": {e}")),
        (None, Some(pem)) => Ok(Some(pem.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let list: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(pem)).collect();
    let list = list.map_err(|e| format!("invalid {what}: {e}"))?;
    if list.is_empty() {
        return Err(format!("invalid {what}: no PEM certificate found"));
    }
    Ok(list)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTlsSettings {
    /// Checks without reading files (validation is pure).
    pub fn validate(&self) -> Result<(), String> {
        if self.cert_file.is_none() && self.cert_pem.is_none() {
            return Err("tls: a certificate is required (cert_file or cert_pem)".to_string());
        }
        if self.key_file.is_none() && self.key_pem.is_none() {
            return Err("tls: a private key is required (key_file or key_pem)".to_string());
        }
        if let Some(v) = &self.min_version {
            version(v).map_err(|e| format!("tls: min_version: {e}"))?;
        }
        if let Some(v) = &self.max_version {
            version(v).map_err(|e| format!("tls: max_version: {e}"))?;
        }
        Ok(())
    }

    /// Reads the certificate files and builds the server configuration with `alpn` protocols.
    pub fn build(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, String> {
        self.validate()?;
        let cert_pem = read_pem(&self.cert_file, &self.cert_pem, "cert")?.unwrap_or_default();
        let key_pem = read_pem(&self.key_file, &self.key_pem, "key")?.unwrap_or_default();
        let chain = certs(&cert_pem, "certificate")?;
        let key: PrivateKeyDer<'static> =
            rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_slice()))
                .map_err(|e| format!("invalid private key: {e}"))?
                .ok_or_else(|| "invalid private key: no PEM key found".to_string())?;
        let versions = versions(self.min_version.as_deref(), self.max_version.as_deref())?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls: {e}"))?;
        let client_ca = match &self.client_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("failed to read client_ca_file \"{path}\": {e}"))?,
            ),
            None => None,
        };
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in certs(&pem, "client CA")? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("invalid client CA: {e}"))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| format!("client CA: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key do not match or are invalid: {e}"))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// Client-side TLS (`tls:` under an exporter), upstream `configtls.ClientConfig`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTlsSettings {
    /// Plain text (for gRPC endpoints without a scheme).
    pub insecure: bool,
    /// Accept any server certificate. For testing only.
    pub insecure_skip_verify: bool,
    pub ca_file: Option<String>,
    pub ca_pem: Option<String>,
    pub cert_file: Option<String>,
    pub cert_pem: Option<String>,
    pub key_file: Option<String>,
    pub key_pem: Option<String>,
    pub server_name_override: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub include_system_ca_certs_pool: bool,
    pub cipher_suites: Vec<String>,
    pub curve_preferences: Vec<String>,
    pub reload_interval: Option<GoDuration>,
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let min = min.unwrap_or("1.2");
    let max = max.unwrap_or("1.3");
    version(min)?;
    version(max)?;
    let list: Vec<&'static SupportedProtocolVersion> = ["1.2", "1.3"]
        .into_iter()
        .filter(|v| *v >= min && *v <= max)
        .map(version)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(format!("tls: min_version {min} is above max_version {max}"));
    }
    Ok(list)
}

impl ClientTlsSettings {
    /// Checks without reading files.
    pub fn validate(&self) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some()
            && self.cert_pem.is_none()
            && self.key_pem.is_none()
        {
            return Err("tls: cert_file and key_file go together".to_string());
        }
        if let Some(v) = &self.min_version {
            version(v).map_err(|e| format!("tls: min_version: {e}"))?;
        }
        if let Some(v) = &self.max_version {
            version(v).map_err(|e| format!("tls: max_version: {e}"))?;
        }
        Ok(())
    }

    /// Builds the client configuration: the configured CA (or the system's roots), an
    /// optional client certificate, and `alpn` protocols.
    pub fn build(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
        self.validate()?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(
                self.min_version.as_deref(),
                self.max_version.as_deref(),
            )?)
            .map_err(|e| format!("tls: {e}"))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
        } else {
            let mut roots = RootCertStore::empty();
            let ca = read_pem(&self.ca_file, &self.ca_pem, "ca")?;
            if ca.is_none() || self.include_system_ca_certs_pool {
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    // Unusable system certificates are skipped, as Go's pool loader does.
                    let _ = roots.add(cert);
                }
            }
            if let Some(pem) = ca {
                for cert in certs(&pem, "CA certificate")? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("invalid CA certificate: {e}"))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let cert = read_pem(&self.cert_file, &self.cert_pem, "cert")?;
        let key = read_pem(&self.key_file, &self.key_pem, "key")?;
        let mut config = match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = certs(&cert, "client certificate")?;
                let key: PrivateKeyDer<'static> =
                    rustls_pemfile::private_key(&mut BufReader::new(key.as_slice()))
                        .map_err(|e| format!("invalid private key: {e}"))?
                        .ok_or_else(|| "invalid private key: no PEM key found".to_string())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    format!("client certificate and key do not match or are invalid: {e}")
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(
                    "tls: a client certificate needs both a certificate and a key".to_string(),
                )
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// `insecure_skip_verify`: signatures are still checked, the certificate chain is not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
