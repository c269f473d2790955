//! A sync round trip as the server runs it: sync-core's protocol over the diesel store, in one
//! write transaction with everything that goes with it (the schedules of the files it wrote,
//! the device's last contact, and the audit rows of what it delivered and refused).

use homevisit_sync_core::sync::server::{Context, HandleError, handle};
use homevisit_sync_core::sync::{ChildId, Request, Response};

use crate::service::alerts::{Actor, Changed};
use crate::service::schedules::Evaluation;
use crate::store::cache::DocCache;
use crate::store::sync::SqlSyncStore;
use crate::store::{DbConnection, write_transaction};

/// What a sync runs with besides its request.
#[derive(Default)]
pub struct Env<'a> {
    /// Loaded documents kept between syncs.
    pub cache: Option<&'a DocCache>,
    /// The reader audit rows are written for (its `action`, `child_id` and `village` are filled
    /// in per file); `None` writes none.
    pub audit: Option<&'a crate::store::audit::Read<'a>>,
    /// How the schedules (and alerts) of written files are evaluated; `None` leaves them to
    /// the job.
    pub schedules: Option<Evaluation<'a>>,
    /// Whose alerts a version 3 sync carries, and who acknowledges them; `None`: none.
    pub alerts_for: Option<Actor<'a>>,
}

/// Audit rows for files a request named but the caller may not see: each denial is recorded
/// with the file's true village, so the county it belongs to sees who tried.
pub fn audit_refusals(
    c: &mut DbConnection,
    reader: &crate::store::audit::Read<'_>,
    refused: &[ChildId],
) -> diesel::QueryResult<()> {
    let ids: Vec<String> = refused.iter().map(|id| id.0.to_string()).collect();
    audit_files(c, reader, "sync.refused", &ids)
}

/// One audit row of `action` for each file, with the file's village as stored.
fn audit_files(
    c: &mut DbConnection,
    reader: &crate::store::audit::Read<'_>,
    action: &str,
    ids: &[String],
) -> diesel::QueryResult<()> {
    let villages = crate::store::children::villages_of(c, ids)?;
    for id in ids {
        crate::store::audit::record(
            c,
            &crate::store::audit::Read {
                action,
                child_id: Some(id),
                village: villages.get(id).map(String::as_str),
                ..reader.clone()
            },
        )?;
    }
    Ok(())
}

/// Applies one sync request in one write transaction: all of it is committed, or none. The
/// device's last-seen time is part of the same transaction, and so, when `audit` is given
/// (its `action`, `child_id` and `village` are filled in here), is one audit row for each file
/// the response delivers to the device (a phone's download is a read of the file) and for each
/// file refused as outside the caller's scope. A request refused whole for that reason writes
/// its denials in a transaction of their own.
pub fn apply(
    conn: &mut DbConnection,
    ctx: &Context<'_>,
    request: &Request,
    env: &Env<'_>,
) -> Result<Response, HandleError<diesel::result::Error>> {
    let outcome = merge(conn, ctx, request, env).map(|(response, changed)| {
        if let (true, Some(e)) = (changed.any(), &env.schedules) {
            // After commit: a stream woken now finds the alert.
            e.alerts.bus.wake();
        }
        response
    });
    if let (Err(HandleError::OutOfScope(refused)), Some(reader)) = (&outcome, env.audit) {
        write_transaction(conn, |c| audit_refusals(c, reader, refused))?;
    }
    outcome
}

fn merge(
    conn: &mut DbConnection,
    ctx: &Context<'_>,
    request: &Request,
    env: &Env<'_>,
) -> Result<(Response, Changed), HandleError<diesel::result::Error>> {
    write_transaction(conn, |c| {
        let mut store = SqlSyncStore::for_sync(c, env.cache);
        let mut response = handle(&mut store, ctx, request)?;
        let (touched, numbers) = store.finish(ctx)?;
        let mut changed = match &env.schedules {
            Some(e) => crate::service::schedules::refresh(c, &touched, e)?,
            None => Changed::default(),
        };
        // A revoked device is only told to wipe.
        if let (true, Some(actor)) = (request.version >= 3 && !ctx.revoked, &env.alerts_for) {
            let now = i64::try_from(ctx.now_ms / 1000).unwrap_or(i64::MAX);
            let (items, more, acknowledged) =
                crate::service::alerts::sync_items(c, actor, &request.items, now)?;
            response.items.extend(items);
            response.more |= more;
            changed.acknowledged += acknowledged;
        }
        crate::store::auth::touch_device(c, &ctx.device.0.to_string(), (ctx.now_ms / 1000) as i64)?;
        if let Some(reader) = env.audit {
            let delivered: std::collections::BTreeSet<String> = response
                .docs
                .iter()
                .map(|d| d.doc())
                .chain(response.syncs.iter().map(|s| s.doc))
                .map(|id| id.0.to_string())
                .collect();
            let ids: Vec<String> = delivered.into_iter().collect();
            audit_files(c, reader, "sync.download", &ids)?;
            audit_refusals(c, reader, &response.refused)?;
            // A file ordered off the phone (moved out of its villages) is audited too: the
            // county can see when a transferred file left the old director's phone.
            let dropped: Vec<String> = response.drops.iter().map(|id| id.0.to_string()).collect();
            audit_files(c, reader, "sync.drop", &dropped)?;
        }
        // Last: from here to commit, syncs take turns.
        numbers.issue(c)?;
        Ok((response, changed))
    })
}

/// Stores a file made on the server (the demo county, a roster import) as a sync would store
/// a phone's: checked, saved, projected and numbered, so phones in its village receive it at
/// their next sync. There is no device, so no receipt. Run it in a write transaction.
pub fn store_made_here(
    conn: &mut DbConnection,
    file: &mut homevisit_sync_core::file::ChildFile,
    by: &str,
) -> Result<(), MadeHereError> {
    use homevisit_sync_core::file::Checked;
    use homevisit_sync_core::sync::server::{Merge, ServerStore};
    use homevisit_sync_core::sync::{DeviceId, Scope};
    let id = file.id()?;
    let checked = Checked {
        view: file.view()?,
        tree: file.to_json(),
        touched: None,
    };
    let scope = Scope::new([checked.view.profile.village_code.clone()]);
    let ctx = Context {
        device: DeviceId(uuid::Uuid::nil()),
        user: by,
        author: by,
        scope: &scope,
        now_ms: 0,
        page_bytes: 0,
        revoked: false,
    };
    let merge = Merge {
        checked: &checked,
        received: &[],
        ctx: &ctx,
        amendment: None,
    };
    SqlSyncStore::new(conn).put_doc(id, &merge, file.doc_mut())?;
    Ok(())
}

/// Why a file made on the server could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum MadeHereError {
    /// The file does not read back.
    #[error("file: {0}")]
    File(#[from] homevisit_sync_core::file::FileError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] diesel::result::Error),
}
