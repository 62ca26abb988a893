//! The one step every text from a server passes through before hoist shows
//! it: secrets out.
//!
//! Registries, their proxies and token services sometimes echo the request
//! back in an error (`backend failed for request with Authorization: Basic
//! cmVn...`). Shown as is, that puts a user's password in a CI log. So a
//! server's words reach an error message only as a [`ServerText`], and the
//! only way to make one is [`Secrets::clean`]: it removes every secret this
//! client sent (the password, `user:password`, its base64 Basic value,
//! identity and refresh tokens, the Bearer tokens it was given) and any
//! `Authorization: ...`, `Basic ...` or `Bearer ...` value, whoever's it is.
//! The error variants that carry a server's message hold a `ServerText`, so
//! a new caller cannot put raw server text there by mistake.
//!
//! Redaction runs on the whole text before it is cut to a readable length,
//! so a secret is never left half-shown at the cut.

use std::fmt;
use std::sync::Mutex;

use base64::Engine;

use super::credentials::Credentials;

/// What a removed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Stands for [`REDACTED`] while the patterns run: no token character and
/// no delimiter, so a value already cut stays one value.
const MARK: &str = "\u{1}";

/// The longest server text shown, in characters.
const MAX_SHOWN: usize = 200;

/// Secrets shorter than this are not searched for on their own (a
/// one-letter password would blank every message); the patterns still
/// remove them where they follow `Basic`, `Bearer` or `Authorization`.
const MIN_SECRET_LEN: usize = 4;

/// Text a server sent, with secrets removed (see the module docs). Made
/// only by [`Secrets::clean`], or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerText(String);

