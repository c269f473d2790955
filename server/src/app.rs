//! The HTTP service: actix-web over the storage layer.

use actix_web::{App, HttpResponse, HttpServer, get, web};
use serde::Serialize;
use std::future::Future;
use std::net::TcpListener;

use crate::settings::Settings;
use crate::store::{self, DbPool};
use crate::tls;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pool: DbPool,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// The process is up.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The process can serve: its database answers.
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ready = web::block(move || -> bool {
        pool.get()
            .map(|mut c| {
                use diesel::connection::SimpleConnection;
                c.batch_execute("SELECT 1").is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if ready {
        HttpResponse::Ok().json(Health { status: "ready" })
    } else {
        HttpResponse::ServiceUnavailable().json(Health {
            status: "database unavailable",
        })
    }
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
    let listener_addr = listener.local_addr()?;
    std::fs::create_dir_all(&settings.data_dir)?;
    let database = settings.database()?;
    let pool_size = settings.database_pool_size;
    let pool = web::block(move || store::open(&database, pool_size)).await??;
    let tls = tls::server_config(&settings)?;
    let state = AppState { pool };
    let plain = settings.tls.plain_http;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .service(healthz)
            .service(readyz)
    })
    .shutdown_timeout(30)
    .disable_signals();
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
    .run();
    let scheme = if plain { "http" } else { "https" };
    println!("homevisit listening on {scheme}://{}", listener_addr);
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}
