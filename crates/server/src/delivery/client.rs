//! The outbound HTTP/1.1 client of notifications: hyper's pooled client over rustls, with the
//! SSRF guard as its resolver. No proxies, no redirects, no retries of its own (the delivery
//! queue retries), no default headers: the sender builds every header itself.
//!
//! hyper directly rather than reqwest: reqwest's layers (redirect and retry policies, a copy of
//! the header map per request, re-parsing the URL of every response) cost a fifth of the
//! server's CPU per delivery (docs/benchmarks.md, fifth round).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

use super::guard::{AddressPolicy, GuardedResolver};

/// A request body: the notification, in memory.
pub type Body = Full<Bytes>;

/// The pooled client (plain HTTP and HTTPS).
pub type Client =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector<GuardedResolver>>, Body>;

/// How a client is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Arc<AddressPolicy>,
    pub connect_timeout: Duration,
    /// Keep-alive connections kept per host.
    pub idle_per_host: usize,
    /// Whether server certificates are verified (the platform's roots) or accepted as they come.
    pub verify: bool,
}

/// Builds a client.
pub fn build(s: &Settings) -> Result<Client, rustls::Error> {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        policy: s.policy.clone(),
    });
    // `https://` URLs pass on to the TLS layer.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(s.connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(s.verify)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(s.idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(https),
    )
}

fn tls_config(verify: bool) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(if verify {
        builder.with_platform_verifier()?.with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    })
}

/// `sslVerification: disabled`: any certificate is accepted (the handshake's signatures are
/// still checked, so the peer holds the key of the certificate it showed).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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
