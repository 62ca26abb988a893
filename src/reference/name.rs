//! Image names: the `--tag` values hoist writes into archives, and the
//! matching of a user's tag against the names an archive already holds.
//!
//! Docker and podman disagree on where a short name lives: Docker puts
//! `web:dev` under `docker.io/library/`, podman under `localhost/`. hoist
//! builds local images, so it follows podman and writes `localhost/web:dev`;
//! Docker loads that name unchanged, and `docker run localhost/web:dev`
//! finds it. When reading, the two spellings are taken as the same name,
//! so a user can say `busybox:latest` for an archive whose RepoTags say
//! `localhost/busybox:latest` or `docker.io/library/busybox:latest`.
//!
//! The grammar is Docker's (distribution/reference): lower-case path
//! components of `[a-z0-9]` runs joined by `.`, `_`, `__` or dashes, and a
//! tag of `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

use super::is_valid_tag;
use super::transport::NameError;

/// The longest repository name Docker accepts (domain and path).
const MAX_NAME_LEN: usize = 255;

/// Turns a tag given by the user (`web`, `web:dev`, `registry.example:5000/team/web:1`)
/// into the full name written into archives (`localhost/web:latest`,
/// `localhost/web:dev`, unchanged). A name whose first component contains
/// `.` or `:` or is `localhost` already names its registry and is kept.
pub fn normalize_name(tag: &str) -> Result<String, NameError> {
    let bad = |why: &str| NameError::BadName {
        name: tag.to_owned(),
        why: why.to_owned(),
    };
    if tag.is_empty() {
        return Err(bad("is empty"));
    }
    if tag.contains('@') {
        return Err(bad(
            "has a digest (`@sha256:...`); give a name and tag instead",
        ));
    }
    let (repo, tag_part) = split_tag(tag);
    if let Some(t) = tag_part {
        if !is_valid_tag(t) {
            return Err(bad(&format!(
                "has tag `{t}`, but a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            )));
        }
    }
    let components: Vec<&str> = repo.split('/').collect();
    let (domain, path) = match components.split_first() {
        Some((first, rest)) if !rest.is_empty() && is_domain_like(first) => (Some(*first), rest),
        _ => (None, &components[..]),
    };
    if let Some(d) = domain {
        if !is_valid_domain(d) {
            return Err(bad(&format!(
                "has registry `{d}`, which is not a host name with an optional :port"
            )));
        }
    }
    for c in path {
        if !is_valid_path_component(c) {
            return Err(bad(&format!(
                "has path component `{c}`; use lower-case letters and digits, separated by `.`, `_` or `-`"
            )));
        }
    }
    let full = format!("{}/{}", domain.unwrap_or("localhost"), path.join("/"));
    if full.len() > MAX_NAME_LEN {
        return Err(bad(&format!("is longer than {MAX_NAME_LEN} characters")));
    }
    Ok(format!("{full}:{}", tag_part.unwrap_or("latest")))
}

/// Splits `repo[:tag]`; a `:` before the last `/` is a registry port.
pub(crate) fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    }
}

fn is_domain_like(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// `host[:port]`, host being dot-separated labels of letters, digits and
/// inner dashes.
fn is_valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        let sep_start = i;
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
        if i == sep_start || !run(&mut i) {
            return false;
        }
    }
    true
}

