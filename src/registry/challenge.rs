//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1, as registries send them).
//!
//! A header holds one or more challenges: a scheme, then comma-separated
//! `name=value` parameters whose value is a token or a quoted string
//! (with `\` escapes, and commas allowed inside the quotes):
//!
//! ```text
//! Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"
//! Basic realm="lab-realm", Bearer realm="https://x/token"
//! ```
//!
//! A new challenge starts where a token is not followed by `=`. Schemes
//! and parameter names are case-insensitive, so both are lower-cased.

use std::collections::BTreeMap;

/// One challenge: its scheme (lower case) and parameters (names lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

/// Parses one `WWW-Authenticate` header value into its challenges.
/// Malformed trailing input ends the parse; what was understood is kept.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_commas();
        let Some(tok) = p.token() else { break };
        // `tok` is a scheme unless it is followed by `=` (then it is a
        // parameter of the current challenge).
        p.skip_ws();
        if p.peek() == Some(b'=') && p.peek_at(1) != Some(b'=') {
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                match p.quoted() {
                    Some(v) => v,
                    None => break,
                }
            } else {
                p.bare_value().unwrap_or_default()
            };
            match out.last_mut() {
                Some(c) => {
                    c.params.insert(tok.to_ascii_lowercase(), value);
                }
                None => break,
            }
        } else {
            out.push(Challenge {
                scheme: tok.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            // A token68 credential (`Negotiate abc==`) may follow the
            // scheme; it is not a parameter, so skip it.
            let save = p.i;
            p.skip_ws();
            let is_token68 = p.strict_token68() && {
                p.skip_ws();
                matches!(p.peek(), None | Some(b','))
            };
            if !is_token68 {
                p.i = save;
            }
        }
    }
    out
}

/// The challenge to answer: Bearer is preferred over Basic; other schemes
/// are not supported.
pub fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.is_bearer())
        .or_else(|| challenges.iter().find(|c| c.is_basic()))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.get(self.i + n).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 9110 token.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// An unquoted parameter value: token characters plus `/`, `:` and
    /// `=`, which some servers leave unquoted in URLs.
    fn bare_value(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:=".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// RFC 9110's token68: `[A-Za-z0-9-._~+/]+ =*`. Whether one was read.
    fn strict_token68(&mut self) -> bool {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b"-._~+/".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        if self.i == start {
            return false;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        true
    }

    /// A quoted string, starting at `"`; `None` if it never closes.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let next = self.peek()?;
                    self.i += 1;
                    out.push(next);
                }
                _ => out.push(b),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:samalba/my-app:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="lab-realm""#,
                vec![ch("basic", &[("realm", "lab-realm")])],
            ),
            (
                r#"basic REALM="r", Bearer realm="http://127.0.0.1:5104/token", service=lab"#,
                vec![
                    ch("basic", &[("realm", "r")]),
                    ch(
                        "bearer",
                        &[("realm", "http://127.0.0.1:5104/token"), ("service", "lab")],
                    ),
                ],
            ),
            (
                r#"Bearer realm="a\"b\\c" , error="insufficient_scope",scope="repository:x:pull,push repository:y:pull""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", r#"a"b\c"#),
                        ("error", "insufficient_scope"),
                        ("scope", "repository:x:pull,push repository:y:pull"),
                    ],
                )],
            ),
            (
                r#"Bearer realm=https://ghcr.io/token,service=ghcr.io"#,
                vec![ch(
                    "bearer",
                    &[("realm", "https://ghcr.io/token"), ("service", "ghcr.io")],
                )],
            ),
            ("Bearer", vec![ch("bearer", &[])]),
            (
                "Negotiate abc==, Basic realm=x",
                vec![ch("negotiate", &[]), ch("basic", &[("realm", "x")])],
            ),
            ("", vec![]),
            (r#"Bearer realm="unterminated"#, vec![ch("bearer", &[])]),
            ("=oops", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), want, "{input}");
        }
    }

    #[test]
    fn pick_prefers_bearer() {
        let cs = parse(r#"Basic realm="x", Bearer realm="y""#);
        assert_eq!(pick(&cs).unwrap().scheme, "bearer");
        let cs = parse(r#"Basic realm="x""#);
        assert_eq!(pick(&cs).unwrap().scheme, "basic");
        assert!(pick(&parse("Negotiate")).is_none());
    }
}
