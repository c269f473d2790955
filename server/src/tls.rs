//! TLS with rustls: certificate files, or a self-signed certificate for trying homevisit out.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

use crate::settings::Settings;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The certificate and key do not fit together, or rustls refused them.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The development certificate could not be made or stored.
    #[error("development certificate: {0}")]
    Dev(String),
}

/// Where `--dev-tls` keeps its certificate, for clients to trust.
pub fn dev_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-tls").join("cert.pem")
}

fn pem_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn load(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(pem_error(cert, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let mut config =
        ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Stateless tickets let every returning phone resume, where the default session cache
    // holds 256; a resumed handshake skips the certificate chain, a second or more of slow 2G.
    // Their keys live in this process: after a restart, or on another instance, a phone
    // simply makes a full handshake.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    // A phone opens one connection at a time and each resumption brings a fresh ticket, so a
    // second ticket would be bytes on the air for nothing.
    config.send_tls13_tickets = 1;
    Ok(config)
}

/// Makes (once) and loads the self-signed development certificate in the data directory.
fn dev(data_dir: &Path) -> Result<ServerConfig, TlsError> {
    let cert = dev_cert_path(data_dir);
    let key = cert.with_file_name("key.pem");
    if !cert.exists() || !key.exists() {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .map_err(|e| TlsError::Dev(e.to_string()))?;
        let dir = cert.parent().unwrap_or(data_dir);
        let dev = |e: std::io::Error| TlsError::Dev(e.to_string());
        crate::files::private_dir(dir).map_err(dev)?;
        crate::files::private_write(&key, made.signing_key.serialize_pem().as_bytes())
            .map_err(dev)?;
        crate::files::private_write(&cert, made.cert.pem().as_bytes()).map_err(dev)?;
    }
    load(&cert, &key)
}

/// The TLS configuration the settings ask for; `None` for plain HTTP behind a proxy.
pub fn server_config(settings: &Settings) -> Result<Option<ServerConfig>, TlsError> {
    let t = &settings.tls;
    if t.plain_http {
        return Ok(None);
    }
    match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => load(cert, key).map(Some),
        _ => dev(&settings.data_dir).map(Some),
    }
}
