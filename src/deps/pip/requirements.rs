//! requirements.txt, read as `pip install -r` reads it.
//!
//! pip's requirements-file format (pip's `req_file.py`) is line based:
//!
//! 1. a line ending in `\` continues on the next one;
//! 2. `#` at the start of a line or after whitespace starts a comment;
//! 3. a line starting with `-` holds global options (`-r`, `-c`,
//!    `--index-url`, ...); any other line is a PEP 508 requirement,
//!    optionally followed by per-requirement options (`--hash`).
//!
//! This module only parses bytes: `-r` and `-c` come back as [`Include`]s
//! for the caller to read, because files are the caller's business.
//! Markers are kept unevaluated (they are evaluated for the image's
//! Python, not the host's). hoist installs wheels from an index or a
//! wheelhouse, so editable, path and URL requirements are refused with the
//! line that holds them; so is any option pip knows that hoist does not,
//! rather than silently doing something other than pip would.

use std::str::FromStr;

use pep508_rs::{Requirement, VersionOrUrl};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementsError {
    #[error("requirements line {line}: not UTF-8")]
    NotUtf8 { line: usize },
    #[error("requirements line {line}: unknown option `{option}` in `{text}`")]
    UnknownOption {
        line: usize,
        option: String,
        text: String,
    },
    #[error("requirements line {line}: option `{option}` needs a value in `{text}`")]
    MissingValue {
        line: usize,
        option: String,
        text: String,
    },
    #[error(
        "requirements line {line}: `{text}` is not supported: hoist installs from \
         wheels on an index or a wheelhouse (--find-links), not from editable, path or \
         URL requirements"
    )]
    Unsupported { line: usize, text: String },
    #[error(
        "requirements line {line}: bad hash `{hash}` (want sha256:<64 hex digits>) in `{text}`"
    )]
    BadHash {
        line: usize,
        hash: String,
        text: String,
    },
    #[error("requirements line {line}: `{text}`: {message}")]
    Invalid {
        line: usize,
        text: String,
        message: String,
    },
}

/// Whether an include adds requirements (`-r`) or only constrains (`-c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    Requirements,
    Constraints,
}

/// A `-r FILE` or `-c FILE` line; the path is as written, relative to the
/// including file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub line: usize,
    pub kind: IncludeKind,
    pub path: String,
}

/// One requirement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    /// Where the (first physical) line is, counting from 1.
    pub line: usize,
    /// Name, extras, specifiers and the unevaluated marker.
    pub requirement: Requirement,
    /// The `--hash=sha256:` values, lower-case hex without the prefix.
    pub hashes: Vec<String>,
}

/// A requirements file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequirementsTxt {
    pub requirements: Vec<RequirementLine>,
    pub includes: Vec<Include>,
    /// `-i` / `--index-url`: the last one wins, as in pip.
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// `-f` / `--find-links`: wheelhouse folders or pages.
    pub find_links: Vec<String>,
    pub no_index: bool,
    /// `--pre`: pre-releases allowed.
    pub pre: bool,
}

/// Physical lines joined into logical ones: (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                current = Some((start, acc));
            }
            None => {
                acc.push_str(raw);
                out.push((start, acc));
            }
        }
    }
    // A file ending in `\` ends the line there, as pip does.
    if let Some(last) = current {
        out.push(last);
    }
    out
}

/// The line without its comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Splits `--opt=value`, `--opt value`, `-ovalue` and `-o value` forms.
/// Returns (option name, inline value).
fn split_option(token: &str) -> (&str, Option<&str>) {
    if let Some(long) = token.strip_prefix("--") {
        match long.split_once('=') {
            Some((name, value)) => (&token[..name.len() + 2], Some(value)),
            None => (token, None),
        }
    } else if token.len() > 2 && token.is_char_boundary(2) {
        (&token[..2], Some(token[2..].trim_start_matches('=')))
    } else {
        (token, None)
    }
}

