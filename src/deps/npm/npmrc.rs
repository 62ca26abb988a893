//! The project's `.npmrc`: where tarballs come from and what credentials
//! go with them.
//!
//! npm reads its config as ini (the `ini` package), then expands `${VAR}`
//! in keys and values (`@npmcli/config`'s `envReplace`). hoist reads the
//! project's `.npmrc` the same way, and only the keys that decide a
//! download:
//!
//! - `registry=URL`: the default registry;
//! - `@scope:registry=URL`: the registry of one scope's packages;
//! - `//host[:port]/path/:_authToken=T` (a Bearer token), `:_auth=B64`
//!   (Basic `user:password`, base64), `:username=U` with
//!   `:_password=B64(password)` (Basic): credentials for the URLs under
//!   that "nerf dart". As npm-registry-fetch does, a request URL is matched
//!   by walking its path up, segment by segment, to `//host[:port]`, so a
//!   token is sent only to the host (and path) it was given for. Unscoped
//!   `_authToken`/`_auth` are refused by npm 9 and later, and ignored here
//!   with a warning.
//!
//! The user's `~/.npmrc` and npm's global config are not read: a build
//! depends on the project and the environment only, and tokens come in
//! through `${NPM_TOKEN}`-style references, as in CI.
//!
//! Like npm (`replace-registry-host=npmjs`), a `resolved` URL on
//! registry.npmjs.org is fetched from the configured registry instead, so
//! a mirror configured in `.npmrc` serves lockfiles written against the
//! public registry.

use std::collections::BTreeMap;

use base64::Engine as _;

/// npm's default registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpmrcError {
    #[error(".npmrc line {line}: registry `{value}` is not an http(s) URL")]
    BadRegistry { line: usize, value: String },
    #[error(".npmrc line {line}: `{key}` is not valid base64")]
    BadBase64 { line: usize, key: String },
}

/// Credentials for one registry path.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic <base64 of user:password>`.
    Basic(String),
}

impl Auth {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        match self {
            Auth::Bearer(t) => format!("Bearer {t}"),
            Auth::Basic(b) => format!("Basic {b}"),
        }
    }
}

// Never print a secret.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(…)"),
            Auth::Basic(_) => f.write_str("Basic(…)"),
        }
    }
}

/// What a project's `.npmrc` says about downloads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Npmrc {
    /// `registry`, with a trailing `/`; `None` for npm's default.
    registry: Option<String>,
    /// `@scope` to its registry, with a trailing `/`.
    scopes: BTreeMap<String, String>,
    /// Nerf darts (`//host/path/`, without a trailing `/` or `:`) to
    /// credentials.
    auth: BTreeMap<String, Auth>,
    /// Things npm would complain about, for the build to report.
    pub warnings: Vec<String>,
}

