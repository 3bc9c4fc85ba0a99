//! The AWS SDKs' retry modes as botocore implements them, chosen by `AWS_RETRY_MODE`:
//! - `standard` (the default, as in AWS CLI v2; `botocore/retries/standard.py`, `quota.py`):
//!   throttling and transient errors (5xx, timeouts, broken connections, TLS failures) are
//!   retried, at most `AWS_MAX_ATTEMPTS` attempts in all (3 by default), `rand(0,1) ×
//!   min(2^(attempt-1), 20)` seconds apart, while a retry quota shared by a client's calls lasts
//!   (500, 5 a retry, 10 a retried timeout, 1 back per first-try success);
//! - `legacy` (boto3's default; `botocore/data/_retry.json`, `retryhandler.py`): fewer throttling
//!   codes, 5xx and 509, broken connections; 5 attempts by default, `rand(0,1) × 2^(attempt-1)`
//!   seconds apart with no ceiling and no quota.
//!
//! Neither botocore mode knows clock skew. The other SDKs (Java, Go v2, JavaScript v3) do: a
//! clock-skew error moves the signing clock to the server's `Date` and is retried at once. We
//! do that in both modes, since a laptop's drifting clock otherwise fails every signed call.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

/// botocore's `_THROTTLED_ERROR_CODES`.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// The throttling codes of botocore's legacy `_retry.json` (each with HTTP 400).
const LEGACY_THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
];
/// Legacy's `general_server_error` … `limit_exceeded` statuses.
const LEGACY_STATUS: &[u16] = &[500, 502, 503, 504, 509];

/// botocore's `_TRANSIENT_ERROR_CODES` and `_TRANSIENT_STATUS_CODES`.
const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"];
const TRANSIENT_STATUS: &[u16] = &[500, 502, 503, 504];

/// The errors a signature made on a wrong clock gets (the Java, Go and JavaScript SDKs'
/// clock-skew codes; botocore has none).
const CLOCK_SKEW: &[&str] = &[
    "RequestTimeTooSkewed",
    "RequestExpired",
    "RequestInTheFuture",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// A clock this far from the server's is corrected (SigV4 accepts 5 minutes).
const SKEW_TOLERANCE: Duration = Duration::from_secs(4 * 60);

const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const LEGACY_MAX_ATTEMPTS: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(20);
const QUOTA: u64 = 500;
const RETRY_COST: u64 = 5;
const TIMEOUT_RETRY_COST: u64 = 10;
const NO_RETRY_INCREMENT: u64 = 1;

/// Why an attempt may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    Throttling,
    Transient,
    /// The connection timed out (costs the quota more).
    Timeout,
    ClockSkew,
}

/// Which SDK retry rules a client follows (`AWS_RETRY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standard,
    Legacy,
}

/// How an answer with `status` and error `kind` (empty when the body named none) is retried in
/// standard mode.
pub fn classify(status: u16, kind: &str) -> Option<Retryable> {
    if THROTTLING.contains(&kind) || status == 429 {
        Some(Retryable::Throttling)
    } else if CLOCK_SKEW.contains(&kind) {
        Some(Retryable::ClockSkew)
    } else if TRANSIENT.contains(&kind) || TRANSIENT_STATUS.contains(&status) {
        Some(Retryable::Transient)
    } else {
        None
    }
}

/// How legacy mode retries the same answer: its own throttling list (with HTTP 400), 429, 5xx
/// and 509; the clock-skew codes as in standard mode.
fn classify_legacy(status: u16, kind: &str) -> Option<Retryable> {
    if (status == 400 && LEGACY_THROTTLING.contains(&kind)) || status == 429 {
        Some(Retryable::Throttling)
    } else if CLOCK_SKEW.contains(&kind) {
        Some(Retryable::ClockSkew)
    } else if LEGACY_STATUS.contains(&status) {
        Some(Retryable::Transient)
    } else {
        None
    }
}

