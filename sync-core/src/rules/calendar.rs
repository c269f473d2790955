//! Calendar arithmetic on local dates: intervals of days, weeks and calendar months, ages, and
//! the strict `YYYY-MM-DD` date format of rule files and cases.
//!
//! Months are calendar months with the day clamped to the month's end: 31 Aug + 3 months is
//! 30 Nov, 31 Jan + 1 month is 28 Feb (29 Feb in a leap year). Clamping is not undone later:
//! 31 Jan + 1 month + 1 month is 28 Mar, while 31 Jan + 2 months is 31 Mar.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The largest count an [`Interval`] may have: 9999 months is over 800 years, so no real rule
/// needs more, and date arithmetic on four-digit years can never overflow.
pub const MAX_COUNT: u32 = 9999;

/// The unit of an [`Interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// Calendar days.
    Days,
    /// Weeks of 7 days.
    Weeks,
    /// Calendar months, the day clamped to the month's end.
    Months,
}

impl Unit {
    fn singular(self) -> &'static str {
        match self {
            Unit::Days => "day",
            Unit::Weeks => "week",
            Unit::Months => "month",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Unit::Days => "days",
            Unit::Weeks => "weeks",
            Unit::Months => "months",
        }
    }
}

/// How often something is due: a count of days, weeks or calendar months.
///
/// Written and parsed as `"1 day"`, `"10 days"`, `"1 week"`, `"2 weeks"`, `"1 month"`,
/// `"3 months"`: a count from 1 to [`MAX_COUNT`] without leading zeros, one space, and the
/// unit, singular exactly when the count is 1. Nothing else is accepted, so the text in a rule
/// file is always the text that `rules eval` prints back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    count: u32,
    unit: Unit,
}

/// Why a text is not an [`Interval`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// Not of the form `<count> <unit>`.
    #[error(
        "invalid interval \"{0}\": expected \"<count> <unit>\", like \"3 months\", \"2 weeks\" or \"10 days\""
    )]
    Form(String),
    /// The unit is not days, weeks or months.
    #[error("invalid interval \"{0}\": the unit must be days, weeks or months")]
    Unit(String),
    /// The count is 0, too large, or written with a leading zero.
    #[error("invalid interval \"{0}\": the count must be a whole number from 1 to {MAX_COUNT}")]
    Count(String),
    /// Singular where plural is needed or the reverse.
    #[error("invalid interval \"{given}\": write \"{fixed}\"")]
    Number {
        /// What was written.
        given: String,
        /// The same interval written correctly.
        fixed: String,
    },
}

impl Interval {
    /// An interval of `count` units, if `count` is from 1 to [`MAX_COUNT`].
    pub fn new(count: u32, unit: Unit) -> Option<Interval> {
        (1..=MAX_COUNT)
            .contains(&count)
            .then_some(Interval { count, unit })
    }

    /// How many units.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Which unit.
    pub fn unit(self) -> Unit {
        self.unit
    }

    /// The date one interval after `date`.
    ///
    /// Saturates at [`NaiveDate::MAX`] (over 260,000 years away): a due date past the end of
    /// the calendar is never reached.
    pub fn after(self, date: NaiveDate) -> NaiveDate {
        match self.unit {
            Unit::Days => add_days(date, u64::from(self.count)),
            Unit::Weeks => add_days(date, 7 * u64::from(self.count)),
            Unit::Months => add_months(date, self.count),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.count == 1 {
            self.unit.singular()
        } else {
            self.unit.plural()
        };
        write!(f, "{} {unit}", self.count)
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once(' ')
            .ok_or_else(|| IntervalError::Form(s.to_owned()))?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) || unit.is_empty() {
            return Err(IntervalError::Form(s.to_owned()));
        }
        let (unit, plural) = match unit {
            "day" => (Unit::Days, false),
            "days" => (Unit::Days, true),
            "week" => (Unit::Weeks, false),
            "weeks" => (Unit::Weeks, true),
            "month" => (Unit::Months, false),
            "months" => (Unit::Months, true),
            _ if unit.bytes().all(|b| b.is_ascii_lowercase()) => {
                return Err(IntervalError::Unit(s.to_owned()));
            }
            _ => return Err(IntervalError::Form(s.to_owned())),
        };
        let interval = count
            .parse::<u32>()
            .ok()
            .filter(|_| !count.starts_with('0'))
            .and_then(|n| Interval::new(n, unit))
            .ok_or_else(|| IntervalError::Count(s.to_owned()))?;
        if plural != (interval.count != 1) {
            return Err(IntervalError::Number {
                given: s.to_owned(),
                fixed: interval.to_string(),
            });
        }
        Ok(interval)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `date` plus `days` days, saturating at [`NaiveDate::MAX`].
pub fn add_days(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days))
        .unwrap_or(NaiveDate::MAX)
}

