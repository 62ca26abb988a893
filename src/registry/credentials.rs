//! Registry credentials: where users already keep them, and `login`/
//! `logout`'s file.
//!
//! Files are read in this order; the first that has credentials for the
//! registry wins:
//!
//! 1. `$REGISTRY_AUTH_FILE` (podman's override);
//! 2. `$XDG_RUNTIME_DIR/containers/auth.json` (podman's default);
//! 3. `$XDG_CONFIG_HOME/containers/auth.json`, else
//!    `~/.config/containers/auth.json` (podman's fallback);
//! 4. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! In each file: a `credHelpers` entry for the registry runs
//! `docker-credential-NAME get`; else an `auths` entry (base64 `auth`, or
//! `username` + `password`, and an `identitytoken`) for the registry; else
//! the file's `credsStore` helper. `auths` keys are matched after dropping
//! a scheme and a `/v1/`-style path, so `https://index.docker.io/v1/`
//! (Docker's key for Docker Hub) and `docker.io` (podman's) both name
//! Docker Hub; podman's per-repository keys (`quay.io/team`) match the
//! repositories under them, longest first.
//!
//! Credentials are looked up by the registry a reference names and are
//! only ever sent to that registry (or its token service, see `auth.rs`).
//! Their `Debug` forms are redacted so no log or error can show them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::reference::{normalize_registry, DOCKER_HUB, DOCKER_HUB_AUTH_KEY};

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// An OAuth2 refresh token (Docker's `identitytoken`): when set, token
    /// requests use it instead of the password.
    pub identity_token: Option<Secret>,
    /// Where they were found (a file, or `docker-credential-NAME`), for
    /// messages.
    pub source: String,
}

impl Credentials {
    /// The `Authorization: Basic` value.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Errors reading or writing credentials. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("credential helper docker-credential-{helper} (from {path}): {why}")]
    Helper {
        helper: String,
        path: String,
        why: String,
    },
}

/// The files credentials are read from, in order (see the module docs);
/// only the ones whose location is known, whether or not they exist.
pub fn default_files() -> Vec<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("HOME");
    let mut out = Vec::new();
    if let Some(p) = var("REGISTRY_AUTH_FILE") {
        out.push(p);
    }
    if let Some(p) = var("XDG_RUNTIME_DIR") {
        out.push(p.join("containers/auth.json"));
    }
    match (var("XDG_CONFIG_HOME"), &home) {
        (Some(c), _) => out.push(c.join("containers/auth.json")),
        (None, Some(h)) => out.push(h.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    match (var("DOCKER_CONFIG"), &home) {
        (Some(d), _) => out.push(d.join("config.json")),
        (None, Some(h)) => out.push(h.join(".docker/config.json")),
        (None, None) => {}
    }
    out
}

/// The file `login` and `logout` write: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json`, else
/// `~/.config/containers/auth.json` (as podman chooses).
pub fn default_login_file() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("REGISTRY_AUTH_FILE")
        .or_else(|| var("XDG_RUNTIME_DIR").map(|p| p.join("containers/auth.json")))
        .or_else(|| var("HOME").map(|h| h.join(".config/containers/auth.json")))
}

/// What one file says about a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Credentials(Credentials),
    /// Ask this helper (`docker-credential-NAME`).
    Helper(String),
}

