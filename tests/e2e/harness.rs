//! A county of test regions and users, a server process, and field devices.

use chrono::{DateTime, NaiveDate, Utc};
use homevisit_phone::client::Client;
use homevisit_sync_core::device::Device;
use homevisit_sync_core::file::{ChildId, Profile};
use homevisit_sync_core::photo::Processed;
use homevisit_sync_core::store::StoreKey;
use homevisit_sync_core::vocab::Sex;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";
/// The token the test servers serve `/metrics` to.
pub const METRICS_TOKEN: &str = "scrape-me-please";

/// County 铁东区 with two townships (山门村 and 东山村 in the first, 叶赫村 in the second), and
/// county 铁西区 next door.
pub const REGIONS: &str = "code,name,parent
220303000000,铁东区,
220303100000,山门镇,220303000000
220303100200,山门村,220303100000
220303100201,东山村,220303100000
220303102000,叶赫满族镇,220303000000
220303102200,叶赫村,220303102000
220302000000,铁西区,
220302001000,仁兴街道,220302000000
220302001001,仁兴社区,220302001000
";

/// The test users: name, role, region.
pub const USERS: &[(&str, &str, &str)] = &[
    ("dir_a", "director", "220303100200"),
    ("dir_b", "director", "220303102200"),
    ("sup_a", "supervisor", "220303100000"),
    ("sup_b", "supervisor", "220303102000"),
    ("county", "county", "220303000000"),
    ("county_x", "county", "220302000000"),
    ("admin", "admin", ""),
];

