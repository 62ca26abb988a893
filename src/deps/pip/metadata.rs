//! Core metadata (`METADATA`, PEP 566/643): what a distribution needs.
//!
//! The resolver needs four fields of it; they come from the index's PEP 658
//! `.metadata` file, or from the wheel's `*.dist-info/METADATA`.
//!
//! The format is an email message (RFC 822 headers, as Python's `email`
//! package reads them in its lenient `compat32` mode), which is what pip
//! and `packaging` read:
//!
//! 1. each header is `Name: value`; a line starting with a space or a tab
//!    continues the header before it (the line break is dropped, the
//!    whitespace kept);
//! 2. the headers end at the first blank line, or at the first line that
//!    is neither a header nor a continuation; what follows is the body
//!    (the long description), never read here;
//! 3. header names are case-insensitive, and some repeat
//!    (`Requires-Dist`, `Provides-Extra`); a single-valued header that
//!    repeats counts once, the first, as `email.message.Message.get` does.
//!
//! Every `Metadata-Version` from 1.0 to 2.x is read; a later major version
//! is refused, as the specification asks of readers. A `Requires-Dist`
//! that is not PEP 508 is an error naming the line: pip refuses such a
//! distribution too, and guessing would change what gets installed. A
//! malformed `Requires-Python` is ignored, and so is a malformed
//! `Provides-Extra`, as pip ignores them (an extra nobody can name cannot
//! be asked for).

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName, Requirement};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("core metadata has no `{0}` header; the distribution is broken, pick another version")]
    Missing(&'static str),
    #[error("core metadata line {line}: `Name: {value}` is not a valid project name: {message}")]
    BadName {
        line: usize,
        value: String,
        message: String,
    },
    #[error("core metadata line {line}: `Version: {value}` is not a PEP 440 version: {message}")]
    BadVersion {
        line: usize,
        value: String,
        message: String,
    },
    #[error(
        "core metadata line {line}: `Requires-Dist: {value}` is not a valid PEP 508 \
         requirement: {message}; pip refuses this distribution too, pick another version"
    )]
    BadRequiresDist {
        line: usize,
        value: String,
        message: String,
    },
    #[error(
        "core metadata line {line}: `Metadata-Version: {value}` is not one hoist reads \
         (1.0 to 2.x); a newer hoist may read it"
    )]
    UnsupportedVersion { line: usize, value: String },
}

/// The fields of a distribution's core metadata the resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: PackageName,
    pub version: Version,
    /// `Requires-Dist`, markers unevaluated (extras are markers too).
    pub requires_dist: Vec<Requirement>,
    pub requires_python: Option<VersionSpecifiers>,
    pub provides_extras: Vec<ExtraName>,
}

impl CoreMetadata {
    /// Reads the headers of a `METADATA` (or PKG-INFO) file.
    pub fn parse(bytes: &[u8]) -> Result<CoreMetadata, MetadataError> {
        let headers = headers(bytes);
        let first = |name: &str| headers.iter().find(|h| h.name == name);

        if let Some(h) = first("metadata-version") {
            let major = h
                .value
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if !matches!(major, Some(1 | 2)) {
                return Err(MetadataError::UnsupportedVersion {
                    line: h.line,
                    value: h.value.clone(),
                });
            }
        }

        let h = first("name").ok_or(MetadataError::Missing("Name"))?;
        let name = PackageName::from_str(&h.value).map_err(|e| MetadataError::BadName {
            line: h.line,
            value: h.value.clone(),
            message: e.to_string(),
        })?;

        let h = first("version").ok_or(MetadataError::Missing("Version"))?;
        let version = Version::from_str(&h.value).map_err(|e| MetadataError::BadVersion {
            line: h.line,
            value: h.value.clone(),
            message: e.to_string(),
        })?;

        let requires_python =
            first("requires-python").and_then(|h| VersionSpecifiers::from_str(&h.value).ok());

        let mut requires_dist = Vec::new();
        let mut provides_extras = Vec::new();
        for h in &headers {
            match h.name.as_str() {
                "requires-dist" => {
                    let req = super::requirements::parse_pep508(&h.value).map_err(|message| {
                        MetadataError::BadRequiresDist {
                            line: h.line,
                            value: h.value.clone(),
                            message,
                        }
                    })?;
                    requires_dist.push(req);
                }
                "provides-extra" => {
                    if let Ok(extra) = ExtraName::from_str(&h.value) {
                        if !provides_extras.contains(&extra) {
                            provides_extras.push(extra);
                        }
                    }
                }
                _ => {}
            }
        }

        Ok(CoreMetadata {
            name,
            version,
            requires_dist,
            requires_python,
            provides_extras,
        })
    }
}

