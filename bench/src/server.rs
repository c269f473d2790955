//! The server over real HTTPS: daily syncs per second and their latency, on SQLite and on
//! PostgreSQL, and the daily and idle syncs' bytes with their HTTP headers.
//!
//! The server runs in this process on its own actix system (release build, two workers on this
//! 2-core machine). The simulated phones' daily syncs are prepared before the measured window
//! (each round's new home visits made and encoded as Automerge changes), so during it a client
//! thread only frames a request with its cursor, sends it over its keep-alive HTTPS connection
//! and reads the next cursor: the two cores go to the server's work.

use anyhow::{Context, Result, anyhow, bail};
use chrono::NaiveDate;
use homevisit_phone::client::{Client, ClientError};
use homevisit_server::demo::{self, Size};
use homevisit_server::settings::Settings;
use homevisit_server::store;
use homevisit_sync_core::demo::Generator;
use homevisit_sync_core::file::ChildId;
use homevisit_sync_core::sync::alerts;
use homevisit_sync_core::sync::device::{Outcome, Replica};
use homevisit_sync_core::sync::wire::{Request, Response, Upload};
use homevisit_sync_core::sync::{Cursor, fingerprint};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::{Report, SyncFigure};

/// The county: 60 townships of 6 villages of 10 children, so a supervisor's phone holds the 60
/// files of the daily-sync bar, and 360 directors' phones share the syncs of the measured
/// window, each file getting a few new visits as in a fortnight of real work rather than
/// hundreds.
const COUNTY: Size = Size {
    townships: 60,
    villages: 6,
    children: 10,
};
const CLIENT_THREADS: usize = 24;
/// Daily syncs prepared per phone: enough for 360 phones at 800/s through warm-up and window.
const ROUNDS: usize = 40;
const WARM_UP: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(15);
/// Files changed by visits in each simulated daily sync (DESIGN.md's workload).
const CHANGED_PER_SYNC: usize = 8;

struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    base: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server on a free port of loopback, with a development certificate.
fn settings(database_url: &str, dir: &std::path::Path) -> Result<Settings> {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_owned(),
        database_url: database_url.to_owned(),
        database_pool_size: 8,
        ..Settings::default()
    };
    settings.tls.dev = true;
    Ok(settings)
}

fn start(database_url: &str, county: Size) -> Result<(Running, demo::Demo)> {
    let dir = tempfile::tempdir()?;
    let settings = settings(database_url, dir.path())?;
    let url = settings.database()?;
    let built = {
        let pool = store::open(&url, 1)?;
        let mut conn = pool.get()?;
        demo::ensure_sized(&mut conn, dir.path(), today(), county)?
    };
    Ok((instance(settings, dir)?, built))
}

/// Another server on the same database, as a deployment runs two behind a balancer: its own
/// actix system with its own workers and connection pool, in this process.
fn another_instance(database_url: &str) -> Result<Running> {
    let dir = tempfile::tempdir()?;
    let settings = settings(database_url, dir.path())?;
    instance(settings, dir)
}

fn instance(settings: Settings, dir: tempfile::TempDir) -> Result<Running> {
    // Makes the development certificate now, for the client to trust.
    homevisit_server::tls::server_config(&settings)?;
    let listener = std::net::TcpListener::bind(settings.listen)?;
    let port = listener.local_addr()?.port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || -> Result<()> {
        actix_web::rt::System::new().block_on(async move {
            let shutdown = async move {
                while !flag.load(Ordering::SeqCst) {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
            };
            homevisit_server::app::launch_with_listener(settings, listener, shutdown).await
        })
    });
    let running = Running {
        stop,
        thread: Some(thread),
        base: format!("https://localhost:{port}"),
        ca: dir.path().join("dev-tls").join("cert.pem"),
        _dir: dir,
    };
    // The listener is bound and the certificate made before the server thread starts, so this
    // first request simply waits in the accept queue until the server answers it.
    let ready =
        Client::new(&running.base, Some(&running.ca))?.call("GET", "/healthz", None, "", &[])?;
    if ready.status != 200 {
        bail!("the server answered /healthz with {}", ready.status);
    }
    Ok(running)
}

