//! `homevisit rules ...`: the visit-rules engine of sync-core from the command line.

use chrono::NaiveDate;
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use homevisit_sync_core::rules::{
    CasesError, DateError, Evaluation, RuleSet, RuleSetError, evaluate, parse_date, presets,
};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::json::to_spaced_string;

/// `homevisit rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Evaluate cases on a date and print each child's schedules as a JSON array.
    #[command(
        after_help = "Example:\n  homevisit rules eval --preset tiedong --on 2026-11-22 cases.json\n\n\
        Input, output and the rule-file format: docs/RULES.md. Bad input prints nothing on \
        stdout and exits with status 1, naming each bad case and field on stderr."
    )]
    Eval(EvalArgs),
}

/// The arguments of `homevisit rules eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    source: Source,
    /// The evaluation date, a local date.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_on)]
    on: NaiveDate,
    /// A JSON array of cases; `-` (the default) reads stdin.
    #[arg(value_name = "CASES.json", default_value = "-")]
    cases: String,
}

/// Where the rules come from: exactly one of a preset and a rule file.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// A built-in preset.
    #[arg(long, value_name = "NAME", value_parser = PossibleValuesParser::new(presets::NAMES.iter().copied()))]
    preset: Option<String>,
    /// A rule file (TOML).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
}

fn parse_on(text: &str) -> Result<NaiveDate, DateError> {
    parse_date(text)
}

/// Why `homevisit rules ...` failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rule file cannot be read.
    #[error("cannot read rule file {path}: {source}")]
    ReadRules {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The rule file is not a valid rule set.
    #[error("rule file {path}: {source}")]
    Rules {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: RuleSetError,
    },
    /// The preset does not load (an unknown name).
    #[error("preset {name}: {source}")]
    Preset {
        /// The preset's name.
        name: String,
        /// What is wrong.
        source: RuleSetError,
    },
    /// Neither a preset nor a rule file was given.
    #[error("no rules: give --preset NAME or --rules FILE")]
    NoRules,
    /// The cases cannot be read.
    #[error("cannot read cases from {from}: {source}")]
    ReadCases {
        /// The file, or `stdin`.
        from: String,
        /// Why.
        source: io::Error,
    },
    /// Some cases are bad.
    #[error("{from}: {source}")]
    Cases {
        /// The file, or `stdin`.
        from: String,
        /// Each bad case and field.
        source: CasesError,
    },
    /// The result cannot be written.
    #[error("cannot write the result: {0}")]
    Write(#[source] io::Error),
    /// The result cannot be encoded (a bug: evaluations are plain data).
    #[error("cannot encode the result: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Runs a `homevisit rules` subcommand on the process's stdin and stdout.
pub fn run(command: RulesCommand) -> Result<(), RulesError> {
    match command {
        RulesCommand::Eval(args) => {
            let output = eval(&args, &mut io::stdin().lock())?;
            // One write, after everything succeeded: bad input prints nothing on stdout.
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(RulesError::Write)
        }
    }
}

/// `homevisit rules eval`: the JSON to print, or why there is none.
fn eval(args: &EvalArgs, stdin: &mut dyn Read) -> Result<String, RulesError> {
    let rules = load_rules(&args.source)?;
    let (from, text) = if args.cases == "-" {
        let mut text = String::new();
        let read = stdin.read_to_string(&mut text).map(|_| text);
        ("stdin".to_owned(), read)
    } else {
        (args.cases.clone(), std::fs::read_to_string(&args.cases))
    };
    let text = text.map_err(|source| RulesError::ReadCases {
        from: from.clone(),
        source,
    })?;
    let cases = rules
        .read_cases(&text)
        .map_err(|source| RulesError::Cases { from, source })?;
    let results: Vec<Evaluation> = cases
        .iter()
        .map(|case| evaluate(&rules, case, args.on))
        .collect();
    to_spaced_string(&results).map_err(RulesError::Encode)
}

fn load_rules(source: &Source) -> Result<RuleSet, RulesError> {
    match (&source.preset, &source.rules) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| RulesError::ReadRules {
                path: path.clone(),
                source,
            })?;
            RuleSet::from_toml(&text).map_err(|source| RulesError::Rules {
                path: path.clone(),
                source,
            })
        }
        (Some(name), None) => RuleSet::preset(name).map_err(|source| RulesError::Preset {
            name: name.clone(),
            source,
        }),
        // Unreachable from the command line, where clap requires one of the two.
        (None, None) => Err(RulesError::NoRules),
    }
}
