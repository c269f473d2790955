//! The HTTP service: actix-web over the storage layer.

use actix_web::{App, HttpServer, web};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::{error, openapi};
use crate::auth::tokens::TokenKeys;
use crate::settings::Settings;
use crate::state::AppState;
use crate::store;
use crate::store::blobs::BlobStore;
use crate::store::cache::DocCache;
use crate::tls;

/// How long a connection may take for its TLS handshake, and then for its request's head.
const SLOW_LINK: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest JSON body any endpoint takes.
pub const MAX_JSON_BYTES: usize = 64 << 10;

/// Sweeps abandoned photo uploads now and every hour, for as long as the server runs.
fn sweep_partial_uploads(blobs: BlobStore) {
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            let store = blobs.clone();
            match web::block(move || store.sweep(crate::store::blobs::PARTIAL_TTL)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(event = "partial_uploads_swept", count = n),
                Ok(Err(e)) => tracing::error!(event = "partial_upload_sweep_failed", cause = %e),
                Err(e) => tracing::error!(event = "partial_upload_sweep_failed", cause = %e),
            }
        }
    });
}

/// Re-evaluates everyone's schedules when the date has moved on or the rules changed: checked
/// every hour and just after each local midnight, for as long as the server runs.
fn evaluate_schedules(state: AppState) {
    actix_web::rt::spawn(async move {
        loop {
            tokio::time::sleep(until_next_check(&state.clock)).await;
            evaluation_job(&state, "hourly").await;
        }
    });
}

fn delivery_settings(
    settings: &Settings,
    listening: std::net::SocketAddr,
) -> crate::service::webhooks::Delivery {
    let a = &settings.alerts;
    let scheme = if settings.tls.plain_http {
        "http"
    } else {
        "https"
    };
    crate::service::webhooks::Delivery {
        retry_initial_secs: a.retry_initial_secs,
        retry_max_secs: a.retry_max_secs,
        retry_for_secs: a.retry_for_hours.saturating_mul(3600),
        public_url: if a.public_url.is_empty() {
            format!("{scheme}://{listening}")
        } else {
            a.public_url.clone()
        },
    }
}

/// One sender per webhook: woken when alerts are raised, and every second for retries that
/// fall due. A dead receiver holds up only its own sender.
fn deliver_webhooks(state: &AppState, delivery: crate::service::webhooks::Delivery) {
    use crate::service::webhooks as hooks;
    let delivery = Arc::new(delivery);
    let agent = hooks::agent();
    for hook in state.alerts.webhooks.clone() {
        let (pool, delivery, agent) = (state.pool.clone(), delivery.clone(), agent.clone());
        let mut woken = state.alerts.bus.subscribe();
        let hook = Arc::new(hook);
        actix_web::rt::spawn(async move {
            loop {
                let now = crate::service::clock::unix_now();
                let h = hook.clone();
                let due = crate::state::with_db(&pool, move |c| hooks::claim_due(c, &h, now)).await;
                let pending = match due {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(event = "webhook_claim_failed", webhook = %hook.name, cause = %e);
                        Vec::new()
                    }
                };
                let full = pending.len() as i64 >= hooks::BATCH;
                for p in pending {
                    // The delivery's id is the alert event's: it names no child.
                    let span =
                        tracing::info_span!("delivery", webhook = %hook.name, delivery = %p.id);
                    let (h, d, p2) = (hook.clone(), delivery.clone(), p.clone());
                    let now_ms = crate::service::clock::unix_now() * 1000;
                    let message = crate::state::with_db(&pool, move |c| {
                        hooks::render(c, &h, &d, &p2, now_ms)
                    })
                    .await;
                    let outcome = match message {
                        Ok(m) => {
                            let (h, a) = (hook.clone(), agent.clone());
                            web::block(move || hooks::send(&a, &h, &m))
                                .await
                                .unwrap_or_else(|e| Err(e.to_string()))
                        }
                        Err(e) => Err(format!("rendering: {e}")),
                    };
                    let (d, p2, o) = (delivery.clone(), p.clone(), outcome.clone());
                    let now = crate::service::clock::unix_now();
                    let kept =
                        crate::state::with_db(&pool, move |c| hooks::record(c, &d, &p2, &o, now))
                            .await;
                    let _entered = span.enter();
                    let result = match (outcome, kept) {
                        (Ok(()), Ok(_)) => {
                            tracing::info!(event = "webhook_delivered");
                            "delivered"
                        }
                        (Err(e), Ok(true)) => {
                            tracing::info!(event = "webhook_retry", cause = %e);
                            "retry"
                        }
                        (Err(e), Ok(false)) => {
                            tracing::error!(event = "webhook_given_up", cause = %e);
                            "given_up"
                        }
                        (_, Err(e)) => {
                            tracing::error!(event = "webhook_record_failed", cause = %e);
                            "unrecorded"
                        }
                    };
                    metrics::counter!("homevisit_webhook_deliveries_total", "outcome" => result)
                        .increment(1);
                }
                if !full {
                    tokio::select! {
                        _ = woken.changed() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        });
    }
}

/// How long until the next hour or the next local midnight, whichever comes first.
fn until_next_check(clock: &crate::service::clock::Clock) -> std::time::Duration {
    let now = crate::service::clock::unix_now();
    let local = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .with_timezone(&clock.zone());
    let midnight = local
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 5))
        .map(|t| (t - local.naive_local()).num_seconds())
        .unwrap_or(3600);
    std::time::Duration::from_secs(midnight.clamp(1, 3600) as u64)
}