fn today() -> NaiveDate {
    homevisit_server::service::clock::Clock::default().today()
}

/// One sync round trip over HTTPS; anything but 200 is an error.
fn post_sync(client: &Client, token: &str, frame: &[u8]) -> Result<homevisit_phone::client::Reply> {
    let reply = client.call(
        "POST",
        "/api/v1/sync",
        Some(token),
        "application/vnd.homevisit.sync",
        frame,
    )?;
    if reply.status != 200 {
        bail!("sync answered {}: {:?}", reply.status, reply.json());
    }
    Ok(reply)
}

/// A simulated phone: a replica and its logged-in connection.
struct Phone {
    replica: Replica,
    client: Client,
    token: String,
    user: String,
    password: String,
    device: String,
}

/// What one sync cost.
#[derive(Default, Clone, Copy)]
struct Cost {
    up: usize,
    down: usize,
    headers: usize,
    trips: usize,
}

impl Phone {
    fn new(running: &Running, user: &str, password: &str) -> Result<Phone> {
        let mut client = Client::new(&running.base, Some(&running.ca))?;
        let device = uuid::Uuid::new_v4().to_string();
        let token = client
            .login(user, password, &device, "bench")?
            .access_token
            .clone();
        Ok(Phone {
            replica: Replica::new(rand::random()),
            client,
            token,
            user: user.to_owned(),
            password: password.to_owned(),
            device,
        })
    }

    /// Syncs to completion; `latencies` gets each HTTP round trip's time.
    fn sync(&mut self, latencies: &mut Vec<Duration>) -> Result<Cost> {
        let mut cost = Cost::default();
        loop {
            let frame = self.replica.request();
            let started = Instant::now();
            let reply = post_sync(&self.client, &self.token, &frame)?;
            latencies.push(started.elapsed());
            cost.up += frame.len();
            cost.down += reply.body.len();
            cost.headers += reply.request_header_bytes + reply.response_header_bytes;
            cost.trips += 1;
            if self.replica.receive(&reply.body, 0)? != Outcome::Again {
                return Ok(cost);
            }
            if cost.trips > 20 {
                bail!("no convergence");
            }
        }
    }

    /// Adds a home visit to `n` files; returns the new changes' size as Automerge encodes them.
    fn visit(&mut self, g: &mut Generator, n: usize) -> Result<usize> {
        let mut bytes = 0;
        let day = today();
        for id in self.replica.file_ids().into_iter().take(n) {
            let held = self.replica.docs.get_mut(&id).context("held file")?;
            let acked = held.acked.clone();
            g.add_visit(&mut held.file, day, &self.user)?;
            bytes += held.file.doc_mut().save_after(&acked).len();
        }
        Ok(bytes)
    }
}

/// A director's phone with its daily syncs made in advance: per round, eight new home visits
/// as the Automerge changes a phone uploads, on top of what the previous rounds uploaded.
struct Prepared {
    client: Client,
    token: String,
    /// Who, with which device, to log in again elsewhere.
    login: (String, String, String),
    cursor: Option<Cursor>,
    /// The last alert event received, sent back as `after` as a phone does.
    alerts_upto: u64,
    rounds: std::vec::IntoIter<Vec<Upload>>,
}

