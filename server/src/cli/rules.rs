//! `homevisit rules eval`: the contract of docs/RULES.md.

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{ArgGroup, Subcommand};
use homevisit_sync_core::rules::{Case, RuleSet, evaluate};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Evaluate cases (a JSON array) on a date and print each one's schedules as JSON.
    #[command(group(ArgGroup::new("set").required(true).args(["preset", "rules"])))]
    Eval {
        /// A built-in rule set: tiedong or chongqing.
        #[arg(long)]
        preset: Option<String>,
        /// A rule file (TOML).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The evaluation date, YYYY-MM-DD.
        #[arg(long)]
        on: NaiveDate,
        /// The cases file; `-` or nothing reads standard input.
        cases: Option<PathBuf>,
    },
}

pub fn run(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::Eval {
            preset,
            rules,
            on,
            cases,
        } => {
            let rules = match (preset, rules) {
                (Some(name), _) => RuleSet::preset(&name)?,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    RuleSet::from_toml(&text).with_context(|| format!("in {}", path.display()))?
                }
                (None, None) => bail!("give --preset or --rules"),
            };
            let input = match cases.as_deref() {
                None => read_stdin()?,
                Some(p) if p.as_os_str() == "-" => read_stdin()?,
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?,
            };
            let out = eval(&rules, &input, on)?;
            println!("{out}");
            Ok(())
        }
    }
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading standard input")?;
    Ok(s)
}

/// Evaluates every case, or fails naming each bad case and field; prints nothing on failure.
fn eval(rules: &RuleSet, input: &str, on: NaiveDate) -> Result<String> {
    let value: serde_json::Value =
        serde_json::from_str(input).context("the cases are not valid JSON")?;
    let serde_json::Value::Array(items) = value else {
        bail!("the cases must be a JSON array");
    };
    let mut results = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = item
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), |id| format!("{id:?}"));
        match Case::from_json(item)
            .map_err(|e| e.to_string())
            .and_then(|case| evaluate(rules, &case, on).map_err(|e| e.to_string()))
        {
            Ok(evaluation) => results.push(evaluation),
            Err(e) => problems.push(format!("case {name}: {e}")),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(serde_json::to_string(&results)?)
}
