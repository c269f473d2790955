//! `homevisit`: the server and its command-line tools.
//!
//! Each subcommand is a variant of [`Command`] whose handler lives in `cli/`; handlers return
//! their own error types, and only this file turns them into a message and an exit status.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// homevisit: offline-first home-visit records for child directors.
#[derive(Debug, Parser)]
#[command(name = "homevisit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory unless a database URL is given).
    Serve(cli::serve::ServeArgs),
    /// Build the demo county (once) and print its logins.
    Demo(cli::serve::SettingsArgs),
    /// A field device on the command line: login, due list, records, photos, sync.
    Field(cli::field::FieldArgs),
    /// Apply pending database migrations and exit.
    Migrate(cli::serve::SettingsArgs),
    /// The division tree.
    #[command(subcommand)]
    Region(cli::people::RegionCommand),
    /// Users: add, disable, enable, reset passwords.
    #[command(subcommand)]
    User(cli::people::UserCommand),
    /// Reports for counties: compliance by region and category.
    #[command(subcommand)]
    Report(cli::report::ReportCommand),
    /// Rosters: a county's list of children becomes their files.
    #[command(subcommand)]
    Roster(cli::roster::RosterCommand),
    /// Settings files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The visit-rules engine: evaluate children's schedules (docs/RULES.md).
    #[command(subcommand)]
    Rules(cli::rules::RulesCommand),
}

/// `homevisit config ...`.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the documented example settings file.
    Default,
}

fn main() -> ExitCode {
    // Bad command lines exit with status 2 inside `parse`; failures below exit with 1.
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Our error messages already include their causes, so the outermost one is whole;
            // TOML errors end with a newline of their own.
            eprintln!("homevisit: {}", error.to_string().trim_end());
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Rules(command) => cli::rules::run(command)?,
        Command::Serve(args) => cli::serve::serve(&args)?,
        Command::Region(command) => cli::people::region(command)?,
        Command::User(command) => cli::people::user(command)?,
        Command::Migrate(args) => cli::serve::migrate(&args)?,
        Command::Demo(args) => cli::serve::demo(&args)?,
        Command::Field(args) => cli::field::run(args)?,
        Command::Roster(command) => cli::roster::run(command)?,
        Command::Report(command) => cli::report::run(command)?,
        Command::Config(ConfigCommand::Default) => cli::serve::config_default(),
    }
    Ok(())
}
