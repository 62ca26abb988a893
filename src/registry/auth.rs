//! What a request to a registry carries: the scopes a token is asked
//! for, the credentials that apply (looked up once per repository), the
//! token cache per scope, and which token realms may see credentials at
//! all. These are decisions, not exchanges: the token request itself and
//! its retries are one of the exchanges in `client.rs`, which asks here
//! what to send and keeps what comes back.
//!
//! The realm rule lives in one place because two callers apply it: the
//! token request (credentials are withheld from a realm that fails it) and
//! the 401 hint in `answer.rs` (which then says they were never sent,
//! rather than refused).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::Url;

use super::challenge::{self, Challenge};
use super::client::{authority, lock, Client, Endpoint};
use super::credentials::{self, Credentials, Secret};
use super::{Progress, RegistryError};
use crate::reference::host_part;

/// A token is renewed when it has less than this left.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// The longest a token is kept, whatever `expires_in` says: a clock
/// past this is not worth trusting, and it keeps `Instant` arithmetic far
/// from overflow.
const TOKEN_MAX_TTL: u64 = 24 * 60 * 60;

pub(super) struct Token {
    value: Secret,
    expires: Instant,
}

/// What a request may do, as the token scopes asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The repository whose credentials apply.
    pub repository: String,
    pub scopes: Vec<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_owned(),
            scopes: vec![format!("repository:{repository}:pull")],
        }
    }

    /// Push to `repository`, and pull from `mount_from` for cross-repository
    /// mounts.
    pub fn push(repository: &str, mount_from: Option<&str>) -> Scope {
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            scopes.push(format!("repository:{from}:pull"));
        }
        Scope {
            repository: repository.to_owned(),
            scopes,
        }
    }

    /// No repository: `/v2/` itself (login).
    pub fn none() -> Scope {
        Scope {
            repository: String::new(),
            scopes: Vec::new(),
        }
    }
}

/// Whether a token realm is on the registry's own host (any port: the
/// same machine, which the user's trust in the registry covers).
pub(super) fn same_host(realm: &Url, registry_base: &Url) -> bool {
    host_part(&authority(realm)).eq_ignore_ascii_case(host_part(&authority(registry_base)))
}

/// Credentials go to a token realm over HTTPS (verified, when the realm
/// is on another host: see [`Client::realm_client`]), or with the same
/// scheme on the registry's own host: so a plain-HTTP registry (loopback
/// or marked insecure) may have a plain-HTTP realm beside it, and a
/// registry reached over HTTPS never has its credentials sent in clear
/// text.
pub(super) fn realm_ok_for_credentials(realm: &Url, registry_base: &Url) -> bool {
    realm.scheme() == "https"
        || (realm.scheme() == registry_base.scheme() && same_host(realm, registry_base))
}

pub(super) fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    let all: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect();
    challenge::pick(&all).cloned()
}

/// A token service's JSON answer: the token (`token`, or OAuth2's
/// `access_token`) and how long to keep it (`expires_in`, 60 s by default
/// as the distribution spec says, at most [`TOKEN_MAX_TTL`]).
pub(crate) fn parse_token_answer(body: &[u8]) -> Result<(Secret, Duration), &'static str> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the token service did not answer JSON")?;
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or("the token service's answer has no token")?;
    let ttl = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|&e| e > 0)
        .unwrap_or(60)
        .min(TOKEN_MAX_TTL);
    Ok((Secret::new(token), Duration::from_secs(ttl)))
}

impl Client {
    /// The credentials for `repository` on `ep`, looked up once.
    pub(crate) fn credentials(
        &self,
        ep: &Endpoint,
        repository: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = &ep.creds_override {
            self.secrets.remember_credentials(c);
            return Ok(Some(c.clone()));
        }
        if let Some(c) = lock(&ep.creds).get(repository) {
            return Ok(c.clone());
        }
        let found = credentials::lookup(&self.opts.auth_files, &ep.registry, repository)?;
        if let Some(c) = &found {
            self.secrets.remember_credentials(c);
        }
        lock(&ep.creds).insert(repository.to_owned(), found.clone());
        Ok(found)
    }

    /// The `Authorization` header for a request with `scope` on `ep`.
    pub(crate) fn authorization(
        &self,
        ep: &Endpoint,
        scope: &Scope,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = lock(&ep.challenge).clone();
        let value = match challenge {
            Some(c) if c.is_bearer() => Some(format!(
                "Bearer {}",
                self.token(ep, &c, scope, what, progress)?.expose()
            )),
            Some(c) if c.is_basic() => self
                .credentials(ep, &scope.repository)?
                .map(|c| c.basic_header()),
            _ => None,
        };
        Ok(value.and_then(|v| {
            let mut h = HeaderValue::from_str(&v).ok()?;
            h.set_sensitive(true);
            Some(h)
        }))
    }

