//! Login, refresh-token rotation, throttling, revocation and forged tokens over HTTPS.

use homevisit_phone::client::ClientError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
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

#[test]
fn forged_expired_and_misaddressed_tokens_are_all_401() {
    let server = Server::sqlite();
    let client = server.login("county");
    let session = client.session.clone().expect("session");
    let genuine = session.access_token.clone();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            genuine.split('.').next().expect("header"),
        )
        .expect("b64"),
    )
    .expect("json");
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let genuine_claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            genuine.split('.').nth(1).expect("claims"),
        )
        .expect("b64"),
    )
    .expect("json");
    let sid = genuine_claims["sid"].as_str().expect("sid").to_owned();
    let now = homevisit_server::service::clock::unix_now();
    let claims = |exp: i64, aud: &str| {
        json!({"sub": session.user_id, "device": session.device_id, "role": "admin",
               "sid": sid, "iss": "homevisit", "aud": aud, "iat": now, "exp": exp})
    };
    let server_key = std::fs::read(server.dir.path().join("keys").join("token-ed25519.pem"))
        .expect("server key");
    let server_key = EncodingKey::from_ed_pem(&server_key).expect("key");
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("other key");
    let other_key = EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).expect("key");
    let ed = |kid: &str| {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.to_owned());
        h
    };
    let sign = |h: &Header, c: &serde_json::Value, k: &EncodingKey| {
        jsonwebtoken::encode(h, c, k).expect("sign")
    };
    let payload = b64(claims(now + 600, "homevisit-api").to_string().as_bytes());
    let forged = [
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(format!(r#"{{"alg":"none","kid":"{kid}"}}"#).as_bytes())
            ),
        ),
        (
            "another key under our kid",
            sign(&ed(&kid), &claims(now + 600, "homevisit-api"), &other_key),
        ),
        (
            "an unknown kid",
            sign(
                &ed("0123456789abcdef"),
                &claims(now + 600, "homevisit-api"),
                &other_key,
            ),
        ),
        ("HS256 keyed with the public key", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(kid.clone());
            sign(
                &h,
                &claims(now + 600, "homevisit-api"),
                &EncodingKey::from_secret(other.public_key_pem().as_bytes()),
            )
        }),
        (
            "expired",
            sign(&ed(&kid), &claims(now - 3600, "homevisit-api"), &server_key),
        ),
        (
            "wrong audience",
            sign(&ed(&kid), &claims(now + 600, "someone-else"), &server_key),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("no session", {
            let mut c = claims(now + 600, "homevisit-api");
            c.as_object_mut().map(|m| m.remove("sid"));
            sign(&ed(&kid), &c, &server_key)
        }),
        ("another session", {
            let mut c = claims(now + 600, "homevisit-api");
            c["sid"] = uuid::Uuid::new_v4().to_string().into();
            sign(&ed(&kid), &c, &server_key)
        }),
    ];
    for (what, token) in forged {
        for path in ["/api/v1/children", "/api/v1/audit", "/api/v1/devices"] {
            let reply = client
                .call("GET", path, Some(&token), "", &[])
                .expect("answer");
            assert_eq!(reply.status, 401, "{what} on {path}: {:?}", reply.json());
        }
    }
    // The genuine token still works, and a correctly signed token is accepted: the refusals
    // above are about the forgeries, not the endpoints.
    assert_eq!(
        client
            .call("GET", "/api/v1/children", Some(&genuine), "", &[])
            .expect("ok")
            .status,
        200
    );
    let resigned = sign(&ed(&kid), &claims(now + 600, "homevisit-api"), &server_key);
    assert_eq!(
        client
            .call("GET", "/api/v1/devices", Some(&resigned), "", &[])
            .expect("ok")
            .status,
        403,
        "the role comes from the database, not from the token's claims"
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