/// `date` plus `months` calendar months, the day clamped to the last day of the resulting
/// month; saturates at [`NaiveDate::MAX`].
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// Whether `year` is a leap year of the Gregorian calendar (2000 and 2024 are; 1900 and 2100
/// are not).
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// How many days month `month` (1 to 12) of `year` has; 0 for a month out of range.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The day someone born on `birth` turns `years` old: the same day and month `years` later,
/// and 28 February for a 29 February birthday in a year that is not a leap year (the same
/// clamping as for months).
pub fn birthday(birth: NaiveDate, years: u32) -> NaiveDate {
    add_months(birth, years.saturating_mul(12))
}

/// Whether someone born on `birth` is still under `years` on `on`: they turn `years` on their
/// birthday (see [`birthday`]), so on that day they are no longer under it.
pub fn is_under(birth: NaiveDate, years: u32, on: NaiveDate) -> bool {
    on < birthday(birth, years)
}

/// Why a text is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date \"{0}\": expected a real date written YYYY-MM-DD")]
pub struct DateError(pub String);

/// Parses a date written exactly `YYYY-MM-DD` (four-digit year, two-digit month and day).
///
/// Stricter than chrono's parser, which also takes `2026-1-5` and spaces: dates in cases and
/// on the command line have one spelling.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let b = text.as_bytes();
    let well_formed = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse().ok());
    let date = well_formed
        .then(|| {
            let year = number(0..4)?;
            let month = number(5..7)?;
            let day = number(8..10)?;
            NaiveDate::from_ymd_opt(year as i32, month, day)
        })
        .flatten();
    date.ok_or_else(|| DateError(text.to_owned()))
}

/// Serde for dates in the strict `YYYY-MM-DD` form of [`parse_date`], for
/// `#[serde(with = "...")]`.
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&date.format("%Y-%m-%d"))
    }

    /// Reads `YYYY-MM-DD` and nothing else.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::parse_date(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for optional dates: `null` or `YYYY-MM-DD`.