impl Prepared {
    fn new(mut phone: Phone, g: &mut Generator, rounds: usize) -> Result<Prepared> {
        let ids = phone.replica.file_ids();
        let mut acked: std::collections::BTreeMap<ChildId, Vec<automerge::ChangeHash>> = ids
            .iter()
            .map(|id| {
                let held = &phone.replica.docs[id];
                (*id, held.acked.clone())
            })
            .collect();
        let day = today();
        let mut prepared = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut uploads = Vec::with_capacity(CHANGED_PER_SYNC);
            for k in 0..CHANGED_PER_SYNC.min(ids.len()) {
                let id = ids[(round * CHANGED_PER_SYNC + k) % ids.len()];
                let held = phone.replica.docs.get_mut(&id).context("held file")?;
                g.add_visit(&mut held.file, day, &phone.user)?;
                let base = acked.get(&id).cloned().unwrap_or_default();
                uploads.push(Upload {
                    doc: id,
                    base: fingerprint(&base),
                    changes: held.file.doc_mut().save_after(&base),
                });
                acked.insert(id, held.file.heads());
            }
            prepared.push(uploads);
        }
        Ok(Prepared {
            cursor: phone.replica.cursor,
            alerts_upto: 0,
            rounds: prepared.into_iter(),
            client: phone.client,
            token: phone.token,
            login: (phone.user, phone.password, phone.device),
        })
    }

    /// Talks to another instance from now on, as the same device: the sync memory is in the
    /// database both share, so the prepared syncs go on where they stood.
    fn move_to(&mut self, running: &Running) -> Result<()> {
        let mut client = Client::new(&running.base, Some(&running.ca))?;
        let (user, password, device) = &self.login;
        self.token = client
            .login(user, password, device, "bench")?
            .access_token
            .clone();
        self.client = client;
        Ok(())
    }

    /// A new connection for the same login: the server closes a connection idle past its
    /// keep-alive, which a phone syncing one of many under valgrind can be.
    fn reconnect(&mut self, running: &Running) -> Result<()> {
        self.client = Client::new(&running.base, Some(&running.ca))?;
        Ok(())
    }

    /// Sends the next prepared sync; `false` when there is none left. A sync that fails is
    /// still the next one.
    fn sync(&mut self) -> Result<bool> {
        let Some(uploads) = self.rounds.as_slice().first().cloned() else {
            return Ok(false);
        };
        let frame = Request {
            cursor: self.cursor,
            uploads,
            items: vec![alerts::number_item(alerts::AFTER, self.alerts_upto)],
            ..Request::default()
        }
        .encode();
        let reply = post_sync(&self.client, &self.token, &frame)?;
        let response = Response::decode(&reply.body)?;
        if response.more || response.resync || !response.syncs.is_empty() {
            bail!("a daily sync needed more than one round trip");
        }
        self.rounds.next();
        self.cursor = response.cursor;
        for item in &response.items {
            if item.kind == alerts::UPTO {
                self.alerts_upto = alerts::number_of(item).unwrap_or(self.alerts_upto);
            }
        }
        Ok(true)
    }
}

struct Throughput {
    danger_to_stream: (Duration, Duration, usize),
    /// A phone ran out of prepared syncs before the window ended: the rate is a lower bound.
    exhausted: bool,
    syncs: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    daily: Cost,
    daily_changes: usize,
    idle: Cost,
    http2: crate::h2::H2Headers,
    /// The same window with the phones split between two instances on one database.
    two: Option<Window>,
}

/// What a measured window saw.
struct Window {
    syncs: usize,
    p50: Duration,
    p99: Duration,
    exhausted: bool,
}

