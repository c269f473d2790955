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
