//! `registries.conf` (containers-registries.conf(5)): insecure and blocked
//! registries, and mirrors, where podman and skopeo users already keep them.
//!
//! hoist reads the parts that decide where bytes come from:
//!
//! ```toml
//! [[registry]]
//! prefix = "docker.io/library"        # optional; defaults to location
//! location = "registry.internal/hub"  # where the prefix really lives
//! insecure = true                     # plain HTTP / unverified TLS allowed
//! blocked = false
//! mirror-by-digest-only = false
//! [[registry.mirror]]
//! location = "mirror.local:5000/hub"
//! insecure = true
//! pull-from-mirror = "all"            # or "digest-only", "tag-only"
//! ```
//!
//! and the old (v1) tables `[registries.insecure] registries = [...]` and
//! `[registries.block] registries = [...]`. Other keys (search registries,
//! short-name aliases, credential helpers) are accepted and ignored.
//!
//! A reference matches the entry with the longest `prefix` that is the
//! whole of its name or ends at a `/`, `@` or (after a repository) `:` in it; a prefix
//! `*.example.com` matches every registry host under example.com. The
//! matched part is replaced by the entry's `location` (for pushes too) or
//! a mirror's (for pulls: mirrors are tried first, in order, then the
//! location). Drop-in folders (`registries.conf.d`) are not read.
//!
//! The file is `$CONTAINERS_REGISTRIES_CONF` when set, else
//! `~/.config/containers/registries.conf` when it exists, else
//! `/etc/containers/registries.conf`; a missing file means no rules.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::reference::{host_part, Reference};

/// What is wrong with a registries.conf.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct ConfError {
    pub path: String,
    pub why: String,
}

/// Which pulls a mirror serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFrom {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from: PullFrom,
}

/// One `[[registry]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub prefix: String,
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
}

/// A parsed registries.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    pub entries: Vec<Entry>,
    /// v1 `[registries.insecure] registries`.
    pub insecure_hosts: Vec<String>,
    /// v1 `[registries.block] registries`.
    pub blocked_hosts: Vec<String>,
    /// Where it was read from, for messages.
    pub origin: String,
}

#[derive(Deserialize)]
struct RawConf {
    #[serde(default)]
    registry: Vec<RawEntry>,
    #[serde(default)]
    registries: Option<RawV1>,
}

#[derive(Deserialize)]
struct RawEntry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default, rename = "mirror-by-digest-only")]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize)]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize)]
struct RawV1 {
    insecure: Option<RawList>,
    block: Option<RawList>,
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    registries: Vec<String>,
}

impl RegistriesConf {
    /// Parses the text of a registries.conf; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RegistriesConf, ConfError> {
        let err = |why: String| ConfError {
            path: origin.to_owned(),
            why,
        };
        let raw: RawConf = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut entries = Vec::new();
        for (i, e) in raw.registry.into_iter().enumerate() {
            let n = i + 1;
            let location = e
                .location
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned();
            let prefix = e
                .prefix
                .map(|p| p.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| location.clone());
            if prefix.is_empty() {
                return Err(err(format!(
                    "[[registry]] number {n} has neither `prefix` nor `location`"
                )));
            }
            if prefix.starts_with("*.") && !location.is_empty() {
                return Err(err(format!(
                    "[[registry]] `{prefix}`: a wildcard prefix cannot have a `location`"
                )));
            }
            let mut mirrors = Vec::new();
            for m in e.mirror {
                let pull_from = match m.pull_from_mirror.as_deref() {
                    None | Some("") | Some("all") => PullFrom::All,
                    Some("digest-only") => PullFrom::DigestOnly,
                    Some("tag-only") => PullFrom::TagOnly,
                    Some(other) => {
                        return Err(err(format!(
                            "mirror `{}`: pull-from-mirror = \"{other}\" is not one of all, digest-only, tag-only",
                            m.location
                        )))
                    }
                };
                let location = m.location.trim_end_matches('/').to_owned();
                if location.is_empty() {
                    return Err(err(format!("a mirror of `{prefix}` has an empty location")));
                }
                mirrors.push(Mirror {
                    location,
                    insecure: m.insecure,
                    pull_from,
                });
            }
            entries.push(Entry {
                prefix,
                location,
                insecure: e.insecure,
                blocked: e.blocked,
                mirror_by_digest_only: e.mirror_by_digest_only,
                mirrors,
            });
        }
        let v1 = raw.registries;
        let list = |l: Option<RawList>| l.map(|l| l.registries).unwrap_or_default();
        let (insecure_hosts, blocked_hosts) = match v1 {
            Some(v1) => (list(v1.insecure), list(v1.block)),
            None => (Vec::new(), Vec::new()),
        };
        Ok(RegistriesConf {
            entries,
            insecure_hosts,
            blocked_hosts,
            origin: origin.to_owned(),
        })
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConf, ConfError> {
        match std::fs::read_to_string(path) {
            Ok(text) => RegistriesConf::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistriesConf::default()),
            Err(e) => Err(ConfError {
                path: path.display().to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// The file to read (see the module docs).
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("CONTAINERS_REGISTRIES_CONF").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(home) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            let user = PathBuf::from(home).join(".config/containers/registries.conf");
            if user.is_file() {
                return user;
            }
        }
        PathBuf::from("/etc/containers/registries.conf")
    }

    /// The entry for a reference, and how many bytes of its name the
    /// entry's prefix covers.
    fn find(&self, r: &Reference) -> Option<(&Entry, usize)> {
        let full = r.to_string();
        let mut best: Option<(&Entry, usize)> = None;
        for e in &self.entries {
            let Some(len) = prefix_match(&e.prefix, &full, r.registry()) else {
                continue;
            };
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((e, len));
            }
        }
        best
    }