/// Is this requirement text a path or URL rather than a name?
/// Parses one PEP 508 requirement (a requirements line, a wheel's
/// `Requires-Dist`, a build requirement). pep508_rs 0.9 panics on two kinds
/// of input instead of answering an error, found by the property tests
/// (`src/fuzz.rs`): an extra name that ends in `.`, `-` or `_`
/// (`a[b.]`) or a package name that does (`a. ==1`), and a character outside ASCII in places where it counts
/// characters as bytes (`a ; python_version >= "3.8"\u{feff}`). Both are
/// refused here first; names, versions and markers are ASCII, only quoted
/// marker values may hold other characters.
pub fn parse_pep508(text: &str) -> Result<Requirement, String> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some((c, i)),
            None if !c.is_ascii() => {
                return Err(format!(
                    "character {} at byte {} is not allowed: a requirement is ASCII outside quoted values",
                    c.escape_unicode(),
                    i + 1
                ))
            }
            None => {}
        }
    }
    // pep508_rs slices an unterminated quoted value by characters where it
    // means bytes, and panics on a non-ASCII one (found by src/fuzz.rs).
    if let Some((q, at)) = quote {
        return Err(format!(
            "the value quoted with {q} at byte {} is not closed",
            at + 1
        ));
    }
    // pep508_rs reads a name as the run of these characters, and panics
    // when the run it read ends in `.`, `-` or `_`.
    let identifier = |s: &str| -> String {
        let s = s.trim_start();
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            .unwrap_or(s.len());
        s[..end].to_owned()
    };
    let name = identifier(text);
    if name.ends_with(['.', '-', '_']) {
        return Err(format!(
            "package name `{name}` must end with a letter or digit"
        ));
    }
    if let Some(open) = text.find('[') {
        let before = &text[..open];
        if !before.contains(['@', ';', '<', '>', '=', '!', '~', '(']) {
            let inner = text[open + 1..].split(']').next().unwrap_or_default();
            for extra in inner.split(',').map(identifier) {
                if extra.ends_with(['.', '-', '_']) {
                    return Err(format!(
                        "extra name `{extra}` must end with a letter or digit"
                    ));
                }
            }
        }
    }
    Requirement::from_str(text).map_err(|e| e.message.to_string())
}

