//! What operators see: metrics, logs and the API description, and that none of it leaks a
//! child's file.

use homevisit_sync_core::file::AttrKind;

use crate::harness::{Phone, Server};

#[test]
fn metrics_and_logs_count_requests_by_route_without_ids_or_names() {
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let child = director.register("欧阳娜娜", "220303100200");
    director.sync();
    let supervisor = server.login("sup_a");
    supervisor
        .get(&format!("/api/v1/children/{child}"))
        .expect("read the file");
    let metrics = supervisor
        .call(
            "GET",
            "/metrics",
            Some(crate::harness::METRICS_TOKEN),
            "",
            &[],
        )
        .expect("metrics");
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains(r#"homevisit_http_requests_total{route="/api/v1/children/{id}",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("homevisit_http_request_duration_seconds_bucket"));
    let log = std::fs::read_to_string(server.log()).expect("log");
    assert!(log.contains(r#""route":"/api/v1/sync""#), "{log}");
    let mut syncs = 0;
    for line in log.lines() {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("every log line is JSON");
        // Ours name the event; the web framework's own say what they say in a message.
        assert!(
            parsed["event"].is_string() || parsed["message"].is_string(),
            "{line}"
        );
        if parsed["event"] == "sync" {
            syncs += 1;
            assert_eq!(parsed["span"]["name"], "sync", "{line}");
            assert!(
                parsed["up"].is_null() && parsed["span"]["up"].is_u64(),
                "{line}"
            );
        }
    }
    assert!(syncs >= 1, "the sync logged its span: {log}");
    for secret in ["欧阳娜娜", &child.to_string(), crate::harness::PASSWORD] {
        assert!(!text.contains(secret), "metrics leak {secret}");
        assert!(!log.contains(secret), "logs leak {secret}");
    }
}

#[test]
fn metrics_need_their_token_and_stay_bounded_under_a_thousand_junk_methods() {
    let server = Server::sqlite();
    let client = server.client();
    let scrape = |token: Option<&str>| {
        client
            .call("GET", "/metrics", token, "", &[])
            .expect("an answer")
    };
    assert_eq!(scrape(None).status, 401);
    assert_eq!(scrape(Some("guess")).status, 401);
    let first = scrape(Some(crate::harness::METRICS_TOKEN));
    assert_eq!(first.status, 200);
    // Sent raw: no well-behaved client sends methods HTTP does not define.
    let mut junk = Vec::new();
    for i in 0..1000 {
        junk.extend_from_slice(
            format!("JUNK{i} /no/such/path/{i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
        );
    }
    junk.extend_from_slice(
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let answers = String::from_utf8_lossy(&server.raw_https(&junk)).into_owned();
    assert_eq!(answers.matches("HTTP/1.1 404").count(), 1000);
    let after = scrape(Some(crate::harness::METRICS_TOKEN));
    let text = String::from_utf8_lossy(&after.body).into_owned();
    assert!(!text.contains("JUNK"), "a junk method became a label");
    assert!(!text.contains("/no/such"), "a junk path became a label");
    assert!(
        text.contains(r#"route="unmatched",method="other",status="404"} 1000"#),
        "{text}"
    );
    assert!(after.body.len() < 16 << 10, "{} bytes", after.body.len());

    // Without a token configured, /metrics is not served at all.
    let mut bare = Server::sqlite_unstarted();
    bare.env.clear();
    let bare = bare.start();
    let reply = bare
        .client()
        .call("GET", "/metrics", Some("anything"), "", &[])
        .expect("an answer");
    assert_eq!(reply.status, 404);
}

#[test]
fn the_data_directory_and_everything_in_it_are_readable_by_the_server_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let child = director.register("陶小溪", "220303100200");
    let photo = crate::harness::small_photo(9);
    assert_eq!(director.upload(&photo).status, 201);
    director.sync();
    assert!(!child.to_string().is_empty());
    let mut seen = 0;
    let mut stack = vec![server.dir.path().to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // The harness's own files: the server's log and the regions it imported.
        if ["server.log", "regions.csv"].contains(&name) {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("entry").path());
            }
        }
        seen += 1;
    }
    assert!(seen >= 8, "walked only {seen} entries");
}

#[test]
fn today_can_be_fixed_only_for_the_demo_or_development_and_schedules_follow_it() {
    let server = Server::sqlite_unstarted();
    let refused = server.homevisit(
        &[
            "serve",
            "--dev-tls",
            "--listen",
            "127.0.0.1:0",
            "--today",
            "2027-01-01",
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--today is for the demo"),
        "{refused:?}"
    );

    // A left-behind child in poor guardianship, registered on 2026-01-10 and never visited:
    // a home visit is due a month later under `tiedong`.
    let mut server = server;
    server
        .env
        .push(("HOMEVISIT__DEVELOPMENT".into(), "true".into()));
    server.extra = vec!["--today".into(), "2026-01-20".into()];
    let mut server = server.start();
    let mut director = Phone::new(&server, "dir_a");
    let child = director.register("钟小林", "220303100200");
    let at = crate::harness::now();
    let effective = chrono::NaiveDate::from_ymd_opt(2026, 1, 10).expect("date");
    director.assert_attributes(
        &child,
        &[
            (AttrKind::Category, "left_behind"),
            (AttrKind::Guardianship, "poor"),
        ],
        effective,
    );
    director.sync();
    let status = |server: &Server| {
        let list = server.login("sup_a").get("/api/v1/children").expect("list");
        list["children"][0]["status"].as_str().map(str::to_owned)
    };
    assert_eq!(status(&server).as_deref(), Some("ok"));
    // A year on, with no sync at all, the job at start finds the child overdue.
    server.extra = vec!["--today".into(), "2027-01-20".into()];
    let server = server.start();
    assert_eq!(status(&server).as_deref(), Some("overdue"));
    // A visit synced that day puts the schedule right at once, in the sync's transaction.
    let day = chrono::NaiveDate::from_ymd_opt(2027, 1, 20).expect("date");
    let visit = homevisit_sync_core::file::RecordVersion::home_visit(
        day,
        "dir_a",
        at,
        homevisit_sync_core::file::Findings::default(),
    );
    let mut director = Phone::new(&server, "dir_a");
    director.sync();
    director
        .device
        .edit(&child, |f| {
            f.add_record(
                homevisit_sync_core::vocab::RecordKind::HomeVisit,
                &visit,
                "dir_a",
                at,
            )
        })
        .expect("visit");
    director.sync();
    assert_eq!(status(&server).as_deref(), Some("ok"));
}

#[test]
fn a_bad_list_filter_is_a_400_that_names_it() {
    let server = Server::sqlite();
    let supervisor = server.login("sup_a");
    let token = crate::harness::token(&supervisor);
    for query in ["status=late", "limit=many", "colour=red"] {
        let reply = supervisor
            .call(
                "GET",
                &format!("/api/v1/children?{query}"),
                Some(&token),
                "",
                &[],
            )
            .expect("answer");
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.code().as_deref(), Some("invalid_query"), "{query}");
    }
}

#[test]
fn the_openapi_document_describes_every_endpoint_and_each_answers() {
    let server = Server::sqlite();
    let client = server.client();
    let doc = client
        .call("GET", "/api/v1/openapi.json", None, "", &[])
        .expect("openapi")
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/sync",
        "/api/v1/children",
        "/api/v1/children/{id}",
        "/api/v1/children/{id}/history",
        "/api/v1/audit",
        "/api/v1/devices",
        "/api/v1/devices/{id}/revoke",
        "/api/v1/blobs/{sha256}",
        "/api/v1/blobs/{sha256}/status",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not described");
    }
    // Every described operation exists: none answers with the catch-all 404.
    let sample_id = uuid::Uuid::new_v4().to_string();
    let sha = "0".repeat(64);
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let concrete = path.replace("{id}", &sample_id).replace("{sha256}", &sha);
            let reply = client
                .call(
                    &method.to_uppercase(),
                    &concrete,
                    None,
                    "application/json",
                    b"{}",
                )
                .expect("answer");
            // Without a token a real route answers 401 (or its own answer); only a route
            // that does not exist reaches the catch-all `not_found`. (`/metrics` is 401 for
            // want of its token.)
            assert_ne!(
                reply.code().as_deref(),
                Some("not_found"),
                "{method} {path}"
            );
            assert_ne!(reply.status, 405, "{method} {path}");
        }
    }
    // A described path asked with another method is 405, saying which methods it takes.
    let wrong = client
        .call("DELETE", "/api/v1/sync", None, "", &[])
        .expect("answer");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.code().as_deref(), Some("method_not_allowed"));
    let photo = client
        .call("POST", &format!("/api/v1/blobs/{sha}"), None, "", &[])
        .expect("answer");
    assert_eq!(photo.status, 405);
    assert!(
        photo.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("GET, PUT"))
    );
    let nowhere = client
        .call("GET", "/api/v1/nowhere", None, "", &[])
        .expect("answer");
    assert_eq!(nowhere.status, 404);
}
