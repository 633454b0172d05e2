//! Cron specs as Fission accepts them: robfig/cron v3 with
//! `SecondOptional | Minute | Hour | Dom | Month | Dow | Descriptor`.
//!
//! Parsing yields a [`CronSchedule`] (bit sets per field, or an `@every` interval) that the time
//! trigger uses to compute fire times; validation is "does it parse".

use std::time::Duration;

/// A parsed cron spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronSchedule {
    /// Field-based schedule; bit `n` set means value `n` matches.
    Fields {
        /// Seconds 0–59 (bit 0 only when the spec has 5 fields).
        seconds: u64,
        /// Minutes 0–59.
        minutes: u64,
        /// Hours 0–23.
        hours: u64,
        /// Days of month 1–31.
        days_of_month: u64,
        /// Months 1–12.
        months: u64,
        /// Days of week 0–6 (Sunday = 0).
        days_of_week: u64,
        /// Whether day-of-month was `*`/`?` (robfig: then only day-of-week restricts, and vice versa).
        dom_unrestricted: bool,
        /// Whether day-of-week was `*`/`?`.
        dow_unrestricted: bool,
        /// Time zone from a `CRON_TZ=` or `TZ=` prefix.
        time_zone: Option<String>,
    },
    /// `@every <duration>` (at least one second).
    Every(Duration),
}

/// Why a cron spec does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Bounds = Bounds {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a cron spec the way Fission's TimeTrigger validation does.
pub fn parse_cron(spec: &str) -> Result<CronSchedule, CronError> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err(CronError("empty spec string".into()));
    }
    let mut time_zone = None;
    if let Some(rest) = spec
        .strip_prefix("CRON_TZ=")
        .or_else(|| spec.strip_prefix("TZ="))
    {
        let (tz, rest) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| CronError(format!("missing schedule after time zone in {spec:?}")))?;
        time_zone = Some(tz.to_owned());
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec, time_zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let (seconds, rest) = match fields.len() {
        5 => (1, &fields[..]),
        6 => (parse_field(fields[0], &SECOND)?, &fields[1..]),
        n => {
            return Err(CronError(format!(
                "expected 5 to 6 fields, found {n}: {spec:?}"
            )));
        }
    };
    Ok(CronSchedule::Fields {
        seconds,
        minutes: parse_field(rest[0], &MINUTE)?,
        hours: parse_field(rest[1], &HOUR)?,
        days_of_month: parse_field(rest[2], &DOM)?,
        months: parse_field(rest[3], &MONTH)?,
        days_of_week: parse_field(rest[4], &DOW)?,
        dom_unrestricted: is_any(rest[2]),
        dow_unrestricted: is_any(rest[4]),
        time_zone,
    })
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn parse_descriptor(spec: &str, time_zone: Option<String>) -> Result<CronSchedule, CronError> {
    let fixed = |spec: &str| parse_cron(spec);
    let schedule = match spec {
        "@yearly" | "@annually" => fixed("0 0 0 1 1 *")?,
        "@monthly" => fixed("0 0 0 1 * *")?,
        "@weekly" => fixed("0 0 0 * * 0")?,
        "@daily" | "@midnight" => fixed("0 0 0 * * *")?,
        "@hourly" => fixed("0 0 * * * *")?,
        _ => {
            let Some(duration) = spec.strip_prefix("@every ") else {
                return Err(CronError(format!("unrecognized descriptor: {spec}")));
            };
            let duration = parse_go_duration(duration.trim())
                .map_err(|e| CronError(format!("failed to parse duration {spec}: {e}")))?;
            // robfig rounds sub-second intervals up to one second.
            return Ok(CronSchedule::Every(duration.max(Duration::from_secs(1))));
        }
    };
    Ok(match schedule {
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
        } => CronSchedule::Fields {
            seconds,
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            dom_unrestricted,
            dow_unrestricted,
            time_zone,
        },
        every @ CronSchedule::Every(_) => every,
    })
}

/// One field: comma-separated ranges, each `*`, `?`, `n`, `a-b`, optionally `/step`.
fn parse_field(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for range in field.split(',') {
        bits |= parse_range(range, bounds)?;
    }
    Ok(bits)
}

fn parse_range(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let (range, step) = match expr.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step
                .parse()
                .map_err(|_| CronError(format!("failed to parse step {step:?} in {expr:?}")))?;
            if step == 0 {
                return Err(CronError(format!(
                    "step of range should be a positive number: {expr}"
                )));
            }
            (range, Some(step))
        }
        None => (expr, None),
    };
    let (start, end) = if is_any(range) {
        (bounds.min, bounds.max)
    } else if let Some((a, b)) = range.split_once('-') {
        (parse_value(a, bounds)?, parse_value(b, bounds)?)
    } else {
        let start = parse_value(range, bounds)?;
        // `n/step` means from n to the field's maximum.
        (start, if step.is_some() { bounds.max } else { start })
    };
    if start < bounds.min {
        return Err(CronError(format!(
            "beginning of range ({start}) below minimum ({}) for {}: {expr}",
            bounds.min, bounds.name
        )));
    }
    if end > bounds.max {
        return Err(CronError(format!(
            "end of range ({end}) above maximum ({}) for {}: {expr}",
            bounds.max, bounds.name
        )));
    }
    if start > end {
        return Err(CronError(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    let step = step.unwrap_or(1);
    Ok((start..=end)
        .step_by(step as usize)
        .fold(0u64, |bits, v| bits | (1u64 << v)))
}

fn parse_value(value: &str, bounds: &Bounds) -> Result<u32, CronError> {
    let lower = value.to_ascii_lowercase();
    if let Some(index) = bounds.names.iter().position(|n| *n == lower) {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        return Ok(index + bounds.min);
    }
    value.parse().map_err(|_| {
        CronError(format!(
            "failed to parse {value:?} as a {} value",
            bounds.name
        ))
    })
}

/// Go's `time.ParseDuration`: `[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)` repeated, or `0`.
/// Negative durations are refused (an interval cannot be negative).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(format!("negative duration {text:?}"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return Err(format!("invalid duration {text:?}"));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {text:?}")),
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_robfig_accepts() {
        for ok in [
            "*/5 * * * *",
            "0 30 * * * *",
            "0 0 12 * * MON-FRI",
            "15,45 9-17 * JAN-dec ?",
            "@every 1m",
            "@every 1h30m",
            "@hourly",
            "@midnight",
            "@annually",
            "CRON_TZ=Europe/Rome 0 6 * * *",
            "5/10 * * * *",
        ] {
            assert!(parse_cron(ok).is_ok(), "{ok}: {:?}", parse_cron(ok));
        }
    }

    #[test]
    fn refuses_what_robfig_refuses() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "@every",
            "@every 1x",
            "@every -1s",
            "@often",
            "x * * * *",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn fields_become_bit_sets() {
        let CronSchedule::Fields {
            seconds,
            minutes,
            days_of_week,
            dow_unrestricted,
            ..
        } = parse_cron("*/20 * * * MON,fri").unwrap()
        else {
            panic!("expected fields");
        };
        assert_eq!(seconds, 1, "5-field specs fire at second 0");
        assert_eq!(minutes, (1 << 0) | (1 << 20) | (1 << 40));
        assert_eq!(days_of_week, (1 << 1) | (1 << 5));
        assert!(!dow_unrestricted);
        assert_eq!(
            parse_cron("@every 90s").unwrap(),
            CronSchedule::Every(Duration::from_secs(90))
        );
        assert_eq!(
            parse_cron("@every 10ms").unwrap(),
            CronSchedule::Every(Duration::from_secs(1))
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