/// A running server with its own data directory.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its data directory.
    pub dir: tempfile::TempDir,
    database_url: Option<String>,
    _pg: Option<crate::pg::TestDatabase>,
    /// What the server printed before it listened (the demo's logins).
    pub banner: Vec<String>,
    /// Extra flags for `serve`.
    pub extra: Vec<String>,
    /// Environment variables the server starts with.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// A server on embedded SQLite with the test county.
    pub fn sqlite() -> Server {
        Server::prepare(None).start()
    }

    /// [`Server::sqlite`], not started yet, to adjust first.
    pub fn sqlite_unstarted() -> Server {
        Server::prepare(None)
    }

    /// A server on a fresh PostgreSQL database with the test county.
    pub fn postgres() -> Server {
        let db = crate::pg::TestDatabase::create();
        let mut s = Server::prepare(Some(db.url.clone()));
        s._pg = Some(db);
        s.start()
    }

    /// A second instance on this server's database, with a data directory of its own; not
    /// started.
    pub fn another_instance(&self) -> Server {
        Server::empty(self.database_url.clone())
    }

    /// The PostgreSQL database, if the server runs on one.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// A server started with `serve --demo`: the demo county, nothing else.
    pub fn demo() -> Server {
        let mut server = Server::empty(None);
        server.extra.push("--demo".into());
        server.start()
    }

    /// A demo login's password, as `serve --demo` printed it.
    pub fn demo_password(&self, user: &str) -> String {
        self.banner
            .iter()
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.first() == Some(&user)).then(|| fields.last().map(|p| (*p).to_owned()))?
            })
            .unwrap_or_else(|| panic!("no login for {user} in {:?}", self.banner))
    }

    fn empty(database_url: Option<String>) -> Server {
        Server {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("data dir"),
            database_url,
            _pg: None,
            banner: Vec::new(),
            extra: Vec::new(),
            env: vec![("HOMEVISIT__METRICS_TOKEN".into(), METRICS_TOKEN.into())],
        }
    }

    fn prepare(database_url: Option<String>) -> Server {
        let server = Server::empty(database_url);
        let csv = server.dir.path().join("regions.csv");
        std::fs::write(&csv, REGIONS).expect("write regions");
        let out = server.homevisit(&["region", "import", csv.to_str().expect("utf-8")], None);
        assert!(out.status.success(), "{out:?}");
        for (name, role, region) in USERS {
            let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
            if !region.is_empty() {
                args.extend(["--region", region]);
            }
            let out = server.homevisit(&args, Some(PASSWORD));
            assert!(out.status.success(), "{out:?}");
        }
        server
    }

    fn settings_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            self.dir.path().display().to_string(),
        ];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }

    /// Runs a `homevisit` admin command against this server's database.
    pub fn homevisit(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_homevisit"))
            .args(args)
            .args(self.settings_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run homevisit");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("wait")
    }

    /// Starts (or restarts) the server process.
    pub fn start(mut self) -> Server {
        self.kill();
        let mut child = Command::new(env!("CARGO_BIN_EXE_homevisit"))
            .args(["serve", "--dev-tls", "--listen", "127.0.0.1:0"])
            .args(self.settings_args())
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log())
                    .expect("log file"),
            )
            .spawn()
            .expect("start homevisit serve");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        self.banner.clear();
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).expect("read the listening line");
            assert!(
                n > 0,
                "the server exited before listening: {:?}",
                self.banner
            );
            if line.starts_with("homevisit listening on") {
                break;
            }
            self.banner.push(line.trim_end().to_owned());
        }
        self.port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        self.child = Some(child);
        self
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Where the server's log goes.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The development certificate clients pin.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("dev-tls").join("cert.pem")
    }

    /// Sends raw HTTP/1.1 bytes over TLS on one connection and returns everything the server
    /// answers until it closes: for requests no well-behaved client would send.
    pub fn raw_https(&self, request: &[u8]) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        use std::io::Read;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(self.ca()).expect("ca") {
            roots.add(cert.expect("cert")).expect("root");
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("tls");
        let sock = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(request).expect("send");
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        out
    }

    /// A client without a session.
    pub fn client(&self) -> Client {
        Client::new(
            &format!("https://localhost:{}", self.port),
            Some(&self.ca()),
        )
        .expect("client")
    }

    /// A client logged in as `user` on a fresh device id.
    pub fn login(&self, user: &str) -> Client {
        self.login_with(user, PASSWORD)
    }

    /// A client logged in as `user` with `password` on a fresh device id.
    pub fn login_with(&self, user: &str, password: &str) -> Client {
        let mut client = self.client();
        client
            .login(
                user,
                password,
                &uuid::Uuid::new_v4().to_string(),
                "test phone",
            )
            .unwrap_or_else(|e| panic!("login {user}: {e}"));
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A phone: an encrypted store in its own directory, and a logged-in client.
pub struct Phone {
    /// The store.
    pub device: Device,
    /// The client.
    pub client: Client,
    /// Who is logged in.
    pub user: String,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A fresh phone logged in as `user`.
    pub fn new(server: &Server, user: &str) -> Phone {
        Phone::with_password(server, user, PASSWORD)
    }

    /// A fresh phone logged in as `user` with `password` (the demo's users have their own).
    pub fn with_password(server: &Server, user: &str, password: &str) -> Phone {
        let dir = tempfile::tempdir().expect("phone dir");
        let device = Device::open(
            &dir.path().join("store"),
            &StoreKey::new(rand::random::<[u8; 32]>()),
        )
        .expect("open store");
        Phone {
            device,
            client: server.login_with(user, password),
            user: user.to_owned(),
            _dir: dir,
        }
    }

    /// Registers a child of `village`.
    pub fn register(&mut self, name: &str, village: &str) -> ChildId {
        self.device
            .create(&profile(name, village), &self.user, now())
            .expect("create")
    }

    /// Records that `child` took each of `values` on `effective`, as this phone's user.
    pub fn assert_attributes(
        &mut self,
        child: &ChildId,
        values: &[(homevisit_sync_core::file::AttrKind, &str)],
        effective: NaiveDate,
    ) {
        let at = now();
        for (attr, value) in values {
            let assertion = homevisit_sync_core::file::Assertion {
                attr: *attr,
                value: (*value).into(),
                present: true,
                effective,
                recorded_at: at,
                by: self.user.clone(),
            };
            self.device
                .edit(child, |f| f.assert_attribute(&assertion, &self.user, at))
                .expect("assert");
        }
    }

    /// Uploads a processed photo whole.
    pub fn upload(&self, photo: &Processed) -> homevisit_phone::client::Reply {
        self.client
            .call(
                "PUT",
                &format!("/api/v1/blobs/{}", photo.sha256),
                Some(&token(&self.client)),
                "image/jpeg",
                &photo.jpeg,
            )
            .expect("an answer")
    }

    /// Syncs until settled; returns the round trips.
    pub fn sync(&mut self) -> usize {
        let (_, rounds) = self
            .client
            .sync_device(&mut self.device)
            .unwrap_or_else(|e| panic!("sync as {}: {e}", self.user));
        rounds
    }
}

/// A small photo as a phone processes it, different for each `seed`.
pub fn small_photo(seed: u8) -> Processed {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, seed]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    homevisit_sync_core::photo::process(&png, &Default::default()).expect("photo")
}

/// A child's profile in `village`.
pub fn profile(name: &str, village: &str) -> Profile {
    Profile {
        name: name.into(),
        sex: Sex::Female,
        birth_date: NaiveDate::from_ymd_opt(2016, 3, 1).expect("date"),
        id_number: None,
        hukou_place: "铁东区".into(),
        address: "村东头".into(),
        village_code: village.into(),
        registered_on: NaiveDate::from_ymd_opt(2026, 1, 10).expect("date"),
    }
}

/// Posts raw bytes as a sync frame with the client's token: for frames our client would never
/// build.
pub fn post_frame(client: &Client, frame: &[u8]) -> homevisit_phone::client::Reply {
    client
        .call(
            "POST",
            "/api/v1/sync",
            Some(&token(client)),
            "application/vnd.homevisit.sync",
            frame,
        )
        .expect("an answer")
}

/// The access token of a logged-in client.
pub fn token(client: &Client) -> String {
    client
        .session
        .as_ref()
        .map(|s| s.access_token.clone())
        .expect("logged in")
}

/// The time now.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(homevisit_server::service::clock::unix_now(), 0).expect("now")
}
