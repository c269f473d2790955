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
    /// Who signs this phone's edits, and who the server takes it to be.
    author: &'static str,
}

impl Phone {
    fn new(actor: u8, scope: &[&str]) -> Self {
        Phone {
            replica: Replica::new([actor; 16]),
            device: DeviceId::new(),
            scope: Scope::new(scope.iter().copied()),
            author: "d",
        }
    }

    fn send(&mut self, server: &mut dyn SyncServer, request: &Request) -> Result<Response, String> {
        let ctx = Context {
            device: self.device,
            user: self.author,
            author: self.author,
            scope: &self.scope,
            now_ms: 1_795_000_000_000,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked: false,
        };
        server.sync(&ctx, request)
    }

    fn exchange(&mut self, server: &mut dyn SyncServer) -> Result<Vec<u8>, String> {
        let request = Request::decode(&self.replica.request()).map_err(|e| e.to_string())?;
        self.send(server, &request).map(|r| r.encode())
    }

    fn create(&mut self, village: &str, name: &str) -> Result<ChildId, String> {
        self.replica
            .create(ChildId::new(), &profile(village, name), self.author, now())
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
    foreign_files_are_refused_in_every_message_kind(
        server,
        &format!("{prefix}001006"),
        &format!("{prefix}003006"),
    )
    .map_err(|e| format!("foreign files: {e}"))?;
    a_phone_that_held_a_moved_file_syncs_the_rest(
        server,
        &format!("{prefix}001007"),
        &format!("{prefix}002007"),
    )
    .map_err(|e| format!("moved with work: {e}"))?;
    history_is_neither_erased_nor_forged(server, &format!("{prefix}001008"))
        .map_err(|e| format!("archive rule: {e}"))?;
    a_new_phone_is_told_its_due_list_before_its_files(
        server,
        &format!("{prefix}001009"),
        &format!("{prefix}003009"),
    )
    .map_err(|e| format!("summaries first: {e}"))?;
    Ok(())
}

fn a_new_phone_is_told_its_due_list_before_its_files(
    server: &mut dyn SyncServer,
    village: &str,
    foreign: &str,
) -> Result<(), String> {
    let mut a = Phone::new(18, &[village, foreign]);
    let visited = a.create(village, "庚")?;
    let record = visit(a.replica.file_mut(&visited).ok_or("file missing")?)?;
    let unvisited = a.create(village, "辛")?;
    let elsewhere = a.create(foreign, "壬")?;
    a.sync(server)?;

    let mut fresh = Phone::new(19, &[village]);
    let first = Response::decode(&fresh.exchange(server)?).map_err(|e| e.to_string())?;
    ensure(
        first.docs.is_empty() && first.more,
        "the first page carried files, or did not say more follow",
    )?;
    silent_about(&first, elsewhere)?;
    let mut told: Vec<ChildId> = first.summaries.iter().map(|s| s.doc).collect();
    told.sort();
    let mut expected = vec![visited, unvisited];
    expected.sort();
    ensure(told == expected, &format!("summaries of {told:?}"))?;
    let summary = first
        .summaries
        .iter()
        .find(|s| s.doc == visited)
        .ok_or("no summary of the visited child")?;
    let read = crate::file::summary_from_digest(
        summary.doc,
        summary.name.clone(),
        summary.village.clone(),
        &summary.digest,
        chrono::NaiveDate::MAX,
    )
    .ok_or("the digest does not read")?;
    ensure(
        read.name == "庚" && read.village_code == village,
        "the summary names another child or village",
    )?;
    ensure(
        read.records
            .iter()
            .any(|(k, _)| *k == RecordKind::HomeVisit),
        "the summary lost the home visit",
    )?;
    fresh
        .replica
        .receive(&first.encode(), 0)
        .map_err(|e| e.to_string())?;
    fresh.sync(server)?;
    ensure(
        fresh.view(&visited)?.records.contains_key(&record) && fresh.view(&unvisited).is_ok(),
        "the files did not follow their summaries",
    )
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
        b.sync(server)? == 2,
        "a new phone took other than two round trips (its due list, then its files)",
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
    admin.author = "county";
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
        fresh.sync(server)? == 2,
        "a new phone took other than two round trips (its due list, then its files)",
    )?;
    let view = fresh.view(&id)?;
    ensure(
        records.iter().all(|r| view.records.contains_key(r)),
        "records lost across compactions",
    )
}

