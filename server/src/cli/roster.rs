//! `homevisit roster import FILE.csv|FILE.xlsx`: a county's list of children becomes their files.

use anyhow::{Context, Result};
use clap::Subcommand;
use homevisit_server::service::roster::{self, RosterError};
use homevisit_server::service::schedules::Evaluation;
use homevisit_server::store::{self, people, write_transaction};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::serve::SettingsArgs;

/// `homevisit roster ...`.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Create a file for each child of a roster (CSV or XLSX) who has none (docs/OPERATIONS.md
    /// lists the columns). A roster with any bad row changes nothing; importing it again changes nothing.
    Import {
        /// The roster: UTF-8 CSV, or an XLSX workbook (its first sheet), with a header row.
        file: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// Runs `homevisit roster ...`.
pub fn run(command: RosterCommand) -> Result<()> {
    let RosterCommand::Import { file, settings } = command;
    let s = settings.settings()?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let rules = s.rule_set()?;
    let policy = s.alert_policy()?;
    let today = s.clock()?.today();
    homevisit_server::files::private_dir(&s.data_dir)?;
    let pool = store::open(&s.database()?, 1)?;
    let mut conn = pool.get()?;
    let villages = people::village_codes(&mut conn)?;
    let format = match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("xlsx") => roster::Format::Xlsx,
        Some(e) if e.eq_ignore_ascii_case("csv") => roster::Format::Csv,
        _ => roster::Format::sniff(&bytes),
    };
    let children = match roster::parse(&bytes, format, &villages, None, today) {
        Ok(children) => children,
        Err(RosterError::Invalid(errors)) => {
            for e in &errors {
                eprintln!("row {}: {}: {}", e.row, e.field, e.message);
            }
            anyhow::bail!(
                "{} errors in {}; nothing was imported",
                errors.len(),
                file.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    let total = children.len();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |done: usize| {
        if terminal && (done.is_multiple_of(100) || done == total) {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        }
    };
    let e = Evaluation {
        rules: &rules,
        on: today,
        alerts: &policy,
        now: homevisit_server::service::clock::unix_now(),
    };
    let at = chrono::DateTime::from_timestamp(e.now, 0).unwrap_or_default();
    let done = write_transaction(&mut conn, |c| {
        roster::import(c, &children, roster::AUTHOR, &e, at, &mut progress)
    })?;
    if terminal {
        eprintln!();
    }
    println!(
        "imported {}: {} files created, {} children already had one",
        file.display(),
        done.created,
        done.unchanged
    );
    Ok(())
}
