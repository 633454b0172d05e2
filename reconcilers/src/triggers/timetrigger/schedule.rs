//! When a TimeTrigger fires next (pure): robfig/cron v3's search over a spec parsed by
//! [`rivulet_api::validation::parse_cron`] (the same parser that validates it).
//!
//! Civil times are computed in the spec's `CRON_TZ=`/`TZ=` zone, else UTC (what a Fission timer
//! pod's local zone usually is). When both day-of-month and day-of-week are restricted, a day
//! matching either fires (robfig/Vixie semantics). `@every d` fires every whole number of
//! seconds of `d` (at least one), counted from the previous fire time, so it never drifts.

use jiff::Timestamp;
use jiff::ToSpan;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use rivulet_api::validation::{CronSchedule, parse_cron};

/// A schedule ready to compute fire times.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: CronSchedule,
    zone: TimeZone,
}

/// How far ahead a schedule is searched before it is declared never to fire (robfig: 5 years).
const SEARCH_YEARS: i16 = 5;

impl Schedule {
    /// Parses `spec.cron`; the error says what is wrong with it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let cron = parse_cron(spec).map_err(|e| e.to_string())?;
        let zone = match &cron {
            CronSchedule::Fields {
                time_zone: Some(name),
                ..
            } => TimeZone::get(name).map_err(|e| format!("provided bad location {name}: {e}"))?,
            _ => TimeZone::UTC,
        };
        Ok(Self { cron, zone })
    }

    /// The first fire time strictly after `after`, or `None` when the schedule never fires
    /// within five years (for example `0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.cron {
            CronSchedule::Every(period) => {
                // Like robfig: whole seconds, from `after` with its sub-second part dropped.
                let seconds = i64::try_from(period.as_secs().max(1)).ok()?;
                Timestamp::from_second(after.as_second().checked_add(seconds)?).ok()
            }
            CronSchedule::Fields {
                seconds,
                minutes,
                hours,
                days_of_month,
                months,
                days_of_week,
                dom_unrestricted,
                dow_unrestricted,
                ..
            } => {
                let fields = Fields {
                    second: *seconds,
                    minute: *minutes,
                    hour: *hours,
                    dom: *days_of_month,
                    month: *months,
                    dow: *days_of_week,
                    any_day_field_star: *dom_unrestricted || *dow_unrestricted,
                };
                fields.next_after(after, &self.zone)
            }
        }
    }
}

struct Fields {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day-of-month or day-of-week was `*`/`?`: then a day must match both (else either).
    any_day_field_star: bool,
}

impl Fields {
    fn has(bits: u64, v: i8) -> bool {
        u32::try_from(v).is_ok_and(|v| bits & (1 << v) != 0)
    }

    fn day_matches(&self, day: &DateTime) -> bool {
        let dom = Self::has(self.dom, day.day());
        let dow = Self::has(self.dow, day.weekday().to_sunday_zero_offset());
        if self.any_day_field_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// robfig's search: from the next whole second, roll each field forward to a match,
    /// restarting the finer fields whenever a coarser one moves.
    fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let start = zone
            .to_datetime(after)
            .with()
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.second())
            .ok()?;
        let limit = start.year().checked_add(SEARCH_YEARS)?;
        let mut t = start;
        while t.year() <= limit {
            if !Self::has(self.month, t.month()) {
                t = t
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .start_of_day();
                continue;
            }
            if !self.day_matches(&t) {
                t = t.checked_add(1.day()).ok()?.start_of_day();
                continue;
            }
            if !Self::has(self.hour, t.hour()) {
                t = t
                    .with()
                    .minute(0)
                    .second(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !Self::has(self.minute, t.minute()) {
                t = t
                    .with()
                    .second(0)
                    .build()
                    .ok()?
                    .checked_add(1.minute())
                    .ok()?;
                continue;
            }
            if !Self::has(self.second, t.second()) {
                t = t.checked_add(1.second()).ok()?;
                continue;
            }
            // A civil time skipped by a DST gap resolves to the instant just after the gap.
            return zone.to_ambiguous_timestamp(t).compatible().ok();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec)
            .unwrap()
            .next_after(ts(after))
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn five_fields_fire_on_second_zero() {
        assert_eq!(
            next("*/5 * * * *", "2026-01-01T00:01:30Z"),
            "2026-01-01T00:05:00Z"
        );
        assert_eq!(
            next("30 9 * * *", "2026-01-01T09:30:00Z"),
            "2026-01-02T09:30:00Z"
        );
    }

    #[test]
    fn six_fields_start_with_seconds() {
        assert_eq!(
            next("*/10 * * * * *", "2026-01-01T00:00:01.5Z"),
            "2026-01-01T00:00:10Z"
        );
        assert_eq!(
            next("0 0 12 * * MON-FRI", "2026-01-03T00:00:00Z"),
            "2026-01-05T12:00:00Z"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next("@hourly", "2026-01-01T00:00:00Z"),
            "2026-01-01T01:00:00Z"
        );
        assert_eq!(
            next("@daily", "2026-01-01T10:00:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2026-01-01T10:00:00Z"),
            "2026-01-04T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-01-31T10:00:00Z"),
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2026-03-01T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 10s", "2026-01-01T00:00:00.7Z"),
            "2026-01-01T00:00:10Z"
        );
        assert_eq!(
            next("@every 1m30s", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:01:30Z"
        );
        assert_eq!(
            next("@every 100ms", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:01Z"
        );
        assert_eq!(
            next("@every 1.5s", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:01Z"
        );
    }

    #[test]
    fn dom_and_dow_both_restricted_match_either() {
        // The 13th, or any Friday (robfig/Vixie semantics).
        assert_eq!(
            next("0 0 13 * FRI", "2026-02-01T00:00:00Z"),
            "2026-02-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 13 * FRI", "2026-02-07T00:00:00Z"),
            "2026-02-13T00:00:00Z"
        );
        // With a star, both must hold: Friday the 13th.
        assert_eq!(
            next("0 0 13 * ?", "2026-02-01T00:00:00Z"),
            "2026-02-13T00:00:00Z"
        );
    }

    #[test]
    fn names_steps_ranges_lists() {
        assert_eq!(
            next("0 0 1 jan,Jul *", "2026-02-01T00:00:00Z"),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(
            next("15/20 * * * *", "2026-01-01T00:16:00Z"),
            "2026-01-01T00:35:00Z"
        );
        assert_eq!(
            next("0 8-10/2 * * *", "2026-01-01T08:30:00Z"),
            "2026-01-01T10:00:00Z"
        );
    }

    #[test]
    fn time_zone_prefix() {
        assert_eq!(
            next("CRON_TZ=Europe/Rome 0 9 * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T08:00:00Z"
        );
        assert_eq!(
            next("TZ=UTC 0 9 * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T09:00:00Z"
        );
    }

    #[test]
    fn impossible_dates_never_fire() {
        assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), "");
    }

    #[test]
    fn unknown_zones_are_refused() {
        let err = Schedule::parse("CRON_TZ=Mars/Olympus 0 * * * *").unwrap_err();
        assert!(err.contains("bad location Mars/Olympus"), "{err}");
    }
}
