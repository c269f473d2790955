//! The handlers of the `homevisit` subcommands, one module per group.

pub mod field;
pub mod json;
pub mod people;
pub mod report;
pub mod roster;
pub mod rules;
pub mod serve;