/// Looks up `registry`/`repository` in the text of one auth file (Docker
/// config.json or podman auth.json); `path` names it.
pub fn lookup_in(
    text: &[u8],
    path: &str,
    registry: &str,
    repository: &str,
) -> Result<Option<Found>, CredentialsError> {
    let err = |why: String| CredentialsError::File {
        path: path.to_owned(),
        why,
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root: Value =
        serde_json::from_slice(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let Some(root) = root.as_object() else {
        return Err(err("not a JSON object".into()));
    };
    let want = normalize_registry(registry).unwrap_or_else(|| registry.to_owned());
    if let Some(helpers) = root.get("credHelpers").and_then(Value::as_object) {
        for (k, v) in helpers {
            if key_host(k).as_deref() == Some(want.as_str()) {
                if let Some(name) = v.as_str().filter(|n| !n.is_empty()) {
                    return Ok(Some(Found::Helper(name.to_owned())));
                }
            }
        }
    }
    if let Some(auths) = root.get("auths").and_then(Value::as_object) {
        let full = format!("{want}/{repository}");
        let mut best: Option<(usize, &Map<String, Value>, &str)> = None;
        for (k, v) in auths {
            let Some(entry) = v.as_object() else { continue };
            let Some(key) = key_scope(k) else { continue };
            let matches = full == key || full.starts_with(&format!("{key}/")) || key == want;
            if matches && best.is_none_or(|(len, _, _)| key.len() > len) {
                best = Some((key.len(), entry, k));
            }
        }
        if let Some((_, entry, key)) = best {
            if let Some(c) = entry_credentials(entry, path)
                .map_err(|why| err(format!("auths entry `{key}`: {why}")))?
            {
                return Ok(Some(Found::Credentials(c)));
            }
        }
    }
    if let Some(store) = root.get("credsStore").and_then(Value::as_str) {
        if !store.is_empty() {
            return Ok(Some(Found::Helper(store.to_owned())));
        }
    }
    Ok(None)
}

/// The credentials of one `auths` entry, `None` when it has none.
fn entry_credentials(
    entry: &Map<String, Value>,
    path: &str,
) -> Result<Option<Credentials>, String> {
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let identity_token = s("identitytoken").map(Secret::new);
    let (username, password) = if let Some(auth) = s("auth") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "`auth` is not base64".to_string())?;
        let raw = String::from_utf8(raw).map_err(|_| "`auth` is not UTF-8".to_string())?;
        let Some((u, p)) = raw.split_once(':') else {
            return Err("`auth` does not decode to user:password".into());
        };
        (u.to_owned(), p.to_owned())
    } else if let (Some(u), Some(p)) = (s("username"), s("password")) {
        (u.to_owned(), p.to_owned())
    } else if identity_token.is_some() {
        ("<token>".to_owned(), String::new())
    } else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        username,
        password: Secret::new(password),
        identity_token,
        source: path.to_owned(),
    }))
}

/// An auth key's registry host (`https://index.docker.io/v1/` →
/// `docker.io`).
fn key_host(key: &str) -> Option<String> {
    normalize_registry(key)
}

/// An `auths` key as `host[/path]`: the scheme and a `/v1/`-style API
/// path dropped, Docker Hub's aliases mapped to `docker.io`.
fn key_scope(key: &str) -> Option<String> {
    let host = key_host(key)?;
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let path = k
        .split_once('/')
        .map(|(_, p)| p.trim_matches('/'))
        .unwrap_or("");
    if path.is_empty() || path == "v1" || path == "v2" {
        Some(host)
    } else {
        Some(format!("{host}/{path}"))
    }
}

/// The server URL a credential helper is asked about.
pub fn helper_server_url(registry: &str) -> String {
    if normalize_registry(registry).as_deref() == Some(DOCKER_HUB) {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// Runs `docker-credential-NAME get` for `registry`. `None` when the
/// helper has nothing for it.
pub fn run_helper(
    name: &str,
    registry: &str,
    from: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    let err = |why: String| CredentialsError::Helper {
        helper: name.to_owned(),
        path: from.to_owned(),
        why,
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(err(
            "the helper name may only hold letters, digits, `-`, `_` and `.`".into(),
        ));
    }
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                err(format!(
                    "`{program}` is not on PATH; install it or remove the helper from the file"
                ))
            } else {
                err(format!("cannot run `{program}`: {e}"))
            }
        })?;
    let url = helper_server_url(registry);
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its output.
        let _ = stdin.write_all(url.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for `{program}`: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let msg = format!(
            "{}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if msg.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!(
            "`{program} get` failed ({}): {}",
            out.status,
            first_line(&msg)
        )));
    }
    parse_helper_output(&out.stdout, &program).map_err(err)
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Reads a helper's `{"ServerURL","Username","Secret"}` answer.
pub(crate) fn parse_helper_output(
    out: &[u8],
    program: &str,
) -> Result<Option<Credentials>, String> {
    let v: Value = serde_json::from_slice(out)
        .map_err(|_| format!("`{program} get` did not print a JSON object"))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (user, secret) = (s("Username"), s("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credentials {
            username: user,
            password: Secret::new(String::new()),
            identity_token: Some(Secret::new(secret)),
            source: program.to_owned(),
        }
    } else {
        Credentials {
            username: user,
            password: Secret::new(secret),
            identity_token: None,
            source: program.to_owned(),
        }
    }))
}