impl Npmrc {
    /// Parses `.npmrc` text; `env` looks up environment variables for
    /// `${VAR}` expansion.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Npmrc, NpmrcError> {
        let mut rc = Npmrc::default();
        // Per nerf dart: username and password come as two keys.
        let mut users: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut passwords: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            // `[section]` headers: npm's config has none that matter here.
            if line.starts_with('[') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = env_replace(&ini_value(key.trim()), env);
            let value = env_replace(&ini_value(value.trim()), env);
            if key == "registry" {
                rc.registry = Some(registry_url(n, &value)?);
            } else if let Some(scope) = key.strip_suffix(":registry") {
                if scope.starts_with('@') && !scope.contains('/') {
                    rc.scopes.insert(scope.to_owned(), registry_url(n, &value)?);
                }
            } else if let Some(rest) = key.strip_prefix("//") {
                let Some((dart, field)) = rest.rsplit_once(':') else {
                    continue;
                };
                let dart = format!("//{}", dart.trim_end_matches('/'));
                match field {
                    "_authToken" => {
                        rc.auth.insert(dart, Auth::Bearer(value));
                    }
                    "_auth" => {
                        rc.auth.insert(dart, Auth::Basic(value));
                    }
                    "username" => {
                        users.insert(dart, (n, value));
                    }
                    "_password" => {
                        passwords.insert(dart, (n, value));
                    }
                    _ => {}
                }
            } else if matches!(
                key.as_str(),
                "_authToken" | "_auth" | "_password" | "username"
            ) {
                rc.warnings.push(format!(
                    ".npmrc line {n}: `{key}` is not scoped to a registry, so it is ignored \
                     (as npm 9 and later refuse it); write `//registry.example.com/:{key}=...`"
                ));
            }
        }
        for (dart, (_, user)) in users {
            let Some((line, password)) = passwords.remove(&dart) else {
                continue;
            };
            let password = base64::engine::general_purpose::STANDARD
                .decode(password.as_bytes())
                .map_err(|_| NpmrcError::BadBase64 {
                    line,
                    key: format!("{dart}/:_password"),
                })?;
            let mut pair = user.into_bytes();
            pair.push(b':');
            pair.extend(password);
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            rc.auth.entry(dart).or_insert(Auth::Basic(encoded));
        }
        Ok(rc)
    }

    /// The registry a package (by its real name, `@scope/name` or `name`)
    /// comes from, with a trailing `/`.
    pub fn registry_for(&self, package: &str) -> &str {
        package
            .split_once('/')
            .filter(|(scope, _)| scope.starts_with('@'))
            .and_then(|(scope, _)| self.scopes.get(scope))
            .or(self.registry.as_ref())
            .map_or(DEFAULT_REGISTRY, String::as_str)
    }

    /// Where to download a package from: its lockfile `resolved` URL (on
    /// the configured registry when it names the public one), else the
    /// registry's tarball URL for its name and version.
    pub fn tarball_url(
        &self,
        package: &str,
        version: Option<&str>,
        resolved: Option<&str>,
    ) -> Option<String> {
        let registry = self.registry_for(package);
        if let Some(resolved) = resolved {
            return Some(match resolved.strip_prefix(DEFAULT_REGISTRY) {
                Some(rest) if registry != DEFAULT_REGISTRY => format!("{registry}{rest}"),
                _ => resolved.to_owned(),
            });
        }
        let version = version?;
        let unscoped = package.rsplit('/').next().unwrap_or(package);
        Some(format!("{registry}{package}/-/{unscoped}-{version}.tgz"))
    }

    /// The credentials npm would send with a request to `url`: those of
    /// the longest nerf dart that is a path prefix of it.
    pub fn auth_for(&self, url: &str) -> Option<&Auth> {
        if self.auth.is_empty() {
            return None;
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        let mut key = match parsed.port() {
            Some(port) => format!("//{host}:{port}{}", parsed.path()),
            None => format!("//{host}{}", parsed.path()),
        };
        // Walk up: drop what follows the last `/`, or the `/` itself.
        while key.len() > 2 {
            if let Some(auth) = self.auth.get(key.trim_end_matches('/')) {
                return Some(auth);
            }
            match key.rfind('/') {
                Some(at) if at + 1 < key.len() => key.truncate(at + 1),
                _ => {
                    key.pop();
                }
            }
        }
        None
    }
}

/// A registry URL with a trailing `/`.
fn registry_url(line: usize, value: &str) -> Result<String, NpmrcError> {
    let ok = reqwest::Url::parse(value)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if !ok {
        return Err(NpmrcError::BadRegistry {
            line,
            value: value.to_owned(),
        });
    }
    Ok(if value.ends_with('/') {
        value.to_owned()
    } else {
        format!("{value}/")
    })
}

