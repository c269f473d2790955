//! The visit-rules engine of docs/RULES.md: pure functions of a case, a rule set and a date.
//!
//! One implementation serves the phone's offline due list and the server's overdue flags.
//! Rule sets are data ([`RuleSet::from_toml`]); the presets `tiedong` and `chongqing` are rule
//! files too ([`RuleSet::preset`]). Nothing here reads a clock or a file: the caller passes
//! the date and the text.
//!
//! ```
//! use homevisit_sync_core::rules::{RuleSet, Status, evaluate, parse_date};
//!
//! let rules = RuleSet::preset("tiedong")?;
//! let cases = rules.read_cases(r#"[{"id": "c1", "birth_date": "2015-05-01",
//!     "registered_on": "2026-01-10", "categories": ["left_behind"], "guardianship": "good",
//!     "risk_flags": [], "records": [{"kind": "home_visit", "date": "2026-03-01"},
//!     {"kind": "contact", "date": "2026-04-02"}]}]"#)?;
//! let result = evaluate(&rules, &cases[0], parse_date("2026-11-22")?);
//! let visit = &result.schedules[0];
//! assert_eq!(visit.every.to_string(), "3 months");
//! assert_eq!(visit.due, parse_date("2026-06-01")?);
//! assert_eq!((visit.status, visit.days_overdue), (Status::Overdue, 174));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calendar;
mod case;
mod eval;
pub mod presets;
mod ruleset;

pub use calendar::{DateError, Interval, IntervalError, Unit, parse_date};
pub use case::{Case, CaseError, CaseRecord, CaseRef, CasesError, FieldError};
pub use eval::{DueEntry, Evaluation, Schedule, Status, days_past, due_list, evaluate};
pub use ruleset::{
    DEFAULT_DUE_SOON_DAYS, DEFAULT_UNTIL_AGE, LEFT_BEHIND_UNTIL_AGE, MAX_UNTIL_AGE, RuleSet,
    RuleSetError,
};

#[cfg(test)]
mod tests;