fn looks_like_path_or_url(req: &str) -> bool {
    let first = req.split_whitespace().next().unwrap_or("");
    first.starts_with('.')
        || first.starts_with('/')
        || first.starts_with('~')
        || first.contains("://")
        || first.contains(":\\")
        || ["git+", "hg+", "svn+", "bzr+", "file:"]
            .iter()
            .any(|p| first.starts_with(p))
        || [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2"]
            .iter()
            .any(|s| first.ends_with(s))
}

fn parse_hash(line: usize, value: &str, text: &str) -> Result<String, RequirementsError> {
    let bad = || RequirementsError::BadHash {
        line,
        hash: value.to_owned(),
        text: text.to_owned(),
    };
    let hex = value.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(hex.to_ascii_lowercase())
}

impl RequirementsTxt {
    /// Parses a requirements file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<RequirementsTxt, RequirementsError> {
        let text = std::str::from_utf8(bytes).map_err(|e| RequirementsError::NotUtf8 {
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut out = RequirementsTxt::default();
        for (line, full) in logical_lines(text) {
            let body = strip_comment(&full).trim();
            if body.is_empty() {
                continue;
            }
            if body.starts_with('-') {
                out.global_options(line, body)?;
            } else {
                out.requirement(line, body)?;
            }
        }
        Ok(out)
    }

    fn global_options(&mut self, line: usize, body: &str) -> Result<(), RequirementsError> {
        let tokens = shell_words::split(body).map_err(|e| RequirementsError::Invalid {
            line,
            text: body.to_owned(),
            message: e.to_string(),
        })?;
        let mut it = tokens.iter();
        while let Some(token) = it.next() {
            let (name, inline) = split_option(token);
            let unknown = || RequirementsError::UnknownOption {
                line,
                option: name.to_owned(),
                text: body.to_owned(),
            };
            if !token.starts_with('-') {
                return Err(unknown());
            }
            let mut value = || -> Result<String, RequirementsError> {
                match inline {
                    Some(v) if !v.is_empty() => Ok(v.to_owned()),
                    _ => it
                        .next()
                        .cloned()
                        .ok_or_else(|| RequirementsError::MissingValue {
                            line,
                            option: name.to_owned(),
                            text: body.to_owned(),
                        }),
                }
            };
            match name {
                "-r" | "--requirement" => {
                    let path = value()?;
                    self.includes.push(Include {
                        line,
                        kind: IncludeKind::Requirements,
                        path,
                    });
                }
                "-c" | "--constraint" => {
                    let path = value()?;
                    self.includes.push(Include {
                        line,
                        kind: IncludeKind::Constraints,
                        path,
                    });
                }
                "-i" | "--index-url" => self.index_url = Some(value()?),
                "--extra-index-url" => self.extra_index_urls.push(value()?),
                "-f" | "--find-links" => self.find_links.push(value()?),
                "--no-index" if inline.is_none() => self.no_index = true,
                "--pre" if inline.is_none() => self.pre = true,
                "-e" | "--editable" => {
                    return Err(RequirementsError::Unsupported {
                        line,
                        text: body.to_owned(),
                    })
                }
                _ => return Err(unknown()),
            }
        }
        Ok(())
    }

    fn requirement(&mut self, line: usize, body: &str) -> Result<(), RequirementsError> {
        // As pip's break_args_options: the requirement runs up to the
        // first space-separated token that starts with `-`.
        let tokens: Vec<&str> = body.split(' ').collect();
        let split = tokens
            .iter()
            .position(|t| t.starts_with('-'))
            .unwrap_or(tokens.len());
        let req_text = tokens[..split].join(" ");
        let req_text = req_text.trim();
        let unsupported = || RequirementsError::Unsupported {
            line,
            text: body.to_owned(),
        };
        if looks_like_path_or_url(req_text) {
            return Err(unsupported());
        }
        let requirement = parse_pep508(req_text).map_err(|message| RequirementsError::Invalid {
            line,
            text: body.to_owned(),
            message,
        })?;
        if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
            return Err(unsupported());
        }
        let mut hashes = Vec::new();
        let mut it = tokens[split..].iter().filter(|t| !t.is_empty());
        while let Some(token) = it.next() {
            let (name, inline) = split_option(token);
            match name {
                "--hash" => {
                    let value = match inline {
                        Some(v) if !v.is_empty() => v,
                        _ => it
                            .next()
                            .copied()
                            .ok_or_else(|| RequirementsError::MissingValue {
                                line,
                                option: name.to_owned(),
                                text: body.to_owned(),
                            })?,
                    };
                    hashes.push(parse_hash(line, value, body)?);
                }
                _ => {
                    return Err(RequirementsError::UnknownOption {
                        line,
                        option: name.to_owned(),
                        text: body.to_owned(),
                    })
                }
            }
        }
        self.requirements.push(RequirementLine {
            line,
            requirement,
            hashes,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "2827b25d5b5c8d0ae8a6e5e6bb2a3a1c3c30f0b2d7c1e0f5b4e1c8e7a9d6f3b2";
    const H2: &str = "58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f";

    /// Inputs on which pep508_rs 0.9 panics (found by src/fuzz.rs) are
    /// errors; their neighbours still parse.
    #[test]
    fn pep508_panics_are_errors() {
        for (text, want) in [
            ("04[294967296f..", Err("extra name `294967296f..` must end with a letter or digit")),
            ("a[b_]", Err("extra name `b_` must end with a letter or digit")),
            ("a[sock.. x]", Err("extra name `sock..` must end with a letter or digit")),
            ("r. ==1", Err("package name `r.` must end with a letter or digit")),
            ("r- ; python_version > '3'", Err("package name `r-` must end with a letter or digit")),
            (
                "requests ; python_version >= \"3.8\"\u{feff}",
                Err("character \\u{feff} at byte 35 is not allowed: a requirement is ASCII outside quoted values"),
            ),
            (
                "click>=8 ; extra == 'ick>=8 ; extra == 'cli'\u{fffd}",
                Err("the value quoted with ' at byte 44 is not closed"),
            ),
            ("a ; python_version > '3", Err("the value quoted with ' at byte 22 is not closed")),
            ("a[b.c]>=1", Ok("a")),
            ("a ; platform_release == 'é'", Ok("a")),
            ("r.s==1", Ok("r-s")),
        ] {
            let got = parse_pep508(text).map(|r| r.name.to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{text}");
        }
    }

    /// A requirement line's parts as text: (name, extras, specifiers, marker).
    fn summary(r: &RequirementLine) -> (String, String, String, String) {
        let req = &r.requirement;
        (
            req.name.to_string(),
            req.extras
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(","),
            match &req.version_or_url {
                Some(VersionOrUrl::VersionSpecifier(s)) => s.to_string(),
                _ => String::new(),
            },
            req.marker.try_to_string().unwrap_or_default(),
        )
    }

    #[test]
    fn requirement_lines() {
        // (line, name, extras, specifiers, marker, hashes)
        let cases: &[(&str, &str, &str, &str, &str, usize)] = &[
            ("flask", "flask", "", "", "", 0),
            ("Flask==3.0.2", "flask", "", "==3.0.2", "", 0),
            ("requests>=2.31,<3", "requests", "", ">=2.31, <3", "", 0),
            (
                "requests[socks]>=2.31,<3 ; python_version >= \"3.8\"",
                "requests",
                "socks",
                ">=2.31, <3",
                "python_full_version >= '3.8'",
                0,
            ),
            (
                "uvicorn[standard]~=0.29.0",
                "uvicorn",
                "standard",
                "~=0.29.0",
                "",
                0,
            ),
            (
                "Django_Rest.Framework != 3.14.*",
                "django-rest-framework",
                "",
                "!=3.14.*",
                "",
                0,
            ),
            (
                "pywin32==306; sys_platform == 'win32'",
                "pywin32",
                "",
                "==306",
                "sys_platform == 'win32'",
                0,
            ),
            (
                "uvloop>=0.17 ; platform_machine == 'x86_64' and implementation_name == 'cpython'",
                "uvloop",
                "",
                ">=0.17",
                // The marker comes back normalised (sorted), unevaluated.
                "implementation_name == 'cpython' and platform_machine == 'x86_64'",
                0,
            ),
            ("numpy===1.26.4", "numpy", "", "===1.26.4", "", 0),
            (
                "pydantic[email,dotenv] >= 2",
                "pydantic",
                "email,dotenv",
                ">=2",
                "",
                0,
            ),
        ];
        for (text, name, extras, spec, marker, _) in cases {
            let got =
                RequirementsTxt::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.requirements.len(), 1, "{text}");
            let (n, e, s, m) = summary(&got.requirements[0]);
            assert_eq!(
                (n.as_str(), e.as_str(), s.as_str(), m.as_str()),
                (*name, *extras, *spec, *marker),
                "{text}"
            );
            assert_eq!(got.requirements[0].line, 1);
        }
    }

    #[test]
    fn hashes() {
        let cases: Vec<(String, Vec<&str>)> = vec![
            (format!("idna==3.6 --hash=sha256:{H1}"), vec![H1]),
            (format!("idna==3.6 --hash sha256:{H1}"), vec![H1]),
            (
                format!("idna==3.6 --hash=sha256:{H1} --hash=sha256:{H2}"),
                vec![H1, H2],
            ),
            (
                format!("idna==3.6 \\\n    --hash=sha256:{H1} \\\n    --hash=sha256:{H2}\n"),
                vec![H1, H2],
            ),
            (
                format!(
                    "requests[socks]>=2.31,<3 ; python_version >= \"3.8\" --hash=sha256:{}",
                    H1.to_uppercase()
                ),
                vec![H1],
            ),
        ];
        for (text, want) in cases {
            let got =
                RequirementsTxt::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.requirements[0].hashes, want, "{text}");
        }
    }

    #[test]
    fn a_whole_file() {
        let text = format!(
            "\u{feff}# pinned by hand\n\
             -i https://pypi.example/simple\n\
             --extra-index-url https://extra.example/simple\n\
             --find-links=./wheels\n\
             -f /opt/wheelhouse\n\
             --pre\n\
             -r base.txt\n\
             --constraint=constraints.txt\n\
             \n\
             fastapi==0.110.0  # the web framework\n\
             pydantic-core==2.16.3 \\\n\
             \x20   --hash=sha256:{H1}\n\
             \t# indented comment\n\
             orjson>=3.9 ; platform_machine == \"x86_64\"\r\n\
             -c more-constraints.txt\n\
             --no-index\n"
        );
        let got = RequirementsTxt::parse(text.as_bytes()).unwrap();
        assert_eq!(
            got.index_url.as_deref(),
            Some("https://pypi.example/simple")
        );
        assert_eq!(got.extra_index_urls, ["https://extra.example/simple"]);
        assert_eq!(got.find_links, ["./wheels", "/opt/wheelhouse"]);
        assert!(got.pre && got.no_index);
        assert_eq!(
            got.includes,
            [
                Include {
                    line: 7,
                    kind: IncludeKind::Requirements,
                    path: "base.txt".into()
                },
                Include {
                    line: 8,
                    kind: IncludeKind::Constraints,
                    path: "constraints.txt".into()
                },
                Include {
                    line: 15,
                    kind: IncludeKind::Constraints,
                    path: "more-constraints.txt".into()
                },
            ]
        );
        let names: Vec<(usize, String, usize)> = got
            .requirements
            .iter()
            .map(|r| (r.line, r.requirement.name.to_string(), r.hashes.len()))
            .collect();
        assert_eq!(
            names,
            [
                (10, "fastapi".into(), 0),
                (11, "pydantic-core".into(), 1),
                (14, "orjson".into(), 0),
            ]
        );
    }

    #[test]
    fn comments_and_blanks() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("\n\n   \n", 0),
            ("# only a comment\n", 0),
            ("   # indented\nflask\n", 1),
            ("flask # web\n", 1),
            // `#` inside a token is not a comment (pip needs whitespace before it).
            ("flask==3.0#x\n", 1),
            ("flask\\\n\n", 1),
            ("a\nb\nc", 3),
        ];
        for (text, n) in cases {
            match RequirementsTxt::parse(text.as_bytes()) {
                Ok(got) => assert_eq!(got.requirements.len(), *n, "{text:?}"),
                // `flask==3.0#x` is not a valid version: an error is also
                // pip's answer; it must name line 1.
                Err(e) => assert!(
                    text.contains("#x") && e.to_string().contains("line 1"),
                    "{text:?}: {e}"
                ),
            }
        }
    }

    #[test]
    fn errors() {
        // (file, line number, text the message must hold)
        let cases: Vec<(String, usize, &str)> = vec![
            (
                "flask\n--trusted-host pypi.org\n".into(),
                2,
                "unknown option `--trusted-host`",
            ),
            (
                "--only-binary=:all:\n".into(),
                1,
                "unknown option `--only-binary`",
            ),
            (
                "flask --global-option=x\n".into(),
                1,
                "unknown option `--global-option`",
            ),
            ("flask\n\n-r\n".into(), 3, "`-r` needs a value"),
            ("--index-url\n".into(), 1, "`--index-url` needs a value"),
            ("x==1 --hash\n".into(), 1, "`--hash` needs a value"),
            (
                "-e .\n".into(),
                1,
                "not supported: hoist installs from wheels",
            ),
            (
                "--editable=git+https://github.com/a/b\n".into(),
                1,
                "not supported",
            ),
            ("a\n./pkg\n".into(), 2, "`./pkg` is not supported"),
            ("/abs/pkg-1.0-py3-none-any.whl\n".into(), 1, "not supported"),
            (
                "git+https://github.com/psf/requests@main#egg=requests\n".into(),
                1,
                "not supported",
            ),
            (
                "requests @ https://files.example/requests-2.31.0-py3-none-any.whl\n".into(),
                1,
                "not supported",
            ),
            ("pkg.tar.gz\n".into(), 1, "not supported"),
            ("x==1 --hash=md5:abc\n".into(), 1, "bad hash `md5:abc`"),
            ("x==1 --hash=sha256:abc\n".into(), 1, "bad hash"),
            (
                format!("x==1 --hash=sha256:{}zz\n", &H1[..62]),
                1,
                "bad hash",
            ),
            ("ok\nflask>=>1\n".into(), 2, "`flask>=>1`"),
            ("ok\n\nflask[\n".into(), 3, "flask["),
            ("-r \"unterminated\n".into(), 1, "line 1"),
            ("notanoption\n-i x y\n".into(), 2, "unknown option `y`"),
        ];
        for (text, line, want) in cases {
            let err = RequirementsTxt::parse(text.as_bytes())
                .expect_err(&text)
                .to_string();
            assert!(
                err.starts_with(&format!("requirements line {line}:")),
                "{text:?}: {err}"
            );
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn not_utf8() {
        let err = RequirementsTxt::parse(b"flask\nreq\xffuests\n").unwrap_err();
        assert_eq!(err, RequirementsError::NotUtf8 { line: 2 });
    }

    #[test]
    fn continuation_numbers_lines_from_the_first() {
        let got = RequirementsTxt::parse(b"a\nrequests\\\n>=2\\\n,<3\nb\n").unwrap();
        let lines: Vec<(usize, String)> = got
            .requirements
            .iter()
            .map(|r| (r.line, summary(r).2))
            .collect();
        assert_eq!(
            lines,
            [
                (1, String::new()),
                (2, ">=2, <3".into()),
                (5, String::new())
            ]
        );
    }

    #[test]
    fn option_forms() {
        let cases: &[(&str, &str)] = &[
            ("-ihttps://a/simple", "https://a/simple"),
            ("-i=https://a/simple", "https://a/simple"),
            ("-i https://a/simple", "https://a/simple"),
            ("--index-url=https://a/simple", "https://a/simple"),
            ("--index-url https://a/simple", "https://a/simple"),
            (
                "-i https://x/simple --index-url https://a/simple",
                "https://a/simple",
            ),
        ];
        for (text, want) in cases {
            let got =
                RequirementsTxt::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.index_url.as_deref(), Some(*want), "{text}");
        }
    }
}
