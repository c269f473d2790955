//! The subcommands of `homevisit`.

pub mod rules;
