//! `homevisit report compliance`: the compliance report on the command line (docs/REPORTS.md).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use homevisit_server::service::reports::{self, Level, Period};
use homevisit_server::store::{self, people};
use homevisit_sync_core::sync::Scope;
use std::io::Write;
use std::path::PathBuf;

use super::serve::SettingsArgs;

/// `homevisit report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Visits required, made on time and late, overdue children and danger reports, by region
    /// and category, for a month or a quarter.
    Compliance {
        /// A month (2026-11) or a quarter (2026-Q4); default: this month.
        #[arg(long)]
        period: Option<String>,
        /// village, township or county.
        #[arg(long, default_value = "township")]
        level: String,
        /// The region to report on (repeat for several), as a 12-digit code.
        #[arg(long = "region", required = true)]
        regions: Vec<String>,
        /// json, csv or xlsx.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write here instead of standard output (needed for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// Runs `homevisit report ...`.
pub fn run(command: ReportCommand) -> Result<()> {
    let ReportCommand::Compliance {
        period,
        level,
        regions,
        format,
        out,
        settings,
    } = command;
    let s = settings.settings()?;
    let clock = s.clock()?;
    let today = clock.today();
    let label = period.unwrap_or_else(|| reports::current_month(today));
    let period =
        Period::parse(&label).context("the period is a month (2026-11) or a quarter (2026-Q4)")?;
    let level = Level::parse(&level).context("the level is village, township or county")?;
    if format == "xlsx" && out.is_none() {
        bail!("an xlsx report needs --out FILE");
    }
    let scope = Scope::new(regions.iter().map(|r| people::region_prefix(r).to_owned()));
    let rules = s.rule_set()?;
    homevisit_server::files::private_dir(&s.data_dir)?;
    let pool = store::open(&s.database()?, 1)?;
    let mut conn = pool.get()?;
    let report = reports::compliance(
        &mut conn,
        &scope,
        &rules,
        &label,
        period,
        level,
        today,
        clock.zone(),
    )?;
    let bytes = match format.as_str() {
        "json" => serde_json::to_vec_pretty(&report)?,
        "csv" => reports::to_csv(&report),
        "xlsx" => reports::to_xlsx(&report)?,
        other => bail!("the format is json, csv or xlsx, not {other}"),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}
