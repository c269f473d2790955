//! `homevisit region import` and `homevisit user add | disable | enable | reset-password`.

use anyhow::{Context, Result};
use clap::Subcommand;
use homevisit_server::store::{self, people};
use std::io::Read;
use std::path::PathBuf;

use super::serve::SettingsArgs;

/// `homevisit region ...`.
#[derive(Debug, Subcommand)]
pub enum RegionCommand {
    /// Import division codes from a CSV of `code,name,parent` (`-` reads standard input).
    Import {
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// `homevisit user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints a generated password once unless --password-stdin is given.
    Add {
        /// Login name.
        username: String,
        /// director, supervisor, county or admin.
        #[arg(long)]
        role: String,
        /// A region code of the user's scope (repeat for several).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// The name shown to others (defaults to the username).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Stop a user from logging in.
    Disable {
        /// Login name.
        username: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Let a disabled user log in again.
    Enable {
        /// Login name.
        username: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Set a new password (generated and printed once, or from standard input) and unlock.
    ResetPassword {
        /// Login name.
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

fn connect(settings: &SettingsArgs) -> Result<store::PooledConn> {
    let s = settings.settings()?;
    homevisit_server::files::private_dir(&s.data_dir)?;
    Ok(store::open(&s.database()?, 1)?.get()?)
}

fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .context("reading the password")?;
        let p = p.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(
            p.chars().count() >= 10,
            "a password needs at least 10 characters"
        );
        Ok((p, false))
    } else {
        Ok((people::generate_password(), true))
    }
}

/// Runs `homevisit region ...`.
pub fn region(command: RegionCommand) -> Result<()> {
    match command {
        RegionCommand::Import { file, settings } => {
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::stdin().read_to_string(&mut t)?;
                t
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let list = people::parse_regions(&text)?;
            let n = people::import_regions(&mut *connect(&settings)?, list)?;
            println!("imported {n} regions");
        }
    }
    Ok(())
}

/// Runs `homevisit user ...`.
pub fn user(command: UserCommand) -> Result<()> {
    let now = homevisit_server::service::clock::unix_now();
    match command {
        UserCommand::Add {
            username,
            role,
            regions,
            name,
            password_stdin,
            settings,
        } => {
            let role: people::Role = role.parse()?;
            let (password, generated) = password(password_stdin)?;
            let display = name.unwrap_or_else(|| username.clone());
            people::add_user(
                &mut *connect(&settings)?,
                &username,
                &display,
                role,
                &regions,
                &password,
                now,
            )?;
            println!("added {} `{username}`", role.key());
            if generated {
                println!("password (shown once): {password}");
            }
        }
        UserCommand::Disable { username, settings } => {
            people::set_disabled(&mut *connect(&settings)?, &username, true)?;
            println!("disabled `{username}`");
        }
        UserCommand::Enable { username, settings } => {
            people::set_disabled(&mut *connect(&settings)?, &username, false)?;
            println!("enabled `{username}`");
        }
        UserCommand::ResetPassword {
            username,
            password_stdin,
            settings,
        } => {
            let (password, generated) = password(password_stdin)?;
            people::reset_password(&mut *connect(&settings)?, &username, &password)?;
            println!("reset the password of `{username}`");
            if generated {
                println!("password (shown once): {password}");
            }
        }
    }
    Ok(())
}
