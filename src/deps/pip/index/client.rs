//! Requests to an index: credentials attached, small documents fetched
//! whole.
//!
//! Pages and `.metadata` files are read into memory up to a limit, with
//! the retries of [`super::retry`]; 404 and 410 mean "not here" rather
//! than an error, since an index answers so for a project it does not
//! have. A page kept in the store is asked for again conditionally (its
//! `ETag` in `If-None-Match`, its `Last-Modified` in `If-Modified-Since`),
//! and 304 Not Modified then means "what you have". The downloader
//! streams wheels through the same [`Index::request`], so that
//! credentials go to the same places.

use std::io::Read;
use std::time::Duration;

use reqwest::Url;

use super::freshness::fresh_for;
use super::retry::{check_status, with_retries, Attempt};
use super::{Index, IndexError};
use crate::error_chain;

impl Index {
    /// A request with the credentials its origin has, if any.
    pub(in crate::deps::pip) fn request(
        &self,
        url: &Url,
    ) -> (reqwest::blocking::RequestBuilder, bool) {
        let mut request = self.client.get(url.clone());
        let auth = self.auth.header(url);
        if let Some(header) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        (request, auth.is_some())
    }

    /// GETs a small document whole, with retries; `None` on 404 or 410.
    pub(super) fn get(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
        timeout: Option<Duration>,
    ) -> Result<Option<Got>, IndexError> {
        match self.get_if(url, accept, limit, timeout, &Validators::default())? {
            Fetched::Got(got) => Ok(Some(got)),
            Fetched::Missing => Ok(None),
            // Nothing was asked conditionally: a 304 is the server's error.
            Fetched::NotModified { .. } => Err(IndexError::Http {
                url: url.to_string(),
                status: 304,
                hint: " to an unconditional request".to_owned(),
            }),
        }
    }

    /// [`Index::get`], asked conditionally with `validators` (none: an
    /// ordinary request).
    pub(super) fn get_if(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
        timeout: Option<Duration>,
        validators: &Validators,
    ) -> Result<Fetched, IndexError> {
        with_retries(
            || {
                let (mut request, authed) = self.request(url);
                request = request.header(reqwest::header::ACCEPT, accept);
                if let Some(etag) = &validators.etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag);
                }
                if let Some(date) = &validators.last_modified {
                    request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
                }
                if let Some(t) = timeout {
                    request = request.timeout(t);
                }
                let response = request.send().map_err(|e| Attempt::Retry {
                    why: error_chain(&e),
                    after: None,
                })?;
                let status = response.status().as_u16();
                if matches!(status, 404 | 410) {
                    return Ok(Fetched::Missing);
                }
                if status == 304 && !validators.is_empty() {
                    // A 304 renews the kept copy's freshness (RFC 9111 §4.3.4).
                    return Ok(Fetched::NotModified {
                        fresh_for: fresh_for_of(response.headers()),
                    });
                }
                check_status(&response, authed).map_err(|a| {
                    a.map(|(status, hint)| IndexError::Http {
                        url: url.to_string(),
                        status,
                        hint,
                    })
                })?;
                let final_url = response.url().to_string();
                let header = |name: reqwest::header::HeaderName| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let content_type = header(reqwest::header::CONTENT_TYPE)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let cache_control = header(reqwest::header::CACHE_CONTROL).unwrap_or_default();
                let fresh_for = fresh_for_of(response.headers());
                // `no-store`: the server wants no copy kept, so nothing to
                // ask conditionally with next time.
                let validators = if cache_control.to_ascii_lowercase().contains("no-store") {
                    Validators::default()
                } else {
                    Validators {
                        etag: header(reqwest::header::ETAG),
                        last_modified: header(reqwest::header::LAST_MODIFIED),
                    }
                };
                let mut body = Vec::new();
                response
                    .take(limit + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| Attempt::Retry {
                        why: error_chain(&e),
                        after: None,
                    })?;
                if body.len() as u64 > limit {
                    return Err(Attempt::Fatal(IndexError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }));
                }
                Ok(Fetched::Got(Got {
                    url: final_url,
                    content_type,
                    body,
                    validators,
                    fresh_for,
                }))
            },
            |_, _| {},
            |attempts, why| IndexError::Network {
                url: url.to_string(),
                attempts,
                why,
            },
        )
    }
}

/// What a conditional request came to.
pub(super) enum Fetched {
    Got(Got),
    /// 404 or 410.
    Missing,
    /// 304: the copy the validators came from is current, and may be used
    /// this many seconds more without asking.
    NotModified {
        fresh_for: Option<u64>,
    },
}

/// What a response's `Cache-Control` and `Age` allow ([`fresh_for`]).
fn fresh_for_of(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let cache_control = headers.get(reqwest::header::CACHE_CONTROL)?;
    let age = headers.get(reqwest::header::AGE).map(|v| v.as_bytes());
    fresh_for(cache_control.as_bytes(), age)
}

/// What a response said to ask with next time: its `ETag` and
/// `Last-Modified`, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_modified: Option<String>,
}

impl Validators {
    pub(super) fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A document fetched whole.
pub(super) struct Got {
    /// After redirects: relative links resolve against it.
    pub(super) url: String,
    pub(super) content_type: String,
    pub(super) body: Vec<u8>,
    /// What to ask with next time.
    pub(super) validators: Validators,
    /// Seconds it may be used without asking again ([`super::freshness`]).
    pub(super) fresh_for: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{config, name, JSON};
    use super::super::test_server::{Reply, Server};
    use super::super::IndexError;
    use super::*;

    #[test]
    fn http_errors_retries_and_hints() {
        let main = Server::start(vec![
            (
                "/simple/flaky/",
                vec![Reply::status(503), Reply::ok(JSON, r#"{"files":[]}"#)],
            ),
            ("/simple/private/", vec![Reply::status(401)]),
            ("/simple/teapot/", vec![Reply::status(418)]),
            ("/simple/garbled/", vec![Reply::ok(JSON, "{not json")]),
        ]);
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        assert_eq!(index.files(&name("flaky")).unwrap(), vec![]);
        assert_eq!(main.hits("/simple/flaky/"), 2);

        let msg = index.files(&name("private")).unwrap_err().to_string();
        assert!(
            msg.contains("HTTP 401") && msg.contains("https://USER:TOKEN@host/simple/"),
            "{msg}"
        );
        assert_eq!(main.hits("/simple/private/"), 1);
        let msg = index.files(&name("teapot")).unwrap_err().to_string();
        assert!(msg.contains("HTTP 418"), "{msg}");
        let err = index.files(&name("garbled")).unwrap_err();
        assert!(matches!(err, IndexError::BadPage { .. }), "{err}");
        // Errors are not remembered: asked again, the index is asked again.
        let _ = index.files(&name("private"));
        assert_eq!(main.hits("/simple/private/"), 2);
    }
}
