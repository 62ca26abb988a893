//! The one HTTP client setup every part of hoist shares: the registry
//! client, npm's fetcher and pip's index all start from [`builder`].
//!
//! TLS trusts the system's CA store (which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), as corporate hosts with TLS-intercepting proxies need;
//! `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` are honoured. The connect timeout
//! and TCP keep-alive bound dead connections; no limit applies to a whole
//! transfer, so a large blob on a slow link is not cut off.

use std::time::Duration;

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
