//! When and how long to wait before trying a request again.
//!
//! Registries shed load with 429 and 503 and sit behind proxies that reset
//! connections; a build should ride over that, but never spin. So: a
//! bounded number of tries, an exponential delay with a cap, jitter so
//! parallel transfers do not retry in lock-step, and the server's
//! `Retry-After` (seconds or an HTTP date) honoured up to a cap of its own.
//! A server that asks for more than the cap is not tried again at all: the
//! client stops and says what the server asked for
//! ([`super::RegistryError::WaitTooLong`]), rather than retrying for
//! minutes against a server that said it would be down for hours.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// How many times to try and how long to wait in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (so 5 means up to 4 retries).
    pub tries: u32,
    /// The delay before the first retry; it doubles on each further one.
    pub initial: Duration,
    /// The longest computed delay.
    pub max: Duration,
    /// The longest wait a server's `Retry-After` can ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            tries: 5,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry). The
    /// server's `Retry-After` wins when given (capped); otherwise the
    /// exponential delay, jittered into its upper half.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let base = self
            .initial
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max);
        // Jitter: a uniform fraction in [0.5, 1.0) of the delay.
        let frac = 0.5 + (random_u64() % 1000) as f64 / 2000.0;
        base.mul_f64(frac)
    }
}

/// Whether a response status is worth retrying: 408, 429 and the 5xx
/// statuses that mean "not now" (not 501 Not Implemented or 505).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504) || (506..=599).contains(&status)
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) measured from `now`. A date in the
/// past means no wait. `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let when = SystemTime::from(parse_http_date(v)?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7), the only HTTP date form a
/// server may send: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(v: &str) -> Option<time::OffsetDateTime> {
    let parts: Vec<&str> = v.split(' ').collect();
    let [wday, day, month, year, clock, "GMT"] = parts[..] else {
        return None;
    };
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !DAYS.contains(&wday) || day.len() != 2 || year.len() != 4 || clock.len() != 8 {
        return None;
    }
    let num = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let date = time::Date::from_calendar_date(
        num(year)? as i32,
        time::Month::try_from(month).ok()?,
        num(day)? as u8,
    )
    .ok()?;
    let mut hms = clock.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    let t = time::Time::from_hms(num(h)? as u8, num(m)? as u8, num(s)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// A random number from the standard library's per-process hash seed,
/// mixed with a counter and the clock: enough to spread retries.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_table() {
        // 1994-11-06T08:49:37Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(0)),
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(30)),
            ("Sun, 06 Nov 1994 08:00:00 GMT", Some(0)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 +0000", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 25:49:37 GMT", None),
            ("Sun, 06 Foo 1994 08:49:37 GMT", None),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_retry_after(input, now).map(|d| d.as_secs()),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        for retry in 1..=10 {
            let d = p.delay(retry, None);
            let base = Duration::from_millis(500) * (1 << (retry - 1).min(5));
            let base = base.min(Duration::from_secs(8));
            assert!(
                d >= base / 2 && d <= base,
                "retry {retry}: {d:?} vs {base:?}"
            );
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn retryable_table() {
        for (s, want) in [
            (200, false),
            (401, false),
            (404, false),
            (408, true),
            (429, true),
            (500, true),
            (501, false),
            (502, true),
            (503, true),
            (504, true),
            (505, false),
            (599, true),
        ] {
            assert_eq!(is_retryable_status(s), want, "{s}");
        }
    }
}
