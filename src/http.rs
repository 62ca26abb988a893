//! The one HTTP client setup every part of hoist shares.
//!
//! TLS trusts the system's CA store (which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), as corporate hosts with TLS-intercepting proxies need;
//! `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` are honoured. The connect timeout
//! and TCP keep-alive bound dead connections; no limit applies to a whole
//! transfer, so a large blob on a slow link is not cut off.

use std::time::{Duration, SystemTime};

/// The User-Agent hoist sends.
pub const USER_AGENT: &str = concat!("hoist/", env!("CARGO_PKG_VERSION"));

/// A client builder with hoist's defaults; callers add what they need
/// (extra CAs, client certificates) before `build()`.
pub fn builder() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .tcp_keepalive(Duration::from_secs(30))
        // The blocking client's default 30 s limit covers the whole body:
        // that would cut off large blobs, so it is lifted.
        .timeout(None)
}

/// A client with hoist's defaults.
pub fn client() -> Result<reqwest::blocking::Client, reqwest::Error> {
    builder().build()
}

/// The first retry's delay for package downloads; each next one doubles.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (1 for the first retry):
/// doubling from [`FIRST_DELAY`], plus up to half again at random, so
/// parallel retries do not hit the server together.
pub fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = FIRST_DELAY * 2u32.saturating_pow(attempt.saturating_sub(1));
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = h.finish() % (base.as_millis() as u64 / 2 + 1);
    base + Duration::from_millis(jitter)
}

/// A response's `Retry-After` (seconds or an HTTP date), capped at
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let wait = crate::registry::retry::parse_retry_after(value, SystemTime::now())?;
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 1..=3 {
            let base = FIRST_DELAY * 2u32.pow(attempt - 1);
            let d = backoff(attempt);
            assert!(d >= base && d <= base + base / 2, "{attempt}: {d:?}");
        }
    }
}
