//! What every request shares, and the way from an async handler to blocking database work.
//!
//! Below the HTTP layer and above storage: `api/` takes from here, `store/` never does, and
//! nothing here knows HTTP. A failure comes back as [`Blocking`], which the HTTP layer turns
//! into its own answer (503 when the database is away, 500 when the task died).

use homevisit_sync_core::rules::RuleSet;
use std::sync::Arc;

use crate::auth::tokens::TokenKeys;
use crate::store::blobs::BlobStore;
use crate::store::cache::DocCache;
use crate::store::{DbConnection, DbPool};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: DbPool,
    /// The keys access tokens are signed and checked with.
    pub keys: Arc<TokenKeys>,
    /// The visit rules schedules are computed with.
    pub rules: Arc<RuleSet>,
    /// The largest sync body accepted, bytes.
    pub max_sync_bytes: usize,
    /// Where photos are kept.
    pub blobs: BlobStore,
    /// Loaded child files kept between syncs.
    pub docs: Arc<DocCache>,
    /// How long a request body may stall (see `api::body`).
    pub body_timeout: std::time::Duration,
    /// Where "today" comes from.
    pub clock: crate::service::clock::Clock,
    /// How alerts are raised, and the bus that tells streams and senders of them.
    pub alerts: Arc<crate::service::alerts::Policy>,
    /// The columns of the national update.
    pub national_columns: Arc<crate::service::national::Columns>,
}

impl AppState {
    /// What evaluating schedules runs with today.
    pub fn evaluation(&self) -> Evaluating {
        Evaluating {
            rules: self.rules.clone(),
            on: self.clock.today(),
            alerts: self.alerts.clone(),
        }
    }
}

/// An owned [`Evaluation`](crate::service::schedules::Evaluation), to move into blocking work.
#[derive(Clone)]
pub struct Evaluating {
    rules: Arc<RuleSet>,
    on: chrono::NaiveDate,
    alerts: Arc<crate::service::alerts::Policy>,
}

impl Evaluating {
    /// The evaluation, with now as the time of raises and closes.
    pub fn get(&self) -> crate::service::schedules::Evaluation<'_> {
        crate::service::schedules::Evaluation {
            rules: &self.rules,
            on: self.on,
            alerts: &self.alerts,
            now: crate::service::clock::unix_now(),
        }
    }
}

/// Why blocking database work did not give its own answer.
#[derive(Debug, thiserror::Error)]
pub enum Blocking<E> {
    /// The work ran and failed with its own error.
    #[error(transparent)]
    Failed(E),
    /// No connection could be had: the database is away.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The task itself died.
    #[error("blocking task: {0}")]
    Died(String),
}

/// Runs blocking database work on the blocking pool with a pooled connection.
pub async fn with_db<T, E, F>(pool: &DbPool, f: F) -> Result<T, Blocking<E>>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let pool = pool.clone();
    let outcome = actix_web::web::block(move || pool.get().map(|mut conn| f(&mut conn))).await;
    match outcome {
        Ok(Ok(result)) => result.map_err(Blocking::Failed),
        Ok(Err(e)) => Err(Blocking::Unavailable(e.to_string())),
        Err(e) => Err(Blocking::Died(e.to_string())),
    }
}