/// Finds credentials for `registry`/`repository` in `files` (see the
/// module docs). Missing files are skipped.
pub fn lookup(
    files: &[PathBuf],
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    for path in files {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(CredentialsError::File {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })
            }
        };
        let shown = path.display().to_string();
        match lookup_in(&text, &shown, registry, repository)? {
            Some(Found::Credentials(c)) => return Ok(Some(c)),
            Some(Found::Helper(h)) => {
                if let Some(c) = run_helper(&h, registry, &shown)? {
                    return Ok(Some(c));
                }
            }
            None => {}
        }
    }
    Ok(None)
}

/// The text of an auth file with `registry`'s credentials set, keeping
/// everything else in it.
pub fn with_login(
    existing: Option<&[u8]>,
    path: &str,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<Vec<u8>, CredentialsError> {
    let mut root = parse_root(existing, path)?;
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(CredentialsError::File {
            path: path.to_owned(),
            why: "`auths` is not a JSON object".into(),
        });
    };
    // Drop other spellings of the same registry so the new entry is the
    // one found.
    auths.retain(|k, _| key_scope(k).as_deref() != Some(registry) || k == registry);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(auth));
    auths.insert(registry.to_owned(), Value::Object(entry));
    Ok(to_pretty(&root))
}

/// The text of an auth file without `registry`'s credentials, and whether
/// there were any.
pub fn without_login(
    existing: Option<&[u8]>,
    path: &str,
    registry: &str,
) -> Result<(Vec<u8>, bool), CredentialsError> {
    let mut root = parse_root(existing, path)?;
    let mut removed = false;
    if let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| key_scope(k).as_deref() != Some(registry));
        removed = auths.len() != before;
    }
    Ok((to_pretty(&root), removed))
}

fn parse_root(existing: Option<&[u8]>, path: &str) -> Result<Map<String, Value>, CredentialsError> {
    match existing {
        None => Ok(Map::new()),
        Some(t) if t.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Some(t) => match serde_json::from_slice::<Value>(t) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(CredentialsError::File {
                path: path.to_owned(),
                why: "not a JSON object".into(),
            }),
            Err(e) => Err(CredentialsError::File {
                path: path.to_owned(),
                why: format!("not valid JSON ({e}); fix or remove it"),
            }),
        },
    }
}

