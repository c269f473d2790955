//! `kill -9` during 200 concurrent syncs: every acknowledged record survives the restart, and
//! the phones whose syncs were cut off lose nothing either.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use homevisit_sync_core::file::ChildId;

use crate::harness::{Phone, Server};

const PHONES: usize = 200;

fn killed_mid_sync_loses_nothing(mut server: Server) {
    // The phones log in and register a child each, offline.
    let phones: Vec<(Phone, ChildId)> = (0..PHONES)
        .map(|i| {
            let mut phone = Phone::new(&server, if i % 2 == 0 { "dir_a" } else { "sup_a" });
            let child = phone.register(&format!("孩子{i}"), "220303100200");
            (phone, child)
        })
        .collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(Barrier::new(PHONES + 1));
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = phones
        .into_iter()
        .map(|(mut phone, child)| {
            let (acked, started, answered) = (acked.clone(), started.clone(), answered.clone());
            std::thread::spawn(move || {
                started.wait();
                let ok = phone.client.sync_device(&mut phone.device).is_ok();
                answered.fetch_add(1, Ordering::SeqCst);
                if ok {
                    acked.lock().expect("lock").push(child);
                }
                (phone, child, ok)
            })
        })
        .collect();
    started.wait();
    // Kill once some syncs are acknowledged and the rest are in flight.
    while answered.load(Ordering::SeqCst) < PHONES / 4 {
        std::thread::yield_now();
    }
    server.kill();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("phone thread"))
        .collect();
    let acked = acked.lock().expect("lock").clone();
    let cut_off = results.iter().filter(|(_, _, ok)| !ok).count();
    assert!(
        !acked.is_empty(),
        "no sync was acknowledged before the kill"
    );
    assert!(
        cut_off > 0,
        "the kill came after every sync finished: it tested nothing"
    );

    let server = server.start();
    let mut supervisor = Phone::new(&server, "sup_a");
    supervisor.sync();
    for child in &acked {
        assert!(
            supervisor.device.file(child).is_ok(),
            "acknowledged file {child} was lost"
        );
    }
    // The cut-off phones still hold their work and deliver it now.
    for (mut phone, _, ok) in results {
        if !ok {
            let session = phone.client.session.take();
            phone.client = server.client();
            phone.client.session = session;
            phone.sync();
        }
    }
    supervisor.sync();
    assert_eq!(
        supervisor.device.len(),
        PHONES,
        "every phone's file is on the server"
    );
}

#[test]
fn kill_9_during_200_concurrent_syncs_loses_no_acknowledged_record_on_sqlite() {
    killed_mid_sync_loses_nothing(Server::sqlite());
}

#[test]
fn kill_9_during_200_concurrent_syncs_loses_no_acknowledged_record_on_postgres() {
    killed_mid_sync_loses_nothing(Server::postgres());
}
