//! Alerts end to end: a danger synced from a phone reaches the supervisor and the county
//! through the event stream and through webhooks on a real HTTP receiver; other townships see
//! nothing of it; a receiver that was down gets every delivery once when it returns.

use hmac::{Hmac, Mac};
use homevisit_phone::client::{AlertEvent, AlertStream, Client};
use homevisit_sync_core::file::{AttrKind, ChildId, DangerDetails, RecordVersion};
use homevisit_sync_core::sync::{Request, Response};
use homevisit_sync_core::vocab::{DangerKind, RecordKind};
use serde_json::{Value, json};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Phone, Server, now, token};

/// One request a receiver took.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    /// Whether the receiver was up and answered 200.
    accepted: bool,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on loopback: plain HTTP/1.1, one request per connection; answers 503
/// while down, else 200 with `{"errcode":0}` as the group robots do.
struct Receiver {
    port: u16,
    /// Every request taken, and a signal for each one that arrives.
    got: Arc<(Mutex<Vec<Received>>, Condvar)>,
    up: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let up = Arc::new(AtomicBool::new(true));
        let (g, u) = (got.clone(), up.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let accepted = u.load(Ordering::SeqCst);
                let answer = if accepted {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}"
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(answer.as_bytes());
                g.0.lock().expect("lock").push(Received {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    accepted,
                });
                g.1.notify_all();
            }
        });
        Receiver { port, got, up }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything taken so far, accepted or not.
    fn all(&self) -> Vec<Received> {
        self.got.0.lock().expect("lock").clone()
    }

    fn accepted(&self, path_prefix: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.accepted && r.path.starts_with(path_prefix))
            .collect()
    }

    /// Waits, woken by each request (or after `tick` at most, to look at `until` again),
    /// until `until` holds of every request taken; fails after a minute.
    fn wait_for(&self, tick: Duration, until: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = self.got.0.lock().expect("lock");
        loop {
            if until(&got) {
                return got.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the receiver never got what was expected: {:?}",
                *got
            );
            got = self
                .got
                .1
                .wait_timeout(got, left.min(tick))
                .expect("lock")
                .0;
        }
    }

    /// Waits until `until` holds of what was accepted at `path_prefix`.
    fn wait(&self, path_prefix: &str, until: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let accepted = |all: &[Received]| -> Vec<Received> {
            all.iter()
                .filter(|r| r.accepted && r.path.starts_with(path_prefix))
                .cloned()
                .collect()
        };
        accepted(&self.wait_for(Duration::from_secs(60), |all| until(&accepted(all))))
    }
}

/// A server on SQLite whose alerts go to `receiver`, retried every second.
fn server_with_webhooks(receiver: &Receiver) -> Server {
    let mut server = Server::sqlite_unstarted();
    let config = server.dir.path().join("homevisit.toml");
    let settings = format!(
        r#"
[alerts]
retry_initial_secs = 1
retry_max_secs = 2
public_url = "https://homevisit.example.gov.cn"

[[webhooks]]
name = "county-system"
url = "{generic}"
format = "generic"
kinds = ["danger"]
secret = "s3cret"

[[webhooks]]
name = "township-wecom"
url = "{wecom}"
format = "wecom"
kinds = ["danger"]
region = "220303100000"

[[webhooks]]
name = "county-dingtalk"
url = "{dingtalk}"
format = "dingtalk"
kinds = ["danger"]
secret = "SECdingtalk"
"#,
        generic = receiver.url("/generic"),
        wecom = receiver.url("/wecom?key=robot-key"),
        dingtalk = receiver.url("/dingtalk?access_token=robot-token"),
    );
    std::fs::write(&config, settings).expect("config");
    server.extra = vec!["--config".into(), config.display().to_string()];
    server.start()
}