    /// A Bearer token for `scope`, from the cache or the challenge's realm.
    fn token(
        &self,
        ep: &Endpoint,
        c: &Challenge,
        scope: &Scope,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Secret, RegistryError> {
        let key = scope.scopes.join(" ");
        if let Some(t) = lock(&ep.tokens).get(&key) {
            if Instant::now()
                .checked_add(TOKEN_MARGIN)
                .is_some_and(|soon| t.expires > soon)
            {
                return Ok(t.value.clone());
            }
        }
        let (token, ttl) = self.fetch_token(ep, c, scope, None, what, progress)?;
        lock(&ep.tokens).insert(
            key,
            Token {
                value: token.clone(),
                // `ttl` is at most a day (see parse_token_answer).
                expires: Instant::now().checked_add(ttl).unwrap_or_else(Instant::now),
            },
        );
        Ok(token)
    }

    /// Whether credentials may go to `c`'s realm (see
    /// [`realm_ok_for_credentials`]).
    pub(crate) fn realm_accepts_credentials(&self, ep: &Endpoint, c: &Challenge) -> bool {
        c.param("realm")
            .and_then(|r| Url::parse(r).ok())
            .is_some_and(|u| realm_ok_for_credentials(&u, &ep.base))
    }

    /// After a 401: takes the response's challenge, forgets the token for
    /// `scope`. Whether trying again can help.
    pub(super) fn reauthenticate(&self, ep: &Endpoint, headers: &HeaderMap, scope: &Scope) -> bool {
        let Some(c) = challenge_of(headers) else {
            return false;
        };
        let had_token = lock(&ep.tokens).remove(&scope.scopes.join(" ")).is_some();
        let mut current = lock(&ep.challenge);
        let changed = current.as_ref() != Some(&c);
        *current = Some(c);
        // Basic with the same challenge would send the same credentials.
        changed || had_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answer_table() {
        let day = Duration::from_secs(24 * 60 * 60);
        type Want = Result<(&'static str, Duration), &'static str>;
        let cases: [(&str, Want); 7] = [
            (
                r#"{"token":"t","expires_in":300}"#,
                Ok(("t", Duration::from_secs(300))),
            ),
            (
                r#"{"access_token":"a"}"#,
                Ok(("a", Duration::from_secs(60))),
            ),
            (
                r#"{"token":"","access_token":"a","expires_in":0}"#,
                Ok(("a", Duration::from_secs(60))),
            ),
            // A token server may say anything: a huge lifetime is capped.
            (
                r#"{"token":"t","expires_in":18446744073709551615}"#,
                Ok(("t", day)),
            ),
            (
                r#"{"token":"t","expires_in":1e300}"#,
                Ok(("t", Duration::from_secs(60))),
            ),
            (
                r#"{"token":""}"#,
                Err("the token service's answer has no token"),
            ),
            ("<html>", Err("the token service did not answer JSON")),
        ];
        for (body, want) in cases {
            let got = parse_token_answer(body.as_bytes());
            let got = got.as_ref().map(|(t, d)| (t.expose(), *d)).map_err(|e| *e);
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            Scope::pull("library/alpine").scopes,
            vec!["repository:library/alpine:pull"]
        );
        assert_eq!(
            Scope::push("team/web", Some("library/alpine")).scopes,
            vec![
                "repository:team/web:pull,push",
                "repository:library/alpine:pull"
            ]
        );
        assert_eq!(
            Scope::push("a", Some("a")).scopes,
            vec!["repository:a:pull,push"]
        );
    }

    #[test]
    fn realm_rules_table() {
        let u = |s: &str| Url::parse(s).unwrap();
        // (realm, registry base, credentials may go there)
        for (realm, base, want) in [
            (
                "https://auth.docker.io/token",
                "https://registry-1.docker.io/",
                true,
            ),
            (
                "http://127.0.0.1:5204/token",
                "http://127.0.0.1:5203/",
                true,
            ),
            (
                "http://localhost:5204/token",
                "http://127.0.0.1:5203/",
                false,
            ),
            ("http://r.io/token", "https://r.io/", false),
            ("http://r.io:8080/token", "https://r.io/", false),
            ("https://r.io/token", "http://r.io/", true),
            ("http://auth.r.io/token", "http://r.io/", false),
        ] {
            assert_eq!(
                realm_ok_for_credentials(&u(realm), &u(base)),
                want,
                "{realm} for {base}"
            );
        }
        assert!(same_host(&u("https://r.io:5001/t"), &u("http://R.io/")));
        assert!(!same_host(
            &u("https://localhost/t"),
            &u("http://127.0.0.1/")
        ));
    }
}
