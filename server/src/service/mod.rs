//! What the server decides: rules that are neither HTTP (`api/`) nor SQL (`store/`).
//!
//! `api/` turns requests into calls here and results into answers; `store/` reads and writes
//! rows; the decisions in between (what day it is where the children live, ...) live here, in
//! plain Rust that knows neither actix nor diesel's query builder.

pub mod alerts;
pub mod auth;
pub mod children;
pub mod clock;
pub mod national;
pub mod photos;
pub mod reports;
pub mod roster;
pub mod schedules;
pub mod sync;
pub mod webhooks;