/// The clock a request was signed with: the local clock moved by the skew known then.
#[derive(Clone, Copy, Debug)]
pub struct SigningClock {
    pub at: SystemTime,
    skew_ms: i64,
}

/// The retry policy and state of one client (its clones share the quota and the clock offset).
#[derive(Clone, Debug)]
pub struct Retry {
    pub mode: Mode,
    pub max_attempts: u32,
    /// The backoff's unit: 1 s in the SDKs.
    base: Duration,
    quota: Arc<Mutex<u64>>,
    /// Server clock minus local clock, in milliseconds, learnt from a clock-skew error.
    skew_ms: Arc<AtomicI64>,
    jitter: Arc<AtomicU64>,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry::new(DEFAULT_MAX_ATTEMPTS, Duration::from_secs(1))
    }
}

impl Retry {
    /// Standard mode with `max_attempts` and the backoff unit `base`.
    pub fn new(max_attempts: u32, base: Duration) -> Retry {
        Retry::with_mode(Mode::Standard, max_attempts, base)
    }

    pub fn with_mode(mode: Mode, max_attempts: u32, base: Duration) -> Retry {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
        Retry {
            mode,
            max_attempts: max_attempts.max(1),
            base,
            quota: Arc::new(Mutex::new(QUOTA)),
            skew_ms: Arc::new(AtomicI64::new(0)),
            jitter: Arc::new(AtomicU64::new(seed)),
        }
    }