/// One header: its name in lower case, its unfolded value, and the line
/// (from 1) it starts on.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    line: usize,
    name: String,
    value: String,
}

/// The headers of an email-style message, up to the body.
fn headers(bytes: &[u8]) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(raw);
        if line.starts_with([' ', '\t']) {
            // A continuation: unfolding drops only the line break. One
            // before any header is a defect the email parser ignores.
            if let Some(last) = out.last_mut() {
                last.value.push_str(line.trim_end());
            }
            continue;
        }
        // A field name is printable ASCII without spaces or colons; a line
        // that is no `name:` starts the body (Python's email parser does
        // the same, noting a missing separator).
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            break;
        }
        out.push(Header {
            line: i + 1,
            name: name.to_ascii_lowercase(),
            value: value.trim().to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// requests 2.32.3's METADATA, without classifiers and project URLs:
    /// spaces before specifiers and markers, single-quoted extras, an extra
    /// with underscores.
    const REQUESTS: &str = "Metadata-Version: 2.1
Name: requests
Version: 2.32.3
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Author: Kenneth Reitz
License: Apache-2.0
Requires-Python: >=3.8
Description-Content-Type: text/markdown
License-File: LICENSE
Requires-Dist: charset-normalizer <4,>=2
Requires-Dist: idna <4,>=2.5
Requires-Dist: urllib3 <3,>=1.21.1
Requires-Dist: certifi >=2017.4.17
Provides-Extra: security
Provides-Extra: socks
Requires-Dist: PySocks !=1.5.7,>=1.5.6 ; extra == 'socks'
Provides-Extra: use_chardet_on_py3
Requires-Dist: chardet <6,>=3.0.2 ; extra == 'use_chardet_on_py3'

# Requests

**Requests** is a simple, yet elegant, HTTP library.
Requires-Dist: not-a-header-in-the-body
";

    /// pydantic 2.9.2 (Metadata-Version 2.3): python_version markers and a
    /// parenthesised marker with an extra.
    const PYDANTIC: &str = "Metadata-Version: 2.3
Name: pydantic
Version: 2.9.2
Summary: Data validation using Python type hints
License-Expression: MIT
Requires-Python: >=3.8
Requires-Dist: annotated-types>=0.6.0
Requires-Dist: pydantic-core==2.23.4
Requires-Dist: typing-extensions>=4.12.2; python_version >= '3.13'
Requires-Dist: typing-extensions>=4.6.1; python_version < '3.13'
Provides-Extra: email
Requires-Dist: email-validator>=2.0.0; extra == 'email'
Provides-Extra: timezone
Requires-Dist: tzdata; (python_version >= '3.9' and sys_platform == 'win32') and extra == 'timezone'
Description-Content-Type: text/markdown
";

    /// fastapi 0.115.14: an RFC 2047 encoded header, extras inside
    /// requirements, double-quoted extras.
    const FASTAPI: &str = "Metadata-Version: 2.1
Name: fastapi
Version: 0.115.14
Author-Email: =?utf-8?q?Sebasti=C3=A1n_Ram=C3=ADrez?= <tiangolo@gmail.com>
Requires-Python: >=3.8
Requires-Dist: starlette<0.47.0,>=0.40.0
Requires-Dist: pydantic!=1.8,!=1.8.1,!=2.0.0,!=2.0.1,!=2.1.0,<3.0.0,>=1.7.4
Requires-Dist: typing-extensions>=4.8.0
Provides-Extra: standard
Requires-Dist: fastapi-cli[standard]>=0.0.5; extra == \"standard\"
Requires-Dist: uvicorn[standard]>=0.12.0; extra == \"standard\"
Provides-Extra: all
Requires-Dist: itsdangerous>=1.1.0; extra == \"all\"
";

    /// What a test expects of a parse.
    struct Want {
        name: &'static str,
        version: &'static str,
        requires_python: Option<&'static str>,
        requires_dist: &'static [&'static str],
        extras: &'static [&'static str],
    }

    #[test]
    fn parses_table() {
        let cases: &[(&str, &str, Want)] = &[
            (
                "requests",
                REQUESTS,
                Want {
                    name: "requests",
                    version: "2.32.3",
                    requires_python: Some(">=3.8"),
                    requires_dist: &[
                        "charset-normalizer<4,>=2",
                        "idna<4,>=2.5",
                        "urllib3<3,>=1.21.1",
                        "certifi>=2017.4.17",
                        "pysocks!=1.5.7,>=1.5.6 ; extra == 'socks'",
                        "chardet<6,>=3.0.2 ; extra == 'use-chardet-on-py3'",
                    ],
                    extras: &["security", "socks", "use-chardet-on-py3"],
                },
            ),
            (
                "pydantic",
                PYDANTIC,
                Want {
                    name: "pydantic",
                    version: "2.9.2",
                    requires_python: Some(">=3.8"),
                    requires_dist: &[
                        "annotated-types>=0.6.0",
                        "pydantic-core==2.23.4",
                        "typing-extensions>=4.12.2 ; python_full_version >= '3.13'",
                        "typing-extensions>=4.6.1 ; python_full_version < '3.13'",
                        "email-validator>=2.0.0 ; extra == 'email'",
                        "tzdata ; python_full_version >= '3.9' and sys_platform == 'win32' and extra == 'timezone'",
                    ],
                    extras: &["email", "timezone"],
                },
            ),
            (
                "fastapi",
                FASTAPI,
                Want {
                    name: "fastapi",
                    version: "0.115.14",
                    requires_python: Some(">=3.8"),
                    requires_dist: &[
                        "starlette<0.47.0,>=0.40.0",
                        "pydantic!=1.8,!=1.8.1,!=2.0.0,!=2.0.1,!=2.1.0,<3.0.0,>=1.7.4",
                        "typing-extensions>=4.8.0",
                        "fastapi-cli[standard]>=0.0.5 ; extra == 'standard'",
                        "uvicorn[standard]>=0.12.0 ; extra == 'standard'",
                        "itsdangerous>=1.1.0 ; extra == 'all'",
                    ],
                    extras: &["standard", "all"],
                },
            ),
            (
                "metadata 1.0, no requirements, CRLF line ends, names in other cases",
                "Metadata-Version: 1.0\r\nNAME: Foo.Bar\r\nversion: 1.0\r\nSummary: x\r\n",
                Want {
                    name: "foo-bar",
                    version: "1.0",
                    requires_python: None,
                    requires_dist: &[],
                    extras: &[],
                },
            ),
            (
                "continuation lines fold into the header before them",
                "Metadata-Version: 2.1\nName: a\nVersion: 2\nDescription: first\n        |second\nRequires-Dist: b>=1;\n  extra == 'x'\nProvides-Extra: x\nRequires-Python: >=3.7,\n\t<4\n",
                Want {
                    name: "a",
                    version: "2",
                    requires_python: Some(">=3.7, <4"),
                    requires_dist: &["b>=1 ; extra == 'x'"],
                    extras: &["x"],
                },
            ),
            (
                "no Metadata-Version, repeated Name: the first counts; unknown headers ignored",
                "Name: first\nName: second\nVersion: 0.1\nX-Whatever: 1\nDynamic: Requires-Dist\n",
                Want {
                    name: "first",
                    version: "0.1",
                    requires_python: None,
                    requires_dist: &[],
                    extras: &[],
                },
            ),
            (
                "bad Requires-Python and extras are ignored, as pip ignores them",
                "Metadata-Version: 2.4\nName: a\nVersion: 1\nRequires-Python: >=3.6.*,,\nProvides-Extra: -bad-\nProvides-Extra: ok\nProvides-Extra: OK\n",
                Want {
                    name: "a",
                    version: "1",
                    requires_python: None,
                    requires_dist: &[],
                    extras: &["ok"],
                },
            ),
            (
                "a line that is no header starts the body",
                "Name: a\nVersion: 1\nthis is not a header\nRequires-Dist: hidden\n",
                Want {
                    name: "a",
                    version: "1",
                    requires_python: None,
                    requires_dist: &[],
                    extras: &[],
                },
            ),
            (
                "a future minor version is read",
                "Metadata-Version: 2.9\nName: a\nVersion: 1!2.0.post1\n",
                Want {
                    name: "a",
                    version: "1!2.0.post1",
                    requires_python: None,
                    requires_dist: &[],
                    extras: &[],
                },
            ),
        ];
        for (what, text, want) in cases {
            let m = CoreMetadata::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(m.name.as_ref(), want.name, "{what}");
            assert_eq!(
                m.version,
                Version::from_str(want.version).unwrap(),
                "{what}"
            );
            assert_eq!(
                m.requires_python
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref(),
                want.requires_python,
                "{what}"
            );
            let reqs: Vec<Requirement> = want
                .requires_dist
                .iter()
                .map(|r| Requirement::from_str(r).unwrap())
                .collect();
            assert_eq!(m.requires_dist, reqs, "{what}");
            let extras: Vec<&str> = m.provides_extras.iter().map(AsRef::as_ref).collect();
            assert_eq!(extras, want.extras, "{what}");
        }
    }

    #[test]
    fn errors_table() {
        let cases: &[(&str, MetadataError)] = &[
            ("Version: 1\n", MetadataError::Missing("Name")),
            ("Name: a\n\nVersion: 1\n", MetadataError::Missing("Version")),
            (
                "Metadata-Version: 3.0\nName: a\nVersion: 1\n",
                MetadataError::UnsupportedVersion {
                    line: 1,
                    value: "3.0".into(),
                },
            ),
            (
                "Metadata-Version: two\nName: a\nVersion: 1\n",
                MetadataError::UnsupportedVersion {
                    line: 1,
                    value: "two".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                CoreMetadata::parse(text.as_bytes()).unwrap_err(),
                *want,
                "{text}"
            );
        }

        let shapes: &[(&str, usize, &str)] = &[
            ("Name: a b\nVersion: 1\n", 1, "Name"),
            ("Name: a\nVersion: one\n", 2, "Version"),
            (
                "Name: a\nVersion: 1\nRequires-Dist: b\nRequires-Dist: c >= ; extra == 'x'\n",
                4,
                "Requires-Dist",
            ),
            (
                "Name: a\nVersion: 1\nRequires-Dist: b (\n",
                3,
                "Requires-Dist",
            ),
        ];
        for (text, line, header) in shapes {
            let err = CoreMetadata::parse(text.as_bytes()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("core metadata line {line}: `{header}: ")),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn invalid_utf8_outside_used_fields_is_tolerated() {
        let mut bytes = b"Name: a\nVersion: 1\nAuthor: ".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\nRequires-Dist: b\n");
        let m = CoreMetadata::parse(&bytes).unwrap();
        assert_eq!(m.requires_dist.len(), 1);
    }
}
