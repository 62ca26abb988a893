//! Requests to an index: credentials attached, small documents fetched
//! whole.
//!
//! Pages and `.metadata` files are read into memory up to a limit, with
//! the retries of [`super::retry`]; 404 and 410 mean "not here" rather
//! than an error, since an index answers so for a project it does not
//! have. The downloader streams wheels through the same [`Index::request`],
//! so that credentials go to the same places.

use std::io::Read;
use std::time::Duration;

use reqwest::Url;

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
        with_retries(
            || {
                let (mut request, authed) = self.request(url);
                request = request.header(reqwest::header::ACCEPT, accept);
                if let Some(t) = timeout {
                    request = request.timeout(t);
                }
                let response = request.send().map_err(|e| Attempt::Retry {
                    why: error_chain(&e),
                    after: None,
                })?;
                let status = response.status().as_u16();
                if matches!(status, 404 | 410) {
                    return Ok(None);
                }
                check_status(&response, authed).map_err(|a| {
                    a.map(|(status, hint)| IndexError::Http {
                        url: url.to_string(),
                        status,
                        hint,
                    })
                })?;
                let final_url = response.url().to_string();
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
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
                Ok(Some(Got {
                    url: final_url,
                    content_type,
                    body,
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

/// A document fetched whole.
pub(super) struct Got {
    /// After redirects: relative links resolve against it.
    pub(super) url: String,
    pub(super) content_type: String,
    pub(super) body: Vec<u8>,
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