    /// Whether pulls and pushes of `r` are refused here.
    pub fn is_blocked(&self, r: &Reference) -> bool {
        if self.find(r).is_some_and(|(e, _)| e.blocked) {
            return true;
        }
        self.blocked_hosts
            .iter()
            .any(|h| host_matches(h, r.registry()))
    }

    /// Where `r` really lives: its entry's `location` in place of the
    /// matched prefix (or `r` itself when no entry rewrites it).
    pub fn rewrite(&self, r: &Reference) -> Result<Reference, ConfError> {
        match self.find(r) {
            Some((e, len)) if !e.location.is_empty() => self.replace(r, len, &e.location),
            _ => Ok(r.clone()),
        }
    }

    /// Where to pull `r` from, in order: the mirrors that serve this kind
    /// of pull (by digest or by tag), then the location.
    pub fn pull_sources(&self, r: &Reference) -> Result<Vec<Reference>, ConfError> {
        let Some((e, len)) = self.find(r) else {
            return Ok(vec![r.clone()]);
        };
        let by_digest = r.digest().is_some();
        let mut out = Vec::new();
        for m in &e.mirrors {
            let serves = match m.pull_from {
                _ if e.mirror_by_digest_only && !by_digest => false,
                PullFrom::All => true,
                PullFrom::DigestOnly => by_digest,
                PullFrom::TagOnly => !by_digest,
            };
            if serves {
                out.push(self.replace(r, len, &m.location)?);
            }
        }
        out.push(self.rewrite(r)?);
        Ok(out)
    }

    fn replace(&self, r: &Reference, len: usize, location: &str) -> Result<Reference, ConfError> {
        let full = r.to_string();
        let new = format!("{location}{}", &full[len..]);
        // A location is a name with its registry; parse it as one so the
        // result is a valid reference. `docker.io` locations keep the
        // rest of the path as is.
        Reference::parse(&new).map_err(|e| ConfError {
            path: self.origin.clone(),
            why: format!("rewriting {full} with location `{location}`: {e}"),
        })
    }

    /// Whether `registry` (`host[:port]`) is marked insecure: an entry's
    /// location or prefix host, a mirror's location host, or the v1 list.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let loc_host = |loc: &str| loc.split('/').next().unwrap_or("").to_owned();
        for e in &self.entries {
            if e.insecure {
                let host = if e.location.is_empty() {
                    loc_host(&e.prefix)
                } else {
                    loc_host(&e.location)
                };
                if let Some(suffix) = host.strip_prefix("*.") {
                    if host_part(registry).ends_with(&format!(".{suffix}")) {
                        return true;
                    }
                } else if host_matches(&host, registry) {
                    return true;
                }
            }
            for m in &e.mirrors {
                if m.insecure && host_matches(&loc_host(&m.location), registry) {
                    return true;
                }
            }
        }
        self.insecure_hosts
            .iter()
            .any(|h| host_matches(h, registry))
    }
}

/// Whether a configured `host[:port]` names `registry` (`host[:port]`): the
/// same, or a host without port naming the registry's host.
pub fn host_matches(configured: &str, registry: &str) -> bool {
    let c = configured.trim().trim_end_matches('/');
    let c = c
        .strip_prefix("https://")
        .or_else(|| c.strip_prefix("http://"))
        .unwrap_or(c);
    if c.eq_ignore_ascii_case(registry) {
        return true;
    }
    let has_port = if c.starts_with('[') {
        c.contains("]:")
    } else {
        c.contains(':')
    };
    !has_port && c.eq_ignore_ascii_case(host_part(registry))
}

