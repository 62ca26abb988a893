//! The one retry policy: when to try a request again, how often, and how
//! long to wait in between. The registry client, npm's tarball fetcher and
//! pip's index and wheel downloads all follow it.
//!
//! Servers shed load with 429 and 503 and sit behind proxies that reset
//! connections; a build should ride over that, but never spin. So: a
//! bounded number of tries, an exponential delay with a cap, jitter so
//! parallel transfers do not retry in lock-step, and the server's
//! `Retry-After` (seconds or an HTTP date) honoured up to a cap of its own.
//! A server that asks for more than the cap is not tried again at all: the
//! client stops and says what the server asked for, rather than retrying
//! for minutes against a server that said it would be down for hours.
//! Statuses that will not change by waiting (501, 505, every 4xx but 408
//! and 429) and certificates that cannot be verified are not retried.
//!
//! [`RetryPolicy::run`] is the loop for a request that is simply sent
//! again (npm tarballs, pip pages and wheels); a try says how it went with
//! an [`Attempt`]. The registry client walks its own loops, since a retry
//! there is woven into redirects, re-authentication and resumed ranges,
//! but asks this policy the same questions: [`is_retryable_status`],
//! [`retry_after`], [`RetryPolicy::delay`] and its caps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use crate::error_chain;

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

impl RetryPolicy {
    /// Runs `attempt` until it succeeds or fails for good: a
    /// [`Attempt::Fatal`] ends at once; an [`Attempt::Retry`] is tried
    /// again after [`RetryPolicy::delay`], unless the tries are used up,
    /// the cause is a certificate (waiting will not make it trusted), or
    /// the server asked for a longer wait than the cap. `on_retry` hears of
    /// each retry (its number, 1 for the first, why, and the wait) before
    /// the wait; `give_up` makes the final error from the tries made and
    /// the last reason.
    pub fn run<T, E>(
        &self,
        mut attempt: impl FnMut() -> Result<T, Attempt<E>>,
        mut on_retry: impl FnMut(u32, &str, Duration),
        give_up: impl FnOnce(u32, String) -> E,
    ) -> Result<T, E> {
        let mut tried = 1;
        loop {
            let (why, after) = match attempt() {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { why, after }) => (why, after),
            };
            if tried >= self.tries || is_certificate_error(&why) {
                return Err(give_up(tried, why));
            }
            if let Some(asked) = after.filter(|a| *a > self.max_retry_after) {
                let why = format!(
                    "{why}, and the server asked to be tried again in {}; hoist waits at most {} between tries, so it stops here: try again later",
                    human_wait(&asked),
                    human_wait(&self.max_retry_after)
                );
                return Err(give_up(tried, why));
            }
            let wait = self.delay(tried, after);
            on_retry(tried, &why, wait);
            std::thread::sleep(wait);
            tried += 1;
        }
    }
}

/// What one try came to, short of success.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth another try: a connection error, a transfer cut off, a
    /// retryable status (with the server's `Retry-After`, if any).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Final: trying again would give the same answer.
    Fatal(E),
}

impl<E> Attempt<E> {
    /// A request that got no answer (or whose body broke off): retried.
    pub fn broken(e: &dyn std::error::Error) -> Self {
        Attempt::Retry {
            why: error_chain(e),
            after: None,
        }
    }

    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Attempt<F> {
        match self {
            Attempt::Retry { why, after } => Attempt::Retry { why, after },
            Attempt::Fatal(e) => Attempt::Fatal(f(e)),
        }
    }
}

/// `Err(Attempt::Retry)` when `response`'s status is worth retrying (see
/// [`is_retryable_status`]), with its `Retry-After`; `Ok` otherwise, for
/// the caller to judge.
pub fn retry_on_status<E>(response: &reqwest::blocking::Response) -> Result<(), Attempt<E>> {
    let status = response.status();
    if is_retryable_status(status.as_u16()) {
        return Err(Attempt::Retry {
            why: format!("HTTP {status}"),
            after: retry_after(response),
        });
    }
    Ok(())
}