pub mod option_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `null` or `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(
        date: &Option<NaiveDate>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match date {
            Some(d) => super::date::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` or `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        text.map(|t| super::parse_date(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use proptest::prelude::*;

    /// The first day of the month `months` after the month of `date`.
    fn month_start_after(date: NaiveDate, months: u32) -> Option<NaiveDate> {
        date.with_day(1)?.checked_add_months(Months::new(months))
    }

    fn d(s: &str) -> NaiveDate {
        parse_date(s).expect("test input is valid")
    }

    fn iv(s: &str) -> Interval {
        s.parse().expect("test input is valid")
    }

    #[test]
    fn months_clamp_to_the_end_of_the_month() {
        assert_eq!(iv("3 months").after(d("2026-08-31")), d("2026-11-30"));
        assert_eq!(iv("1 month").after(d("2026-01-31")), d("2026-02-28"));
        assert_eq!(iv("1 month").after(d("2028-01-31")), d("2028-02-29"));
        assert_eq!(iv("1 month").after(d("2026-03-31")), d("2026-04-30"));
        assert_eq!(iv("12 months").after(d("2024-02-29")), d("2025-02-28"));
        assert_eq!(iv("48 months").after(d("2024-02-29")), d("2028-02-29"));
    }

    #[test]
    fn clamping_is_not_undone_by_a_later_month() {
        let once = iv("1 month").after(iv("1 month").after(d("2026-01-31")));
        assert_eq!(once, d("2026-03-28"));
        assert_eq!(iv("2 months").after(d("2026-01-31")), d("2026-03-31"));
    }

    #[test]
    fn days_and_weeks_cross_month_and_year_ends() {
        assert_eq!(iv("10 days").after(d("2026-12-25")), d("2027-01-04"));
        assert_eq!(iv("1 day").after(d("2024-02-28")), d("2024-02-29"));
        assert_eq!(iv("1 day").after(d("2026-02-28")), d("2026-03-01"));
        assert_eq!(iv("2 weeks").after(d("2026-02-20")), d("2026-03-06"));
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2026));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2026, 13), 0);
    }

    #[test]
    fn intervals_print_singular_for_one_and_plural_otherwise() {
        let cases = [
            (3, Unit::Months, "3 months"),
            (1, Unit::Months, "1 month"),
            (2, Unit::Weeks, "2 weeks"),
            (1, Unit::Weeks, "1 week"),
            (10, Unit::Days, "10 days"),
            (1, Unit::Days, "1 day"),
        ];
        for (count, unit, text) in cases {
            let interval = Interval::new(count, unit).expect("test input is valid");
            assert_eq!(interval.to_string(), text);
            assert_eq!(text.parse::<Interval>(), Ok(interval));
        }
    }

    #[test]
    fn a_wrongly_numbered_unit_is_refused_with_the_right_spelling() {
        assert_eq!(
            "3 month"
                .parse::<Interval>()
                .expect_err("test input is refused")
                .to_string(),
            "invalid interval \"3 month\": write \"3 months\""
        );
        assert_eq!(
            "1 weeks"
                .parse::<Interval>()
                .expect_err("test input is refused")
                .to_string(),
            "invalid interval \"1 weeks\": write \"1 week\""
        );
    }

    #[test]
    fn intervals_are_strict() {
        for bad in [
            "",
            "3",
            "months",
            "3months",
            "3  months",
            " 3 months",
            "3 months ",
            "+3 months",
            "-1 months",
            "3 Months",
            "1.5 months",
            "three months",
        ] {
            assert!(
                matches!(bad.parse::<Interval>(), Err(IntervalError::Form(_))),
                "{bad:?}"
            );
        }
        for bad in ["0 days", "03 months", "10000 days", "99999999999 days"] {
            assert!(
                matches!(bad.parse::<Interval>(), Err(IntervalError::Count(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "3 mo".parse::<Interval>(),
            Err(IntervalError::Unit(_))
        ));
        assert_eq!(
            "1 year"
                .parse::<Interval>()
                .expect_err("test input is refused")
                .to_string(),
            "invalid interval \"1 year\": the unit must be days, weeks or months"
        );
        assert_eq!(Interval::new(0, Unit::Days), None);
        assert_eq!(Interval::new(MAX_COUNT + 1, Unit::Days), None);
    }

    #[test]
    fn dates_must_be_written_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2026-11-22"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 22).expect("test input is valid"))
        );
        assert_eq!(parse_date("2024-02-29").map(|d| d.day()), Ok(29));
        for bad in [
            "2026-1-5",
            "2026-01-5",
            " 2026-01-05",
            "2026/01/05",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "26-01-05",
            "+2026-01-05",
            "2026-01-05T00:00",
            "",
        ] {
            assert_eq!(parse_date(bad), Err(DateError(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn a_child_turns_an_age_on_the_birthday() {
        let birth = d("2010-06-15");
        assert!(is_under(birth, 16, d("2026-06-14")));
        assert!(!is_under(birth, 16, d("2026-06-15")));
    }

    #[test]
    fn a_child_born_on_29_february_has_a_birthday_on_28_february_in_common_years() {
        let birth = d("2008-02-29");
        assert_eq!(birthday(birth, 16), d("2024-02-29"));
        assert_eq!(birthday(birth, 17), d("2025-02-28"));
        assert!(is_under(birth, 17, d("2025-02-27")));
        assert!(!is_under(birth, 17, d("2025-02-28")));
    }

    #[test]
    fn arithmetic_saturates_at_the_end_of_the_calendar() {
        let end = NaiveDate::MAX;
        assert_eq!(iv("1 month").after(end), NaiveDate::MAX);
        assert_eq!(iv("9999 days").after(end), NaiveDate::MAX);
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        // Days from 1800-01-01 to 2299-12-31: covers 1900, 2000 and 2100.
        (0u64..182_620).prop_map(|n| {
            add_days(
                NaiveDate::from_ymd_opt(1800, 1, 1).expect("test input is valid"),
                n,
            )
        })
    }

    fn any_interval() -> impl Strategy<Value = Interval> {
        (
            1..=MAX_COUNT,
            prop_oneof![Just(Unit::Days), Just(Unit::Weeks), Just(Unit::Months)],
        )
            .prop_map(|(n, u)| Interval::new(n, u).expect("test input is valid"))
    }

    proptest! {
        #[test]
        fn adding_months_lands_in_the_right_month_and_never_past_its_end(
            date in any_date(), months in 0u32..2400,
        ) {
            let out = add_months(date, months);
            let start = month_start_after(date, months).expect("test input is valid");
            prop_assert_eq!((out.year(), out.month()), (start.year(), start.month()));
            let last = days_in_month(out.year(), out.month());
            prop_assert!(out.day() <= last);
            prop_assert_eq!(out.day(), date.day().min(last));
        }

        #[test]
        fn adding_months_keeps_the_day_when_the_month_has_it(
            date in any_date(), months in 0u32..2400,
        ) {
            let start = month_start_after(date, months).expect("test input is valid");
            if date.day() <= days_in_month(start.year(), start.month()) {
                prop_assert_eq!(add_months(date, months).day(), date.day());
            }
        }

        #[test]
        fn adding_months_is_monotone_in_the_start_date(
            a in any_date(), b in any_date(), months in 0u32..2400,
        ) {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(add_months(early, months) <= add_months(late, months));
        }

        #[test]
        fn adding_months_is_monotone_in_the_count(
            date in any_date(), m in 0u32..1200, n in 0u32..1200,
        ) {
            let (few, many) = if m <= n { (m, n) } else { (n, m) };
            prop_assert!(add_months(date, few) <= add_months(date, many));
        }

        #[test]
        fn adding_twelve_months_is_adding_a_year_with_29_february_clamped(
            date in any_date(), years in 0u32..200,
        ) {
            let year = date.year() + years as i32;
            let expected = NaiveDate::from_ymd_opt(year, date.month(), date.day())
                .unwrap_or_else(|| NaiveDate::from_ymd_opt(year, 2, 28).expect("test input is valid"));
            prop_assert_eq!(add_months(date, 12 * years), expected);
            if date.month() == 2 && date.day() == 29 && !is_leap_year(year) {
                prop_assert_eq!(expected.day(), 28);
            }
        }

        #[test]
        fn months_added_in_two_steps_never_land_later_than_in_one(
            date in any_date(), m in 0u32..600, n in 0u32..600,
        ) {
            prop_assert!(add_months(add_months(date, m), n) <= add_months(date, m + n));
        }

        #[test]
        fn a_week_is_seven_days(date in any_date(), weeks in 1u32..=MAX_COUNT) {
            let w = Interval::new(weeks, Unit::Weeks).expect("test input is valid").after(date);
            prop_assert_eq!(w, add_days(date, 7 * u64::from(weeks)));
            prop_assert_eq!((w - date).num_days(), 7 * i64::from(weeks));
        }

        #[test]
        fn every_interval_lands_strictly_later(date in any_date(), interval in any_interval()) {
            prop_assert!(interval.after(date) > date);
        }

        #[test]
        fn leap_years_match_the_length_of_february(year in -3000i32..3000) {
            let march = NaiveDate::from_ymd_opt(year, 3, 1).expect("test input is valid");
            let feb = NaiveDate::from_ymd_opt(year, 2, 1).expect("test input is valid");
            prop_assert_eq!((march - feb).num_days(), i64::from(days_in_month(year, 2)));
            prop_assert_eq!(days_in_month(year, 2) == 29, is_leap_year(year));
        }

        #[test]
        fn every_interval_prints_as_text_that_parses_back(interval in any_interval()) {
            prop_assert_eq!(interval.to_string().parse::<Interval>(), Ok(interval));
        }

        #[test]
        fn every_date_prints_as_text_that_parses_back(date in any_date()) {
            let text = date.format("%Y-%m-%d").to_string();
            prop_assert_eq!(parse_date(&text), Ok(date));
        }

        #[test]
        fn a_child_is_under_an_age_exactly_until_that_birthday(
            birth in any_date(), years in 0u32..30,
        ) {
            let day = birthday(birth, years);
            prop_assert!(!is_under(birth, years, day));
            if let Some(before) = day.pred_opt() {
                prop_assert!(is_under(birth, years, before));
            }
        }
    }
}