fn measure(database_url: &str) -> Result<Throughput> {
    let (running, built) = start(database_url, COUNTY)?;
    let password = |u: &str| -> Result<String> {
        built
            .credentials
            .iter()
            .find(|c| c.username == u)
            .map(|c| c.password.clone())
            .ok_or_else(|| anyhow!("no demo login {u}"))
    };

    // The daily and idle bars over HTTP: a supervisor's phone with 60 files.
    let mut g = Generator::new(7);
    let mut supervisor = Phone::new(&running, "supervisor1", &password("supervisor1")?)?;
    let mut scratch = Vec::new();
    supervisor.sync(&mut scratch)?;
    supervisor.sync(&mut scratch)?;
    if supervisor.replica.file_ids().len() != COUNTY.villages * COUNTY.children {
        bail!(
            "the supervisor holds {} files",
            supervisor.replica.file_ids().len()
        );
    }
    let daily_changes = supervisor.visit(&mut g, CHANGED_PER_SYNC)?;
    let daily = supervisor.sync(&mut scratch)?;
    let idle = supervisor.sync(&mut scratch)?;
    let http2 = crate::h2::sync_headers(
        &running.base,
        &running.ca,
        &supervisor.token,
        &supervisor.replica.request(),
        10,
    )?;
    let danger_to_stream = danger_latency(&running, &password)?;

    // Throughput: every director's phone makes its prepared daily syncs as fast as it can.
    eprintln!("server: preparing {ROUNDS} daily syncs for each director's phone");
    let mut phones = Vec::new();
    for c in built.credentials.iter().filter(|c| c.role == "director") {
        let mut phone = Phone::new(&running, &c.username, &c.password)?;
        phone.sync(&mut scratch)?;
        phones.push(Prepared::new(phone, &mut g, ROUNDS)?);
    }
    eprintln!("server: measuring");
    let (mut all, exhausted, mut phones) = drive(phones)?;
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    // Two instances on one PostgreSQL: every other phone moves to a second server.
    let two = if database_url.is_empty() {
        None
    } else {
        eprintln!("server: a second instance on the same PostgreSQL");
        let second = another_instance(database_url)?;
        for phone in phones.iter_mut().skip(1).step_by(2) {
            phone.move_to(&second)?;
        }
        let (mut both, out, _) = drive(phones)?;
        both.sort();
        let q = |q: f64| both[((both.len() as f64 * q) as usize).min(both.len() - 1)];
        Some(Window {
            syncs: both.len(),
            p50: q(0.50),
            p99: q(0.99),
            exhausted: out,
        })
    };
    drop(running);
    Ok(Throughput {
        two,
        danger_to_stream,
        exhausted,
        syncs: all.len(),
        seconds: MEASURE.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        daily,
        daily_changes,
        idle,
        http2,
    })
}

/// The prepared phones sync as fast as they can for the warm-up and the window: each round
/// trip measured inside the window, whether a phone ran out, and the phones back.
fn drive(mut phones: Vec<Prepared>) -> Result<(Vec<Duration>, bool, Vec<Prepared>)> {
    let threads_wanted = std::env::var("HOMEVISIT_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(CLIENT_THREADS);
    let per_thread = phones.len().div_ceil(threads_wanted);
    let start = Instant::now();
    let measuring_from = start + WARM_UP;
    let until = measuring_from + MEASURE;
    let mut threads = Vec::new();
    while !phones.is_empty() {
        let mut mine: Vec<Prepared> = phones.drain(..per_thread.min(phones.len())).collect();
        threads.push(std::thread::spawn(
            move || -> Result<(Vec<Duration>, bool, Vec<Prepared>)> {
                let mut kept = Vec::new();
                let mut exhausted = false;
                'window: while Instant::now() < until {
                    for phone in &mut mine {
                        let began = Instant::now();
                        if !phone.sync()? {
                            exhausted = true;
                            break 'window;
                        }
                        let ended = Instant::now();
                        if began >= measuring_from && ended <= until {
                            kept.push(ended - began);
                        }
                    }
                }
                Ok((kept, exhausted, mine))
            },
        ));
    }
    let mut all = Vec::new();
    let mut exhausted = false;
    let mut back = Vec::new();
    for t in threads {
        let (kept, out, mine) = t.join().map_err(|_| anyhow!("client thread panicked"))??;
        all.extend(kept);
        exhausted |= out;
        back.extend(mine);
    }
    if all.is_empty() {
        bail!("no sync completed in the measured window");
    }
    Ok((all, exhausted, back))
}

