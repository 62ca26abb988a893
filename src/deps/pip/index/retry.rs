//! The retry adapter of index requests, shared with the downloader.
//!
//! One attempt ends in success, a reason to try again (a connection error,
//! HTTP 408, 429 or a 5xx that means "not now", with the server's
//! `Retry-After` when it gives one), or a final error; [`with_retries`]
//! runs attempts as hoist's one retry policy says ([`crate::net::retry`]).

pub(in crate::deps::pip) use crate::net::retry::Attempt;

/// Runs `attempt` as hoist's one retry policy says ([`crate::net::retry`]);
/// `on_retry` hears of each retry, `give_up` makes the final error.
pub(in crate::deps::pip) fn with_retries<T, E>(
    attempt: impl FnMut() -> Result<T, Attempt<E>>,
    on_retry: impl Fn(u32, &str),
    give_up: impl FnOnce(u32, String) -> E,
) -> Result<T, E> {
    crate::net::RetryPolicy::default().run(attempt, |n, why, _| on_retry(n, why), give_up)
}

/// Sorts a response's status: success passes; 408, 429 and the 5xx that
/// mean "not now" are retried (honouring `Retry-After`); anything else is
/// final, as (status, hint).
pub(in crate::deps::pip) fn check_status(
    response: &reqwest::blocking::Response,
    authed: bool,
) -> Result<(), Attempt<(u16, String)>> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    crate::net::retry::retry_on_status(response)?;
    let code = status.as_u16();
    let hint = match code {
        401 | 403 if authed => ": the credentials in the index URL were refused".to_owned(),
        401 | 403 => ": the index wants credentials; put them in the index URL \
                      (https://USER:TOKEN@host/simple/)"
            .to_owned(),
        _ => String::new(),
    };
    Err(Attempt::Fatal((code, hint)))
}