/// Whether `s` fits the OCI image layout's grammar for
/// `org.opencontainers.image.ref.name`: runs of letters and digits joined
/// by one of `-._:@/+` or by `--`.
pub fn is_valid_oci_ref_name(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_alphanumeric() {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        if b[i..].starts_with(b"--") {
            i += 2;
        } else if matches!(b[i], b'-' | b'.' | b'_' | b':' | b'@' | b'/' | b'+') {
            i += 1;
        } else {
            return false;
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// The name with `:latest` added when it has no tag and the default
/// registry prefixes (`localhost/`, `docker.io/library/`, `docker.io/`,
/// `index.docker.io/...`) removed: two names with the same short form
/// name the same local image.
fn short_form(name: &str) -> String {
    let (repo, tag) = split_tag(name);
    let mut repo = repo;
    for prefix in [
        "localhost/",
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = repo.strip_prefix(prefix) {
            repo = rest;
            break;
        }
    }
    if let Some(rest) = repo.strip_prefix("library/") {
        repo = rest;
    }
    format!("{repo}:{}", tag.unwrap_or("latest"))
}

/// Whether a user's `want` names the archive's `have` (a RepoTags entry).
pub(crate) fn same_image_name(want: &str, have: &str) -> bool {
    want == have || short_form(want) == short_form(have)
}

/// Whether a user's tag selects an index.json entry whose ref name
/// annotation is `have`: the whole value, or its tag part after the last
/// `:` (skopeo writes both `library/alpine:3.20.3` and plain `3.20`).
pub(crate) fn ref_name_matches(want: &str, have: &str) -> bool {
    want == have
        || have
            .rsplit_once(':')
            .is_some_and(|(_, t)| !t.contains('/') && t == want)
}

/// `@N`, skopeo's way of naming the N-th image of a docker-archive.
pub(crate) fn parse_index_tag(tag: &str) -> Option<usize> {
    let digits = tag.strip_prefix('@')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("web", Some("localhost/web:latest")),
            ("web:dev", Some("localhost/web:dev")),
            ("team/web:1.0", Some("localhost/team/web:1.0")),
            ("localhost/web:dev", Some("localhost/web:dev")),
            ("localhost:5000/web", Some("localhost:5000/web:latest")),
            (
                "registry.example.com/a/b:v_1",
                Some("registry.example.com/a/b:v_1"),
            ),
            (
                "docker.io/library/alpine:3.20",
                Some("docker.io/library/alpine:3.20"),
            ),
            ("my-app__x.y:T", Some("localhost/my-app__x.y:T")),
            ("a---b", Some("localhost/a---b:latest")),
            ("Web:dev", None),
            ("web:", None),
            ("web:-x", None),
            ("web:.x", None),
            (&format!("web:{}", "x".repeat(129)), None),
            (&format!("web:{}", "x".repeat(128)), Some("")),
            ("web@sha256:abc", None),
            ("", None),
            ("/web", None),
            ("web/", None),
            ("a..b", None),
            ("a___b", None),
            ("-a", None),
            ("bad_host_name.com:x/web", None),
            ("host.com:/web", None),
            (&"a".repeat(260), None),
        ];
        for (input, want) in cases {
            let got = normalize_name(input);
            match want {
                Some("") => assert!(got.is_ok(), "{input}: {got:?}"),
                Some(w) => assert_eq!(got.ok().as_deref(), Some(*w), "{input}"),
                None => {
                    let err = got.expect_err(input).to_string();
                    assert!(err.contains(input), "{input}: {err}");
                }
            }
        }
    }

    #[test]
    fn oci_ref_name_table() {
        let cases = [
            ("latest", true),
            ("3.20", true),
            ("localhost/web:dev", true),
            ("library/alpine:3.20.3", true),
            ("a--b", true),
            ("a---b", false),
            ("", false),
            ("-a", false),
            ("a:", false),
            ("a b", false),
        ];
        for (s, ok) in cases {
            assert_eq!(is_valid_oci_ref_name(s), ok, "{s}");
        }
    }

    #[test]
    fn matching_table() {
        let same = [
            ("busybox", "localhost/busybox:latest", true),
            ("busybox:latest", "docker.io/library/busybox:latest", true),
            ("localhost/busybox:latest", "busybox:latest", true),
            ("busybox:1", "localhost/busybox:latest", false),
            ("other", "localhost/busybox:latest", false),
            ("team/x:1", "docker.io/team/x:1", true),
            ("quay.io/x:1", "localhost/x:1", false),
        ];
        for (want, have, ok) in same {
            assert_eq!(same_image_name(want, have), ok, "{want} vs {have}");
        }
        let refs = [
            ("3.20", "3.20", true),
            ("3.20.3", "library/alpine:3.20.3", true),
            ("library/alpine:3.20.3", "library/alpine:3.20.3", true),
            ("3.20", "3.20.3", false),
            ("5000/x", "localhost:5000/x", false),
        ];
        for (want, have, ok) in refs {
            assert_eq!(ref_name_matches(want, have), ok, "{want} vs {have}");
        }
    }
}
