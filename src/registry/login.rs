//! `login`: check a username and password against a registry, then keep
//! them in podman's auth.json (see [`super::credentials`]).

use std::path::{Path, PathBuf};

use reqwest::Method;

use super::auth::Scope;
use super::client::{Call, Client};
use super::credentials::{self, Credentials, Secret};
use super::{Progress, RegistryError};
use crate::reference::normalize_registry;

impl Client {
    /// Verifies `username`/`password` with `registry` (the `/v2/` Basic
    /// check, or a token from its Bearer realm), then writes them to
    /// `file` (the default login file when `None`, see
    /// [`credentials::default_login_file`]) atomically with mode 0600.
    /// Returns the file written. Wrong credentials give
    /// [`RegistryError::Login`] naming the registry; nothing is written.
    pub fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
        file: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<PathBuf, RegistryError> {
        let key = normalize_registry(registry).ok_or_else(|| RegistryError::Login {
            registry: registry.to_owned(),
            why: "it is not a registry host name (HOST[:PORT])".into(),
        })?;
        let fail = |why: String| RegistryError::Login {
            registry: key.clone(),
            why,
        };
        if self.opts.offline {
            return Err(fail(
                "--offline: checking the credentials needs the network".into(),
            ));
        }
        if username.is_empty() || username.contains(':') {
            return Err(fail("the username is empty or contains `:`".into()));
        }
        let path = match file {
            Some(f) => f.to_owned(),
            None => credentials::default_login_file().ok_or_else(|| {
                fail(
                    "no auth file location: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME".into(),
                )
            })?,
        };
        let creds = Credentials {
            username: username.to_owned(),
            password: Secret::new(password),
            identity_token: None,
            source: "the login command".into(),
        };
        let ep = self.connect(&key, Some(creds.clone()), progress)?;
        let what = format!("logging in to {key}");
        match ep.challenge() {
            // The registry asks for no authentication; like `docker login`,
            // accept and keep the credentials for when it does.
            None => {}
            Some(c) if c.is_bearer() => {
                if !self.realm_accepts_credentials(&ep, &c) {
                    return Err(fail(format!(
                        "its token service {} is reached over plain HTTP; hoist sends credentials there only when the registry itself is plain HTTP on the same host",
                        self.secrets.clean(c.param("realm").unwrap_or("?"))
                    )));
                }
                match self.fetch_token(&ep, &c, &Scope::none(), Some(&creds), &what, progress) {
                    Ok(_) => {}
                    Err(RegistryError::Unauthorized { message, .. }) => {
                        return Err(fail(format!(
                            "the registry's token service refused the username or password{}",
                            if message.is_empty() {
                                String::new()
                            } else {
                                format!(" ({message})")
                            }
                        )))
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(c) if c.is_basic() => {
                let url = ep.url("v2/")?;
                let scope = Scope::none();
                let call = Call::new(self, Method::GET, url, &scope, &what, progress);
                let resp = self.send(&ep, &call)?;
                match resp.status().as_u16() {
                    200 => {}
                    401 => {
                        return Err(fail(
                            "the registry refused the username or password (HTTP 401)".into(),
                        ))
                    }
                    _ => {
                        self.check(&ep, resp, &[200], &what, &scope)?;
                    }
                }
            }
            Some(c) => {
                return Err(fail(format!(
                    "it asks for `{}` authentication, which hoist does not support",
                    c.scheme
                )))
            }
        }
        let shown = path.display().to_string();
        let existing = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(credentials::CredentialsError::File {
                    path: shown,
                    why: e.to_string(),
                }
                .into())
            }
        };
        let text = credentials::with_login(existing.as_deref(), &shown, &key, username, password)?;
        credentials::write_private(&path, &text)?;
        self.forget(&key);
        Ok(path)
    }
}