impl ServerText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ServerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every secret this client has sent or may send, to be taken out of what
/// servers say. Shared by all threads of one [`super::Client`].
#[derive(Default)]
pub struct Secrets(Mutex<Vec<String>>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    /// Adds one secret (a token, a password).
    pub fn remember(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !all.iter().any(|s| s == secret) {
            all.push(secret.to_owned());
            // Longest first: a secret inside another is then never left
            // as a fragment of the longer one.
            all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds everything of `c` that could be sent: the password,
    /// `user:password`, the Basic value and the identity token.
    pub fn remember_credentials(&self, c: &Credentials) {
        let pair = format!("{}:{}", c.username, c.password.expose());
        self.remember(&base64::engine::general_purpose::STANDARD.encode(&pair));
        self.remember(&pair);
        self.remember(c.password.expose());
        if let Some(t) = &c.identity_token {
            self.remember(t.expose());
        }
    }

    /// `raw` with every secret and authorization value removed, cut to a
    /// readable length.
    pub fn clean(&self, raw: &str) -> ServerText {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ServerText(shorten(&redact(raw, &all)))
    }
}

/// Removes `secrets` (as given, and as JSON or form encoding would write
/// them) and authorization values from `raw`.
pub fn redact(raw: &str, secrets: &[String]) -> String {
    let mut text = raw.replace(MARK, "");
    for s in secrets {
        for form in encodings(s) {
            if form.len() >= MIN_SECRET_LEN && text.contains(&form) {
                text = text.replace(&form, MARK);
            }
        }
    }
    redact_authorization(&redact_schemes(&text)).replace(MARK, REDACTED)
}

/// The ways a secret may be echoed: as sent, JSON-escaped, percent-encoded.
fn encodings(s: &str) -> Vec<String> {
    let mut out = vec![s.to_owned()];
    if let Ok(json) = serde_json::to_string(s) {
        let inner = json.trim_matches('"').to_owned();
        if inner != s {
            out.push(inner);
        }
    }
    let pct: String = s
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    if pct != s {
        out.push(pct);
    }
    out
}

/// Characters a credential in a `Basic`/`Bearer` value is made of.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=%:".contains(c)
}

/// `Basic X` and `Bearer X` (any case) with X removed when X looks like a
/// credential: 6 or more token characters, not all lower-case letters (so
/// `Bearer authentication failed` keeps its words).
fn redact_schemes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        let rest = &lower[i..];
        let word = ["basic", "bearer"]
            .into_iter()
            .find(|w| rest.starts_with(w))
            .filter(|_| {
                !text[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
            });
        let Some(word) = word else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        let after = i + word.len();
        let spaces = text[after..].len() - text[after..].trim_start_matches([' ', '\t']).len();
        let start = after + spaces;
        let len = text[start..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(text.len() - start);
        let value = &text[start..start + len];
        out.push_str(&text[i..start]);
        let looks_secret =
            spaces > 0 && value.len() >= 6 && !value.chars().all(|c| c.is_ascii_lowercase());
        if looks_secret {
            out.push_str(MARK);
        } else {
            out.push_str(value);
        }
        i = start + len;
    }
    out
}

/// `Authorization: VALUE` / `"authorization":"VALUE"` /
/// `authorization=VALUE` (any case; `Proxy-Authorization` too): VALUE,
/// up to the end of the line or a quote, bracket, comma or `&`, removed.
fn redact_authorization(text: &str) -> String {
    const KEY: &str = "authorization";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find(KEY) {
        let key_end = i + found + KEY.len();
        out.push_str(&text[i..key_end]);
        let rest = &text[key_end..];
        let sep_len = rest.len() - rest.trim_start_matches([' ', '\t', '"', '\'']).len();
        let after_sep = &rest[sep_len..];
        if !(after_sep.starts_with(':') || after_sep.starts_with('=')) {
            i = key_end;
            continue;
        }
        let value_at = key_end + sep_len + 1;
        let v = &text[value_at..];
        let lead = v.len() - v.trim_start_matches([' ', '\t', '"', '\'']).len();
        let start = value_at + lead;
        let len = text[start..]
            .find(['"', '\'', '\n', '\r', ',', ';', '}', ']', '<', '&'])
            .unwrap_or(text.len() - start);
        out.push_str(&text[key_end..start]);
        if text[start..start + len].trim().is_empty() {
            out.push_str(&text[start..start + len]);
        } else {
            out.push_str(MARK);
        }
        i = start + len;
    }
    out.push_str(&text[i..]);
    out
}

/// The first line, at most [`MAX_SHOWN`] characters.
fn shorten(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    match line.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::credentials::Secret;

    #[test]
    fn redaction_table() {
        // user "reg", password "s3cret/pass": Basic cmVnOnMzY3JldC9wYXNz
        let secrets = Secrets::default();
        secrets.remember_credentials(&Credentials {
            username: "reg".into(),
            password: Secret::new("s3cret/pass"),
            identity_token: Some(Secret::new("refresh-7f3a9")),
            source: "test".into(),
        });
        secrets.remember("tok.eyJhbGciOi.sig");
        secrets.remember("abc"); // too short to search for alone
        let cases: &[(&str, &str)] = &[
            (
                "INTERNAL: backend failed for request with Authorization: Basic cmVnOnMzY3JldC9wYXNz",
                "INTERNAL: backend failed for request with Authorization: [redacted]",
            ),
            (
                "upstream said: Bearer tok.eyJhbGciOi.sig is bad",
                "upstream said: Bearer [redacted] is bad",
            ),
            (
                r#"{"headers":{"authorization":"Bearer zzzOtherToken123"},"x":1}"#,
                r#"{"headers":{"authorization":"[redacted]"},"x":1}"#,
            ),
            ("password s3cret/pass was wrong", "password [redacted] was wrong"),
            ("login reg:s3cret/pass refused", "login [redacted] refused"),
            ("form-encoded pw=s3cret%2Fpass", "form-encoded pw=[redacted]"),
            ("refresh_token=refresh-7f3a9&x=1", "refresh_token=[redacted]&x=1"),
            ("proxy-authorization=Zm9vOmJhcg==&a=b", "proxy-authorization=[redacted]&a=b"),
            ("someone's basic Zm9vOmJhcg== header", "someone's basic [redacted] header"),
            ("Bearer authentication failed", "Bearer authentication failed"),
            ("basic auth required", "basic auth required"),
            ("BearerToken123456 is a word", "BearerToken123456 is a word"),
            ("authorization required", "authorization required"),
            ("manifest unknown: abc", "manifest unknown: abc"),
            ("", ""),
            ("ünïcode Bearer Ωmega-123456", "ünïcode Bearer Ωmega-123456"),
        ];
        for (raw, want) in cases {
            assert_eq!(secrets.clean(raw).as_str(), *want, "{raw}");
        }
    }

    #[test]
    fn cut_after_redaction() {
        let secrets = Secrets::default();
        secrets.remember("0123456789abcdef");
        let raw = format!("{}0123456789abcdef tail", "x".repeat(MAX_SHOWN - 5));
        let shown = secrets.clean(&raw).to_string();
        assert!(!shown.contains("01234"), "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
        assert_eq!(secrets.clean("first\nsecond").as_str(), "first");
    }
}
