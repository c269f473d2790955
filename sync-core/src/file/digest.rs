//! The rules digest of a file: what the rules engine reads of it, in about a hundred bytes.
//!
//! The engine reads, of a file, the birth and registration dates, the attribute assertions and,
//! for each kind of record, the latest one on or before the date it evaluates for (RULES.md,
//! "Semantics"). The digest keeps exactly that: the dates, every assertion (without its author)
//! and the latest live record of each kind. Evaluated on a date no earlier than its latest
//! record, a summary rebuilt from the digest gives what the whole file gives; on an earlier
//! date (a record dated in the future) [`summary_from_digest`] declines, and the whole file is
//! read. A server re-evaluating a province reads a million digests instead of 24 million
//! records.
//!
//! Layout, little-endian, version 2:
//!
//! ```text
//! u8 version = 2
//! i32 birth_date, i32 registered_on              (days from 1970-01-01)
//! u8 n, then n × { u8 kind (index in RecordKind::ALL), i32 date }
//! u16 m, then m × { [u8; 16] id, u8 attr (0 category, 1 guardianship, 2 risk flag),
//!                   u8 present, i32 effective, i64 recorded_at (Unix seconds),
//!                   u8 len, len × u8 value (UTF-8) }
//! u8 k, then k × { [u8; 16] plan, i32 made_on, i32 review_on }
//! ```
//!
//! Version 1 ended before the help plans. It is still read (as a file with no plan): the
//! server keeps the digest it wrote last, and a file untouched since holds a version 1 one. The
//! plans ride along for the due list a new phone shows before its documents arrive (protocol
//! version 4); the rules engine does not read them.

use chrono::{DateTime, NaiveDate};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{Assertion, AttrKind, ChildId, FileSummary, PlanReview};
use crate::vocab::RecordKind;

const VERSION: u8 = 2;

fn days(d: NaiveDate) -> i32 {
    d.signed_duration_since(NaiveDate::default()).num_days() as i32
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(days)))
}

fn attr_code(a: AttrKind) -> u8 {
    match a {
        AttrKind::Category => 0,
        AttrKind::Guardianship => 1,
        AttrKind::RiskFlag => 2,
    }
}

impl FileSummary {
    /// The latest live record of each kind, in [`RecordKind::ALL`] order.
    pub fn latest_records(&self) -> Vec<(RecordKind, NaiveDate)> {
        let mut latest: BTreeMap<usize, NaiveDate> = BTreeMap::new();
        for (kind, d) in &self.records {
            let i = RecordKind::ALL.iter().position(|k| k == kind).unwrap_or(0);
            let slot = latest.entry(i).or_insert(*d);
            *slot = (*slot).max(*d);
        }
        latest
            .into_iter()
            .map(|(i, d)| (RecordKind::ALL[i], d))
            .collect()
    }

