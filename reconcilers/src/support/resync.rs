//! The periodic re-check ("resync") of the environment, function and offloading reconcilers:
//! every object is reconciled again this long after its last reconcile, even without events, to
//! repair drift nothing announces (a converged reconcile only reads).
//!
//! Default 5 minutes; `RIVULET_RESYNC_SECONDS` (read once, at the first reconcile) overrides it,
//! for scale tests that measure steady-state writes over several resyncs.

use std::sync::OnceLock;
use std::time::Duration;

/// Environment variable overriding the resync period (whole seconds, at least 1).
pub const ENV_VAR: &str = "RIVULET_RESYNC_SECONDS";
/// The resync period without an override.
pub const DEFAULT: Duration = Duration::from_mins(5);

/// The resync period of this process.
pub fn period() -> Duration {
    static PERIOD: OnceLock<Duration> = OnceLock::new();
    *PERIOD.get_or_init(|| match std::env::var(ENV_VAR) {
        Ok(value) => parse(&value).unwrap_or_else(|why| {
            tracing::warn!("ignoring {ENV_VAR}={value:?}: {why}; resync every {DEFAULT:?}");
            DEFAULT
        }),
        Err(_) => DEFAULT,
    })
}

/// Parses a period in whole seconds (at least 1).
pub fn parse(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".into()),
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(e) => Err(format!("not a whole number of seconds ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_seconds_and_rejects_zero_and_garbage() {
        assert_eq!(parse("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse(" 7 "), Ok(Duration::from_secs(7)));
        assert!(parse("0").unwrap_err().contains("at least 1"));
        assert!(parse("5m").unwrap_err().contains("whole number"));
    }
}