/// A response's `Retry-After`, as asked (the policy applies the cap).
pub fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Whether a connection error is about a certificate (retrying will not
/// help).
pub fn is_certificate_error(detail: &str) -> bool {
    detail.to_ascii_lowercase().contains("certificate")
}

/// A wait for people: `45 s`, `7200 s (about 2 hours)`.
pub fn human_wait(d: &Duration) -> String {
    let s = d.as_secs();
    let about = if s < 120 {
        return format!("{s} s");
    } else if s < 2 * 3600 {
        format!("{} minutes", (s + 30) / 60)
    } else if s < 2 * 86400 {
        format!("{} hours", (s + 1800) / 3600)
    } else {
        format!("{} days", (s + 43200) / 86400)
    };
    format!("{s} s (about {about})")
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

    /// A policy that waits milliseconds, for tests that run the loop.
    fn quick(tries: u32) -> RetryPolicy {
        RetryPolicy {
            tries,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            max_retry_after: Duration::from_secs(1),
        }
    }

    #[test]
    fn run_table() {
        let retry = |why: &str, after: Option<u64>| Attempt::Retry {
            why: why.to_owned(),
            after: after.map(Duration::from_millis),
        };
        // Each case: what the tries answer in turn (a `None` is success),
        // the tries allowed, then the tries made and the outcome.
        type Case = (
            Vec<Option<Attempt<&'static str>>>,
            u32,
            usize,
            Result<(), String>,
        );
        let cases: Vec<Case> = vec![
            (vec![None], 5, 1, Ok(())),
            (vec![Some(retry("HTTP 503", None)), None], 5, 2, Ok(())),
            // Retry-After within the cap is waited for.
            (vec![Some(retry("HTTP 429", Some(2))), None], 5, 2, Ok(())),
            (vec![Some(Attempt::Fatal("HTTP 404"))], 5, 1, Err("fatal HTTP 404".into())),
            (
                vec![Some(retry("reset", None)), Some(Attempt::Fatal("bad hash"))],
                5,
                2,
                Err("fatal bad hash".into()),
            ),
            (
                (0..3).map(|_| Some(retry("reset", None))).collect(),
                3,
                3,
                Err("gave up after 3: reset".into()),
            ),
            // A certificate will not become trusted by waiting.
            (
                vec![Some(retry("invalid peer certificate: UnknownIssuer", None)), None],
                5,
                1,
                Err("gave up after 1: invalid peer certificate: UnknownIssuer".into()),
            ),
            // A server asking for more than the cap is not waited for.
            (
                vec![Some(retry("HTTP 503", Some(7_200_000))), None],
                5,
                1,
                Err("gave up after 1: HTTP 503, and the server asked to be tried again in 7200 s (about 2 hours); hoist waits at most 1 s between tries, so it stops here: try again later".into()),
            ),
        ];
        for (answers, tries, want_tries, want) in cases {
            let mut answers = answers.into_iter();
            let mut made = 0;
            let mut heard = Vec::new();
            let got = quick(tries).run(
                || {
                    made += 1;
                    match answers.next().flatten() {
                        None => Ok(()),
                        Some(a) => Err(a.map(|e| format!("fatal {e}"))),
                    }
                },
                |n, why, _| heard.push(format!("{n} {why}")),
                |n, why| format!("gave up after {n}: {why}"),
            );
            assert_eq!((made, &got), (want_tries, &want), "{heard:?}");
            assert_eq!(heard.len(), want_tries - 1, "{heard:?}");
        }
    }

    #[test]
    fn human_waits() {
        for (secs, want) in [
            (0, "0 s"),
            (60, "60 s"),
            (119, "119 s"),
            (120, "120 s (about 2 minutes)"),
            (7200, "7200 s (about 2 hours)"),
            (100000, "100000 s (about 28 hours)"),
            (172800, "172800 s (about 2 days)"),
        ] {
            assert_eq!(human_wait(&Duration::from_secs(secs)), want);
        }
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
