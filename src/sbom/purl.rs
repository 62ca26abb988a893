//! Package URLs (purl), the identifiers SBOM consumers match packages by.
//!
//! `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`, as the purl specification
//! (github.com/package-url/purl-spec) spells each type hoist needs:
//! - npm: the scope is the namespace, its `@` percent-encoded:
//!   `pkg:npm/%40babel/core@7.26.0`;
//! - pypi: the name lower-cased, `_` written `-`: `pkg:pypi/pyyaml@6.0.2`;
//! - deb, apk: the distribution (os-release `ID`) as the namespace:
//!   `pkg:deb/debian/libc6@2.36-9%2Bdeb12u9`;
//! - oci: the last segment of the repository as the name, the manifest
//!   digest as the version (`sha256%3A...`), and where it lives as
//!   qualifiers (`arch`, `os`, `repository_url`, `tag`), sorted by key.
//!
//! Every component is percent-encoded except the characters the spec
//! leaves bare; `/` stays bare in a qualifier value (a repository URL).

use crate::deps::{Ecosystem, Package};
use crate::digest::Digest;

/// The purl of a package an installer put in the image, or the base
/// holds; `distro` is the base's os-release `ID`, for the latter.
pub fn package(p: &Package, distro: Option<&str>) -> String {
    match p.ecosystem {
        Ecosystem::Deb | Ecosystem::Apk => {
            let (kind, default) = match p.ecosystem {
                Ecosystem::Apk => ("apk", "alpine"),
                _ => ("deb", "debian"),
            };
            let vendor = distro.unwrap_or(default).to_ascii_lowercase();
            let mut s = format!(
                "pkg:{kind}/{}/{}",
                encode(&vendor, false),
                encode(&p.name, false)
            );
            push_version(&mut s, &p.version);
            s
        }
        Ecosystem::Npm => {
            let (namespace, name) = match p.name.strip_prefix('@').and_then(|s| s.split_once('/')) {
                Some((scope, name)) => (Some(format!("@{scope}")), name),
                None => (None, p.name.as_str()),
            };
            let mut s = "pkg:npm/".to_owned();
            if let Some(ns) = namespace {
                s.push_str(&encode(&ns, false));
                s.push('/');
            }
            s.push_str(&encode(name, false));
            push_version(&mut s, &p.version);
            s
        }
        Ecosystem::Pypi => {
            let name = p.name.to_ascii_lowercase().replace('_', "-");
            let mut s = format!("pkg:pypi/{}", encode(&name, false));
            push_version(&mut s, &p.version);
            s
        }
    }
}

/// The purl of an image: `pkg:oci/NAME@DIGEST?QUALIFIERS`, where
/// `repository` is `registry/path` when the image lives in a registry.
pub fn oci(
    name: &str,
    digest: &Digest,
    arch: Option<&str>,
    os: Option<&str>,
    repository: Option<&str>,
    tag: Option<&str>,
) -> String {
    let mut s = format!(
        "pkg:oci/{}@{}",
        encode(&name.to_ascii_lowercase(), false),
        encode(digest.as_str(), false)
    );
    let qualifiers = [
        ("arch", arch),
        ("os", os),
        ("repository_url", repository),
        ("tag", tag),
    ];
    let mut sep = '?';
    for (k, v) in qualifiers {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            s.push(sep);
            s.push_str(k);
            s.push('=');
            s.push_str(&encode(v, true));
            sep = '&';
        }
    }
    s
}

fn push_version(s: &mut String, version: &str) {
    if !version.is_empty() {
        s.push('@');
        s.push_str(&encode(version, false));
    }
}

/// Percent-encodes all but ASCII letters, digits and `.-_~` (and `/` when
/// `slash`).
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let bare = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~');
        if bare || (slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(ecosystem: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem,
            name: name.into(),
            version: version.into(),
            download: None,
            file: None,
            path: None,
            hashes: Vec::new(),
        }
    }

    #[test]
    fn package_purls() {
        let cases = [
            (Ecosystem::Npm, "ms", "2.1.3", "pkg:npm/ms@2.1.3"),
            (
                Ecosystem::Npm,
                "@babel/core",
                "7.26.0",
                "pkg:npm/%40babel/core@7.26.0",
            ),
            (
                Ecosystem::Npm,
                "x",
                "1.0.0-beta+build.1",
                "pkg:npm/x@1.0.0-beta%2Bbuild.1",
            ),
            (Ecosystem::Pypi, "PyYAML", "6.0.2", "pkg:pypi/pyyaml@6.0.2"),
            (
                Ecosystem::Pypi,
                "typing_extensions",
                "4.12.2",
                "pkg:pypi/typing-extensions@4.12.2",
            ),
            (
                Ecosystem::Pypi,
                "zope.interface",
                "7.0",
                "pkg:pypi/zope.interface@7.0",
            ),
            (Ecosystem::Npm, "bare", "", "pkg:npm/bare"),
            (
                Ecosystem::Deb,
                "libc6",
                "2.36-9+deb12u9",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9",
            ),
            (
                Ecosystem::Apk,
                "musl",
                "1.2.5-r0",
                "pkg:apk/alpine/musl@1.2.5-r0",
            ),
        ];
        for (eco, name, version, want) in cases {
            assert_eq!(package(&pkg(eco, name, version), None), want, "{name}");
        }
        let ubuntu = package(
            &pkg(Ecosystem::Deb, "libc6", "2.39-0ubuntu8"),
            Some("ubuntu"),
        );
        assert_eq!(ubuntu, "pkg:deb/ubuntu/libc6@2.39-0ubuntu8");
    }

    #[test]
    fn oci_purls() {
        let d = Digest::of(b"x");
        let hex = d.hex();
        assert_eq!(
            oci(
                "Node",
                &d,
                Some("amd64"),
                Some("linux"),
                Some("docker.io/library/node"),
                Some("22-slim")
            ),
            format!("pkg:oci/node@sha256%3A{hex}?arch=amd64&os=linux&repository_url=docker.io/library/node&tag=22-slim")
        );
        assert_eq!(
            oci("web", &d, None, None, Some("127.0.0.1:5000/team/web"), None),
            format!("pkg:oci/web@sha256%3A{hex}?repository_url=127.0.0.1%3A5000/team/web")
        );
        assert_eq!(
            oci("web", &d, None, None, None, None),
            format!("pkg:oci/web@sha256%3A{hex}")
        );
    }
}