/// How many bytes of `full` (`registry/repo[:tag][@digest]`) the prefix
/// covers, if it matches.
fn prefix_match(prefix: &str, full: &str, registry: &str) -> Option<usize> {
    if let Some(suffix) = prefix.strip_prefix("*.") {
        // A wildcard names hosts only.
        let host = host_part(registry);
        return host
            .ends_with(&format!(".{suffix}"))
            .then_some(registry.len());
    }
    let rest = full.strip_prefix(prefix)?;
    match rest.bytes().next() {
        None | Some(b'/' | b'@') => Some(prefix.len()),
        // After a host alone, `:` starts a port, not a tag.
        Some(b':') if prefix.contains('/') => Some(prefix.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000/hub"
insecure = true
[[registry.mirror]]
location = "digests.local/hub"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "docker.io/library/alpine"
location = "internal.example.com/alpine-copy"

[[registry]]
location = "127.0.0.1:5150"
insecure = true

[[registry]]
prefix = "*.corp.example"
insecure = true

[[registry]]
location = "blocked.example.com"
blocked = true

[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.local"

[registries.insecure]
registries = ["old-insecure.local:5000", "plainhost"]

[aliases]
"foo" = "docker.io/library/foo"
"#;

    fn conf() -> RegistriesConf {
        RegistriesConf::parse(CONF, "test.conf").unwrap()
    }

    #[test]
    fn pull_sources_table() {
        let d = format!("sha256:{}", "a".repeat(64));
        let c = conf();
        let with_digest = format!("busybox@{d}");
        let quay_digest = format!("quay.io/a/b@{d}");
        let cases: Vec<(&str, Vec<String>)> = vec![
            (
                "busybox:1",
                vec![
                    "mirror.local:5000/hub/library/busybox:1".into(),
                    "docker.io/library/busybox:1".into(),
                ],
            ),
            (
                &with_digest,
                vec![
                    format!("mirror.local:5000/hub/library/busybox@{d}"),
                    format!("digests.local/hub/library/busybox@{d}"),
                    format!("docker.io/library/busybox@{d}"),
                ],
            ),
            // The longer prefix wins: no mirrors, rewritten location.
            (
                "alpine:3.20",
                vec!["internal.example.com/alpine-copy:3.20".into()],
            ),
            // `alpine` is not a prefix of `alpinex`.
            (
                "alpinex",
                vec![
                    "mirror.local:5000/hub/library/alpinex:latest".into(),
                    "docker.io/library/alpinex:latest".into(),
                ],
            ),
            ("ghcr.io/o/r:1", vec!["ghcr.io/o/r:1".into()]),
            ("quay.io/a/b:1", vec!["quay.io/a/b:1".into()]),
            (
                &quay_digest,
                vec![
                    format!("quay-mirror.local/a/b@{d}"),
                    format!("quay.io/a/b@{d}"),
                ],
            ),
        ];
        for (input, want) in cases {
            let r = Reference::parse(input).unwrap();
            let got: Vec<String> = c
                .pull_sources(&r)
                .unwrap()
                .iter()
                .map(|r| r.to_string())
                .collect();
            assert_eq!(got, want, "{input}");
        }
        let push = c.rewrite(&Reference::parse("alpine:1").unwrap()).unwrap();
        assert_eq!(push.to_string(), "internal.example.com/alpine-copy:1");
    }

    #[test]
    fn insecure_and_blocked_table() {
        let c = conf();
        let insecure = [
            ("127.0.0.1:5150", true),
            ("127.0.0.1:5151", false),
            ("mirror.local:5000", true),
            ("mirror.local", false),
            ("a.corp.example", true),
            ("a.corp.example:443", true),
            ("corp.example", false),
            ("old-insecure.local:5000", true),
            ("plainhost", true),
            ("plainhost:8080", true),
            ("docker.io", false),
        ];
        for (host, want) in insecure {
            assert_eq!(c.is_insecure(host), want, "{host}");
        }
        for (r, want) in [
            ("blocked.example.com/x", true),
            ("blocked.example.com:5000/x", false),
            ("alpine", false),
        ] {
            assert_eq!(c.is_blocked(&Reference::parse(r).unwrap()), want, "{r}");
        }
    }

    #[test]
    fn errors_name_the_file() {
        let cases = [
            "[[registry]]\ninsecure = true\n",
            "[[registry]]\nprefix = \"*.x.com\"\nlocation = \"y\"\n",
            "[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n",
            "[[registry]\n",
            "[[registry]]\ninsecure = \"yes\"\n",
        ];
        for text in cases {
            let err = RegistriesConf::parse(text, "/etc/x.conf").unwrap_err();
            assert!(err.to_string().starts_with("/etc/x.conf: "), "{err}");
        }
        assert_eq!(
            RegistriesConf::parse("", "e").unwrap(),
            RegistriesConf {
                origin: "e".into(),
                ..Default::default()
            }
        );
        assert_eq!(
            RegistriesConf::load(Path::new("/nonexistent/registries.conf")).unwrap(),
            RegistriesConf::default()
        );
    }
}
