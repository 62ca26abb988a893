//! Image references as Docker parses them.
//!
//! This follows the grammar of `distribution/reference` (what `docker pull`
//! and podman accept) and its normalisation:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]         host: DNS labels, IPv4, or "[" IPv6 "]"
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! The first path component is a registry (domain) when it contains `.`
//! or `:`, is `localhost`, or has an upper-case letter (which a repository
//! name never has); otherwise the name lives on Docker Hub, `docker.io`,
//! and a one-component name there gets `library/` in front. `index.docker.io`
//! is an old spelling of `docker.io`. A reference with neither tag nor
//! digest means `:latest`. The whole name is at most 255 characters.
//!
//! hoist handles only sha256 digests ([`Digest`]); a reference with
//! another algorithm is refused here, at the edge, with a clear error.
//!
//! Docker Hub has three names and each use wants its own:
//! [`Reference::registry`] (`docker.io`, for people and for podman's
//! auth.json), [`Reference::api_host`] (`registry-1.docker.io`, where the v2
//! API answers) and [`DOCKER_HUB_AUTH_KEY`] (`https://index.docker.io/v1/`,
//! the key Docker's config.json files its credentials under).
//!
//! This module is pure data: no network, no files.

pub mod name;
pub mod transport;

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry a name without a domain lives on.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's v2 API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker's `config.json` uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The longest name (domain and path) Docker accepts.
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag Docker accepts.
pub const MAX_TAG_LEN: usize = 128;

/// Why a string is not an image reference; it names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid image reference: {why}")]
pub struct ReferenceError {
    pub input: String,
    pub why: String,
}

