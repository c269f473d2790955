//! Evaluation: each served child's schedules on a date, and the due list over many children.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

use super::calendar::{Interval, date, is_under, option_date};
use super::case::Case;
use super::ruleset::{Condition, RuleSet};

/// Where a schedule stands on the evaluation date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not due within the due-soon window.
    Ok,
    /// Due within the due-soon window (or past due but within the grace days).
    DueSoon,
    /// Past the due date by more than the grace days.
    Overdue,
}

impl Status {
    /// The stable snake_case key.
    pub fn key(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::DueSoon => "due_soon",
            Status::Overdue => "overdue",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One case's result: RULES.md's output object (fields in RULES.md's order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The case's id.
    pub id: String,
    /// Whether some category applies on the date.
    pub served: bool,
    /// One schedule per kind the rule set requires for this child, in rule-set order; empty
    /// when the child is not served.
    pub schedules: Vec<Schedule>,
}

/// When one kind of record is next due for one child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The record kind's key.
    pub kind: String,
    /// The interval of the winning rule (the one giving the earliest due date).
    pub every: Interval,
    /// The latest qualifying record on or before the date; `None` when there is none.
    #[serde(with = "option_date")]
    pub last: Option<NaiveDate>,
    /// `last` (or the registration date) plus `every`.
    #[serde(with = "date")]
    pub due: NaiveDate,
    /// Where the schedule stands on the date.
    pub status: Status,
    /// Days past the due date when overdue; 0 otherwise.
    pub days_overdue: u32,
}

/// One line of the due list: a schedule that is overdue or due soon, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueEntry {
    /// The case's id.
    pub id: String,
    /// The record kind's key.
    pub kind: String,
    /// The interval of the winning rule.
    pub every: Interval,
    /// The latest qualifying record on or before the date.
    #[serde(with = "option_date")]
    pub last: Option<NaiveDate>,
    /// The due date.
    #[serde(with = "date")]
    pub due: NaiveDate,
    /// [`Status::Overdue`] or [`Status::DueSoon`].
    pub status: Status,
    /// Days past the due date when overdue; 0 otherwise.
    pub days_overdue: u32,
}

/// A schedule found for a case, before it is turned into owned output.
struct Found<'r> {
    kind: &'r str,
    every: Interval,
    last: Option<NaiveDate>,
    due: NaiveDate,
    status: Status,
    days_overdue: u32,
}

/// Evaluates one case on `on` (RULES.md, "Eligibility" and "Semantics").
///
/// - Served iff some category applies on `on`: the child is under the category's
///   `until_age` (a child turns 16 on their 16th birthday; see [`super::calendar::birthday`]).
/// - For each kind with rules, in rule-set order: among the rules whose condition holds, the
///   one giving the earliest due date wins (ties: the first in the file), so `1 month`,
///   `4 weeks` and `30 days` are compared on the actual calendar. A kind with no applicable
///   rule has no schedule.
/// - `last` is the latest record on or before `on` of a kind that counts for the schedule;
///   later records are ignored. `due` is `last` (or `registered_on`) plus the interval.
/// - Overdue when `on > due + grace_days`; else due soon when `due - on <= due_soon_days`;
///   else ok.
///
/// Keys the rule set does not know (only possible for a case built in code:
/// [`RuleSet::read_cases`] refuses them) do not fail: an unknown category ends at 18, so a
/// child never drops off a due list because a phone's rule set is older than the file; an
/// unknown risk flag counts for `any_risk_flag`; an unknown record kind counts for nothing.
pub fn evaluate(rules: &RuleSet, case: &Case, on: NaiveDate) -> Evaluation {
    let mut schedules = Vec::new();
    let served = each_schedule(rules, case, on, &mut Vec::new(), |f| {
        schedules.push(Schedule {
            kind: f.kind.to_owned(),
            every: f.every,
            last: f.last,
            due: f.due,
            status: f.status,
            days_overdue: f.days_overdue,
        });
    });
    Evaluation {
        id: case.id.clone(),
        served,
        schedules,
    }
}

