//! The server's integration tests, in one binary so they link once.

mod access;
mod alerts;
mod people;
mod pg;
mod rules_cli;
mod rules_eval;
mod schedules;
mod serve;
mod storage;
