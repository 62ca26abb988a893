//! The retry loop of index requests, shared with the downloader.
//!
//! One attempt ends in success, a reason to try again (a connection error,
//! HTTP 429 or 5xx, with the server's `Retry-After` when it gives one), or
//! a final error; [`with_retries`] runs attempts until one succeeds, one is
//! final, or [`ATTEMPTS`] are spent. Kept apart from the requests so that
//! the one retry policy of `net/` can take its place in one step.

use std::time::Duration;

use super::ATTEMPTS;

/// What one attempt came to, short of success.
pub(in crate::deps::pip) enum Attempt<E> {
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fatal(E),
}

impl<E> Attempt<E> {
    pub(in crate::deps::pip) fn map<F>(self, f: impl FnOnce(E) -> F) -> Attempt<F> {
        match self {
            Attempt::Retry { why, after } => Attempt::Retry { why, after },
            Attempt::Fatal(e) => Attempt::Fatal(f(e)),
        }
    }
}

/// Runs `attempt` up to [`ATTEMPTS`] times, sleeping between tries;
/// `on_retry` hears of each retry, `give_up` makes the final error.
pub(in crate::deps::pip) fn with_retries<T, E>(
    mut attempt: impl FnMut() -> Result<T, Attempt<E>>,
    on_retry: impl Fn(u32, &str),
    give_up: impl FnOnce(u32, String) -> E,
) -> Result<T, E> {
    let mut n = 1;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry { why, after }) => {
                if n >= ATTEMPTS {
                    return Err(give_up(n, why));
                }
                on_retry(n, &why);
                std::thread::sleep(after.unwrap_or_else(|| crate::http::backoff(n)));
                n += 1;
            }
        }
    }
}

/// Sorts a response's status: success passes; 429 and 5xx are retried
/// (honouring `Retry-After`); anything else is final, as (status, hint).
pub(in crate::deps::pip) fn check_status(
    response: &reqwest::blocking::Response,
    authed: bool,
) -> Result<(), Attempt<(u16, String)>> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if code == 429 || status.is_server_error() {
        return Err(Attempt::Retry {
            why: format!("HTTP {status}"),
            after: crate::http::retry_after(response),
        });
    }
    let hint = match code {
        401 | 403 if authed => ": the credentials in the index URL were refused".to_owned(),
        401 | 403 => ": the index wants credentials; put them in the index URL \
                      (https://USER:TOKEN@host/simple/)"
            .to_owned(),
        _ => String::new(),
    };
    Err(Attempt::Fatal((code, hint)))
}
