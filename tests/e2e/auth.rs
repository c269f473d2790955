//! Login, refresh-token rotation, throttling, revocation and forged tokens over HTTPS.

use homevisit_phone::client::ClientError;
use serde_json::json;

use crate::harness::{PASSWORD, Phone, Server};

fn code_of(err: ClientError) -> (u16, String) {
    match err {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn a_refresh_token_rotates_and_reusing_a_spent_one_revokes_the_whole_login() {
    let server = Server::sqlite();
    let mut client = server.login("dir_a");
    let first = client.session.clone().expect("session");
    let second = client.refresh().expect("rotate").clone();
    assert_ne!(first.refresh_token, second.refresh_token);
    assert!(
        client.get("/api/v1/children").is_ok(),
        "the new access token works"
    );

    // The response carrying `third` is lost; the phone retries with `second` at once and gets
    // the very same successor: a retry is idempotent.
    let third = client.refresh().expect("rotate").clone();
    client.session = Some(second.clone());
    let retried = client
        .refresh()
        .expect("a retry right after a lost response")
        .clone();
    assert_eq!(retried.refresh_token, third.refresh_token);

    // Once the successor is used, presenting its predecessor again is theft: the family dies.
    let fourth = client.refresh().expect("rotate").clone();
    client.session = Some(second);
    let (status, code) = code_of(client.refresh().expect_err("reuse"));
    assert_eq!((status, code.as_str()), (401, "refresh_token_reused"));
    client.session = Some(fourth.clone());
    let (status, code) = code_of(client.refresh().expect_err("family revoked"));
    assert_eq!((status, code.as_str()), (401, "invalid_refresh_token"));
    // Every access token of the session ended with it.
    client.session = Some(fourth);
    let (status, _) = code_of(client.get("/api/v1/children").expect_err("session ended"));
    assert_eq!(status, 401);
}

#[test]
fn a_replayed_refresh_token_inside_the_grace_wins_nothing_and_ends_with_the_family_revoked() {
    let server = Server::postgres();
    let mut owner = server.login("sup_a");
    let stolen = owner.session.clone().expect("session");
    let owners = owner.refresh().expect("the owner rotates").clone();

    // The attacker replays the spent token within the grace: the same successor, not a new one.
    let mut attacker = server.client();
    attacker.session = Some(stolen.clone());
    let replayed = attacker.refresh().expect("an idempotent retry").clone();
    assert_eq!(replayed.refresh_token, owners.refresh_token);
    // So the owner's successor still works: the replay took nothing from the owner.
    let owners_next = owner
        .refresh()
        .expect("the owner's successor works")
        .clone();

    // Any other reuse revokes the family.
    attacker.session = Some(stolen);
    let (status, code) = code_of(attacker.refresh().expect_err("reuse"));
    assert_eq!((status, code.as_str()), (401, "refresh_token_reused"));

    // The attacker holds nothing: neither refresh token nor access token works.
    attacker.session = Some(replayed.clone());
    assert_eq!(code_of(attacker.refresh().expect_err("dead")).0, 401);
    attacker.session = Some(replayed);
    assert_eq!(
        code_of(attacker.get("/api/v1/children").expect_err("dead")).0,
        401
    );
    // Nor does the owner, who signs in again; the owner's failed attempt keeps it revoked.
    assert_eq!(code_of(owner.refresh().expect_err("revoked")).0, 401);
    owner.session = Some(owners_next);
    assert_eq!(
        code_of(owner.get("/api/v1/children").expect_err("revoked")).0,
        401
    );
    assert!(server.login("sup_a").get("/api/v1/children").is_ok());
}

#[test]
fn logout_ends_the_refresh_token_and_the_access_token_at_once() {
    let server = Server::sqlite();
    let mut client = server.login("sup_a");
    assert!(client.get("/api/v1/children").is_ok());
    let token = client
        .session
        .as_ref()
        .expect("session")
        .refresh_token
        .clone();
    let reply = client
        .post_json(
            "/api/v1/auth/logout",
            None,
            &json!({ "refresh_token": token }),
        )
        .expect("logout");
    assert_eq!(reply.status, 204);
    let (status, code) = code_of(client.get("/api/v1/children").expect_err("logged out"));
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    let (status, _) = code_of(client.refresh().expect_err("logged out"));
    assert_eq!(status, 401);
}

#[test]
fn failed_logins_are_throttled_alike_for_real_and_unknown_names_and_never_lock() {
    let server = Server::sqlite();
    let mut client = server.client();
    let device = uuid::Uuid::new_v4().to_string();
    for name in ["dir_a", "nobody"] {
        let mut codes = Vec::new();
        for _ in 0..5 {
            let err = client
                .login(name, "wrong password", &device, "phone")
                .expect_err("wrong");
            codes.push(code_of(err));
        }
        assert!(
            codes
                .iter()
                .all(|(s, c)| *s == 401 && c == "invalid_credentials"),
            "{name}: {codes:?}"
        );
        // Now throttled, whether the name exists or not: even the right password waits.
        let (status, code) = code_of(
            client
                .login(name, PASSWORD, &device, "phone")
                .expect_err("throttled"),
        );
        assert_eq!(
            (status, code.as_str()),
            (429, "too_many_attempts"),
            "{name}"
        );
    }

    // An administrator's reset clears the wait at once; otherwise it simply runs out (tested
    // in server/tests/it/access.rs, where the clock can be moved).
    let out = server.homevisit(
        &["user", "reset-password", "dir_a", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(client.login("dir_a", PASSWORD, &device, "phone").is_ok());
}

#[test]
fn a_revoked_device_is_refused_and_told_to_wipe_at_its_next_sync() {
    let server = Server::sqlite();
    let mut phone = Phone::new(&server, "dir_a");
    phone.register("李小红", "220303100200");
    phone.sync();
    assert_eq!(phone.device.len(), 1);
    let device_id = phone
        .client
        .session
        .as_ref()
        .expect("session")
        .device_id
        .clone();

    let admin = server.login("admin");
    let devices = admin.get("/api/v1/devices").expect("list devices");
    assert!(
        devices["devices"]
            .as_array()
            .expect("array")
            .iter()
            .any(|d| d["id"] == device_id.as_str()),
        "{devices}"
    );
    let director = server.login("dir_a");
    let refused = director
        .call(
            "POST",
            &format!("/api/v1/devices/{device_id}/revoke"),
            Some(&director.session.as_ref().expect("s").access_token),
            "application/json",
            b"",
        )
        .expect("answer");
    assert_eq!(refused.status, 403, "only an admin revokes");
    let reply = admin
        .call(
            "POST",
            &format!("/api/v1/devices/{device_id}/revoke"),
            Some(&admin.session.as_ref().expect("s").access_token),
            "application/json",
            b"",
        )
        .expect("revoke");
    assert_eq!(reply.status, 204);

    let (status, code) = code_of(phone.client.get("/api/v1/children").expect_err("revoked"));
    assert_eq!((status, code.as_str()), (401, "device_revoked"));
    let (outcome, _) = phone.client.sync_device(&mut phone.device).expect("sync");
    assert_eq!(outcome, homevisit_sync_core::sync::device::Outcome::Wipe);
    assert!(phone.device.is_empty(), "the store was wiped");
    let (status, code) = code_of(phone.client.refresh().expect_err("no refresh"));
    assert_eq!((status, code.as_str()), (401, "device_revoked"));
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An access token as the server makes one (auth/tokens.rs), under any key, for any session
/// and expiry: what an attacker who guessed or stole a key could make.
fn made(key_id: u8, session: uuid::Uuid, exp: i64, secret: &[u8]) -> String {
    use hmac::Mac;
    let mut token = vec![key_id];
    token.extend_from_slice(session.as_bytes());
    token.extend_from_slice(&(exp as u32).to_le_bytes());
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("mac");
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    b64(&token)
}

#[test]
fn forged_expired_and_misaddressed_tokens_are_all_401() {
    use sha2::Digest;
    let server = Server::sqlite();
    let client = server.login("county");
    let genuine = client.session.clone().expect("session").access_token;
    assert_eq!(genuine.len(), 50, "{genuine}");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &genuine)
        .expect("b64");
    let session = uuid::Uuid::from_slice(&bytes[1..17]).expect("session");
    let server_key =
        std::fs::read(server.dir.path().join("keys").join("access.key")).expect("server key");
    let id = sha2::Sha256::digest(&server_key)[0];
    assert_eq!(bytes[0], id, "the token names the server's key");
    let other_key: [u8; 32] = rand::random();
    let now = homevisit_server::service::clock::unix_now();
    let mut flipped = bytes.clone();
    flipped[40 % bytes.len()] ^= 0x80;
    let forged = [
        ("garbage", "not.a.token".to_owned()),
        (
            "a JWT with alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(json!({"sid": session.to_string(), "exp": now + 600})
                    .to_string()
                    .as_bytes())
            ),
        ),
        (
            "another key under our key's id",
            made(id, session, now + 600, &other_key),
        ),
        (
            "an unknown key id",
            made(id.wrapping_add(1), session, now + 600, &server_key),
        ),
        ("expired", made(id, session, now - 3600, &server_key)),
        (
            "a session that does not exist",
            made(id, uuid::Uuid::new_v4(), now + 600, &server_key),
        ),
        ("a flipped bit", b64(&flipped)),
        ("one character more", format!("{genuine}A")),
        ("one character less", genuine[..49].to_owned()),
    ];
    for (what, token) in forged {
        for path in ["/api/v1/children", "/api/v1/audit", "/api/v1/devices"] {
            let reply = client
                .call("GET", path, Some(&token), "", &[])
                .expect("answer");
            assert_eq!(reply.status, 401, "{what} on {path}: {:?}", reply.json());
        }
    }
    // The genuine token still works, and a token correctly made for the same session is
    // accepted: the refusals above are about the forgeries, not the endpoints.
    assert_eq!(
        client
            .call("GET", "/api/v1/children", Some(&genuine), "", &[])
            .expect("ok")
            .status,
        200
    );
    let remade = made(id, session, now + 600, &server_key);
    assert_eq!(
        client
            .call("GET", "/api/v1/devices", Some(&remade), "", &[])
            .expect("ok")
            .status,
        403,
        "the role comes from the database, not from the token"
    );
}

#[test]
fn malformed_and_oversized_login_bodies_get_400_and_413_and_lose_nothing() {
    let server = Server::sqlite();
    let client = server.client();
    let post = |body: &[u8], content_type: &str| {
        client
            .call("POST", "/api/v1/auth/login", None, content_type, body)
            .expect("answer")
    };
    let reply = post(b"{\"username\": ", "application/json");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_json"))
    );
    // serde reads a struct from an array of its fields; the API takes objects only.
    let array =
        format!("[\"dir_a\", \"{PASSWORD}\", \"0b6c4f2e-8f43-4d9e-9a53-2f3c1c7e9a10\", \"p\"]");
    let reply = post(array.as_bytes(), "application/json");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_json"))
    );
    let reply = post(b"username=dir_a", "application/x-www-form-urlencoded");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code().as_deref(), Some("unsupported_content_type"));
    let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(200_000));
    let reply = post(huge.as_bytes(), "application/json");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (413, Some("payload_too_large"))
    );
    let reply = client
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "dir_a", "password": PASSWORD, "device_id": "not-a-uuid", "device_name": "p"}),
        )
        .expect("answer");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_request"))
    );
    // Device names are shown to administrators: no control or direction characters, no
    // markup, not too long.
    let long = "手".repeat(65);
    for name in [
        "phone\u{0}",
        "evil\u{202E}gpj.exe",
        "\u{2066}isolate",
        "<script>alert(1)</script>",
        "line\nbreak",
        long.as_str(),
    ] {
        let reply = client
            .post_json(
                "/api/v1/auth/login",
                None,
                &json!({"username": "dir_a", "password": PASSWORD,
                        "device_id": uuid::Uuid::new_v4().to_string(), "device_name": name}),
            )
            .expect("answer");
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (400, Some("invalid_request")),
            "{name:?}"
        );
    }
    // Nothing above counted as a failed login: the right password still works at once.
    let mut fresh = server.client();
    assert!(
        fresh
            .login("dir_a", PASSWORD, &uuid::Uuid::new_v4().to_string(), "p")
            .is_ok()
    );
}
