//! The server's "today": the local date where the children live, which schedules are counted
//! in (DESIGN.md: dates are local dates in the jurisdiction's time zone).
//!
//! The zone is a setting (`time_zone`, Asia/Shanghai by default). The date can be fixed, for
//! the demo and for tests that let months pass, with `serve --today` (refused unless `--demo`
//! or the `development` setting is on).

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

/// The default zone: every county homevisit serves keeps China Standard Time.
pub const DEFAULT_ZONE: Tz = chrono_tz::Asia::Shanghai;

/// The time now, Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where "today" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    zone: Tz,
    fixed: Option<NaiveDate>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(DEFAULT_ZONE)
    }
}

impl Clock {
    /// The system clock, read in `zone`.
    pub fn new(zone: Tz) -> Self {
        Clock { zone, fixed: None }
    }

    /// A clock whose date is always `today` (the time of day still runs: tokens expire).
    pub fn fixed(zone: Tz, today: NaiveDate) -> Self {
        Clock {
            zone,
            fixed: Some(today),
        }
    }

    /// Today's local date.
    pub fn today(&self) -> NaiveDate {
        self.fixed.unwrap_or_else(|| {
            DateTime::from_timestamp(unix_now(), 0)
                .unwrap_or_default()
                .with_timezone(&self.zone)
                .date_naive()
        })
    }

    /// The zone dates are counted in.
    pub fn zone(&self) -> Tz {
        self.zone
    }
}

/// Reads a zone setting: an IANA name such as `Asia/Shanghai` or `Asia/Urumqi`.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?}: use an IANA name such as Asia/Shanghai"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_date_is_the_local_date_of_the_zone_not_of_utc() {
        // 2026-11-27 20:00 UTC is already the 28th in Shanghai (UTC+8), still the 27th in
        // New York.
        let instant = Utc
            .with_ymd_and_hms(2026, 11, 27, 20, 0, 0)
            .single()
            .expect("instant");
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let shanghai = instant.with_timezone(&DEFAULT_ZONE).date_naive();
        assert_eq!(shanghai, date(2026, 11, 28));
        let ny = instant
            .with_timezone(&chrono_tz::America::New_York)
            .date_naive();
        assert_eq!(ny, date(2026, 11, 27));
    }

    #[test]
    fn a_fixed_clock_keeps_its_date() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 1).expect("date");
        assert_eq!(Clock::fixed(DEFAULT_ZONE, day).today(), day);
    }

    #[test]
    fn an_unknown_zone_is_refused_by_name() {
        assert!(parse_zone("Asia/Urumqi").is_ok());
        let err = parse_zone("Asia/Beijing").expect_err("not a zone");
        assert!(err.contains("Asia/Beijing"), "{err}");
    }
}