/// Days from `due` to `on`, 0 when `on` is not past it: an overdue schedule's `days_overdue`.
/// A schedule stored as overdue stays overdue until a record or a change of attributes comes,
/// so its days overdue on a later date are this, without evaluating again.
pub fn days_past(due: NaiveDate, on: NaiveDate) -> u32 {
    u32::try_from(on.signed_duration_since(due).num_days().max(0)).unwrap_or(u32::MAX)
}

/// Every served child's schedules that are overdue or due soon on `on`: overdue first, most
/// overdue first; then due soon, soonest first; ties in input order.
pub fn due_list(rules: &RuleSet, cases: &[Case], on: NaiveDate) -> Vec<DueEntry> {
    let mut scratch = Vec::new();
    let mut due = Vec::new();
    for case in cases {
        each_schedule(rules, case, on, &mut scratch, |f| {
            if f.status != Status::Ok {
                due.push(DueEntry {
                    id: case.id.clone(),
                    kind: f.kind.to_owned(),
                    every: f.every,
                    last: f.last,
                    due: f.due,
                    status: f.status,
                    days_overdue: f.days_overdue,
                });
            }
        });
    }
    // For overdue entries (all on the same date), an earlier due date is more days overdue.
    due.sort_by_key(|e| (e.status != Status::Overdue, e.due));
    due
}

fn category_applies(rules: &RuleSet, key: &str, case: &Case, on: NaiveDate) -> bool {
    is_under(case.birth_date, rules.until_age(key), on)
}

impl Condition {
    fn holds(&self, rules: &RuleSet, case: &Case, on: NaiveDate) -> bool {
        self.guardianship
            .as_ref()
            .is_none_or(|levels| case.guardianship.is_some_and(|g| levels.contains(&g)))
            && self
                .guardianship_assessed
                .is_none_or(|assessed| assessed == case.guardianship.is_some())
            && self
                .any_risk_flag
                .is_none_or(|any| any != case.risk_flags.is_empty())
            && self
                .risk_flags
                .as_ref()
                .is_none_or(|flags| case.risk_flags.iter().any(|f| flags.contains(f)))
            && self.categories.as_ref().is_none_or(|categories| {
                case.categories
                    .iter()
                    .any(|c| categories.contains(c) && category_applies(rules, c, case, on))
            })
    }
}

/// Calls `each` with every schedule of `case` on `on`, in rule-set order; returns whether the
/// child is served. `last` is scratch space, reused across cases to spare allocations.
fn each_schedule<'r>(
    rules: &'r RuleSet,
    case: &Case,
    on: NaiveDate,
    last: &mut Vec<Option<NaiveDate>>,
    mut each: impl FnMut(Found<'r>),
) -> bool {
    let served = case
        .categories
        .iter()
        .any(|c| category_applies(rules, c, case, on));
    if !served {
        return false;
    }
    last.clear();
    last.resize(rules.schedules.len(), None);
    for record in &case.records {
        if record.date > on {
            continue;
        }
        let Some(kind) = rules.kind(&record.kind) else {
            continue;
        };
        for &slot in &kind.slots {
            if last[slot] < Some(record.date) {
                last[slot] = Some(record.date);
            }
        }
    }
    for (schedule, &last) in rules.schedules.iter().zip(last.iter()) {
        let base = last.unwrap_or(case.registered_on);
        let mut best: Option<(Interval, NaiveDate)> = None;
        for rule in &schedule.rules {
            if !rule.when.holds(rules, case, on) {
                continue;
            }
            let due = rule.every.after(base);
            if best.is_none_or(|(_, earliest)| due < earliest) {
                best = Some((rule.every, due));
            }
        }
        let Some((every, due)) = best else { continue };
        let late = on.signed_duration_since(due).num_days();
        let (status, days_overdue) = if late > i64::from(rules.grace_days) {
            (Status::Overdue, days_past(due, on))
        } else if -late <= i64::from(rules.due_soon_days) {
            (Status::DueSoon, 0)
        } else {
            (Status::Ok, 0)
        };
        each(Found {
            kind: &schedule.kind,
            every,
            last,
            due,
            status,
            days_overdue,
        });
    }
    true
}
