//! A new phone's first sync over a connection that keeps breaking, through a relay in the test
//! that cuts the TCP stream at chosen byte offsets: the phone lists who is due after the first
//! page, resumes where each cut fell, and ends holding exactly what an uncut sync holds.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homevisit_phone::{Phone, PhoneError, Retry, china_today};
use rand::{Rng, SeedableRng};

use crate::harness::Server;

/// A TCP relay in front of the server that counts the bytes flowing down to the phone, over
/// every connection, and cuts the connection in flight when the count passes the next offset.
struct Relay {
    port: u16,
    down: Arc<AtomicUsize>,
    cuts: Arc<Mutex<VecDeque<usize>>>,
    made: Arc<AtomicUsize>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = Relay {
            port: listener.local_addr().expect("addr").port(),
            down: Arc::default(),
            cuts: Arc::default(),
            made: Arc::default(),
        };
        let (down, cuts, made) = (relay.down.clone(), relay.cuts.clone(), relay.made.clone());
        std::thread::spawn(move || {
            for phone in listener.incoming() {
                let Ok(phone) = phone else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                made.fetch_add(1, Ordering::SeqCst);
                let (down, cuts) = (down.clone(), cuts.clone());
                let (mut up_from, mut up_to) = (
                    phone.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_from, &mut up_to);
                    let _ = up_to.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || pump_down(server, phone, &down, &cuts));
            }
        });
        relay
    }

    /// Cuts at these offsets of the bytes sent down from now on.
    fn cut_at(&self, offsets: impl IntoIterator<Item = usize>) {
        let base = self.down.load(Ordering::SeqCst);
        let mut cuts = self.cuts.lock().expect("lock");
        cuts.clear();
        cuts.extend(offsets.into_iter().map(|o| base + o));
    }

    fn down(&self) -> usize {
        self.down.load(Ordering::SeqCst)
    }
}

fn pump_down(
    mut server: TcpStream,
    mut phone: TcpStream,
    down: &AtomicUsize,
    cuts: &Mutex<VecDeque<usize>>,
) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut cuts = cuts.lock().expect("lock");
        let before = down.load(Ordering::SeqCst);
        if let Some(&cut) = cuts.front()
            && before + n > cut
        {
            // Deliver up to the offset, then the line goes dead both ways.
            let keep = cut.saturating_sub(before);
            let _ = phone.write_all(&buf[..keep]);
            down.fetch_add(keep, Ordering::SeqCst);
            cuts.pop_front();
            break;
        }
        down.fetch_add(n, Ordering::SeqCst);
        drop(cuts);
        if phone.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = phone.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

fn phone_through(relay: &Relay, server: &Server, user: &str, dir: &std::path::Path) -> Phone {
    let mut phone = Phone::open(dir, [5; 32]).expect("open");
    let ca = std::fs::read_to_string(server.ca()).expect("ca");
    phone
        .login(
            &format!("https://localhost:{}", relay.port),
            Some(&ca),
            user,
            &server.demo_password(user),
            "test phone",
        )
        .expect("login");
    phone.set_retry(Retry {
        attempts: 4,
        first_delay: Duration::from_millis(5),
    });
    phone
}

/// Everything a phone holds that a director sees: each child's file, whole.
fn holdings(phone: &mut Phone) -> BTreeMap<String, String> {
    let ids: Vec<String> = phone
        .children()
        .expect("children")
        .keys()
        .map(ToString::to_string)
        .collect();
    ids.into_iter()
        .map(|id| {
            let view = phone.child(&id).expect("file");
            (id, format!("{view:?}"))
        })
        .collect()
}

#[test]
fn a_first_sync_cut_at_random_offsets_resumes_where_it_fell_and_ends_as_an_uncut_one() {
    let server = Server::demo();
    let relay = Relay::start(server.port);
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];

    // The reference: an uncut first sync of a township's files.
    let mut uncut = phone_through(&relay, &server, "supervisor1", dirs[0].path());
    let start = relay.down();
    let opened = relay.made.load(Ordering::SeqCst);
    let clean = uncut.sync().expect("sync");
    let clean_bytes = relay.down() - start;
    assert!(
        relay.made.load(Ordering::SeqCst) - opened <= 1,
        "the pages share one kept-alive connection, not a handshake each"
    );
    assert!(
        clean.pages >= 4,
        "a township's first sync takes several pages: {clean:?}"
    );

    // The same sync, cut three times at random offsets.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261128);
    let mut offsets: Vec<usize> = (0..3).map(|_| rng.gen_range(0..clean_bytes)).collect();
    offsets.sort();
    let mut cut = phone_through(&relay, &server, "supervisor1", dirs[1].path());
    let connections = relay.made.load(Ordering::SeqCst);
    relay.cut_at(offsets.clone());
    let start = relay.down();
    let report = cut.sync().expect("the retries carry it through");
    let cut_bytes = relay.down() - start;
    assert!(
        relay.cuts.lock().expect("lock").is_empty(),
        "every cut fell: {offsets:?} within {cut_bytes} B"
    );
    assert!(relay.made.load(Ordering::SeqCst) >= connections + 3);

    // Nothing came twice but the page in flight at each cut, and the new connection's
    // handshake: a page is at most 64 KiB.
    let page = 64 << 10;
    let handshake = 8 << 10;
    assert!(
        cut_bytes <= clean_bytes + 3 * (page + handshake),
        "{cut_bytes} B cut against {clean_bytes} B uncut; {report:?}"
    );
    eprintln!(
        "first sync of supervisor1: {clean_bytes} B in {} pages uncut; {cut_bytes} B cut at \
         {offsets:?}",
        clean.round_trips
    );
    assert_eq!(cut.status().expect("status").arriving, 0);
    assert_eq!(holdings(&mut cut), holdings(&mut uncut));
    let today = china_today();
    assert_eq!(cut.due(today).expect("due"), uncut.due(today).expect("due"));
}

#[test]
fn the_due_list_shows_after_the_first_page_while_the_files_are_still_arriving() {
    let server = Server::demo();
    let relay = Relay::start(server.port);
    let dir = tempfile::tempdir().expect("dir");
    let mut phone = phone_through(&relay, &server, "director11", dir.path());
    phone.set_retry(Retry {
        attempts: 1,
        first_delay: Duration::from_millis(5),
    });

    // The first page is the due list; the line dies in the second.
    let mut report = Default::default();
    assert!(phone.sync_step(&mut report).expect("the first page"));
    let listed = phone.status().expect("status");
    assert!(
        listed.files >= 20 && listed.arriving == listed.files,
        "{listed:?}"
    );
    let today = china_today();
    let early = phone.due(today).expect("due");
    assert!(!early.is_empty(), "someone in the village is due");
    let first = phone.children().expect("children").keys().next().copied();
    let first = first.expect("listed").to_string();
    assert!(matches!(phone.child(&first), Err(PhoneError::Arriving(_))));

    relay.cut_at([2_000]);
    assert!(matches!(phone.sync(), Err(PhoneError::Network(_))));
    assert_eq!(phone.due(today).expect("due"), early, "a cut loses no list");

    phone.set_retry(Retry::default());
    phone.sync().expect("the rest");
    let status = phone.status().expect("status");
    assert_eq!((status.files, status.arriving), (listed.files, 0));
    assert!(phone.child(&first).is_ok());
    assert_eq!(
        phone.due(today).expect("due"),
        early,
        "the files say what their summaries said"
    );
}
