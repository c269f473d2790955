//! How the phone's requests reach the server: the built-in HTTPS stack ([`Https`], rustls), or
//! one the app brings (OkHttp, URLSession) behind the [`Transport`] trait.
//!
//! A transport moves bytes and nothing else: it answers with whatever status the server sent,
//! and fails only when no answer came (no network, TLS refused, timed out). Everything the
//! phone decides from an answer (refresh the session, resume a photo, set a file aside) is
//! decided above it, the same whichever transport carries it.

use std::sync::Arc;
use std::time::Duration;
use ureq::config::AutoHeaderValue;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// One request, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Headers to send, besides those the stack adds itself (Host, Content-Length).
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

/// One answer, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in any case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of this name, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Carries requests to the server. Implementations are called from the thread that called the
/// phone, and may block.
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the server's answer, whatever its status.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// The most of a response body the phone reads: a first sync of a big village is a few MB.
pub const MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// The built-in transport: HTTPS with rustls, through ureq.
#[derive(Debug, Clone)]
pub struct Https {
    agent: ureq::Agent,
}

fn err(e: impl std::fmt::Display) -> TransportError {
    TransportError(e.to_string())
}

impl Https {
    /// A transport trusting the certificates of `ca_pem` only, or the public web roots when
    /// `None`. A PEM text holding no certificate is refused, so a mistyped file never turns
    /// into trusting everyone.
    pub fn new(ca_pem: Option<&[u8]>) -> Result<Https, TransportError> {
        let roots = match ca_pem {
            Some(pem) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                let mut certs = Vec::new();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let der = cert.map_err(|e| err(format!("the CA certificate: {e}")))?;
                    certs.push(Certificate::from_der(der.as_ref()).to_owned());
                }
                if certs.is_empty() {
                    return Err(err("the CA PEM holds no certificate"));
                }
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::WebPki,
        };
        // No User-Agent or Accept: on 2G each request would carry them for nothing.
        let config = ureq::Agent::config_builder()
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Https {
            agent: config.into(),
        })
    }

    /// The agent, for what does not fit one whole request (the alert event stream).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
}

impl Transport for Https {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let built = builder.body(request.body).map_err(err)?;
        let mut response = self.agent.run(built).map_err(err)?;
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(err)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_pem_without_a_certificate_is_refused() {
        let e = Https::new(Some(b"not a certificate")).expect_err("refused");
        assert!(e.0.contains("no certificate"), "{e}");
    }

    #[test]
    fn a_header_is_found_whatever_its_case() {
        let r = HttpResponse {
            status: 200,
            headers: vec![("Upload-Offset".into(), "12".into())],
            body: Vec::new(),
        };
        assert_eq!(r.header("upload-offset"), Some("12"));
        assert_eq!(r.header("content-type"), None);
    }
}
