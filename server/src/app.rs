//! The HTTP service: actix-web over the storage layer.

use actix_web::{App, HttpServer, web};
use std::future::Future;
use std::net::TcpListener;

use crate::api::{error, health};
use crate::settings::Settings;
use crate::store::{self, DbPool};
use crate::tls;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: DbPool,
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
            .service(health::healthz)
            .service(health::readyz)
            .default_service(web::to(error::not_found))
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