/// One run of the schedule evaluation, in a `job` span, counted by how it ended.
async fn evaluation_job(state: &AppState, trigger: &'static str) {
    use crate::service::schedules::Run;
    use tracing::Instrument;
    let span = tracing::info_span!("job", name = "evaluate_schedules", trigger);
    let e = state.evaluation();
    let started = std::time::Instant::now();
    let run = crate::state::with_db(&state.pool, move |c| {
        crate::service::schedules::evaluate_all_if_due(c, &e.get())
    })
    .instrument(span.clone())
    .await;
    let _entered = span.enter();
    let result = match run {
        Ok(Run::Evaluated(n)) => {
            tracing::info!(
                event = "schedules_evaluated",
                children = n,
                ms = started.elapsed().as_millis() as u64
            );
            "evaluated"
        }
        Ok(Run::UpToDate) => "up_to_date",
        Ok(Run::Busy) => "busy",
        Err(e) => {
            tracing::error!(event = "schedule_evaluation_failed", cause = %e);
            "failed"
        }
    };
    metrics::counter!("homevisit_job_runs_total", "job" => "evaluate_schedules", "outcome" => result)
        .increment(1);
}

/// The routes with their extractor settings and the catch-all, for the server.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BYTES)
            .error_handler(error::json_error),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::bad_request("invalid_query", e.to_string()).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::bad_request("invalid_path", e.to_string()).into()),
    )
    .configure(|c| crate::api::routes(&mut utoipa_actix_web::service_config::ServiceConfig::new(c)))
    .default_service(web::to(openapi::not_found));
}

/// Runs the service on `listener` until `shutdown` completes, then drains in-flight requests.
///
/// Once the database is migrated and TLS is ready it prints one line to standard output,
/// `homevisit listening on https://ADDR`, on which scripts and tests wait.
pub async fn launch_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    settings.check_tls()?;
    let rules = Arc::new(settings.rule_set()?);
    let listener_addr = listener.local_addr()?;
    crate::files::private_dir(&settings.data_dir)?;
    let keys = Arc::new(TokenKeys::load_or_create(&settings.data_dir.join("keys"))?);
    let database = settings.database()?;
    let pool_size = settings.database_pool_size;
    let pool = web::block(move || store::open(&database, pool_size)).await??;
    let tls = tls::server_config(&settings)?;
    let state = AppState {
        pool,
        keys,
        rules,
        max_sync_bytes: settings.max_sync_bytes,
        blobs: BlobStore::new(&settings.data_dir.join("blobs")),
        docs: Arc::new(DocCache::new(settings.doc_cache)),
        body_timeout: std::time::Duration::from_secs(settings.body_timeout.max(1)),
        clock: settings.clock()?,
        alerts: Arc::new(settings.alert_policy()?),
        national_columns: Arc::new(settings.national_columns()?),
    };
    sweep_partial_uploads(state.blobs.clone());
    // Everyone is evaluated before the first request, so no list is answered from an older day.
    evaluation_job(&state, "start").await;
    evaluate_schedules(state.clone());
    deliver_webhooks(&state, delivery_settings(&settings, listener_addr));
    crate::metrics::handle();
    actix_web::rt::spawn(async {
        let mut every = actix_web::rt::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            crate::metrics::upkeep();
        }
    });
    let metrics_token = web::Data::new(crate::api::health::MetricsToken(
        settings.metrics_token.clone(),
    ));
    let document = web::Data::new(openapi::ApiDocument::new(&openapi::document()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(metrics_token.clone())
            .app_data(document.clone())
            .wrap(actix_web::middleware::from_fn(crate::api::body::guard))
            .wrap(actix_web::middleware::from_fn(crate::metrics::observe))
            .configure(configure)
    })
    .shutdown_timeout(30)
    // A phone on slow 2G needs seconds for its handshake (a 2 s round trip, the certificate at
    // a few kilobits a second, a lost packet resent) and for its request's head: actix's 3 s
    // and 5 s cut such phones off, and its own clients too when the cores were saturated.
    // Each waiting handshake holds one of a worker's 256 handshake slots, so this is not
    // unbounded; the body has its own bound (`body_timeout`).
    .tls_handshake_timeout(SLOW_LINK)
    .client_request_timeout(SLOW_LINK)
    .disable_signals();
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
    .run();
    let scheme = if settings.tls.plain_http {
        "http"
    } else {
        "https"
    };
    println!("homevisit listening on {scheme}://{}", listener_addr);
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}