/// Nothing of `id` in a response: no content, no heads, no drop order.
fn silent_about(response: &Response, id: ChildId) -> Result<(), String> {
    ensure(
        response.docs.iter().all(|d| d.doc() != id)
            && response.syncs.iter().all(|s| s.doc != id)
            && response.summaries.iter().all(|s| s.doc != id)
            && !response.drops.contains(&id),
        "the response carries something of a foreign file",
    )
}

fn foreign_files_are_refused_in_every_message_kind(
    server: &mut dyn SyncServer,
    village: &str,
    foreign: &str,
) -> Result<(), String> {
    use automerge::sync::SyncDoc;
    let mut owner = Phone::new(11, &[foreign]);
    let theirs = owner.create(foreign, "庚")?;
    visit(owner.replica.file_mut(&theirs).ok_or("file missing")?)?;
    owner.sync(server)?;
    let mut prober = Phone::new(12, &[village]);
    let mine = prober.create(village, "辛")?;
    prober.sync(server)?;
    visit(prober.replica.file_mut(&mine).ok_or("file missing")?)?;
    let own = Request::decode(&prober.replica.request()).map_err(|e| e.to_string())?;
    let forged_changes = prober
        .replica
        .file_mut(&mine)
        .ok_or("file missing")?
        .doc_mut()
        .save_after(&[]);
    let opening = automerge::AutoCommit::new()
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .ok_or("no opening message")?
        .encode();
    let upload = super::wire::Upload {
        doc: theirs,
        base: 0,
        changes: forged_changes,
    };
    let sync = super::wire::DocSync {
        doc: theirs,
        message: opening,
    };
    let probes = [
        ("upload", vec![upload], vec![]),
        ("sync message", vec![], vec![sync]),
    ];
    for (kind, uploads, syncs) in probes {
        // Alone, the foreign file is refused like any read of it.
        let alone = Request {
            cursor: None,
            uploads: uploads.clone(),
            syncs: syncs.clone(),
            ..Request::default()
        };
        let refused = prober.send(server, &alone);
        ensure(
            refused.as_ref().is_err_and(|e| e.contains("outside")),
            &format!("{kind} alone was not refused: {refused:?}"),
        )?;
        // Beside the prober's own work, it is refused by itself and the rest goes through.
        let mixed = Request {
            uploads: [own.uploads.clone(), uploads].concat(),
            syncs: [own.syncs.clone(), syncs].concat(),
            ..own.clone()
        };
        let response = prober.send(server, &mixed)?;
        ensure(
            response.refused == [theirs],
            &format!("{kind}: refused {:?}", response.refused),
        )?;
        silent_about(&response, theirs)?;
        // A version 1 phone cannot be told about one file: the whole request is refused.
        let old = Request {
            version: 1,
            ..mixed.clone()
        };
        ensure(
            prober.send(server, &old).is_err(),
            &format!("{kind}: a version 1 request with a foreign file was answered"),
        )?;
    }
    // A forgotten cursor makes the server resend everything in scope, and only that.
    for cursor in [None, Some(super::Cursor { seq: 0, token: 1 })] {
        let fresh = Request {
            cursor,
            ..Request::default()
        };
        silent_about(&prober.send(server, &fresh)?, theirs)?;
    }
    let mut check = Phone::new(13, &[foreign]);
    check.sync(server)?;
    ensure(
        check.view(&theirs)?.records.len() == 1 && check.view(&theirs)?.profile.name == "庚",
        "the foreign file was changed",
    )
}

