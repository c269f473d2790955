//! `homevisit-phone`, the phone the SDK and `homevisit field` share, against a real server: the
//! wipe order, retries when the connection is cut, a photo resumed where it stopped, and the
//! session refreshed after a 401.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homevisit_phone::transport::{HttpRequest, HttpResponse, Https, Transport, TransportError};
use homevisit_phone::{Assessment, NewChild, Phone, PhoneError, Retry, china_today};
use homevisit_sync_core::file::Findings;

use crate::harness::{PASSWORD, Server};

/// The built-in HTTPS, with faults the test injects: requests that get no answer, and answers
/// replaced by a 401.
struct Faulty {
    inner: Https,
    /// Of the requests whose URL contains `cut_where`, this many pass first...
    pass: AtomicUsize,
    /// ...then this many get no answer.
    cut: AtomicUsize,
    cut_where: Mutex<String>,
    /// The next this many sync requests are answered 401 without reaching the server.
    unauthorised: AtomicUsize,
    /// Every request: method, URL, Content-Range.
    seen: Mutex<Vec<(String, String, String)>>,
}

impl Faulty {
    fn new(server: &Server) -> Arc<Faulty> {
        let pem = std::fs::read(server.ca()).expect("ca");
        Arc::new(Faulty {
            inner: Https::new(Some(&pem)).expect("https"),
            pass: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            cut_where: Mutex::new(String::new()),
            unauthorised: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// Of the next requests to URLs containing `url_part`, lets `pass` through, then cuts `n`.
    fn cut(&self, url_part: &str, pass: usize, n: usize) {
        *self.cut_where.lock().expect("lock") = url_part.to_owned();
        self.pass.store(pass, Ordering::SeqCst);
        self.cut.store(n, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().expect("lock").clone()
    }
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl Transport for Faulty {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let range = request
            .headers
            .iter()
            .find(|(n, _)| n == "Content-Range")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.seen
            .lock()
            .expect("lock")
            .push((request.method.clone(), request.url.clone(), range));
        let here = request
            .url
            .contains(self.cut_where.lock().expect("lock").as_str());
        if here && !take_one(&self.pass) && take_one(&self.cut) {
            return Err(TransportError("connection reset by peer".into()));
        }
        if request.url.ends_with("/api/v1/sync") && take_one(&self.unauthorised) {
            return Ok(HttpResponse {
                status: 401,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"code":"invalid_token","message":"expired"}"#.to_vec(),
            });
        }
        self.inner.send(request)
    }
}

fn url(server: &Server) -> String {
    format!("https://localhost:{}", server.port)
}

fn logged_in(server: &Server, user: &str, dir: &std::path::Path) -> Phone {
    let mut phone = Phone::open(dir, [9; 32]).expect("open");
    let ca = std::fs::read_to_string(server.ca()).expect("ca");
    phone
        .login(&url(server), Some(&ca), user, PASSWORD, "test phone")
        .expect("login");
    phone.set_retry(Retry {
        attempts: 3,
        first_delay: Duration::from_millis(10),
    });
    phone
}

fn new_child(name: &str) -> NewChild {
    NewChild {
        name: name.into(),
        sex: "female".into(),
        birth_date: "2016-04-01".parse().expect("date"),
        id_number: None,
        village_code: "220303100200".into(),
        address: "一组".into(),
        hukou_place: String::new(),
        categories: vec!["left_behind".into()],
        guardianship: Some("good".into()),
        risk_flags: Vec::new(),
    }
}

/// A photo whose processed JPEG is several pieces long: noise does not compress.
fn noisy_photo() -> Vec<u8> {
    let mut state: u32 = 7;
    let img = image::RgbImage::from_fn(1600, 1200, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

#[test]
fn a_revoked_phone_wipes_itself_at_its_next_sync_and_every_later_call_says_wiped() {
    let server = Server::sqlite();
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = logged_in(&server, "dir_a", dir.path());
    phone.add_child(&new_child("撤销")).expect("child");
    phone.sync().expect("sync");
    let device_id = {
        let admin = server.login("admin");
        let devices = admin.get("/api/v1/devices").expect("devices");
        let id = devices["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .find(|d| d["username"] == "dir_a")
            .and_then(|d| d["id"].as_str())
            .unwrap_or_else(|| panic!("dir_a's device in {devices}"))
            .to_owned();
        let reply = admin
            .call(
                "POST",
                &format!("/api/v1/devices/{id}/revoke"),
                Some(admin.access().expect("token")),
                "application/json",
                b"",
            )
            .expect("revoke");
        assert_eq!(reply.status, 204);
        id
    };
    let report = phone.sync().expect("the revoked sync answers");
    assert!(report.wiped, "{report:?} for device {device_id}");
    assert!(
        !dir.path().join("store").exists(),
        "the store's file is deleted"
    );
    assert!(matches!(phone.children(), Err(PhoneError::Wiped)));
    assert!(matches!(phone.sync(), Err(PhoneError::Wiped)));
}

#[test]
fn a_cut_connection_is_retried_and_a_photo_resumes_where_it_stopped_losing_nothing() {
    let server = Server::sqlite();
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = logged_in(&server, "dir_a", dir.path());
    let faulty = Faulty::new(&server);
    phone.set_transport(Some(faulty.clone()));
    let child = phone.add_child(&new_child("断线")).expect("child");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
    phone
        .record_home_visit(&child, today, Findings::default(), "", &[noisy_photo()])
        .expect("visit");

    // No answer at all: three tries, then the error, and nothing is lost.
    faulty.cut("/api/v1/", 0, 3);
    let before = faulty.seen().len();
    let e = phone.sync().expect_err("no answer");
    assert!(matches!(e, PhoneError::Network(_)), "{e}");
    assert_eq!(faulty.seen().len(), before + 3, "three tries");
    let status = phone.status().expect("status");
    assert_eq!(
        (status.files, status.photos_waiting),
        (1, 1),
        "nothing lost"
    );

    // The status and the first piece go through, the second piece is cut: the retry asks where
    // the upload stands and goes on from there.
    faulty.cut("/api/v1/blobs/", 2, 1);
    let before = faulty.seen().len();
    let report = phone.sync().expect("the sync goes through after a retry");
    assert_eq!(report.photos_uploaded, 1, "{report:?}");
    assert_eq!(phone.status().expect("status").photos_waiting, 0);
    let puts: Vec<String> = faulty
        .seen()
        .iter()
        .skip(before)
        .filter(|(m, _, _)| m == "PUT")
        .map(|(_, _, r)| r.clone())
        .collect();
    assert!(puts.len() >= 3, "the photo went in pieces: {puts:?}");
    assert_eq!(
        puts.iter().filter(|r| r.starts_with("bytes 0-")).count(),
        1,
        "a cut piece resumes, it does not start over: {puts:?}"
    );
    let supervisor = server.login("sup_a");
    let file = supervisor
        .get(&format!("/api/v1/children/{child}"))
        .expect("the file arrived");
    assert!(file.to_string().contains("断线"), "{file}");
}

#[test]
fn a_sync_answered_401_refreshes_the_session_once_and_goes_on() {
    let server = Server::sqlite();
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = logged_in(&server, "dir_a", dir.path());
    let faulty = Faulty::new(&server);
    phone.set_transport(Some(faulty.clone()));
    phone.add_child(&new_child("刷新")).expect("child");
    faulty.unauthorised.store(1, Ordering::SeqCst);
    let report = phone.sync().expect("sync after a refresh");
    assert_eq!(report.files_sent, 1, "{report:?}");
    let urls: Vec<String> = faulty.seen().into_iter().map(|(_, u, _)| u).collect();
    let refreshes = urls.iter().filter(|u| u.ends_with("/auth/refresh")).count();
    assert_eq!(refreshes, 1, "{urls:?}");
    // The refreshed session was kept: a new phone object on the same store syncs without
    // logging in.
    drop(phone);
    let mut again = Phone::open(dir.path(), [9; 32]).expect("reopen");
    again.sync().expect("the stored session still works");
    // Twice 401 in a row: the session is not refreshed forever.
    let faulty = Faulty::new(&server);
    again.set_transport(Some(faulty.clone()));
    faulty.unauthorised.store(2, Ordering::SeqCst);
    let e = again.sync().expect_err("refused twice");
    assert!(matches!(e, PhoneError::Server { status: 401, .. }), "{e}");
}

#[test]
fn another_user_cannot_log_in_on_a_phone_holding_someone_elses_files() {
    let server = Server::sqlite();
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = logged_in(&server, "dir_a", dir.path());
    phone.add_child(&new_child("别人的")).expect("child");
    let ca = std::fs::read_to_string(server.ca()).expect("ca");
    let e = phone
        .login(&url(&server), Some(&ca), "dir_b", PASSWORD, "test phone")
        .expect_err("another user");
    assert!(e.to_string().contains("another user's files"), "{e}");
    assert_eq!(
        phone.status().expect("status").username.as_deref(),
        Some("dir_a")
    );
}

#[test]
fn a_child_added_unassessed_is_due_monthly_until_the_director_assesses_the_guardianship() {
    let server = Server::sqlite();
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = logged_in(&server, "dir_a", dir.path());
    let mut child = new_child("未评估");
    child.guardianship = None;
    let id = phone.add_child(&child).expect("child");
    let today = china_today();
    let visits_due = |phone: &Phone, days: i64| {
        phone
            .due(today + chrono::Duration::days(days))
            .expect("due")
            .into_iter()
            .filter(|e| e.id == id && e.kind == "home_visit")
            .map(|e| e.every.count())
            .collect::<Vec<_>>()
    };
    // Rules version 2: not assessed yet, visited every month.
    assert_eq!(visits_due(&phone, 35), [1]);

    let assessment = |attr: &str, value: &str, effective| Assessment {
        attr: attr.into(),
        value: value.into(),
        present: true,
        effective,
    };
    let tomorrow = today + chrono::Duration::days(1);
    for (bad, named) in [
        (
            assessment("guardianship", "excellent", today),
            "guardianship",
        ),
        (assessment("colour", "red", today), "attribute"),
        (assessment("category", "orphan_like", today), "category"),
        (assessment("risk_flag", "", today), "risk flag"),
        (assessment("guardianship", "good", tomorrow), "effective"),
    ] {
        let e = phone.assess(&id, &bad).expect_err("refused");
        assert!(
            matches!(e, PhoneError::Invalid { what, .. } if what == named),
            "{bad:?}: {e}"
        );
    }
    let held = phone.child(&id).expect("file");
    assert_eq!(held.attributes.len(), 1, "only the category: {held:?}");

    phone
        .assess(&id, &assessment("guardianship", "good", today))
        .expect("assessed");
    assert!(visits_due(&phone, 35).is_empty(), "quarterly now");
    assert_eq!(visits_due(&phone, 95), [3]);

    // A bad key at registration stores no child at all.
    let before = phone.children().expect("children").len();
    let mut bad = new_child("坏键");
    bad.risk_flags = vec!["not_a_flag".into()];
    let e = phone.add_child(&bad).expect_err("refused");
    assert!(
        matches!(
            e,
            PhoneError::Invalid {
                what: "risk flag",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(phone.children().expect("children").len(), before);

    // The assessment reaches the supervisor's view of the file.
    phone.sync().expect("sync");
    let detail = server
        .login("sup_a")
        .get(&format!("/api/v1/children/{id}"))
        .expect("detail");
    let levels: Vec<&str> = detail["attributes"]
        .as_object()
        .expect("attributes")
        .values()
        .filter(|a| a["attr"] == "guardianship")
        .filter_map(|a| a["value"].as_str())
        .collect();
    assert_eq!(levels, ["good"], "{detail}");
}
