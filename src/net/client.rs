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

fn defaults() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .tcp_keepalive(Duration::from_secs(30))
        // The blocking client's default 30 s limit covers the whole body:
        // that would cut off large blobs, so it is lifted.
        .timeout(None)
}

/// The registry client's builder: hoist's defaults over HTTP/1.1 only;
/// callers add what they need (extra CAs, client certificates) before
/// `build()`. A push is a few long uploads, each best on a connection of
/// its own (HTTP/2 would share one TCP window between them), and the
/// registries' chunked-upload sessions are specified and tested there.
pub fn builder() -> reqwest::blocking::ClientBuilder {
    defaults().http1_only()
}

/// The package indexes' and downloads' client (npm, PyPI, `ADD https://`):
/// HTTP/2 where the server offers it in TLS (ALPN), else HTTP/1.1. Their
/// work is many small requests to one host at once (pip's read-ahead asks
/// 16 at a time): over HTTP/2 they share one connection and one TLS
/// handshake instead of opening one each, which through a TLS-intercepting
/// proxy is most of a cold request's time.
pub fn client() -> Result<reqwest::blocking::Client, reqwest::Error> {
    defaults().build()
}
