//! `homevisit serve` as a real process on a real port, spoken to over real TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_homevisit"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start homevisit serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    /// SIGTERM, as a service manager stops it; returns whether it exited cleanly.
    fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        self.child.wait().expect("wait").success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over TLS, trusting only `ca`; returns the status line and body.
fn get(port: u16, path: &str, ca: &Path) -> Result<(String, String), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = "localhost".try_into().map_err(|_| "name".to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    // A peer that closes without close_notify still delivered the whole response.
    let _ = tls.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no response")?;
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

#[test]
fn the_server_answers_health_checks_over_tls_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &["--dev-tls"]);
    let ca = dir.path().join("dev-tls").join("cert.pem");
    let (status, body) = get(server.port, "/healthz", &ca).expect("healthz");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("ok"), "{body}");
    let (status, _) = get(server.port, "/readyz", &ca).expect("readyz");
    assert!(status.contains("200"), "{status}");
    let (status, body) = get(server.port, "/no/such/route", &ca).expect("404");
    assert!(status.contains("404"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(json["code"], "not_found");
    assert!(server.stop(), "did not exit cleanly on SIGTERM");
}

#[test]
fn the_server_offers_http2_by_alpn() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &["--dev-tls"]);
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(dir.path().join("dev-tls").join("cert.pem")).expect("pem")
    {
        roots.add(cert.expect("cert")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = "localhost".try_into().expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut sock = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    assert!(server.stop());
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &["--dev-tls"]);
    let other = tempfile::tempdir().expect("dir");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let wrong_ca = other.path().join("ca.pem");
    std::fs::write(&wrong_ca, made.cert.pem()).expect("write");
    assert!(get(server.port, "/healthz", &wrong_ca).is_err());
    assert!(server.stop());
}

#[test]
fn the_server_will_not_start_without_a_tls_choice_or_with_an_unknown_database() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev-tls"));
    let out = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args([
            "serve",
            "--dev-tls",
            "--database-url",
            "mysql://root:pw@db/hv",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL") && !err.contains("pw@"),
        "{err}"
    );
}

#[test]
fn migrate_brings_a_postgres_database_up_to_date() {
    let db = crate::pg::TestDatabase::create();
    let out = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args(["migrate", "--database-url", &db.url, "--data-dir"])
        .arg(tempfile::tempdir().expect("dir").path())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}