/// Records a danger on a new child of `village` and syncs it; returns the child.
fn report_danger(phone: &mut Phone, name: &str, village: &str) -> ChildId {
    let child = phone.register(name, village);
    let by = phone.user.clone();
    phone
        .device
        .edit(&child, |f| {
            let danger = DangerDetails {
                found: vec![DangerKind::LivingAlone],
                notified: Vec::new(),
                outcome: None,
            };
            let record = RecordVersion::danger(now().date_naive(), &by, now(), danger)
                .with_notes("独自在家，邻居照看");
            f.add_record(RecordKind::Danger, &record, &by, now())
        })
        .expect("record");
    phone.sync();
    child
}

/// Reads events until one satisfies `want`; every event read is returned too.
fn read_until(
    stream: &mut AlertStream,
    want: impl Fn(&AlertEvent) -> bool,
) -> (AlertEvent, Vec<AlertEvent>) {
    let mut seen = Vec::new();
    loop {
        let event = stream
            .next_event()
            .expect("read the stream")
            .expect("the stream stays open");
        if want(&event) {
            return (event, seen);
        }
        seen.push(event);
    }
}

fn is_raise_of(child: &ChildId) -> impl Fn(&AlertEvent) -> bool + '_ {
    move |e| e.alert["child_id"] == child.to_string().as_str() && e.alert["change"] == "raised"
}

fn post(client: &Client, path: &str, body: &Value) -> (u16, Value) {
    let reply = client
        .post_json(path, Some(&token(client)), body)
        .expect("an answer");
    (reply.status, reply.json())
}

fn get(client: &Client, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let reply = client
        .call_with("GET", path, Some(&token(client)), "", &[], headers)
        .expect("an answer");
    (reply.status, reply.json())
}