/// A parsed, normalised image reference: `registry/repository[:tag][@digest]`.
///
/// Invariants: `registry` is a valid `host[:port]`; `repository` is a
/// valid lower-case path; at least one of `tag` and `digest` is set.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as `docker pull` does (see the module docs).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |why: String| ReferenceError {
            input: input.to_owned(),
            why,
        };
        if input.is_empty() {
            return Err(err("it is empty".into()));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(err(
                "a bare 64-hex string looks like an image ID, not a name; write NAME@sha256:<hex>"
                    .into(),
            ));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!("it contains {c:?}")));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        let digest = match digest {
            None => None,
            Some(d) => Some(Digest::parse(d).map_err(|e| err(e.to_string()))?),
        };
        let (name, tag) = split_tag(name_tag);
        if let Some(t) = tag {
            if !is_valid_tag(t) {
                return Err(err(format!(
                    "tag `{t}` is not 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` or `-` starting with a letter, digit or `_`"
                )));
            }
        }
        if name.is_empty() {
            return Err(err("it has no repository name".into()));
        }
        let (domain, path) = split_domain(name);
        let registry = match domain {
            Some(d) => {
                if !is_valid_domain(d) {
                    return Err(err(format!(
                        "registry `{d}` is not a host name, IPv4 address or [IPv6] address with an optional :port"
                    )));
                }
                if d == "index.docker.io" {
                    DOCKER_HUB.to_owned()
                } else {
                    d.to_owned()
                }
            }
            None => DOCKER_HUB.to_owned(),
        };
        if path.is_empty() {
            return Err(err("it has no repository path after the registry".into()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(format!("repository name `{path}` must be lower-case")));
        }
        for c in path.split('/') {
            if c.is_empty() {
                return Err(err(
                    "it has an empty path component (`//` or a `/` at an end)".into(),
                ));
            }
            if !is_valid_path_component(c) {
                return Err(err(format!(
                    "path component `{c}` is not lower-case letters and digits separated by `.`, `_`, `__` or dashes"
                )));
            }
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let full_len = registry.len() + 1 + repository.len();
        if full_len > MAX_NAME_LEN {
            return Err(err(format!(
                "the name is {full_len} characters, more than {MAX_NAME_LEN}"
            )));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as people write it: `docker.io`, `ghcr.io`,
    /// `127.0.0.1:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path: `library/alpine`, `team/web`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Where the registry's v2 API answers (`host[:port]`): Docker Hub's
    /// API host for `docker.io`, else the registry itself.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// What goes after `/manifests/` in the API: the digest when there is
    /// one (it pins the content), else the tag.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            // Unreachable by the type's invariant; `latest` is the
            // meaning of a reference with neither.
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError {
                input: format!("{}:{tag}", self.name()),
                why: format!("tag `{tag}` is not 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` or `-` starting with a letter, digit or `_`"),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest, with no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference in another repository (a mirror's, say);
    /// `registry` and `repository` are checked as a parsed name would be.
    pub fn in_repository(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse(&format!("{registry}/{repository}"))?;
        r.tag = self.tag.clone();
        r.digest = self.digest.clone();
        Ok(r)
    }

    /// The short form Docker prints: `alpine:3.20` for
    /// `docker.io/library/alpine:3.20`, `team/web:1` for `docker.io/team/web:1`.
    pub fn familiar(&self) -> String {
        let mut s = if self.is_docker_hub() {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        };
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        s
    }
}

fn push_tag_digest(s: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d.as_str());
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/alpine:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Where a registry's v2 API answers: `registry-1.docker.io` for Docker
/// Hub's names, else the registry itself.
pub fn api_host(registry: &str) -> &str {
    match registry {
        DOCKER_HUB | "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB_API,
        other => other,
    }
}

/// Normalises a registry as a user may type it to `login` (`docker.io`,
/// `https://index.docker.io/v1/`, `https://ghcr.io/`, `127.0.0.1:5000`)
/// to the `host[:port]` key podman's auth.json uses (`docker.io` for
/// Docker Hub). `None` when what is left is not a valid registry.
pub fn normalize_registry(input: &str) -> Option<String> {
    let s = input.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    if !is_valid_domain(host) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.as_str() {
        "index.docker.io" | DOCKER_HUB_API | DOCKER_HUB => DOCKER_HUB.to_owned(),
        _ => host,
    })
}

/// Whether a registry is on this machine: `localhost`, `127.0.0.0/8` or
/// `[::1]`, with any port. Docker lets such registries speak plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_part(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback());
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.is_loopback())
}

/// The host of `host[:port]` (brackets kept for IPv6).
pub fn host_part(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        }
    } else {
        registry.split(':').next().unwrap_or(registry)
    }
}