    /// The rules digest (see the module's documentation). Values longer than 255 bytes (no key
    /// of RULES.md is) are cut at a character boundary.
    pub fn rules_digest(&self) -> Vec<u8> {
        let latest = self.latest_records();
        let mut out = Vec::with_capacity(16 + latest.len() * 5 + self.attributes.len() * 48);
        out.push(VERSION);
        out.extend(days(self.birth_date).to_le_bytes());
        out.extend(days(self.registered_on).to_le_bytes());
        out.push(latest.len() as u8);
        for (kind, d) in latest {
            let i = RecordKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            out.push(i as u8);
            out.extend(days(d).to_le_bytes());
        }
        let count = self.attributes.len().min(usize::from(u16::MAX));
        out.extend((count as u16).to_le_bytes());
        for (id, a) in self.attributes.iter().take(count) {
            out.extend(id.as_bytes());
            out.push(attr_code(a.attr));
            out.push(u8::from(a.present));
            out.extend(days(a.effective).to_le_bytes());
            out.extend(a.recorded_at.timestamp().to_le_bytes());
            let mut end = a.value.len().min(255);
            while !a.value.is_char_boundary(end) {
                end -= 1;
            }
            out.push(end as u8);
            out.extend(&a.value.as_bytes()[..end]);
        }
        let plans = self.plan_reviews.len().min(usize::from(u8::MAX));
        out.push(plans as u8);
        for p in self.plan_reviews.iter().take(plans) {
            out.extend(p.plan.as_bytes());
            out.extend(days(p.made_on).to_le_bytes());
            out.extend(days(p.review_on).to_le_bytes());
        }
        out
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn date(&mut self) -> Option<NaiveDate> {
        date(i32::from_le_bytes(self.take()?))
    }
}

/// Rebuilds the summary a digest was made from, for evaluating on `on`: `None` if the digest
/// does not read, or if it holds a record dated after `on` (then only the whole file says which
/// record was the latest on `on`). Authors of assertions are not kept; the engine does not read
/// them. `NaiveDate::MAX` rebuilds it whatever its dates, for a due list kept until the whole
/// file arrives.
pub fn summary_from_digest(
    id: ChildId,
    name: String,
    village_code: String,
    digest: &[u8],
    on: NaiveDate,
) -> Option<FileSummary> {
    let mut r = Reader(digest);
    let [version] = r.take::<1>()?;
    if !(1..=VERSION).contains(&version) {
        return None;
    }
    let birth_date = r.date()?;
    let registered_on = r.date()?;
    let [n] = r.take::<1>()?;
    let mut records = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let [kind] = r.take::<1>()?;
        let d = r.date()?;
        if d > on {
            return None;
        }
        records.push((*RecordKind::ALL.get(usize::from(kind))?, d));
    }
    let m = u16::from_le_bytes(r.take()?);
    let mut attributes = BTreeMap::new();
    for _ in 0..m {
        let id = Uuid::from_bytes(r.take()?);
        let [attr, present] = r.take::<2>()?;
        let attr = match attr {
            0 => AttrKind::Category,
            1 => AttrKind::Guardianship,
            2 => AttrKind::RiskFlag,
            _ => return None,
        };
        let effective = r.date()?;
        let recorded_at = DateTime::from_timestamp(i64::from_le_bytes(r.take()?), 0)?;
        let [len] = r.take::<1>()?;
        let value = std::str::from_utf8(r.bytes(usize::from(len))?).ok()?;
        attributes.insert(
            id,
            Assertion {
                attr,
                value: value.to_owned(),
                present: present != 0,
                effective,
                recorded_at,
                by: String::new(),
            },
        );
    }
    let mut plan_reviews = Vec::new();
    if version >= 2 {
        let [k] = r.take::<1>()?;
        for _ in 0..k {
            plan_reviews.push(PlanReview {
                plan: Uuid::from_bytes(r.take()?),
                made_on: r.date()?,
                review_on: r.date()?,
            });
        }
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(FileSummary {
        id,
        name,
        village_code,
        birth_date,
        registered_on,
        attributes,
        records,
        plan_reviews,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleSet, evaluate, presets};
    use proptest::prelude::*;

    fn day(n: u64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2010, 1, 1).expect("date") + chrono::Days::new(n)
    }

    fn any_summary() -> impl Strategy<Value = FileSummary> {
        let values = prop::sample::select(vec![
            (AttrKind::Category, "left_behind"),
            (AttrKind::Category, "family_difficulty"),
            (AttrKind::Category, "a_programme_a_rule_file_added"),
            (AttrKind::Guardianship, "good"),
            (AttrKind::Guardianship, "average"),
            (AttrKind::Guardianship, "poor"),
            (AttrKind::RiskFlag, "poor_family"),
            (AttrKind::RiskFlag, "rural_single_parent"),
        ]);
        let assertion = (
            any::<u128>(),
            values,
            any::<bool>(),
            0u64..6000,
            // Few recording times, so ties on (effective, recorded_at) fall to the id.
            0i64..3,
        );
        let kinds = prop::sample::select(RecordKind::ALL.to_vec());
        let plan = (any::<u128>(), 0u64..6000, 0u64..400);
        (
            0u64..3000,
            0u64..6000,
            prop::collection::vec(assertion, 0..8),
            prop::collection::vec((kinds, 0u64..6000), 0..30),
            prop::collection::vec(plan, 0..3),
        )
            .prop_map(
                |(birth, registered, assertions, records, plans)| FileSummary {
                    id: ChildId(Uuid::from_u128(7)),
                    name: "名".into(),
                    village_code: "220303100200".into(),
                    birth_date: day(birth),
                    registered_on: day(registered),
                    attributes: assertions
                        .into_iter()
                        .map(|(id, (attr, value), present, effective, at)| {
                            (
                                Uuid::from_u128(id),
                                Assertion {
                                    attr,
                                    value: value.into(),
                                    present,
                                    effective: day(effective),
                                    recorded_at: DateTime::from_timestamp(at * 3600, 0)
                                        .expect("time"),
                                    by: String::new(),
                                },
                            )
                        })
                        .collect(),
                    records: records.into_iter().map(|(k, d)| (k, day(d))).collect(),
                    plan_reviews: plans
                        .into_iter()
                        .map(|(plan, made, after)| PlanReview {
                            plan: Uuid::from_u128(plan),
                            made_on: day(made),
                            review_on: day(made + after),
                        })
                        .collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn a_digest_evaluates_as_the_whole_file_does_on_any_date_after_its_records(
            summary in any_summary(), on in 0u64..6500,
        ) {
            let on = day(on);
            let digest = summary.rules_digest();
            let rebuilt = summary_from_digest(
                summary.id, summary.name.clone(), summary.village_code.clone(), &digest, on,
            );
            let future = summary.records.iter().any(|(_, d)| *d > on);
            prop_assert_eq!(rebuilt.is_none(), future);
            let Some(rebuilt) = rebuilt else { return Ok(()) };
            prop_assert_eq!(rebuilt.attributes_on(on), summary.attributes_on(on));
            prop_assert_eq!(&rebuilt.plan_reviews, &summary.plan_reviews);
            for name in presets::NAMES {
                let rules = RuleSet::preset(name).expect("preset");
                let whole = crate::device::case_of(&summary, on);
                let small = crate::device::case_of(&rebuilt, on);
                prop_assert_eq!(evaluate(&rules, &small, on), evaluate(&rules, &whole, on));
            }
        }
    }

    /// A file with one home visit and nothing else.
    fn visited_once() -> FileSummary {
        FileSummary {
            id: ChildId(Uuid::from_u128(1)),
            name: String::new(),
            village_code: String::new(),
            birth_date: day(0),
            registered_on: day(10),
            attributes: BTreeMap::new(),
            records: vec![(RecordKind::HomeVisit, day(20))],
            plan_reviews: Vec::new(),
        }
    }

    #[test]
    fn a_version_1_digest_still_reads_as_a_file_without_help_plans() {
        let summary = visited_once();
        let mut v1 = summary.rules_digest();
        assert_eq!(v1.pop(), Some(0), "no plan");
        v1[0] = 1;
        let read = summary_from_digest(summary.id, String::new(), String::new(), &v1, day(30));
        assert_eq!(read, Some(summary));
    }

    #[test]
    fn a_digest_that_does_not_read_is_refused() {
        let summary = visited_once();
        let digest = summary.rules_digest();
        let read = |bytes: &[u8]| {
            summary_from_digest(summary.id, String::new(), String::new(), bytes, day(30))
        };
        assert!(read(&digest).is_some());
        for cut in 0..digest.len() {
            assert!(read(&digest[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = digest.clone();
        longer.push(0);
        assert!(read(&longer).is_none());
        let mut later = digest;
        later[0] = VERSION + 1;
        assert!(read(&later).is_none());
    }
}