#[test]
fn a_danger_synced_from_a_phone_reaches_supervisor_and_county_by_stream_and_webhooks_and_no_one_else()
 {
    let receiver = Receiver::start();
    let server = server_with_webhooks(&receiver);
    let (sup_a, sup_b, county) = (
        server.login("sup_a"),
        server.login("sup_b"),
        server.login("county"),
    );
    let mut sup_stream = sup_a.alert_stream(None).expect("supervisor's stream");
    let mut county_stream = county.alert_stream(None).expect("county's stream");
    let mut other_stream = sup_b.alert_stream(None).expect("other township's stream");

    let mut phone = Phone::new(&server, "dir_a");
    let child = report_danger(&mut phone, "李小花", "220303100200");

    let (raised, _) = read_until(&mut sup_stream, is_raise_of(&child));
    let alert = &raised.alert;
    assert_eq!(alert["kind"], "danger");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["name"], "李小花");
    assert_eq!(alert["village"], "220303100200");
    assert_eq!(alert["danger_kind"], json!(["living_alone"]));
    assert!(
        alert["text"]
            .as_str()
            .unwrap_or_default()
            .contains("单独居住"),
        "{alert}"
    );
    assert!(
        !alert.to_string().contains("邻居照看"),
        "no findings: {alert}"
    );
    let (county_saw, _) = read_until(&mut county_stream, is_raise_of(&child));
    assert_eq!(county_saw.id, raised.id);
    let id = alert["id"].as_str().expect("id").to_owned();

    // The other township: nothing of it, in the list, one by one, or by acting on it.
    let (status, list) = get(&sup_b, "/api/v1/alerts", &[]);
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(&child.to_string()), "{list}");
    for (status, body) in [
        get(&sup_b, &format!("/api/v1/alerts/{id}"), &[]),
        post(
            &sup_b,
            &format!("/api/v1/alerts/{id}/ack"),
            &json!({"note": "x"}),
        ),
        post(
            &sup_b,
            &format!("/api/v1/alerts/{id}/close"),
            &json!({"outcome": "x"}),
        ),
    ] {
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("region_forbidden"))
        );
        assert!(!body.to_string().contains("李小花"), "{body}");
    }
    let (status, _) = get(
        &sup_a,
        &format!("/api/v1/alerts/{}", uuid::Uuid::new_v4()),
        &[],
    );
    assert_eq!(status, 404);
    // A director is not told of dangers.
    let dir_a = server.login("dir_a");
    let (status, body) = get(&dir_a, &format!("/api/v1/alerts/{id}"), &[]);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("region_forbidden"))
    );

    // Listed for the supervisor, in English on request.
    let (status, mine) = get(
        &sup_a,
        &format!("/api/v1/alerts?kind=danger&child_id={child}"),
        &[("Accept-Language", "en-GB,en;q=0.9")],
    );
    assert_eq!(status, 200);
    assert_eq!(mine["total"], 1);
    assert!(
        mine["alerts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("living alone"),
        "{mine}"
    );

    // Acknowledged by the supervisor, closed with its outcome by the county: both see it.
    let (status, acked) = post(
        &sup_a,
        &format!("/api/v1/alerts/{id}/ack"),
        &json!({"note": "已电话联系村委会"}),
    );
    assert_eq!(
        (status, acked["status"].as_str()),
        (200, Some("acknowledged"))
    );
    assert_eq!(acked["acknowledged_by"], "sup_a");
    let (status, body) = post(
        &county,
        &format!("/api/v1/alerts/{id}/close"),
        &json!({"outcome": ""}),
    );
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, closed) = post(
        &county,
        &format!("/api/v1/alerts/{id}/close"),
        &json!({"outcome": "已由祖母接回照护，村委会每周探望"}),
    );
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")));
    let (status, body) = post(
        &county,
        &format!("/api/v1/alerts/{id}/close"),
        &json!({"outcome": "again"}),
    );
    assert_eq!((status, body["code"].as_str()), (409, Some("alert_closed")));
    let (closing, between) = read_until(&mut sup_stream, |e| {
        e.alert["id"] == id.as_str() && e.alert["change"] == "closed"
    });
    assert!(
        between
            .iter()
            .any(|e| e.alert["id"] == id.as_str() && e.alert["change"] == "acknowledged"),
        "{between:?}"
    );
    assert_eq!(closing.alert["outcome"], "已由祖母接回照护，村委会每周探望");

    // Resuming after the raise gives the acknowledgement and the close again: nothing lost.
    let mut resumed = sup_a.alert_stream(Some(raised.id)).expect("resume");
    let (again, skipped) = read_until(&mut resumed, |e| {
        e.alert["id"] == id.as_str() && e.alert["change"] == "closed"
    });
    assert_eq!(again.id, closing.id);
    assert!(skipped.iter().all(|e| e.id > raised.id), "{skipped:?}");

    // The other township's stream: its own next alert arrives, and nothing before it was ours.
    let mut other_phone = Phone::new(&server, "dir_b");
    let theirs = report_danger(&mut other_phone, "王小明", "220303102200");
    let (_, before) = read_until(&mut other_stream, is_raise_of(&theirs));
    assert!(
        before
            .iter()
            .all(|e| e.alert["child_id"] != child.to_string().as_str()),
        "{before:?}"
    );

    // Webhooks: the county's system gets ids, signed; the robots get the place and a count.
    let generic = receiver.wait("/generic", |got| {
        got.iter().any(|r| r.body.contains(&child.to_string()))
    });
    let ours = generic
        .iter()
        .find(|r| r.body.contains(&child.to_string()))
        .expect("delivered");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"s3cret").expect("key");
    mac.update(ours.body.as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        ours.header("X-Homevisit-Signature"),
        Some(format!("sha256={expected}").as_str())
    );
    let body: Value = serde_json::from_str(&ours.body).expect("json");
    assert_eq!(
        body["delivery_id"],
        ours.header("X-Homevisit-Delivery").unwrap_or_default()
    );
    assert_eq!(body["events"][0]["alert"]["kind"], "danger");
    assert!(!ours.body.contains("李小花"), "{}", ours.body);

    let wecom = receiver.wait("/wecom", |got| !got.is_empty());
    assert!(wecom.iter().all(|r| r.path == "/wecom?key=robot-key"));
    let text: String = wecom.iter().map(|r| r.body.clone()).collect();
    assert!(text.contains("山门镇 山门村"), "{text}");
    assert!(text.contains("homevisit.example.gov.cn"), "{text}");
    assert!(
        !text.contains("叶赫"),
        "the township robot hears only of its township: {text}"
    );
    let dingtalk = receiver.wait("/dingtalk", |got| {
        got.iter()
            .map(|r| r.body.clone())
            .collect::<String>()
            .contains("叶赫满族镇 叶赫村")
    });
    for r in dingtalk.iter().chain(&wecom) {
        for secret in [
            "李小花",
            "王小明",
            "邻居照看",
            &child.to_string(),
            &theirs.to_string(),
        ] {
            assert!(
                !r.body.contains(secret),
                "a robot message names a child: {}",
                r.body
            );
        }
    }
    let signed = &dingtalk[0].path;
    assert!(
        signed.starts_with("/dingtalk?access_token=robot-token&timestamp=")
            && signed.contains("&sign="),
        "{signed}"
    );
    let (ts, sign) = {
        let q: std::collections::BTreeMap<&str, &str> = signed
            .split('?')
            .nth(1)
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        (q["timestamp"].to_owned(), q["sign"].to_owned())
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"SECdingtalk").expect("key");
    mac.update(format!("{ts}\nSECdingtalk").as_bytes());
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let want: String = want
        .bytes()
        .map(|b| match b {
            b'+' => "%2B".to_owned(),
            b'/' => "%2F".to_owned(),
            b'=' => "%3D".to_owned(),
            _ => (b as char).to_string(),
        })
        .collect();
    assert_eq!(sign, want);
}