/// Splits `name[:tag]`: a `:` before the last `/` belongs to a port.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rfind(':') {
        Some(i) if !name[i + 1..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

/// Splits off the domain, by distribution's rule (see the module docs).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]`, host being DNS labels, an IPv4 address or `[IPv6]`.
pub(crate) fn is_valid_domain(d: &str) -> bool {
    let (host, port) = if d.starts_with('[') {
        let Some(end) = d.find(']') else {
            return false;
        };
        let rest = &d[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return false,
        };
        if d[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        (None, port)
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host_ok = host.is_none_or(|h| h.split('.').all(label_ok));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    let mut i = 0;
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub fn is_valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// (input, Some(expected Display)) or (input, None) for an error.
    #[test]
    fn parse_table() {
        let long_tag = "t".repeat(128);
        let too_long_tag = "t".repeat(129);
        let ok_tag = format!("alpine:{long_tag}");
        let ok_tag_want = format!("docker.io/library/alpine:{long_tag}");
        let bad_tag = format!("alpine:{too_long_tag}");
        // docker.io/ + a + / + rest = 255 exactly.
        let long_path = format!("a/{}", "b".repeat(MAX_NAME_LEN - "docker.io/a/".len()));
        let long_path_want = format!("docker.io/{long_path}:latest");
        let too_long_path = format!("{long_path}b");
        let with_digest = format!("alpine@{D}");
        let with_digest_want = format!("docker.io/library/alpine@{D}");
        let tag_digest = format!("ghcr.io/o/r:1.0@{D}");
        let tag_digest_want = format!("ghcr.io/o/r:1.0@{D}");
        let port_digest = format!("localhost:5000/x@{D}");
        let port_digest_want = format!("localhost:5000/x@{D}");
        let sha512 = format!("alpine@sha512:{}", "a".repeat(128));
        let short_digest = "alpine@sha256:abc".to_string();
        let upper_digest = format!("alpine@{}", D.to_uppercase().replace("SHA256", "sha256"));
        let image_id = "a".repeat(64);
        let cases: Vec<(&str, Option<&str>)> = vec![
            ("alpine", Some("docker.io/library/alpine:latest")),
            ("alpine:3.20", Some("docker.io/library/alpine:3.20")),
            ("library/alpine", Some("docker.io/library/alpine:latest")),
            ("docker.io/alpine", Some("docker.io/library/alpine:latest")),
            (
                "docker.io/library/alpine:edge",
                Some("docker.io/library/alpine:edge"),
            ),
            (
                "index.docker.io/alpine",
                Some("docker.io/library/alpine:latest"),
            ),
            ("index.docker.io/team/web:1", Some("docker.io/team/web:1")),
            ("team/web", Some("docker.io/team/web:latest")),
            ("team/sub/web:v1", Some("docker.io/team/sub/web:v1")),
            ("localhost/x", Some("localhost/x:latest")),
            ("localhost:5000/x:dev", Some("localhost:5000/x:dev")),
            ("localhost", Some("docker.io/library/localhost:latest")),
            ("127.0.0.1:5100/a/b:tag", Some("127.0.0.1:5100/a/b:tag")),
            ("[::1]:5000/x", Some("[::1]:5000/x:latest")),
            ("[fe80::1]/x:1", Some("[fe80::1]/x:1")),
            (
                "registry.example.com/team/web:1.4",
                Some("registry.example.com/team/web:1.4"),
            ),
            (
                "Registry.Example.com/web",
                Some("Registry.Example.com/web:latest"),
            ),
            ("Foo/bar", Some("Foo/bar:latest")),
            ("host:5000/a:b", Some("host:5000/a:b")),
            (
                "my-app__x.y:T_1-2.3",
                Some("docker.io/library/my-app__x.y:T_1-2.3"),
            ),
            ("a---b", Some("docker.io/library/a---b:latest")),
            ("a__b", Some("docker.io/library/a__b:latest")),
            ("a/b/c/d/e", Some("docker.io/a/b/c/d/e:latest")),
            ("ghcr.io/o/r:_x", Some("ghcr.io/o/r:_x")),
            (&ok_tag, Some(&ok_tag_want)),
            (&long_path, Some(&long_path_want)),
            (&with_digest, Some(&with_digest_want)),
            (&tag_digest, Some(&tag_digest_want)),
            (&port_digest, Some(&port_digest_want)),
            // Errors.
            ("", None),
            ("Alpine", None),
            ("docker.io/Alpine", None),
            ("team/Web", None),
            ("alpine:", None),
            ("alpine:-x", None),
            ("alpine:.x", None),
            ("alpine:a/b", None),
            ("alpine:a+b", None),
            (&bad_tag, None),
            (&too_long_path, None),
            ("/alpine", None),
            ("alpine/", None),
            ("a//b", None),
            ("a..b", None),
            ("a___b", None),
            ("-a", None),
            ("a-", None),
            ("a_", None),
            (".a", None),
            ("a b", None),
            ("a\tb", None),
            ("host.com:/web", None),
            ("host.com:x/web", None),
            ("host.com:123456/web", None),
            ("-host.com/web", None),
            ("bad_host.com/web", None),
            ("[::1/x", None),
            ("[zz::1]/x", None),
            ("[::1]x/y", None),
            ("localhost:5000", Some("docker.io/library/localhost:5000")),
            ("example.com/", None),
            (&sha512, None),
            (&short_digest, None),
            (&upper_digest, None),
            ("alpine@", None),
            (&image_id, None),
            ("http://example.com/x", None),
        ];
        for (input, want) in cases {
            let got = Reference::parse(input);
            match want {
                Some(w) => match got {
                    Ok(r) => assert_eq!(r.to_string(), w, "{input}"),
                    Err(e) => panic!("{input}: {e}"),
                },
                None => {
                    let err = got.expect_err(input).to_string();
                    assert!(err.contains(&format!("`{input}`")), "{input}: {err}");
                }
            }
        }
    }

    #[test]
    fn parts_table() {
        // input, registry, api host, repository, tag, digest?, api ref, familiar
        let with_digest = format!("quay.io/a/b:1@{D}");
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            bool,
            String,
            String,
        );
        let cases: Vec<Case> = vec![
            (
                "alpine",
                "docker.io",
                "registry-1.docker.io",
                "library/alpine",
                Some("latest"),
                false,
                "latest".into(),
                "alpine:latest".into(),
            ),
            (
                "team/web:2",
                "docker.io",
                "registry-1.docker.io",
                "team/web",
                Some("2"),
                false,
                "2".into(),
                "team/web:2".into(),
            ),
            (
                "127.0.0.1:5100/x/y:z",
                "127.0.0.1:5100",
                "127.0.0.1:5100",
                "x/y",
                Some("z"),
                false,
                "z".into(),
                "127.0.0.1:5100/x/y:z".into(),
            ),
            (
                &with_digest,
                "quay.io",
                "quay.io",
                "a/b",
                Some("1"),
                true,
                D.into(),
                format!("quay.io/a/b:1@{D}"),
            ),
        ];
        for (input, reg, api, repo, tag, has_digest, api_ref, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.registry(), reg, "{input}");
            assert_eq!(r.api_host(), api, "{input}");
            assert_eq!(r.repository(), repo, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            assert_eq!(r.api_reference(), api_ref, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            // Display round-trips.
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("alpine:3.20").unwrap();
        assert_eq!(
            r.with_tag("edge").unwrap().to_string(),
            "docker.io/library/alpine:edge"
        );
        assert!(r.with_tag("bad tag").is_err());
        let d = Digest::parse(D).unwrap();
        assert_eq!(
            r.with_digest(d).to_string(),
            format!("docker.io/library/alpine@{D}")
        );
        let m = r
            .in_repository("mirror.local:5000", "hub/library/alpine")
            .unwrap();
        assert_eq!(m.to_string(), "mirror.local:5000/hub/library/alpine:3.20");
        assert!(r.in_repository("mirror.local", "Bad").is_err());
    }

    #[test]
    fn registry_helpers_table() {
        let norm = [
            ("docker.io", Some("docker.io")),
            ("https://index.docker.io/v1/", Some("docker.io")),
            ("index.docker.io", Some("docker.io")),
            ("registry-1.docker.io", Some("docker.io")),
            ("https://ghcr.io/", Some("ghcr.io")),
            ("http://127.0.0.1:5000", Some("127.0.0.1:5000")),
            ("Registry.Example.COM", Some("registry.example.com")),
            ("quay.io/org/repo", Some("quay.io")),
            ("", None),
            ("bad host", None),
            ("host:port", None),
        ];
        for (input, want) in norm {
            assert_eq!(normalize_registry(input).as_deref(), want, "{input}");
        }
        let loop_cases = [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:5100", true),
            ("127.3.4.5", true),
            ("[::1]:5000", true),
            ("[::2]:5000", false),
            ("128.0.0.1", false),
            ("registry.example.com", false),
            ("localhost.example.com", false),
        ];
        for (r, want) in loop_cases {
            assert_eq!(is_loopback(r), want, "{r}");
        }
    }
}