fn to_pretty(root: &Map<String, Value>) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(root).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes `bytes` to `path` atomically with mode 0600 (a temporary file
/// in the same folder, fsynced, renamed), creating the folder (0700).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CredentialsError> {
    let err = |why: String| CredentialsError::File {
        path: path.display().to_string(),
        why,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| err(format!("creating its folder: {e}")))?;
    }
    // tempfile creates with 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .tempfile_in(dir)
        .map_err(|e| err(e.to_string()))?;
    tmp.write_all(bytes).map_err(|e| err(e.to_string()))?;
    tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
    tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
    crate::store::sync_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn lookup_table() {
        let docker = format!(
            r#"{{
              "auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "http://127.0.0.1:5101": {{"auth": "{}"}},
                "token.example": {{"identitytoken": "refresh-abc"}},
                "empty.example": {{}},
                "bad.example": {{"auth": "!!!"}}
              }},
              "credHelpers": {{"gcr.io": "gcloud"}},
              "credsStore": "desktop"
            }}"#,
            b64("hubuser:hubpass"),
            b64("lab:pa:ss")
        );
        let podman = format!(
            r#"{{"auths": {{
                "docker.io": {{"auth": "{}"}},
                "quay.io": {{"username": "q", "password": "qp"}},
                "quay.io/team": {{"auth": "{}"}},
                "quay.io/team/special": {{"auth": "{}"}}
            }}}}"#,
            b64("pod:man"),
            b64("team:tp"),
            b64("special:sp")
        );
        let creds = |u: &str, p: &str| {
            Some(Found::Credentials(Credentials {
                username: u.into(),
                password: Secret::new(p),
                identity_token: None,
                source: "f".into(),
            }))
        };
        type Case<'a> = (&'a str, &'a str, &'a str, Result<Option<Found>, ()>);
        let cases: Vec<Case> = vec![
            (
                &docker,
                "docker.io",
                "library/alpine",
                Ok(creds("hubuser", "hubpass")),
            ),
            (&docker, "127.0.0.1:5101", "x", Ok(creds("lab", "pa:ss"))),
            (
                &docker,
                "gcr.io",
                "p/i",
                Ok(Some(Found::Helper("gcloud".into()))),
            ),
            (
                &docker,
                "other.example",
                "x",
                Ok(Some(Found::Helper("desktop".into()))),
            ),
            (
                &docker,
                "empty.example",
                "x",
                Ok(Some(Found::Helper("desktop".into()))),
            ),
            (
                &docker,
                "token.example",
                "x",
                Ok(Some(Found::Credentials(Credentials {
                    username: "<token>".into(),
                    password: Secret::new(""),
                    identity_token: Some(Secret::new("refresh-abc")),
                    source: "f".into(),
                }))),
            ),
            (&docker, "bad.example", "x", Err(())),
            (
                &podman,
                "docker.io",
                "library/alpine",
                Ok(creds("pod", "man")),
            ),
            (&podman, "quay.io", "other/x", Ok(creds("q", "qp"))),
            (&podman, "quay.io", "team/x", Ok(creds("team", "tp"))),
            (
                &podman,
                "quay.io",
                "team/special",
                Ok(creds("special", "sp")),
            ),
            (&podman, "quay.io", "teamx/y", Ok(creds("q", "qp"))),
            (&podman, "ghcr.io", "a", Ok(None)),
            ("", "ghcr.io", "a", Ok(None)),
            ("{}", "ghcr.io", "a", Ok(None)),
            ("[1]", "ghcr.io", "a", Err(())),
            ("{not json", "ghcr.io", "a", Err(())),
        ];
        for (text, reg, repo, want) in cases {
            let got = lookup_in(text.as_bytes(), "f", reg, repo).map_err(|e| {
                let msg = e.to_string();
                assert!(msg.starts_with("f: "), "{msg}");
                assert!(!msg.contains("hubpass"), "{msg}");
            });
            assert_eq!(got, want, "{reg}/{repo} in {text}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Credentials {
            username: "u".into(),
            password: Secret::new("hunter2"),
            identity_token: Some(Secret::new("tok")),
            source: "f".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
        assert_eq!(c.basic_header(), format!("Basic {}", b64("u:hunter2")));
    }

    #[test]
    fn helper_output_table() {
        type Want<'a> = Result<Option<(&'a str, &'a str, bool)>, ()>;
        let cases: &[(&str, Want)] = &[
            (
                r#"{"ServerURL":"x","Username":"u","Secret":"s"}"#,
                Ok(Some(("u", "s", false))),
            ),
            (
                r#"{"ServerURL":"x","Username":"<token>","Secret":"t"}"#,
                Ok(Some(("<token>", "", true))),
            ),
            (r#"{"Username":"u","Secret":""}"#, Ok(None)),
            ("nope", Err(())),
        ];
        for (out, want) in cases {
            let got = parse_helper_output(out.as_bytes(), "docker-credential-x")
                .map(|o| {
                    o.map(|c| {
                        (
                            c.username,
                            c.password.expose().to_owned(),
                            c.identity_token.is_some(),
                        )
                    })
                })
                .map_err(|_| ());
            let want = (*want).map(|o| o.map(|(u, p, t)| (u.to_owned(), p.to_owned(), t)));
            assert_eq!(got, want, "{out}");
        }
        assert_eq!(helper_server_url("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(helper_server_url("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn login_logout_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        let shown = path.display().to_string();
        let existing = br#"{"auths":{"https://ghcr.io":{"auth":"eDp5"},"quay.io":{"auth":"eDp5"}},"credHelpers":{"a.io":"x"}}"#;
        let text = with_login(Some(existing), &shown, "ghcr.io", "me", "pw").unwrap();
        write_private(&path, &text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let read = std::fs::read(&path).unwrap();
        let found = lookup_in(&read, &shown, "ghcr.io", "x").unwrap();
        assert_eq!(
            found,
            Some(Found::Credentials(Credentials {
                username: "me".into(),
                password: Secret::new("pw"),
                identity_token: None,
                source: shown.clone(),
            }))
        );
        let v: Value = serde_json::from_slice(&read).unwrap();
        assert!(v["auths"].get("https://ghcr.io").is_none(), "{v}");
        assert!(v["auths"].get("quay.io").is_some(), "{v}");
        assert_eq!(v["credHelpers"]["a.io"], "x");

        let (text, removed) = without_login(Some(&read), &shown, "ghcr.io").unwrap();
        assert!(removed);
        assert_eq!(lookup_in(&text, &shown, "ghcr.io", "x").unwrap(), None);
        let (_, removed) = without_login(Some(&text), &shown, "ghcr.io").unwrap();
        assert!(!removed);
        let (_, removed) = without_login(None, &shown, "ghcr.io").unwrap();
        assert!(!removed);
        assert!(with_login(Some(b"[]"), &shown, "x.io", "a", "b").is_err());
    }
}
