//! `homevisit`: the server and its command-line tools.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// homevisit: offline-first home-visit records for child directors and supervisors.
#[derive(Debug, Parser)]
#[command(name = "homevisit", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Visit rules: evaluate who is due (see docs/RULES.md).
    Rules {
        #[command(subcommand)]
        command: cli::rules::RulesCommand,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Rules { command } => cli::rules::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homevisit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
