//! Fission's defaults and fixed values (limits, accepted methods), as typed constants and helpers
//! (reference/fission.md §1, §2.7).

use std::time::Duration;

/// Port of the runtime container in every function pod.
pub const RUNTIME_PORT: u16 = 8888;
/// Port of the fetcher sidecar.
pub const FETCHER_PORT: u16 = 8000;

/// `concurrency` when 0 or absent: maximum specialized plus specializing pods per function.
pub const CONCURRENCY: i32 = 500;
/// `requestsPerPod` when 0 or absent: concurrent requests one specialized pod serves.
pub const REQUESTS_PER_POD: i32 = 1;
/// `idletimeout` (seconds) when absent, for `poolmgr` and `newdeploy`.
pub const IDLE_TIMEOUT_SECS: i32 = 120;
/// `idletimeout` (seconds) when absent, for `container`.
pub const CONTAINER_IDLE_TIMEOUT_SECS: i32 = 60;
/// `functionTimeout` (seconds) when 0 or absent.
pub const FUNCTION_TIMEOUT_SECS: i32 = 60;
/// Floor of `SpecializationTimeout` (seconds): smaller values are raised to it.
pub const MIN_SPECIALIZATION_TIMEOUT_SECS: i32 = 120;
/// Pool size for environments of version < 3, and the CLI's default for version 3.
pub const POOL_SIZE: i32 = 3;
/// Largest `literal` archive a Package may hold (bytes, decoded).
pub const ARCHIVE_LITERAL_SIZE_LIMIT: usize = 256 * 1024;
/// HTTP methods Fission accepts in an HTTPTrigger's `method` and `methods`.
pub const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];
/// Idle-reaper tick.
pub const REAPER_INTERVAL: Duration = Duration::from_secs(5);
/// How long a claimed pod may take to become ready.
pub const POD_READY_TIMEOUT: Duration = Duration::from_mins(5);

/// Effective `concurrency`: 0 or absent means [`CONCURRENCY`].
pub fn concurrency(value: Option<i32>) -> i32 {
    positive_or(value, CONCURRENCY)
}

/// Effective `requestsPerPod`: 0 or absent means [`REQUESTS_PER_POD`].
pub fn requests_per_pod(value: Option<i32>) -> i32 {
    positive_or(value, REQUESTS_PER_POD)
}

/// Effective `functionTimeout`: 0 or absent means [`FUNCTION_TIMEOUT_SECS`].
pub fn function_timeout(value: Option<i32>) -> Duration {
    secs(positive_or(value, FUNCTION_TIMEOUT_SECS))
}

/// Effective `SpecializationTimeout`: never below [`MIN_SPECIALIZATION_TIMEOUT_SECS`].
pub fn specialization_timeout(value: Option<i32>) -> Duration {
    secs(value.unwrap_or(0).max(MIN_SPECIALIZATION_TIMEOUT_SECS))
}

/// Effective `idletimeout` for an executor type; absent means the executor's default.
pub fn idle_timeout(value: Option<i32>, executor_type: &str) -> Duration {
    let default = if executor_type == crate::keys::executor_types::CONTAINER {
        CONTAINER_IDLE_TIMEOUT_SECS
    } else {
        IDLE_TIMEOUT_SECS
    };
    secs(value.unwrap_or(default).max(0))
}

/// Warm pool size of an Environment: `poolsize` is honoured from version 3 (absent means
/// [`POOL_SIZE`]); below version 3 it is always [`POOL_SIZE`]; `infinite` environments run one pod.
pub fn pool_size(version: i32, poolsize: Option<i32>, infinite: bool) -> i32 {
    let size = if version >= 3 {
        poolsize.unwrap_or(POOL_SIZE).max(0)
    } else {
        POOL_SIZE
    };
    if infinite { size.min(1) } else { size }
}

fn positive_or(value: Option<i32>, default: i32) -> i32 {
    match value {
        Some(v) if v > 0 => v,
        _ => default,
    }
}

fn secs(value: i32) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_absent_mean_fission_defaults() {
        assert_eq!(concurrency(None), 500);
        assert_eq!(concurrency(Some(0)), 500);
        assert_eq!(concurrency(Some(5)), 5);
        assert_eq!(requests_per_pod(Some(0)), 1);
        assert_eq!(requests_per_pod(Some(4)), 4);
        assert_eq!(function_timeout(None), Duration::from_mins(1));
        assert_eq!(function_timeout(Some(3)), Duration::from_secs(3));
    }

    #[test]
    fn specialization_timeout_is_raised_to_120s() {
        assert_eq!(specialization_timeout(None), Duration::from_mins(2));
        assert_eq!(specialization_timeout(Some(30)), Duration::from_mins(2));
        assert_eq!(specialization_timeout(Some(300)), Duration::from_mins(5));
    }

    #[test]
    fn idle_timeout_depends_on_executor() {
        assert_eq!(idle_timeout(None, "poolmgr"), Duration::from_mins(2));
        assert_eq!(idle_timeout(None, "container"), Duration::from_mins(1));
        assert_eq!(idle_timeout(Some(7), "container"), Duration::from_secs(7));
    }

    #[test]
    fn pool_size_rules() {
        assert_eq!(pool_size(3, Some(9), false), 9);
        assert_eq!(pool_size(3, None, false), 3);
        assert_eq!(pool_size(3, Some(0), false), 0);
        assert_eq!(
            pool_size(2, Some(9), false),
            3,
            "poolsize ignored below version 3"
        );
        assert_eq!(pool_size(1, None, false), 3);
        assert_eq!(pool_size(3, Some(9), true), 1, "infinite runs one pod");
        assert_eq!(pool_size(3, Some(0), true), 0);
    }
}