#[test]
fn bad_alert_queries_and_headers_are_refused_with_stable_codes() {
    let server = Server::sqlite();
    let sup = server.login("sup_a");
    for (query, code) in [
        ("kind=fire", "invalid_query"),
        ("status=maybe", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("limit=1001", "invalid_query"),
        ("cursor=nonsense", "invalid_query"),
        ("child_id=not-a-uuid", "invalid_query"),
        ("colour=red", "invalid_query"),
    ] {
        let (status, body) = get(&sup, &format!("/api/v1/alerts?{query}"), &[]);
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let (status, body) = get(&sup, "/api/v1/alerts/stream", &[("Last-Event-ID", "abc")]);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_header"))
    );
    let (status, body) = get(&sup, "/api/v1/alerts/not-a-uuid", &[]);
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_path")));
    let admin = server.login("admin");
    let (status, body) = get(&admin, "/api/v1/alerts", &[]);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("role_forbidden"))
    );
    let id = uuid::Uuid::new_v4();
    let long = "长".repeat(2001);
    let (status, body) = post(
        &sup,
        &format!("/api/v1/alerts/{id}/ack"),
        &json!({"note": long}),
    );
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) = post(
        &sup,
        &format!("/api/v1/alerts/{id}/ack"),
        &json!({"nope": 1}),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_webhook_receiver_that_was_down_gets_every_delivery_once_when_it_returns() {
    let receiver = Receiver::start();
    receiver.up.store(false, Ordering::SeqCst);
    let server = server_with_webhooks(&receiver);
    let mut phone = Phone::new(&server, "dir_a");
    let mut children = Vec::new();
    for i in 0..3 {
        let started = Instant::now();
        children.push(report_danger(
            &mut phone,
            &format!("孩子{i}"),
            "220303100200",
        ));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a dead receiver does not hold up a sync"
        );
    }
    // Down for a while: attempts fail and are retried.
    receiver.wait_for(Duration::from_secs(60), |all| all.len() >= 6);
    receiver.up.store(true, Ordering::SeqCst);
    receiver.wait("/generic", |got| {
        children
            .iter()
            .all(|c| got.iter().any(|r| r.body.contains(&c.to_string())))
    });
    // Once the outbox holds nothing more to send, no duplicate can follow: count then.
    let database = homevisit_server::store::DatabaseUrl::Sqlite(
        server
            .dir
            .path()
            .join("homevisit.sqlite")
            .display()
            .to_string(),
    );
    let pool = homevisit_server::store::open(&database, 1).expect("the server's database");
    receiver.wait_for(Duration::from_millis(100), |_| {
        let mut conn = pool.get().expect("conn");
        homevisit_server::store::alerts::backlog(&mut conn)
            .expect("backlog")
            .is_empty()
    });
    let generic = receiver.accepted("/generic");
    let ids: Vec<&str> = generic
        .iter()
        .filter_map(|r| r.header("X-Homevisit-Delivery"))
        .collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "a delivery accepted twice: {ids:?}"
    );
    assert_eq!(ids.len(), children.len(), "{ids:?}");
    // Failed attempts carried the same delivery ids as the accepted ones.
    for r in receiver
        .all()
        .iter()
        .filter(|r| !r.accepted && r.path == "/generic")
    {
        let id = r.header("X-Homevisit-Delivery").unwrap_or_default();
        assert!(unique.contains(id), "a retry under a new id: {id}");
    }
    let robot = receiver.wait("/wecom", |got| !got.is_empty());
    let counted: usize = robot
        .iter()
        .map(|r| {
            r.body
                .split("山门村：")
                .skip(1)
                .filter_map(|rest| rest.split('起').next()?.parse::<usize>().ok())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(
        counted, 3,
        "every danger counted once in the robot's digests: {robot:?}"
    );
}

#[test]
fn two_instances_on_one_postgres_racing_the_job_raise_every_alert_once() {
    let server = Server::postgres();
    let mut phone = Phone::new(&server, "dir_a");
    let effective = chrono::NaiveDate::from_ymd_opt(2026, 1, 10).expect("date");
    for i in 0..12 {
        let child = phone.register(&format!("孩子{i}"), "220303100200");
        phone.assert_attributes(
            &child,
            &[
                (AttrKind::Category, "left_behind"),
                (AttrKind::Guardianship, "average"),
            ],
            effective,
        );
    }
    phone.sync();
    let url = server.database_url().expect("postgres").to_owned();
    let mut first = server;
    first.kill();
    let mut second = first.another_instance();
    // Months later, both start at once: each runs the job before it listens.
    for s in [&mut first, &mut second] {
        s.env.push(("HOMEVISIT__DEVELOPMENT".into(), "true".into()));
        s.extra = vec!["--today".into(), "2027-06-01".into()];
    }
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(move || first.start());
        let b = scope.spawn(move || second.start());
        (a.join().expect("first"), b.join().expect("second"))
    });
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        alerts: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        raised: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        most: i64,
    }
    let mut conn = diesel::PgConnection::establish(&url).expect("connect");
    let counts: Counts = diesel::sql_query(
        "SELECT (SELECT COUNT(*) FROM alerts) AS alerts,
                (SELECT COUNT(*) FROM alert_events WHERE action = 'raised') AS raised,
                (SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM alerts
                    GROUP BY child_id, kind, subject) AS k) AS most",
    )
    .get_result(&mut conn)
    .expect("counts");
    // Twelve children registered and never visited: each overdue, and escalated.
    assert_eq!(
        counts.alerts, 24,
        "overdue and overdue_escalated for each child"
    );
    assert_eq!(counts.raised, counts.alerts, "each raised once");
    assert_eq!(counts.most, 1);
    drop((first, second));
}