/// An ini key or value as the `ini` package reads it: quotes removed (with
/// JSON escapes inside double quotes), else cut at an unescaped `;` or `#`
/// and unescaped.
fn ini_value(raw: &str) -> String {
    let quoted = raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')));
    if quoted {
        if raw.starts_with('"') {
            if let Ok(s) = serde_json::from_str::<String>(raw) {
                return s;
            }
        }
        return raw[1..raw.len() - 1].to_owned();
    }
    let mut out = String::new();
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            if !matches!(c, '\\' | ';' | '#') {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ';' || c == '#' {
            break;
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    out.trim().to_owned()
}

/// `@npmcli/config`'s `envReplace`: `${VAR}` becomes the variable's value
/// (left as written when unset), `${VAR?}` becomes the value or nothing;
/// a backslash before `$` escapes it (an even number of backslashes are
/// halved and do not).
fn env_replace(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        // The run of backslashes before a `${`.
        let start = i;
        let mut j = i;
        while j < bytes.len() && bytes[j] == b'\\' {
            j += 1;
        }
        if j + 1 < bytes.len() && bytes[j] == b'$' && bytes[j + 1] == b'{' {
            if let Some(close) = text[j + 2..].find('}') {
                let inner = &text[j + 2..j + 2 + close];
                let (name, optional) = match inner.strip_suffix('?') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                let valid = !name.is_empty() && !name.contains(['$', '{', '?']);
                if valid {
                    let backslashes = j - start;
                    let end = j + 2 + close + 1;
                    if backslashes % 2 == 1 {
                        // Escaped: half the backslashes go, the rest stays.
                        out.push_str(&text[start + backslashes.div_ceil(2)..end]);
                    } else {
                        out.push_str(&"\\".repeat(backslashes / 2));
                        match env(name) {
                            Some(v) => out.push_str(&v),
                            None if optional => {}
                            None => out.push_str(&text[j..end]),
                        }
                    }
                    i = end;
                    continue;
                }
            }
        }
        // Not an expansion: copy one character.
        let c = text[start..].chars().next().unwrap_or_default();
        out.push(c);
        i = start + c.len_utf8().max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "NPM_TOKEN" => Some("tok123".into()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("npm.example.com".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Npmrc {
        Npmrc::parse(text, &env).unwrap()
    }

    #[test]
    fn env_replace_like_npm() {
        let cases = [
            ("${NPM_TOKEN}", "tok123"),
            ("a${NPM_TOKEN}b", "atok123b"),
            ("${MISSING}", "${MISSING}"),
            ("${MISSING?}", ""),
            ("${NPM_TOKEN?}", "tok123"),
            ("${EMPTY}x", "x"),
            ("\\${NPM_TOKEN}", "${NPM_TOKEN}"),
            ("\\\\${NPM_TOKEN}", "\\tok123"),
            ("\\\\\\${NPM_TOKEN}", "\\${NPM_TOKEN}"),
            ("$NPM_TOKEN", "$NPM_TOKEN"),
            ("${}", "${}"),
            ("${A", "${A"),
            ("é${HOST}ü", "énpm.example.comü"),
        ];
        for (input, want) in cases {
            assert_eq!(env_replace(input, &env), want, "{input}");
        }
    }

    #[test]
    fn ini_values() {
        let cases = [
            ("plain", "plain"),
            ("\"quoted ; not a comment\"", "quoted ; not a comment"),
            ("'single'", "single"),
            ("\"esc\\u0041\"", "escA"),
            ("value ; comment", "value"),
            ("value # comment", "value"),
            ("a\\;b", "a;b"),
            ("a\\b", "a\\b"),
        ];
        for (input, want) in cases {
            assert_eq!(ini_value(input), want, "{input}");
        }
    }

    #[test]
    fn registries_by_scope() {
        let rc = parse(
            "; comment\n# comment\nregistry = https://mirror.example.com/npm\n\
             @corp:registry=https://${HOST}/\n@bad/x:registry=https://no.example.com/\n",
        );
        assert_eq!(
            rc.registry_for("express"),
            "https://mirror.example.com/npm/"
        );
        assert_eq!(rc.registry_for("@corp/lib"), "https://npm.example.com/");
        assert_eq!(
            rc.registry_for("@other/lib"),
            "https://mirror.example.com/npm/"
        );
        let default = Npmrc::default();
        assert_eq!(default.registry_for("@corp/lib"), DEFAULT_REGISTRY);
        let err = Npmrc::parse("x=1\nregistry=ftp://x/\n", &env).unwrap_err();
        assert_eq!(
            err,
            NpmrcError::BadRegistry {
                line: 2,
                value: "ftp://x/".into()
            }
        );
    }

    #[test]
    fn tarball_urls() {
        let public = Npmrc::default();
        let mirror = parse(
            "registry=https://mirror.example.com/npm/\n@corp:registry=https://corp.example.com\n",
        );
        let resolved = "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz";
        let other = "https://elsewhere.example.com/x.tgz";
        // rc, name, version, resolved, url
        let cases = [
            (
                &public,
                "ms",
                Some("2.1.3"),
                Some(resolved),
                Some(resolved.to_owned()),
            ),
            (
                &mirror,
                "ms",
                Some("2.1.3"),
                Some(resolved),
                Some("https://mirror.example.com/npm/ms/-/ms-2.1.3.tgz".to_owned()),
            ),
            (&mirror, "x", None, Some(other), Some(other.to_owned())),
            (
                &public,
                "@babel/core",
                Some("7.26.0"),
                None,
                Some("https://registry.npmjs.org/@babel/core/-/core-7.26.0.tgz".to_owned()),
            ),
            (
                &mirror,
                "@corp/lib",
                Some("1.0.0"),
                None,
                Some("https://corp.example.com/@corp/lib/-/lib-1.0.0.tgz".to_owned()),
            ),
            (&public, "ms", None, None, None),
        ];
        for (rc, name, version, resolved, want) in cases {
            assert_eq!(rc.tarball_url(name, version, resolved), want, "{name}");
        }
    }

    #[test]
    fn auth_goes_only_where_it_was_given() {
        let rc = parse(
            "//npm.example.com/:_authToken=${NPM_TOKEN}\n\
             //npm.example.com/private/:_authToken=deeper\n\
             //basic.example.com:8443/:_auth=dTpw\n\
             //pw.example.com/:username=user\n\
             //pw.example.com/:_password=cGFzcw==\n\
             _authToken=unscoped\n",
        );
        let cases = [
            ("https://npm.example.com/a/-/a-1.tgz", Some("Bearer tok123")),
            (
                "https://npm.example.com/private/a.tgz",
                Some("Bearer deeper"),
            ),
            (
                "https://npm.example.com/privateer/a.tgz",
                Some("Bearer tok123"),
            ),
            ("http://npm.example.com/a.tgz", Some("Bearer tok123")),
            ("https://npm.example.com:444/a.tgz", None),
            ("https://evil.example.com/npm.example.com/a.tgz", None),
            ("https://npm.example.com.evil.com/a.tgz", None),
            ("https://basic.example.com:8443/x.tgz", Some("Basic dTpw")),
            ("https://basic.example.com/x.tgz", None),
            ("https://pw.example.com/x.tgz", Some("Basic dXNlcjpwYXNz")),
            ("https://registry.npmjs.org/ms/-/ms-2.1.3.tgz", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(rc.auth_for(url).map(Auth::header).as_deref(), want, "{url}");
        }
        assert_eq!(rc.warnings.len(), 1);
        assert!(rc.warnings[0].contains("line 6"), "{:?}", rc.warnings);
        assert_eq!(format!("{:?}", Auth::Bearer("secret".into())), "Bearer(…)");
        let err = Npmrc::parse("//h/:username=u\n//h/:_password=!!\n", &env).unwrap_err();
        assert!(
            matches!(err, NpmrcError::BadBase64 { line: 2, .. }),
            "{err}"
        );
    }
}
