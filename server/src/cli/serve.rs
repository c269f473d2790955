//! `homevisit serve`, `homevisit migrate` and `homevisit config default`.

use anyhow::{Context, Result, bail};
use clap::Args;
use homevisit_server::settings::{EXAMPLE, Settings};
use homevisit_server::{app, store};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where settings come from, and the flags that override them.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// A TOML settings file (see `homevisit config default`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory: the embedded database, generated certificate.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long)]
    database_url: Option<String>,
    /// PEM certificate chain.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// A self-signed certificate for trying homevisit out on one machine.
    #[arg(long)]
    dev_tls: bool,
    /// Plain HTTP, only behind a proxy that terminates TLS.
    #[arg(long)]
    plain_http: bool,
}

impl SettingsArgs {
    /// Defaults, the file, `HOMEVISIT__` variables, then these flags.
    pub fn settings(&self) -> Result<Settings> {
        let mut s = Settings::load(self.config.as_deref(), std::env::vars())?;
        if let Some(listen) = self.listen {
            s.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            s.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            s.database_url = url.clone();
        }
        if self.tls_cert.is_some() || self.tls_key.is_some() {
            s.tls.cert = self.tls_cert.clone();
            s.tls.key = self.tls_key.clone();
        }
        s.tls.dev |= self.dev_tls;
        s.tls.plain_http |= self.plain_http;
        Ok(s)
    }
}

/// `homevisit serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Build the demo county first (once) and print its logins.
    #[arg(long)]
    demo: bool,
    /// Count dates as if today were this day (YYYY-MM-DD): only with --demo or the
    /// `development` setting.
    #[arg(long)]
    today: Option<chrono::NaiveDate>,
}

/// Runs the server until SIGINT or SIGTERM, then drains in-flight requests.
pub fn serve(args: &ServeArgs) -> Result<()> {
    homevisit_server::log::init();
    let mut settings = args.settings.settings()?;
    settings.check_tls()?;
    settings.database()?;
    if args.today.is_some() && !(args.demo || settings.development) {
        bail!("--today is for the demo and for development: give --demo, or set development");
    }
    settings.today = args.today;
    let clock = settings.clock()?;
    if args.demo {
        demo_on(&settings, clock.today())?;
    }
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("listening on {}", settings.listen))?;
    actix_web::rt::System::new().block_on(async move {
        app::launch_with_listener(settings, listener, shutdown_signal()).await
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Builds the demo county unless it is there, and prints its logins.
pub fn demo(args: &SettingsArgs) -> Result<()> {
    let settings = args.settings()?;
    demo_on(&settings, settings.clock()?.today())
}

fn demo_on(settings: &Settings, today: chrono::NaiveDate) -> Result<()> {
    homevisit_server::files::private_dir(&settings.data_dir)?;
    let pool = store::open(&settings.database()?, 1)?;
    let built = homevisit_server::demo::ensure(&mut *pool.get()?, &settings.data_dir, today)?;
    print!("{}", built.describe());
    Ok(())
}

/// Applies pending migrations and exits.
pub fn migrate(args: &SettingsArgs) -> Result<()> {
    let settings = args.settings()?;
    homevisit_server::files::private_dir(&settings.data_dir)?;
    let url = settings.database()?;
    store::open(&url, 1)?;
    println!("database is up to date");
    Ok(())
}

/// Prints the documented example settings.
pub fn config_default() {
    print!("{EXAMPLE}");
}
