//! Rule sets as data: the vocabulary a rule set knows, its settings, and its rules, read from
//! TOML (docs/RULES.md, "Rule files").

use serde::Deserialize;
use std::collections::BTreeMap;

use super::calendar::Interval;
use super::presets;
use crate::vocab::{Category, Guardianship, RecordKind, RiskFlag};

/// The age at which a category ends unless the rule set says otherwise (RULES.md: "every
/// category ends at 18").
pub const DEFAULT_UNTIL_AGE: u32 = 18;

/// The age at which `left_behind` ends unless the rule set says otherwise (RULES.md:
/// "`left_behind` applies only under 16").
pub const LEFT_BEHIND_UNTIL_AGE: u32 = 16;

/// The largest `until_age` a rule file may give a category.
pub const MAX_UNTIL_AGE: u32 = 100;

/// Default `due_soon_days`: a schedule is due soon within 7 days of its due date.
pub const DEFAULT_DUE_SOON_DAYS: u32 = 7;

/// Why a rule set cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// The text is not TOML, or not a rule file (a misspelt setting, a bad interval, an
    /// unknown guardianship level...). The message gives the line and column.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// No preset has this name.
    #[error("unknown preset \"{0}\" (the presets are: {list})", list = presets::NAMES.join(", "))]
    UnknownPreset(String),
    /// The rule set has no rule, so it would schedule nothing.
    #[error("the rule set has no [[rule]], so it would schedule nothing")]
    NoRules,
    /// A key that the rule file adds is not a snake_case key.
    #[error("{at}: \"{key}\" is not a snake_case key (a-z, 0-9 and _, starting with a letter)")]
    NotSnakeCase {
        /// Where in the file.
        at: String,
        /// The key.
        key: String,
    },
    /// A rule or a kind names a key that is neither built in nor added by the file.
    #[error("{at}: unknown {what} \"{key}\"")]
    Unknown {
        /// Where in the file (`rule 3 (home_visit): when.risk_flags`).
        at: String,
        /// Which vocabulary (`risk flag`, `category`, `record kind`).
        what: &'static str,
        /// The key.
        key: String,
    },
    /// A condition lists nothing, so its rule could never apply.
    #[error("{at}: the list is empty, so the rule would never apply")]
    EmptyList {
        /// Where in the file.
        at: String,
    },
    /// A category's `until_age` is out of range.
    #[error("{at}: until_age {age} is not an age from 1 to {MAX_UNTIL_AGE}")]
    UntilAge {
        /// Where in the file.
        at: String,
        /// The age given.
        age: u32,
    },
    /// A record kind is said to count as itself.
    #[error("{at}: a kind always counts for its own schedule; remove \"{key}\"")]
    CountsAsItself {
        /// Where in the file.
        at: String,
        /// The kind.
        key: String,
    },
}

/// A set of visit rules: which kinds of record are due how often for which children, the
/// vocabulary of kinds, categories and risk flags it knows, and its grace and due-soon days.
///
/// Build one from a preset ([`RuleSet::preset`]) or a rule file ([`RuleSet::from_toml`]);
/// evaluate cases with [`super::evaluate`] and [`super::due_list`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub(super) name: Option<String>,
    pub(super) grace_days: u32,
    pub(super) due_soon_days: u32,
    pub(super) kinds: Vec<KindDef>,
    pub(super) categories: Vec<CategoryDef>,
    pub(super) risk_flags: Vec<String>,
    pub(super) schedules: Vec<ScheduleDef>,
}

/// A record kind, and the schedules (indexes into `RuleSet::schedules`) its records count for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct KindDef {
    pub(super) key: String,
    pub(super) counts_as: Vec<String>,
    pub(super) slots: Vec<usize>,
}

/// A category and the age at which it ends.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CategoryDef {
    pub(super) key: String,
    pub(super) until_age: u32,
}

/// The rules for one kind of record, in file order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ScheduleDef {
    pub(super) kind: String,
    pub(super) rules: Vec<Rule>,
}

/// One rule: an interval, and the children it applies to.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rule {
    pub(super) every: Interval,
    pub(super) when: Condition,
}

/// Which served children a rule applies to: all of the given tests hold (none given: every
/// served child); a list holds when the child has any of its values.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Condition {
    pub(super) guardianship: Option<Vec<Guardianship>>,
    pub(super) guardianship_assessed: Option<bool>,
    pub(super) any_risk_flag: Option<bool>,
    pub(super) risk_flags: Option<Vec<String>>,
    pub(super) categories: Option<Vec<String>>,
}