    /// `AWS_RETRY_MODE` (`standard` or `legacy`) and `AWS_MAX_ATTEMPTS` (a whole number ≥ 1) as
    /// the SDKs read them, and the backoff unit `XTASK_RETRY_BASE_SECONDS` (tests, whose
    /// stand-ins fail at once; 0.001 to 60).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Retry> {
        let set = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mode = match set("AWS_RETRY_MODE").as_deref() {
            None | Some("standard") => Mode::Standard,
            Some("legacy") => Mode::Legacy,
            Some("adaptive") => bail!(
                "AWS_RETRY_MODE is \"adaptive\": xtask retries as the SDKs' `standard` or `legacy` mode, not with adaptive's client-side rate limiter; unset it (standard) or set AWS_RETRY_MODE=standard"
            ),
            Some(other) => bail!(
                "AWS_RETRY_MODE is {other:?}: it must be `standard` or `legacy` (lower case, as the SDKs read it); unset it for standard"
            ),
        };
        let max_attempts = match set("AWS_MAX_ATTEMPTS") {
            None if mode == Mode::Legacy => LEGACY_MAX_ATTEMPTS,
            None => DEFAULT_MAX_ATTEMPTS,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => bail!("AWS_MAX_ATTEMPTS is {text:?}: it must be a whole number of attempts, 1 or more (3 by default); unset it or set e.g. AWS_MAX_ATTEMPTS=5"),
            },
        };
        let base = match set("XTASK_RETRY_BASE_SECONDS") {
            None => Duration::from_secs(1),
            Some(text) => match text.parse::<f64>() {
                Ok(secs) if (0.001..=60.0).contains(&secs) => Duration::from_secs_f64(secs),
                _ => bail!("XTASK_RETRY_BASE_SECONDS is {text:?}: it must be a number of seconds from 0.001 to 60; unset it for the SDKs' 1 s"),
            },
        };
        Ok(Retry::with_mode(mode, max_attempts, base))
    }

    /// How this client's mode retries an answer with `status` and error `kind`.
    pub fn classify(&self, status: u16, kind: &str) -> Option<Retryable> {
        match self.mode {
            Mode::Standard => classify(status, kind),
            Mode::Legacy => classify_legacy(status, kind),
        }
    }

    /// The clock to sign with: the local clock moved by the skew a server reported.
    pub fn signing_clock(&self) -> SigningClock {
        let skew_ms = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        let offset = Duration::from_millis(skew_ms.unsigned_abs());
        let at = if skew_ms >= 0 { now + offset } else { now.checked_sub(offset).unwrap_or(now) };
        SigningClock { at, skew_ms }
    }

    /// After a clock-skew error whose answer carried `server_date` (an HTTP date): sets the
    /// skew so the signing clock reads the server's, when `signed` was off by more than the
    /// tolerance; false when it was not, so the error is not one a retry can mend. Set from the
    /// skew the request was signed with, not added: two calls failing on the same skew leave
    /// one correction, not two.
    pub fn correct_clock(&self, signed: SigningClock, server_date: Option<&str>) -> bool {
        let Some(server) = server_date.and_then(http_date) else { return false };
        let signed_s = signed.at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let off = server as i64 - signed_s;
        if off.unsigned_abs() <= SKEW_TOLERANCE.as_secs() {
            return false;
        }
        self.skew_ms.store(signed.skew_ms + off * 1000, Ordering::Relaxed);
        true
    }

    /// Whether attempt `attempt` (1-based) that failed as `why` is tried again: under the
    /// attempt limit and (standard mode) the quota allows it; takes its cost from the quota.
    /// Returns the cost.
    pub fn acquire(&self, attempt: u32, why: Retryable) -> Option<u64> {
        if attempt >= self.max_attempts {
            return None;
        }
        if self.mode == Mode::Legacy {
            return Some(0);
        }
        let cost = if why == Retryable::Timeout { TIMEOUT_RETRY_COST } else { RETRY_COST };
        let mut quota = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        if *quota < cost {
            return None;
        }
        *quota -= cost;
        Some(cost)
    }

    /// A call succeeded: what its last retry took goes back, or 1 when it needed none.
    pub fn release(&self, retry_cost: Option<u64>) {
        let mut quota = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        *quota = (*quota + retry_cost.unwrap_or(NO_RETRY_INCREMENT)).min(QUOTA);
    }

    pub fn quota_left(&self) -> u64 {
        *self.quota.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wait before retrying failed attempt `attempt` (1-based): jittered exponential,
    /// truncated at 20 s in standard mode; none after a corrected clock.
    pub fn delay(&self, attempt: u32, why: Retryable) -> Duration {
        if why == Retryable::ClockSkew {
            return Duration::ZERO;
        }
        let ceiling = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let ceiling = if self.mode == Mode::Standard { ceiling.min(MAX_BACKOFF) } else { ceiling };
        ceiling.mul_f64(self.random())
    }

    /// A number in [0, 1) (xorshift: jitter needs no cryptographic randomness).
    fn random(&self) -> f64 {
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The month names of an HTTP date.
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Dec 2026 16:13:59 GMT`), the form
/// AWS's `Date` headers take.
pub fn http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let (day, year): (u32, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    let days = u64::try_from(crate::time::days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_as_botocore_does() {
        assert_eq!(classify(400, "ThrottlingException"), Some(Retryable::Throttling));
        assert_eq!(classify(503, "SlowDown"), Some(Retryable::Throttling));
        assert_eq!(classify(429, ""), Some(Retryable::Throttling));
        assert_eq!(classify(500, "InternalFailure"), Some(Retryable::Transient));
        assert_eq!(classify(502, ""), Some(Retryable::Transient));
        assert_eq!(classify(400, "RequestTimeout"), Some(Retryable::Transient));
        assert_eq!(classify(403, "InvalidSignatureException"), Some(Retryable::ClockSkew));
        assert_eq!(classify(400, "AccessDeniedException"), None);
        assert_eq!(classify(400, "ServiceNotFoundException"), None);
    }

    #[test]
    fn the_backoff_is_jittered_exponential_and_truncated() {
        let retry = Retry::new(10, Duration::from_secs(1));
        for attempt in 1..=8 {
            let ceiling = Duration::from_secs(1 << (attempt - 1)).min(MAX_BACKOFF);
            let delays: Vec<Duration> = (0..50).map(|_| retry.delay(attempt, Retryable::Throttling)).collect();
            assert!(delays.iter().all(|d| *d < ceiling), "attempt {attempt}: {delays:?}");
            assert!(delays.iter().any(|d| *d > ceiling / 2), "attempt {attempt}: not spread: {delays:?}");
            assert!(delays.windows(2).any(|w| w[0] != w[1]), "no jitter");
        }
        assert_eq!(retry.delay(1, Retryable::ClockSkew), Duration::ZERO);
    }

    #[test]
    fn attempts_are_bounded_and_the_quota_drains_and_refills() {
        let retry = Retry::new(3, Duration::from_millis(1));
        assert_eq!(retry.acquire(1, Retryable::Throttling), Some(RETRY_COST));
        assert_eq!(retry.acquire(2, Retryable::Timeout), Some(TIMEOUT_RETRY_COST));
        assert_eq!(retry.acquire(3, Retryable::Throttling), None, "a third failure is the last attempt");
        assert_eq!(retry.quota_left(), QUOTA - 15);
        retry.release(Some(TIMEOUT_RETRY_COST));
        assert_eq!(retry.quota_left(), QUOTA - 5);
        // A storm of failures empties the quota: retries stop until calls succeed again.
        let drained = (0..200).filter_map(|_| retry.acquire(1, Retryable::Transient)).count();
        assert_eq!(drained, 99);
        assert_eq!(retry.acquire(1, Retryable::Transient), None);
        (0..5).for_each(|_| retry.release(None));
        assert_eq!(retry.acquire(1, Retryable::Transient), Some(RETRY_COST));
        (0..1000).for_each(|_| retry.release(None));
        assert_eq!(retry.quota_left(), QUOTA);
    }

    #[test]
    fn a_skewed_clock_is_moved_to_the_servers_and_a_right_one_is_not() {
        let retry = Retry::default();
        let at = UNIX_EPOCH + Duration::from_secs(http_date("Sun, 06 Dec 2026 16:13:59 GMT").unwrap());
        let signed = SigningClock { at, skew_ms: 0 };
        assert!(
            !retry.correct_clock(signed, Some("Sun, 06 Dec 2026 16:16:59 GMT")),
            "3 minutes is within SigV4's window"
        );
        assert!(!retry.correct_clock(signed, None));
        assert!(!retry.correct_clock(signed, Some("yesterday")));
        assert!(retry.correct_clock(signed, Some("Sun, 06 Dec 2026 17:13:59 GMT")));
        let ahead = retry.signing_clock().at.duration_since(SystemTime::now()).unwrap();
        assert!((3590..=3600).contains(&ahead.as_secs()), "{ahead:?}");
        let behind = Retry::default();
        assert!(behind.correct_clock(signed, Some("Sun, 06 Dec 2026 15:13:59 GMT")));
        let lag = SystemTime::now().duration_since(behind.signing_clock().at).unwrap();
        assert!((3599..=3601).contains(&lag.as_secs()), "{lag:?}");
    }

    #[test]
    fn two_calls_failing_on_the_same_skew_correct_it_once() {
        let retry = Retry::default();
        // Both signed before either answer came back, an hour behind the server.
        let first = retry.signing_clock();
        let second = retry.signing_clock();
        let server = |clock: SigningClock| {
            let s = clock.at.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
            format_http_date(s)
        };
        assert!(retry.correct_clock(first, Some(&server(first))));
        assert!(retry.correct_clock(second, Some(&server(second))));
        let ahead = retry.signing_clock().at.duration_since(SystemTime::now()).unwrap();
        assert!((3590..=3601).contains(&ahead.as_secs()), "doubled or lost: {ahead:?}");
        // A request signed with the corrected clock and refused again moves it from there.
        let third = retry.signing_clock();
        assert!(retry.correct_clock(third, Some(&server(third))));
        let ahead = retry.signing_clock().at.duration_since(SystemTime::now()).unwrap();
        assert!((7190..=7201).contains(&ahead.as_secs()), "{ahead:?}");
    }

    /// An IMF-fixdate of `s` (the inverse of [`http_date`], for the tests).
    fn format_http_date(s: u64) -> String {
        let (year, month, day) = crate::time::civil_from_days((s / 86_400) as i64);
        let secs = s % 86_400;
        let text = format!(
            "Mon, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
            MONTHS[month as usize - 1],
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        assert_eq!(http_date(&text), Some(s));
        text
    }

    #[test]
    fn legacy_mode_retries_what_botocores_retry_json_lists() {
        let legacy = Retry::with_mode(Mode::Legacy, 5, Duration::from_secs(1));
        assert_eq!(legacy.classify(400, "ThrottlingException"), Some(Retryable::Throttling));
        assert_eq!(legacy.classify(429, ""), Some(Retryable::Throttling));
        assert_eq!(legacy.classify(509, ""), Some(Retryable::Transient));
        assert_eq!(legacy.classify(503, "SlowDown"), Some(Retryable::Transient));
        // Standard-only codes.
        assert_eq!(legacy.classify(400, "TooManyRequestsException"), None);
        assert_eq!(legacy.classify(400, "RequestTimeout"), None);
        assert_eq!(Retry::default().classify(400, "TooManyRequestsException"), Some(Retryable::Throttling));
        assert_eq!(Retry::default().classify(509, ""), None);
        // No quota: a storm of failures never stops the retries, only the attempt limit does.
        assert!((0..1000).all(|_| legacy.acquire(4, Retryable::Transient).is_some()));
        assert_eq!(legacy.acquire(5, Retryable::Transient), None);
        // No 20 s ceiling: the 7th attempt waits up to 64 s.
        let delays: Vec<Duration> = (0..200).map(|_| legacy.delay(7, Retryable::Throttling)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(64)), "{delays:?}");
        assert!(delays.iter().any(|d| *d > MAX_BACKOFF), "{delays:?}");
    }

    #[test]
    fn http_dates_parse_to_epoch_seconds() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn the_environment_sets_the_attempts_and_bad_values_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(Retry::from_env(env(&[])).unwrap().max_attempts, 3);
        assert_eq!(Retry::from_env(env(&[("AWS_MAX_ATTEMPTS", "7")])).unwrap().max_attempts, 7);
        let err = Retry::from_env(env(&[("AWS_MAX_ATTEMPTS", "0")])).unwrap_err().to_string();
        assert!(err.contains("AWS_MAX_ATTEMPTS is \"0\"") && err.contains("1 or more"), "{err}");
        let err = Retry::from_env(env(&[("XTASK_RETRY_BASE_SECONDS", "soon")])).unwrap_err().to_string();
        assert!(err.contains("XTASK_RETRY_BASE_SECONDS is \"soon\""), "{err}");
        let standard = Retry::from_env(env(&[("AWS_RETRY_MODE", "standard")])).unwrap();
        assert_eq!((standard.mode, standard.max_attempts), (Mode::Standard, 3));
        let legacy = Retry::from_env(env(&[("AWS_RETRY_MODE", "legacy")])).unwrap();
        assert_eq!((legacy.mode, legacy.max_attempts), (Mode::Legacy, 5));
        let legacy = Retry::from_env(env(&[("AWS_RETRY_MODE", "legacy"), ("AWS_MAX_ATTEMPTS", "2")])).unwrap();
        assert_eq!(legacy.max_attempts, 2);
        let err = Retry::from_env(env(&[("AWS_RETRY_MODE", "adaptive")])).unwrap_err().to_string();
        assert!(err.contains("AWS_RETRY_MODE is \"adaptive\"") && err.contains("AWS_RETRY_MODE=standard"), "{err}");
        let err = Retry::from_env(env(&[("AWS_RETRY_MODE", "Standard")])).unwrap_err().to_string();
        assert!(err.contains("must be `standard` or `legacy`"), "{err}");
    }
}
