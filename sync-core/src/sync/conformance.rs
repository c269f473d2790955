//! The behaviour every [`ServerStore`](super::server::ServerStore) must show under the protocol,
//! as one suite: the in-memory store runs it here, the server runs it on SQLite and on
//! PostgreSQL. Each scenario works in villages of its own, so the suite runs on one database.

use chrono::{TimeZone, Utc};

use super::device::{Outcome, Replica};
use super::server::{Context, DEFAULT_PAGE_BYTES};
use super::{ChildId, DeviceId, Request, Response, Scope};
use crate::file::{ChildFile, Findings, Profile, RecordVersion};
use crate::vocab::{RecordKind, Sex};

/// A server the suite can sync with: one request, one transaction.
pub trait SyncServer {
    /// Handles one request in one transaction, committed only on success. An error is the
    /// refusal's message; nothing of the request may remain.
    fn sync(&mut self, ctx: &Context<'_>, request: &Request) -> Result<Response, String>;
}

struct Phone {
    replica: Replica,
    device: DeviceId,
    scope: Scope,
}

impl Phone {
    fn new(actor: u8, scope: &[&str]) -> Self {
        Phone {
            replica: Replica::new([actor; 16]),
            device: DeviceId::new(),
            scope: Scope::new(scope.iter().copied()),
        }
    }

    fn exchange(&mut self, server: &mut dyn SyncServer) -> Result<Vec<u8>, String> {
        let request = Request::decode(&self.replica.request()).map_err(|e| e.to_string())?;
        let ctx = Context {
            device: self.device,
            scope: &self.scope,
            now_ms: 1_795_000_000_000,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked: false,
        };
        server.sync(&ctx, &request).map(|r| r.encode())
    }

    fn create(&mut self, village: &str, name: &str) -> Result<ChildId, String> {
        self.replica
            .create(ChildId::new(), &profile(village, name), "d", now())
            .map_err(|e| e.to_string())
    }

    fn view(&self, id: &ChildId) -> Result<crate::file::ChildFileView, String> {
        self.replica
            .file(id)
            .ok_or_else(|| format!("file {id} missing"))?
            .view()
            .map_err(|e| e.to_string())
    }

    fn sync(&mut self, server: &mut dyn SyncServer) -> Result<usize, String> {
        for trips in 1..=4 {
            let response = self.exchange(server)?;
            if self
                .replica
                .receive(&response, 0)
                .map_err(|e| e.to_string())?
                == Outcome::Done
            {
                return Ok(trips);
            }
        }
        Err("no convergence in 4 round trips".into())
    }
}

fn profile(village: &str, name: &str) -> Profile {
    Profile {
        name: name.into(),
        sex: Sex::Male,
        birth_date: "2014-07-01".parse().unwrap_or_default(),
        id_number: None,
        hukou_place: "铁东区".into(),
        address: "一组".into(),
        village_code: village.into(),
        registered_on: "2026-01-05".parse().unwrap_or_default(),
    }
}

fn visit(file: &mut ChildFile) -> Result<uuid::Uuid, String> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .unwrap_or_default();
    let v = RecordVersion::home_visit(
        "2026-11-20".parse().unwrap_or_default(),
        "d",
        at,
        Findings::default(),
    );
    file.add_record(RecordKind::HomeVisit, &v, "d", at)
        .map_err(|e| e.to_string())
}

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.to_owned()) }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Runs every scenario; `prefix` is a 6-digit county code unique to this run, so that runs on a
/// shared database do not see each other's files.
pub fn run_all(server: &mut dyn SyncServer, prefix: &str) -> Result<(), String> {
    daily_sync_reaches_another_phone(server, &format!("{prefix}001001"))
        .map_err(|e| format!("daily sync: {e}"))?;
    lost_response_is_resent(server, &format!("{prefix}001002"))
        .map_err(|e| format!("lost response: {e}"))?;
    refused_request_leaves_nothing(
        server,
        &format!("{prefix}001003"),
        &format!("{prefix}009001"),
    )
    .map_err(|e| format!("refused request: {e}"))?;
    moved_file_is_dropped(
        server,
        &format!("{prefix}001004"),
        &format!("{prefix}002004"),
    )
    .map_err(|e| format!("moved file: {e}"))?;
    many_changes_compact_and_still_load(server, &format!("{prefix}001005"))
        .map_err(|e| format!("compaction: {e}"))?;
    Ok(())
}

