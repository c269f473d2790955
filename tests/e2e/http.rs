//! The HTTP layer under clients that are not ours: curl over HTTP/2, and bodies that stall.

use std::process::Command;

use crate::harness::Server;

#[test]
fn an_unauthenticated_http2_post_with_a_body_gets_a_clean_401_in_curl_every_time() {
    let server = Server::sqlite();
    let body = server.dir.path().join("body.bin");
    std::fs::write(&body, vec![7u8; 200 << 10]).expect("body");
    let url = format!("https://localhost:{}/api/v1/sync", server.port);
    for attempt in 0..20 {
        let out = Command::new("curl")
            .args(["--http2", "--silent", "--show-error", "--cacert"])
            .arg(server.ca())
            .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
            .args(["-H", "Content-Type: application/vnd.homevisit.sync"])
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg(&url)
            .output()
            .expect("curl runs");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "attempt {attempt}: curl failed: {} {said}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(said, "2 401", "attempt {attempt}");
    }
}

#[test]
fn a_request_body_that_stalls_gets_a_408_and_the_server_moves_on() {
    let mut server = Server::sqlite_unstarted();
    server
        .env
        .push(("HOMEVISIT__BODY_TIMEOUT".into(), "2".into()));
    let server = server.start();
    let started = std::time::Instant::now();
    // Ten bytes of a promised thousand, then silence.
    let answer = server.raw_https(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"username\"",
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let health = server
        .client()
        .call("GET", "/healthz", None, "", &[])
        .expect("still up");
    assert_eq!(health.status, 200);
}

/// A socket that counts the bytes the client reads from it.
struct Counting {
    inner: std::net::TcpStream,
    read: usize,
}

impl std::io::Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A rustls client that trusts the test server's certificate.
fn tls_client(server: &Server) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(server.ca()).expect("ca") {
        roots.add(cert.expect("cert")).expect("root");
    }
    std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn a_returning_client_resumes_its_tls_session_and_is_not_sent_the_certificate_again() {
    use rustls::HandshakeKind;
    use std::io::{Read, Write};

    let server = Server::sqlite();
    // One client config for every connection, as a phone's HTTP agent keeps it: its session
    // store holds the tickets.
    let config = tls_client(&server);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("tls");
        let sock = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let mut tls = rustls::StreamOwned::new(
            conn,
            Counting {
                inner: sock,
                read: 0,
            },
        );
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        seen.push((tls.conn.handshake_kind(), tls.sock.read));
    }
    let kinds: Vec<_> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            Some(HandshakeKind::Full),
            Some(HandshakeKind::Resumed),
            Some(HandshakeKind::Resumed)
        ]
    );
    let certificate = std::fs::read(server.ca()).expect("ca").len() / 2;
    assert!(
        seen[1].1 + certificate < seen[0].1,
        "a resumed connection is not sent the certificate: {seen:?}"
    );
}

/// A slow 2G link takes seconds to carry a TLS handshake: a round trip of about 2 s, the
/// certificate at a few kilobits a second, and a lost packet resent. The server used to drop
/// any connection whose handshake had not finished 3 s after the connection was accepted
/// (actix's default); under load, and under valgrind, its own clients were cut the same way
/// ("Peer disconnected"). A phone whose handshake takes 4 s is now served.
#[test]
fn a_phone_whose_tls_handshake_takes_four_seconds_on_slow_2g_is_still_served() {
    use std::io::{Read, Write};

    let server = Server::sqlite();
    let config = tls_client(&server);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(config, name).expect("tls");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // The ClientHello leaves at once; the phone's Finished arrives 4 s after the connection.
    conn.write_tls(&mut sock).expect("client hello");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("the handshake completes and the request goes out");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "the server answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
}
