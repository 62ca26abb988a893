//! What a registry's refusal means: a status other than the ones an
//! operation expects becomes an error that names what was being done, the
//! registry, the registry's own message (redacted) and, for a 401, why the
//! credentials did or did not help and what to do. Bodies are read within a
//! bound here too: a server decides how much it sends, hoist how much it
//! reads.
//!
//! Kept apart from the exchanges in `client.rs`: the hints are the longest
//! text in the client and change for other reasons than the sending does.

use reqwest::blocking::Response;

use super::auth::{challenge_of, Scope};
use super::client::{Client, Endpoint};
use super::redact::{Secrets, ServerText};
use super::RegistryError;

impl Client {
    /// Turns a response whose status is not one of `ok` into an error
    /// that names `what`, the registry and its message.
    pub(crate) fn check(
        &self,
        ep: &Endpoint,
        resp: Response,
        ok: &[u16],
        what: &str,
        scope: &Scope,
    ) -> Result<Response, RegistryError> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        // hoist sends credentials only after a challenge asked for them.
        let challenged = ep.challenge().is_some() || challenge_of(resp.headers()).is_some();
        let message = error_message(&self.secrets, resp);
        let registry = ep.registry.clone();
        let what = what.to_owned();
        Err(match status {
            401 => {
                let unchallenged =
                    "it sent no authentication challenge (no WWW-Authenticate header)";
                // Credentials the realm rules kept back (see
                // `realm_ok_for_credentials`) were not refused: never sent.
                let withheld = ep
                    .challenge()
                    .filter(|c| c.is_bearer())
                    .is_some_and(|c| !self.realm_accepts_credentials(ep, &c));
                let hint = match (self.credentials(ep, &scope.repository), challenged) {
                    (Ok(Some(c)), true) if withheld => format!(
                        "the credentials from {} were not sent: its token service is reached over plain HTTP, and hoist sends credentials there only when the registry itself is plain HTTP on the same host",
                        c.source
                    ),
                    (Ok(Some(c)), true) => format!(
                        "the credentials from {} were not accepted; log in again with `hoist login {registry}`",
                        c.source
                    ),
                    (Ok(Some(c)), false) => format!(
                        "{unchallenged}, so the credentials from {} were never sent; check that {registry} is the registry you meant and that no proxy in between strips the header",
                        c.source
                    ),
                    (_, false) => format!(
                        "{unchallenged} and hoist sent no credentials; check that {registry} is the registry you meant and that no proxy in between strips the header"
                    ),
                    (_, true) => format!("log in with `hoist login {registry}`"),
                };
                RegistryError::Unauthorized {
                    what,
                    registry,
                    message,
                    hint,
                }
            }
            403 => RegistryError::Denied {
                what,
                registry,
                message,
            },
            404 => RegistryError::NotFound {
                what,
                registry,
                message,
            },
            _ => RegistryError::Status {
                what,
                registry,
                status,
                message,
            },
        })
    }
}

/// Reads at most `limit` bytes of a body; an error if there are more.
pub(crate) fn read_small(resp: Response, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    resp.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the response is larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// The registry's explanation from an error body: the v2 `errors` list
/// (`CODE: message`), else the start of the text; redacted (see
/// [`super::redact`]).
pub(crate) fn error_message(secrets: &Secrets, resp: Response) -> ServerText {
    let body = read_small(resp, 64 * 1024).unwrap_or_default();
    secrets.clean(&parse_error_body(&body))
}

pub(crate) fn parse_error_body(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    match (code.is_empty(), msg.is_empty()) {
                        (false, false) => format!("{code}: {msg}"),
                        (false, true) => code.to_owned(),
                        _ => msg.to_owned(),
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        for k in ["details", "message", "error"] {
            if let Some(s) = v.get(k).and_then(|m| m.as_str()) {
                return s.to_owned();
            }
        }
    }
    // Cut to one line only after redaction (in `Secrets::clean`).
    String::from_utf8_lossy(body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_table() {
        let cases = [
            (
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
                "MANIFEST_UNKNOWN: manifest unknown",
            ),
            (
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"a"},{"code":"DENIED","message":"b"}]}"#,
                "UNAUTHORIZED: a; DENIED: b",
            ),
            (
                r#"{"details":"incorrect username or password"}"#,
                "incorrect username or password",
            ),
            (
                "<html>\n<body>502 Bad Gateway</body>",
                "<html>\n<body>502 Bad Gateway</body>",
            ),
            ("", ""),
        ];
        for (body, want) in cases {
            assert_eq!(parse_error_body(body.as_bytes()), want, "{body}");
        }
    }
}
