//! os-release(5): which distribution a base is, read leniently as the
//! spec asks.
//!
//! The distribution family decides conventions hoist follows (which C
//! library, how users are added, where Debian's python3 installs), and
//! the SBOM names the base's distribution. The file is a list of shell
//! assignments, so its parser takes bytes and unquotes as `sh` would;
//! where the file lives (`/etc/os-release`, else `/usr/lib/os-release`,
//! usually through a link) is for the overlay view to resolve.

use std::collections::HashMap;

/// os-release(5): `/etc/os-release` wins; `/usr/lib/os-release` is the
/// fallback (and the usual target of the former, which is a link).
pub(super) const OS_RELEASE: &str = "etc/os-release";
pub(super) const OS_RELEASE_FALLBACK: &str = "usr/lib/os-release";

/// The distribution families whose conventions hoist follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    Alpine,
    Debian,
    Other,
}

/// The fields of os-release(5) hoist uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`; `linux` when unset, as the spec says.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// Parses an os-release file. The format (os-release(5)) is a list of
    /// shell-compatible `KEY=VALUE` assignments, one per line: values may be
    /// single- or double-quoted, shell special characters escaped with a
    /// backslash; `#` starts a comment line; blank lines are ignored. The
    /// spec tells readers to be lenient, so lines that are not assignments
    /// are skipped and a bad byte sequence becomes U+FFFD.
    pub fn parse(bytes: &[u8]) -> OsRelease {
        let text = String::from_utf8_lossy(bytes);
        let mut vars: HashMap<&str, String> = HashMap::new();
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            let valid_key = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid_key {
                vars.insert(key, shell_unquote(raw));
            }
        }
        let mut take = |k: &str| vars.remove(k).filter(|v| !v.is_empty());
        OsRelease {
            id: take("ID").unwrap_or_else(|| "linux".to_owned()),
            id_like: take("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            version_id: take("VERSION_ID"),
            pretty_name: take("PRETTY_NAME"),
        }
    }

    /// The family by `ID`, then by `ID_LIKE` in order.
    pub fn family(&self) -> OsFamily {
        std::iter::once(&self.id)
            .chain(&self.id_like)
            .find_map(|id| match id.as_str() {
                "alpine" => Some(OsFamily::Alpine),
                "debian" | "ubuntu" => Some(OsFamily::Debian),
                _ => None,
            })
            .unwrap_or(OsFamily::Other)
    }
}

/// One shell word, as `sh` reads the right side of an assignment: quotes
/// removed, backslash escapes applied (inside double quotes only before
/// `$`, `` ` ``, `"`, `\`), ended by unquoted white space. An unterminated
/// quote runs to the end of the line.
fn shell_unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (None, '\\') => out.extend(chars.next()),
            (None, c) if c.is_whitespace() => break,
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('$' | '`' | '"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            (_, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::fixtures::{ALPINE_OS_RELEASE, DEBIAN_OS_RELEASE};

    #[test]
    fn os_release_parse_table() {
        struct Case {
            input: &'static [u8],
            id: &'static str,
            id_like: &'static [&'static str],
            version_id: Option<&'static str>,
            pretty_name: Option<&'static str>,
            family: OsFamily,
        }
        let cases = [
            Case {
                input: ALPINE_OS_RELEASE,
                id: "alpine",
                id_like: &[],
                version_id: Some("3.20.3"),
                pretty_name: Some("Alpine Linux v3.20"),
                family: OsFamily::Alpine,
            },
            Case {
                input: DEBIAN_OS_RELEASE,
                id: "debian",
                id_like: &[],
                version_id: Some("12"),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)"),
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n",
                id: "ubuntu",
                id_like: &["debian"],
                version_id: Some("24.04"),
                pretty_name: None,
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n",
                id: "linuxmint",
                id_like: &["ubuntu", "debian"],
                version_id: None,
                pretty_name: None,
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
                id: "rocky",
                id_like: &["rhel", "centos", "fedora"],
                version_id: None,
                pretty_name: None,
                family: OsFamily::Other,
            },
            Case {
                // Comments, blank lines, indentation, single quotes,
                // escapes inside and outside double quotes, junk lines.
                input: b"# a comment\n\n  ID='wolfi'\nnot an assignment\n1BAD=x\nPRETTY_NAME=\"say \\\"hi\\\" \\$HOME \\n\"\nVERSION_ID=a\\ b # trailing\n",
                id: "wolfi",
                id_like: &[],
                version_id: Some("a b"),
                pretty_name: Some("say \"hi\" $HOME \\n"),
                family: OsFamily::Other,
            },
            Case {
                input: b"NAME=Busybox\nID=\nPRETTY_NAME=\"unterminated\n",
                id: "linux",
                id_like: &[],
                version_id: None,
                pretty_name: Some("unterminated"),
                family: OsFamily::Other,
            },
            Case {
                input: b"ID=\"a\"'b'c\r\nVERSION_ID=\xff\n",
                id: "abc",
                id_like: &[],
                version_id: Some("\u{fffd}"),
                pretty_name: None,
                family: OsFamily::Other,
            },
        ];
        for c in cases {
            let got = OsRelease::parse(c.input);
            let shown = String::from_utf8_lossy(c.input);
            assert_eq!(got.id, c.id, "{shown}");
            assert_eq!(got.id_like, c.id_like, "{shown}");
            assert_eq!(got.version_id.as_deref(), c.version_id, "{shown}");
            assert_eq!(got.pretty_name.as_deref(), c.pretty_name, "{shown}");
            assert_eq!(got.family(), c.family, "{shown}");
        }
    }
}