fn daily_sync_reaches_another_phone(
    server: &mut dyn SyncServer,
    village: &str,
) -> Result<(), String> {
    let mut a = Phone::new(1, &[village]);
    let mut b = Phone::new(2, &[village]);
    let id = a.create(village, "甲")?;
    ensure(
        a.sync(server)? == 1,
        "first upload took more than one round trip",
    )?;
    ensure(
        b.sync(server)? == 1,
        "new phone took more than one round trip",
    )?;
    let record = visit(a.replica.file_mut(&id).ok_or("file missing on a")?)?;
    ensure(
        a.sync(server)? == 1,
        "daily upload took more than one round trip",
    )?;
    ensure(
        b.sync(server)? == 1,
        "daily download took more than one round trip",
    )?;
    let view = b.view(&id)?;
    ensure(view.records.contains_key(&record), "record did not reach b")?;
    let idle = Request::decode(&b.replica.request()).map_err(|e| e.to_string())?;
    ensure(idle.uploads.is_empty(), "idle phone uploads")?;
    Ok(())
}

fn lost_response_is_resent(server: &mut dyn SyncServer, village: &str) -> Result<(), String> {
    let mut a = Phone::new(3, &[village]);
    let mut b = Phone::new(4, &[village]);
    let id = a.create(village, "乙")?;
    a.sync(server)?;
    b.sync(server)?;
    let record = visit(b.replica.file_mut(&id).ok_or("file missing on b")?)?;
    b.sync(server)?;
    let _lost = a.exchange(server)?;
    let _lost_again = a.exchange(server)?;
    a.sync(server)?;
    let view = a.view(&id)?;
    ensure(
        view.records.contains_key(&record),
        "record lost with the response",
    )
}

fn refused_request_leaves_nothing(
    server: &mut dyn SyncServer,
    village: &str,
    foreign: &str,
) -> Result<(), String> {
    let mut a = Phone::new(5, &[village]);
    let mut watcher = Phone::new(6, &[village]);
    let good = a.create(village, "丙")?;
    a.sync(server)?;
    watcher.sync(server)?;
    visit(a.replica.file_mut(&good).ok_or("file missing")?)?;
    let bad = a.create(foreign, "丁")?;
    let refused = a.exchange(server);
    ensure(
        refused.is_err(),
        "a file for a foreign village was accepted",
    )?;
    ensure(
        refused.err().is_some_and(|e| e.contains(&bad.to_string())),
        "the refusal does not name the file",
    )?;
    let before = watcher.view(&good)?.records.len();
    watcher.sync(server)?;
    let after = watcher.view(&good)?.records.len();
    ensure(before == after, "half of a refused request was stored")?;
    a.replica.quarantine(&bad);
    a.sync(server)?;
    watcher.sync(server)?;
    let now_seen = watcher.view(&good)?.records.len();
    ensure(
        now_seen == before + 1,
        "the rest did not sync after the quarantine",
    )
}

fn moved_file_is_dropped(
    server: &mut dyn SyncServer,
    village: &str,
    other: &str,
) -> Result<(), String> {
    let county = &village[..6];
    let mut director = Phone::new(7, &[village]);
    let mut admin = Phone::new(8, &[county]);
    let id = director.create(village, "戊")?;
    director.sync(server)?;
    admin.sync(server)?;
    admin
        .replica
        .file_mut(&id)
        .ok_or("file missing on admin")?
        .update_profile(&profile(other, "戊"), "county", now())
        .map_err(|e| e.to_string())?;
    admin.sync(server)?;
    director.sync(server)?;
    ensure(
        director.replica.file(&id).is_none(),
        "moved file still on the director's phone",
    )
}

fn many_changes_compact_and_still_load(
    server: &mut dyn SyncServer,
    village: &str,
) -> Result<(), String> {
    let mut a = Phone::new(9, &[village]);
    let id = a.create(village, "己")?;
    let mut records = Vec::new();
    for _ in 0..40 {
        records.push(visit(a.replica.file_mut(&id).ok_or("file missing")?)?);
        a.sync(server)?;
    }
    let mut fresh = Phone::new(10, &[village]);
    ensure(
        fresh.sync(server)? == 1,
        "new phone took more than one round trip",
    )?;
    let view = fresh.view(&id)?;
    ensure(
        records.iter().all(|r| view.records.contains_key(r)),
        "records lost across compactions",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::memory::MemoryStore;
    use crate::sync::server::handle;

    impl SyncServer for MemoryStore {
        fn sync(&mut self, ctx: &Context<'_>, request: &Request) -> Result<Response, String> {
            self.transaction(|s| handle(s, ctx, request))
                .map_err(|e| e.to_string())
        }
    }

    #[test]
    fn the_memory_store_passes_the_conformance_suite() {
        let mut store = MemoryStore::default();
        run_all(&mut store, "210302").expect("conformance");
    }
}