/// A rule file as written; see docs/RULES.md.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Option<String>,
    #[serde(default)]
    grace_days: u32,
    #[serde(default = "default_due_soon_days")]
    due_soon_days: u32,
    #[serde(default)]
    risk_flags: Vec<String>,
    #[serde(default)]
    categories: BTreeMap<String, CategoryEntry>,
    #[serde(default)]
    kinds: BTreeMap<String, KindEntry>,
    #[serde(default)]
    rule: Vec<RuleEntry>,
}

fn default_due_soon_days() -> u32 {
    DEFAULT_DUE_SOON_DAYS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    until_age: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindEntry {
    #[serde(default)]
    counts_as: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    kind: String,
    every: Interval,
    #[serde(default)]
    when: Condition,
}

fn is_snake_case(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn snake_case(at: impl FnOnce() -> String, key: &str) -> Result<(), RuleSetError> {
    if is_snake_case(key) {
        Ok(())
    } else {
        Err(RuleSetError::NotSnakeCase {
            at: at(),
            key: key.to_owned(),
        })
    }
}

impl RuleSet {
    /// The built-in preset `name` (`tiedong` or `chongqing`, see [`presets::NAMES`]).
    pub fn preset(name: &str) -> Result<RuleSet, RuleSetError> {
        let text =
            presets::text(name).ok_or_else(|| RuleSetError::UnknownPreset(name.to_owned()))?;
        RuleSet::from_toml(text)
    }

    /// Reads a rule file (docs/RULES.md, "Rule files").
    ///
    /// Everything is checked: unknown settings, conditions, kinds, categories and risk flags
    /// are errors that say where they are, so a typo can never silently change a schedule.
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleSetError> {
        let file: RuleFile = toml::from_str(text)?;
        RuleSet::build(file)
    }

    fn build(file: RuleFile) -> Result<RuleSet, RuleSetError> {
        let mut risk_flags: Vec<String> =
            RiskFlag::ALL.iter().map(|f| f.key().to_owned()).collect();
        for flag in file.risk_flags {
            snake_case(|| "risk_flags".to_owned(), &flag)?;
            if !risk_flags.contains(&flag) {
                risk_flags.push(flag);
            }
        }

        let mut categories: Vec<CategoryDef> = Category::ALL
            .iter()
            .map(|c| CategoryDef {
                key: c.key().to_owned(),
                until_age: if *c == Category::LeftBehind {
                    LEFT_BEHIND_UNTIL_AGE
                } else {
                    DEFAULT_UNTIL_AGE
                },
            })
            .collect();
        for (key, entry) in file.categories {
            let at = || format!("categories.{key}");
            snake_case(at, &key)?;
            let existing = categories.iter().position(|c| c.key == key);
            let default = existing.map_or(DEFAULT_UNTIL_AGE, |i| categories[i].until_age);
            let until_age = entry.until_age.unwrap_or(default);
            if !(1..=MAX_UNTIL_AGE).contains(&until_age) {
                return Err(RuleSetError::UntilAge {
                    at: at(),
                    age: until_age,
                });
            }
            match existing {
                Some(i) => categories[i].until_age = until_age,
                None => categories.push(CategoryDef { key, until_age }),
            }
        }

        let mut kinds: Vec<KindDef> = RecordKind::ALL
            .iter()
            .map(|k| KindDef {
                key: k.key().to_owned(),
                counts_as: RecordKind::ALL
                    .iter()
                    .filter(|other| *other != k && k.counts_as(**other))
                    .map(|other| other.key().to_owned())
                    .collect(),
                slots: Vec::new(),
            })
            .collect();
        for key in file.kinds.keys() {
            snake_case(|| format!("kinds.{key}"), key)?;
            if !kinds.iter().any(|k| &k.key == key) {
                kinds.push(KindDef {
                    key: key.clone(),
                    counts_as: Vec::new(),
                    slots: Vec::new(),
                });
            }
        }
        for (key, entry) in file.kinds {
            let at = || format!("kinds.{key}.counts_as");
            for target in &entry.counts_as {
                if *target == key {
                    return Err(RuleSetError::CountsAsItself {
                        at: at(),
                        key: key.clone(),
                    });
                }
                if !kinds.iter().any(|k| &k.key == target) {
                    return Err(RuleSetError::Unknown {
                        at: at(),
                        what: "record kind",
                        key: target.clone(),
                    });
                }
            }
            if let Some(kind) = kinds.iter_mut().find(|k| k.key == key) {
                kind.counts_as = entry.counts_as;
            }
        }

        if file.rule.is_empty() {
            return Err(RuleSetError::NoRules);
        }
        let category_keys: Vec<String> = categories.iter().map(|c| c.key.clone()).collect();
        let mut schedules: Vec<ScheduleDef> = Vec::new();
        for (i, entry) in file.rule.into_iter().enumerate() {
            let at = |field: &str| format!("rule {} ({}): {field}", i + 1, entry.kind);
            if !kinds.iter().any(|k| k.key == entry.kind) {
                return Err(RuleSetError::Unknown {
                    at: format!("rule {}: kind", i + 1),
                    what: "record kind",
                    key: entry.kind,
                });
            }
            let when = &entry.when;
            if when.guardianship.as_ref().is_some_and(Vec::is_empty) {
                return Err(RuleSetError::EmptyList {
                    at: at("when.guardianship"),
                });
            }
            check_list(when.risk_flags.as_deref(), &risk_flags, "risk flag", || {
                at("when.risk_flags")
            })?;
            check_list(
                when.categories.as_deref(),
                &category_keys,
                "category",
                || at("when.categories"),
            )?;
            let rule = Rule {
                every: entry.every,
                when: entry.when,
            };
            match schedules.iter_mut().find(|s| s.kind == entry.kind) {
                Some(schedule) => schedule.rules.push(rule),
                None => schedules.push(ScheduleDef {
                    kind: entry.kind,
                    rules: vec![rule],
                }),
            }
        }

        for kind in &mut kinds {
            kind.slots = schedules
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == kind.key || kind.counts_as.contains(&s.kind))
                .map(|(i, _)| i)
                .collect();
        }

        Ok(RuleSet {
            name: file.name,
            grace_days: file.grace_days,
            due_soon_days: file.due_soon_days,
            kinds,
            categories,
            risk_flags,
            schedules,
        })
    }

    /// The rule set's `name`, if the file gives one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Days after the due date before a schedule is overdue (default 0).
    pub fn grace_days(&self) -> u32 {
        self.grace_days
    }

    /// A schedule not overdue is due soon when its due date is at most this many days away
    /// (default 7).
    pub fn due_soon_days(&self) -> u32 {
        self.due_soon_days
    }

    /// The same rule set with another grace (a local setting over a preset, say).
    pub fn with_grace_days(mut self, days: u32) -> RuleSet {
        self.grace_days = days;
        self
    }

    /// The same rule set with another due-soon window.
    pub fn with_due_soon_days(mut self, days: u32) -> RuleSet {
        self.due_soon_days = days;
        self
    }

    /// The record kinds that have a schedule, in the order schedules are listed.
    pub fn scheduled_kinds(&self) -> impl Iterator<Item = &str> {
        self.schedules.iter().map(|s| s.kind.as_str())
    }

    /// Every record kind the rule set knows: the built-in ones, then those the file adds.
    pub fn record_kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().map(|k| k.key.as_str())
    }

    /// Every category the rule set knows, with the age at which it ends.
    pub fn categories(&self) -> impl Iterator<Item = (&str, u32)> {
        self.categories
            .iter()
            .map(|c| (c.key.as_str(), c.until_age))
    }

    /// Every risk flag the rule set knows.
    pub fn risk_flags(&self) -> impl Iterator<Item = &str> {
        self.risk_flags.iter().map(String::as_str)
    }

    /// Whether a record of kind `record` counts for the schedule of kind `schedule` (a kind
    /// counts for itself; `home_visit` counts for `contact` unless the file says otherwise).
    pub fn counts_as(&self, record: &str, schedule: &str) -> bool {
        record == schedule
            || self
                .kind(record)
                .is_some_and(|k| k.counts_as.iter().any(|c| c == schedule))
    }

    pub(super) fn kind(&self, key: &str) -> Option<&KindDef> {
        self.kinds.iter().find(|k| k.key == key)
    }

    /// The age at which category `key` ends; [`DEFAULT_UNTIL_AGE`] for a category the rule set
    /// does not know (see [`super::evaluate`]).
    pub fn until_age(&self, key: &str) -> u32 {
        self.categories
            .iter()
            .find(|c| c.key == key)
            .map_or(DEFAULT_UNTIL_AGE, |c| c.until_age)
    }

    pub(super) fn knows_category(&self, key: &str) -> bool {
        self.categories.iter().any(|c| c.key == key)
    }

    pub(super) fn knows_risk_flag(&self, key: &str) -> bool {
        self.risk_flags.iter().any(|f| f == key)
    }
}

fn check_list(
    list: Option<&[String]>,
    known: &[String],
    what: &'static str,
    at: impl Fn() -> String,
) -> Result<(), RuleSetError> {
    let Some(list) = list else { return Ok(()) };
    if list.is_empty() {
        return Err(RuleSetError::EmptyList { at: at() });
    }
    match list.iter().find(|key| !known.contains(key)) {
        Some(key) => Err(RuleSetError::Unknown {
            at: at(),
            what,
            key: key.clone(),
        }),
        None => Ok(()),
    }
}