fn a_phone_that_held_a_moved_file_syncs_the_rest(
    server: &mut dyn SyncServer,
    village: &str,
    other: &str,
) -> Result<(), String> {
    let mut director = Phone::new(14, &[village]);
    let mut county = Phone::new(15, &[&village[..6]]);
    county.author = "county";
    let moved = director.create(village, "壬")?;
    let kept = director.create(village, "癸")?;
    director.sync(server)?;
    county.sync(server)?;
    county
        .replica
        .file_mut(&moved)
        .ok_or("file missing on the county's phone")?
        .update_profile(&profile(other, "壬"), "county", now())
        .map_err(|e| e.to_string())?;
    county.sync(server)?;
    // Offline, the director records on both files before hearing of the move.
    visit(director.replica.file_mut(&moved).ok_or("file missing")?)?;
    let record = visit(director.replica.file_mut(&kept).ok_or("file missing")?)?;
    let response = director.exchange(server)?;
    let decoded = Response::decode(&response).map_err(|e| e.to_string())?;
    ensure(decoded.refused == [moved], "the moved file was not refused")?;
    ensure(
        decoded.docs.iter().all(|d| d.doc() != moved) && decoded.syncs.is_empty(),
        "the moved file was answered with content",
    )?;
    director
        .replica
        .receive(&response, 0)
        .map_err(|e| e.to_string())?;
    director.sync(server)?;
    ensure(
        director
            .replica
            .docs
            .get(&moved)
            .is_some_and(|h| h.quarantined),
        "the moved file's unsent work was not kept aside",
    )?;
    county.sync(server)?;
    ensure(
        county.view(&kept)?.records.contains_key(&record),
        "the rest of the phone's work did not arrive",
    )?;
    ensure(
        county.view(&moved)?.records.is_empty(),
        "work on the moved file was applied",
    )
}

/// An edit a phone may make but the server must refuse: it gets the file and the id of a
/// record in it.
type Forgery = fn(&mut ChildFile, uuid::Uuid) -> Result<(), String>;

fn delete_record(f: &mut ChildFile, record: uuid::Uuid) -> Result<(), String> {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let doc = f.doc_mut();
    let (_, records) = doc
        .get(automerge::ROOT, "records")
        .map_err(|e| e.to_string())?
        .ok_or("no records")?;
    doc.delete(&records, record.to_string())
        .map_err(|e| e.to_string())?;
    doc.commit_with(automerge::transaction::CommitOptions::default().with_message("d".to_owned()));
    Ok(())
}

fn sign_as_someone_else(f: &mut ChildFile, _: uuid::Uuid) -> Result<(), String> {
    let at = now();
    let v = RecordVersion::home_visit(at.date_naive(), "supervisor1", at, Findings::default());
    f.add_record(RecordKind::HomeVisit, &v, "d", at)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn history_is_neither_erased_nor_forged(
    server: &mut dyn SyncServer,
    village: &str,
) -> Result<(), String> {
    let mut a = Phone::new(16, &[village]);
    let id = a.create(village, "子")?;
    let record = visit(a.replica.file_mut(&id).ok_or("file missing")?)?;
    a.sync(server)?;
    let attempts: [(&str, Forgery); 2] = [
        ("erases history", delete_record),
        ("forged author", sign_as_someone_else),
    ];
    for (expected, attempt) in attempts {
        let mut forger = a.replica.clone();
        attempt(forger.file_mut(&id).ok_or("file missing")?, record)?;
        let request = Request::decode(&forger.request()).map_err(|e| e.to_string())?;
        let refused = a.send(server, &request);
        ensure(
            refused.as_ref().is_err_and(|e| e.contains(expected)),
            &format!("{expected}: {refused:?}"),
        )?;
    }
    let mut fresh = Phone::new(17, &[village]);
    fresh.sync(server)?;
    ensure(
        fresh.view(&id)?.records.len() == 1,
        "a refused change was stored",
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
        run_all(&mut store, "220303").expect("conformance");
    }
}