/// Dangers reported one after another by a director's phone, each timed from the start of its
/// sync to its `raised` event on the supervisor's stream: p50, p99 and the count.
fn danger_latency(
    running: &Running,
    password: &dyn Fn(&str) -> Result<String>,
) -> Result<(Duration, Duration, usize)> {
    use homevisit_sync_core::file::{DangerDetails, RecordVersion};
    use homevisit_sync_core::vocab::{DangerKind, RecordKind};
    const DANGERS: usize = 60;
    let mut web = Client::new(&running.base, Some(&running.ca))?;
    web.login(
        "supervisor1",
        &password("supervisor1")?,
        &uuid::Uuid::new_v4().to_string(),
        "bench stream",
    )?;
    let mut stream = web.alert_stream(None)?;
    let (tx, rx) = std::sync::mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        while let Ok(Some(event)) = stream.next_event() {
            if event.alert["kind"] == "danger" && event.alert["change"] == "raised" {
                let child = event.alert["child_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if tx.send((child, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    // The first village's director: `director11`, or `director1_1` in a county this large.
    let first = if COUNTY.townships < 10 {
        "director11"
    } else {
        "director1_1"
    };
    let mut director = Phone::new(running, first, &password(first)?)?;
    let mut scratch = Vec::new();
    director.sync(&mut scratch)?;
    let files = director.replica.file_ids();
    let mut latencies = Vec::new();
    for i in 0..DANGERS {
        let id = files[i % files.len()];
        let held = director.replica.docs.get_mut(&id).context("held file")?;
        let now = chrono::DateTime::from_timestamp(homevisit_server::service::clock::unix_now(), 0)
            .unwrap_or_default();
        let danger = DangerDetails {
            found: vec![DangerKind::LivingAlone],
            notified: Vec::new(),
            outcome: None,
        };
        let record = RecordVersion::danger(today(), &director.user, now, danger);
        held.file
            .add_record(RecordKind::Danger, &record, &director.user, now)?;
        let started = Instant::now();
        director.sync(&mut scratch)?;
        let child = id.to_string();
        loop {
            let (raised, at) = rx
                .recv_timeout(Duration::from_secs(10))
                .context("no event within 10 s")?;
            if raised == child {
                latencies.push(at - started);
                break;
            }
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok((at(0.5), at(0.99), latencies.len()))
}

pub fn postgres_url() -> Option<String> {
    std::env::var("HOMEVISIT_BENCH_POSTGRES")
        .or_else(|_| std::env::var("HOMEVISIT_TEST_POSTGRES"))
        .ok()
}

/// A fresh database on the server `admin` points at, dropped afterwards.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin: &str) -> Result<PgDatabase> {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let name = format!("hv_bench_{}", uuid::Uuid::new_v4().simple());
        diesel::PgConnection::establish(admin)?
            .batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = admin
            .rsplit_once('/')
            .context("the PostgreSQL URL must end in /DATABASE")?;
        Ok(PgDatabase {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        if let Ok(mut c) = diesel::PgConnection::establish(&self.admin) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn record(report: &mut Report, backend: &str, t: &Throughput) {
    let (p50, p99, n) = t.danger_to_stream;
    report.row(
        &format!(
            "danger report on {backend}: from the director's sync to the supervisor's event stream"
        ),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms over {n} reports (the sync round trip included)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        ),
        "p99 under 1 s on loopback (issue 8)",
        Some(p99 < Duration::from_secs(1)),
    );
    let rate = t.syncs as f64 / t.seconds;
    report.row(
        &format!(
            "server on {backend}: daily syncs ({CHANGED_PER_SYNC} new visits each) per second, \
             {CLIENT_THREADS} clients, requests prepared beforehand"
        ),
        format!(
            "{rate:.0}/s{}; p50 {:.1} ms, p99 {:.1} ms",
            if t.exhausted {
                " (at least: phones ran out of prepared syncs)"
            } else {
                ""
            },
            t.p50.as_secs_f64() * 1e3,
            t.p99.as_secs_f64() * 1e3
        ),
        "at least 500/s, p99 under 250 ms (bar set for PostgreSQL)",
        Some(rate >= 500.0 && t.p99 < Duration::from_millis(250)),
    );
    if let Some(w) = &t.two {
        report.row(
            &format!(
                "two server instances on one {backend} (the phones split between them, same \
                 two cores): daily syncs per second"
            ),
            format!(
                "{:.0}/s{}; p50 {:.1} ms, p99 {:.1} ms",
                w.syncs as f64 / t.seconds,
                if w.exhausted { " (at least)" } else { "" },
                w.p50.as_secs_f64() * 1e3,
                w.p99.as_secs_f64() * 1e3
            ),
            "reported (issue 11)",
            None,
        );
    }
    let body = t.daily.up + t.daily.down;
    report.row(
        &format!("daily sync over HTTPS on {backend} (60 files, 8 new visits)"),
        format!(
            "bodies {body} B ({:.2}x the {} B of new changes), headers {} B, {} round trip(s)",
            body as f64 / t.daily_changes as f64,
            t.daily_changes,
            t.daily.headers,
            t.daily.trips
        ),
        "1 round trip; bodies at most 1.2x new changes + 300 B",
        Some(t.daily.trips == 1 && body as f64 <= t.daily_changes as f64 * 1.2 + 300.0),
    );
    report.row(
        &format!("idle sync over HTTPS on {backend}"),
        format!(
            "bodies {} B, headers {} B, {} round trip(s)",
            t.idle.up + t.idle.down,
            t.idle.headers,
            t.idle.trips
        ),
        "1 round trip, bodies under 300 B",
        Some(t.idle.trips == 1 && t.idle.up + t.idle.down < 300),
    );
    let h1 = t.idle.headers as f64 / t.idle.trips.max(1) as f64;
    report.row(
        &format!("header bytes of a sync round trip on {backend}, warm connection"),
        format!(
            "HTTP/1.1 {h1:.0} B; HTTP/2 {:.0} B (HPACK; {} B for the first request on a new \
             connection, its preface and settings included)",
            t.http2.warm, t.http2.first
        ),
        "at most 200 B, request and response",
        Some(t.http2.warm <= 200.0),
    );
}

/// Measures both backends (PostgreSQL when `HOMEVISIT_BENCH_POSTGRES` or
/// `HOMEVISIT_TEST_POSTGRES` names a server; `scripts/bench` starts one).
pub fn server(report: &mut Report) -> Result<()> {
    eprintln!("server: SQLite");
    let sqlite = measure("")?;
    record(report, "SQLite", &sqlite);
    let with_headers = |name: &str, c: Cost| SyncFigure {
        name: name.to_owned(),
        up: c.up + c.headers / 2,
        down: c.down + c.headers / 2,
        round_trips: c.trips,
    };
    report.sync(with_headers(
        "daily over HTTPS, headers included",
        sqlite.daily,
    ));
    report.sync(with_headers(
        "idle over HTTPS, headers included",
        sqlite.idle,
    ));
    match postgres_url() {
        Some(admin) => {
            eprintln!("server: PostgreSQL");
            let db = PgDatabase::create(&admin)?;
            let pg = measure(&db.url)?;
            record(report, "PostgreSQL", &pg);
        }
        None => report.row(
            "server on PostgreSQL",
            "not measured: run `bash scripts/bench`, or set HOMEVISIT_BENCH_POSTGRES".into(),
            "at least 500/s, p99 under 250 ms",
            None,
        ),
    }
    report.note(format!(
        "Server figures: the release server in-process on its own actix system (2 workers), TLS \
         1.3 with keep-alive, against {CLIENT_THREADS} client threads driving the 360 directors' \
         phones of a 3,600-file county on the same 2 cores. Each phone's daily syncs are \
         prepared before the window ({ROUNDS} each: {CHANGED_PER_SYNC} new home visits made \
         with Automerge and encoded as the changes a phone uploads), so in the window a client \
         only frames the request with its cursor (zstd), sends it and reads the next cursor. \
         The server merges, validates, stores, compacts and re-projects every touched file in \
         one transaction before it answers. {:.0} s warm-up, {:.0} s measured; latency is one \
         HTTP round trip as the client sees it, {CLIENT_THREADS} in flight. Header bytes are the \
         HTTP/1.1 request and status lines and headers; over HTTP/2 \
         (`bench/src/h2.rs`, an h2 client counting the bytes under TLS) the HEADERS, DATA and \
         WINDOW_UPDATE frames of a round trip less its bodies. HPACK indexes the headers that \
         repeat but, like nghttp2, never an Authorization value: the 50-character token goes \
         whole every time.",
        WARM_UP.as_secs_f64(),
        MEASURE.as_secs_f64()
    ));
    Ok(())
}

/// For `scripts/profile-sync`: a small county on SQLite, its directors' prepared daily syncs
/// sent one after another from one thread, so that callgrind, collecting only inside the
/// server's `service::sync::apply`, counts the same instructions on every run.
pub fn profile() -> Result<()> {
    const SMALL: Size = Size {
        townships: 2,
        villages: 6,
        children: 10,
    };
    const PROFILE_ROUNDS: usize = 10;
    count_statements()?;
    let (running, built) = start("", SMALL)?;
    let mut g = Generator::new(7);
    let mut scratch = Vec::new();
    let mut phones = Vec::new();
    for c in built.credentials.iter().filter(|c| c.role == "director") {
        let mut phone = Phone::new(&running, &c.username, &c.password)?;
        phone.sync(&mut scratch)?;
        phones.push(Prepared::new(phone, &mut g, PROFILE_ROUNDS)?);
    }
    // For a sampling profiler attached from here on (scripts/profile-sync's perf mode).
    eprintln!("profile: measuring");
    if let Ok(go) = std::env::var("HOMEVISIT_PROFILE_GO") {
        // The profiler, attached now, says when it counts: then every sync measured is counted,
        // and nothing before them.
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let started = Instant::now();
    let statements_before = STATEMENTS.load(Ordering::Relaxed);
    let mut syncs = 0;
    for _ in 0..PROFILE_ROUNDS {
        for phone in &mut phones {
            let sent = match phone.sync() {
                Ok(sent) => sent,
                // Its connection was closed while idle: the request never arrived.
                Err(e) if matches!(e.downcast_ref(), Some(ClientError::Transport(_))) => {
                    phone.reconnect(&running)?;
                    phone.sync()?
                }
                Err(e) => return Err(e),
            };
            syncs += usize::from(sent);
        }
    }
    println!(
        "{syncs} daily syncs ({CHANGED_PER_SYNC} new visits each) from {} phones in {:.1} s",
        phones.len(),
        started.elapsed().as_secs_f64()
    );
    let statements = STATEMENTS.load(Ordering::Relaxed) - statements_before;
    println!(
        "SQL statements: {statements}, {:.1} per daily sync (its session lookup included)",
        statements as f64 / syncs.max(1) as f64
    );
    Ok(())
}

/// Statements every connection of this process has started (see [`count_statements`]).
static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes every connection opened from now on count the statements it starts in [`STATEMENTS`]:
/// the round trips to the database a sync costs, which an instruction count cannot show for
/// PostgreSQL's side.
fn count_statements() -> Result<()> {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    fn counter() -> Option<Box<dyn Instrumentation>> {
        Some(Box::new(|event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                STATEMENTS.fetch_add(1, Ordering::Relaxed);
                // Which statements they are, to stderr, for whoever is cutting their number.
                if std::env::var_os("HOMEVISIT_PROFILE_SQL").is_some() {
                    eprintln!("SQL\t{query}");
                }
            }
        }))
    }
    diesel::connection::set_default_instrumentation(counter)?;
    Ok(())
}