/// One hand-made sync request from `client`, decoded.
fn sync_items(
    client: &Client,
    request: &Request,
) -> (u16, Vec<homevisit_sync_core::sync::wire::Item>) {
    let reply = crate::harness::post_frame(client, &request.encode());
    if reply.status != 200 {
        return (reply.status, Vec::new());
    }
    let response = Response::decode(&reply.body).expect("a response");
    (reply.status, response.items)
}

#[test]
fn a_supervisors_phone_gets_alerts_by_sync_and_its_offline_acknowledgement_lands_once() {
    use homevisit_sync_core::sync::alerts::{
        ACK, ACK_RESULT, AFTER, ALERT, Ack, AckResult, UPTO, json_item, json_of, number_item,
        number_of,
    };
    let server = Server::sqlite();
    let mut supervisor = Phone::new(&server, "sup_a");
    supervisor.sync();
    assert!(supervisor.device.alerts().is_empty());
    let mut director = Phone::new(&server, "dir_a");
    let child = report_danger(&mut director, "赵小军", "220303100200");

    // The next sync brings it; acknowledged offline, it shows so at once and waits.
    supervisor.sync();
    let alert = supervisor
        .device
        .alerts()
        .into_iter()
        .find(|a| a.child_id == child.to_string() && a.kind == "danger")
        .expect("the danger reached the supervisor's phone");
    assert_eq!(alert.status, "open");
    assert!(alert.text.contains("单独居住"), "{alert:?}");
    assert!(
        supervisor
            .device
            .acknowledge_alert(&alert.id, "已到现场", now())
            .expect("ack")
    );
    assert_eq!(supervisor.device.pending_acks(), 1);
    supervisor.sync();
    assert_eq!(supervisor.device.pending_acks(), 0);
    let web = server.login("sup_a");
    let (status, seen) = get(&web, &format!("/api/v1/alerts/{}", alert.id), &[]);
    assert_eq!(
        (status, seen["status"].as_str()),
        (200, Some("acknowledged"))
    );
    assert_eq!(seen["acknowledged_by"], "sup_a");

    // The same acknowledgement again, as a phone that never heard back would send it.
    let ack = Ack {
        alert_id: alert.id.clone(),
        note: "已到现场".into(),
        at_ms: 0,
    };
    let replay = Request {
        items: vec![json_item(ACK, &ack), number_item(AFTER, 0)],
        ..Request::default()
    };
    let (status, items) = sync_items(&supervisor.client, &replay);
    assert_eq!(status, 200);
    let result: AckResult = items
        .iter()
        .filter(|i| i.kind == ACK_RESULT)
        .find_map(json_of)
        .expect("answered");
    assert!(result.ok, "{result:?}");
    let (_, seen) = get(&web, &format!("/api/v1/alerts/{}", alert.id), &[]);
    let acks = seen["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "acknowledged")
        .count();
    assert_eq!(acks, 1, "{seen}");

    // Another township's supervisor, with hand-made frames: no alert of ours, no acknowledging.
    let other = server.login("sup_b");
    let (status, items) = sync_items(&other, &replay);
    assert_eq!(status, 200);
    let result: AckResult = items
        .iter()
        .filter(|i| i.kind == ACK_RESULT)
        .find_map(json_of)
        .expect("answered");
    assert_eq!(
        (result.ok, result.code.as_deref()),
        (false, Some("region_forbidden"))
    );
    for after in [0, 1] {
        let ask = Request {
            items: vec![number_item(AFTER, after)],
            ..Request::default()
        };
        let (_, items) = sync_items(&other, &ask);
        assert!(
            items
                .iter()
                .any(|i| i.kind == UPTO && number_of(i).is_some())
        );
        for item in items.iter().filter(|i| i.kind == ALERT) {
            let text = String::from_utf8_lossy(&item.payload);
            assert!(!text.contains(&child.to_string()), "{text}");
        }
    }
    let junk = Request {
        items: vec![homevisit_sync_core::sync::wire::Item {
            kind: ACK,
            payload: b"{not json".to_vec(),
        }],
        ..Request::default()
    };
    let (status, items) = sync_items(&other, &junk);
    assert_eq!(status, 200);
    assert!(items.iter().any(|i| i.kind == ACK_RESULT
        && json_of::<AckResult>(i).and_then(|r| r.code).as_deref() == Some("invalid_item")));

    // A version 2 phone is told nothing of alerts.
    let old = Request {
        version: 2,
        items: vec![number_item(AFTER, 0)],
        ..Request::default()
    };
    let (status, items) = sync_items(&supervisor.client, &old);
    assert_eq!((status, items.len()), (200, 0));
}
