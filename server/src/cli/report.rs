//! `homevisit report compliance` and `homevisit report national`: the county reports on the
//! command line (docs/REPORTS.md).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use homevisit_server::service::national;
use homevisit_server::service::reports::{self, Level, Period};
use homevisit_server::store::audit::Read;
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
    /// The quarterly update for the national Child Welfare Information System, as XLSX: one row
    /// per child file. Each file exported is audited as read by the operator.
    National {
        /// A quarter (2026-Q4) or a month (2026-11); default: this quarter.
        #[arg(long)]
        period: Option<String>,
        /// The region to export (repeat for several), as a 12-digit code.
        #[arg(long = "region", required = true)]
        regions: Vec<String>,
        /// A TOML file renaming columns (key = "heading", or key = false to leave one out);
        /// default: the settings' `reports.national_columns`.
        #[arg(long)]
        columns: Option<PathBuf>,
        /// The workbook to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// Runs `homevisit report ...`.
pub fn run(command: ReportCommand) -> Result<()> {
    let (period, level, regions, format, out, settings) = match command {
        ReportCommand::Compliance {
            period,
            level,
            regions,
            format,
            out,
            settings,
        } => (period, level, regions, format, out, settings),
        ReportCommand::National {
            period,
            regions,
            columns,
            out,
            settings,
        } => return national(period, &regions, columns, &out, &settings),
    };
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
    let scope = scope_of(&regions);
    let rules = s.rule_set()?;
    homevisit_server::files::private_dir(&s.data_dir)?;
    let pool = store::open(&s.database()?, 1)?;
    let mut conn = pool.get()?;
    let asked = reports::Asked {
        label: &label,
        period,
        level,
        today,
        zone: clock.zone(),
    };
    let report = reports::compliance(&mut conn, &scope, &rules, asked)?;
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

fn scope_of(regions: &[String]) -> Scope {
    Scope::new(regions.iter().map(|r| people::region_prefix(r).to_owned()))
}

fn national(
    period: Option<String>,
    regions: &[String],
    columns: Option<PathBuf>,
    out: &std::path::Path,
    settings: &SettingsArgs,
) -> Result<()> {
    let s = settings.settings()?;
    let today = s.clock()?.today();
    let label = period.unwrap_or_else(|| reports::current_quarter(today));
    let period =
        Period::parse(&label).context("the period is a quarter (2026-Q4) or a month (2026-11)")?;
    let columns = match columns {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            national::Columns::from_mapping(&text)?
        }
        None => s.national_columns()?,
    };
    let rules = s.rule_set()?;
    homevisit_server::files::private_dir(&s.data_dir)?;
    let pool = store::open(&s.database()?, 1)?;
    let mut conn = pool.get()?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let reader = Read {
        at: homevisit_server::service::clock::unix_now(),
        user_id: "command-line",
        username: &operator,
        role: "operator",
        device_id: "",
        action: national::ACTION,
        child_id: None,
        village: None,
        remote: "local",
    };
    let scope = scope_of(regions);
    let export = store::write_transaction(&mut conn, |c| {
        national::export(c, &scope, &reader, &rules, (&label, period), today)
    })?;
    std::fs::write(out, national::to_xlsx(&export, &columns)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {}: {} children, {label} ({} to {})",
        out.display(),
        export.rows.len(),
        export.from,
        export.to
    );
    Ok(())
}
