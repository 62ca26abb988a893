//! Index credentials: from the URL's userinfo, else from netrc.
//!
//! Credentials written into an index or find-links URL
//! (`https://user:pass@host/simple/`) are taken out of it when the index
//! is set up: they go as HTTP Basic credentials to that scheme, host and
//! port only, and [`redact`] keeps them out of every message. A host the
//! URLs give nothing for may have a `machine` entry in the netrc file, as
//! pip's HTTP library reads it; its `default` entry is never used, since
//! it would send a password to every host. On a redirect to another host,
//! the HTTP client drops the header.

use std::path::Path;

use base64::Engine as _;
use reqwest::Url;

use super::IndexError;

/// Where credentials may go: scheme, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }
}

/// The `Authorization` value each request gets, if any.
#[derive(Debug)]
pub(super) struct Credentials {
    /// Taken out of the index and find-links URLs, by origin.
    urls: Vec<(Origin, String)>,
    /// (host, Authorization value) from the netrc file.
    netrc: Vec<(String, String)>,
}

impl Credentials {
    /// The URLs' credentials, and the netrc file's when there is one.
    pub(super) fn new(
        urls: Vec<(Origin, String)>,
        netrc: Option<&Path>,
    ) -> Result<Credentials, IndexError> {
        let netrc = match netrc {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| IndexError::Netrc {
                    path: path.to_owned(),
                    source,
                })?;
                parse_netrc(&text)
                    .into_iter()
                    .map(|(host, user, password)| {
                        (host.to_ascii_lowercase(), basic(&user, &password))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(Credentials { urls, netrc })
    }

    /// The header for a request to `url`: its origin's URL credentials,
    /// else its host's netrc entry.
    pub(super) fn header(&self, url: &Url) -> Option<&str> {
        let origin = Origin::of(url);
        let from_url = origin
            .as_ref()
            .and_then(|o| self.urls.iter().find(|(origin, _)| origin == o))
            .map(|(_, header)| header);
        from_url
            .or_else(|| {
                let host = origin?.host;
                self.netrc
                    .iter()
                    .find(|(h, _)| *h == host)
                    .map(|(_, header)| header)
            })
            .map(String::as_str)
    }
}

/// Moves `user:password@` out of a URL into the credentials list.
pub(super) fn take_credentials(url: &mut Url, credentials: &mut Vec<(Origin, String)>) {
    if url.username().is_empty() && url.password().is_none() {
        return;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if let Some(origin) = Origin::of(url) {
        if !credentials.iter().any(|(o, _)| *o == origin) {
            credentials.push((origin, basic(&user, &password)));
        }
    }
}

/// An HTTP Basic `Authorization` value.
fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The `machine` entries of a netrc file: (host, login, password). Tokens
/// are separated by white space; `#` starts a comment; `macdef` bodies
/// (up to an empty line) and `default` entries are skipped.
pub(crate) fn parse_netrc(text: &str) -> Vec<(String, String, String)> {
    let mut tokens = Vec::new();
    let mut in_macro = false;
    for line in text.lines() {
        if in_macro {
            in_macro = !line.trim().is_empty();
            continue;
        }
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        for w in line.split_whitespace() {
            if w == "macdef" {
                in_macro = true;
                break;
            }
            tokens.push(w);
        }
    }
    let mut out = Vec::new();
    let mut current: Option<(Option<&str>, &str, &str)> = None;
    let flush = |c: Option<(Option<&str>, &str, &str)>, out: &mut Vec<(String, String, String)>| {
        if let Some((Some(host), login, password)) = c {
            out.push((host.to_owned(), login.to_owned(), password.to_owned()));
        }
    };
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        match t {
            "machine" => {
                flush(current.take(), &mut out);
                current = it.next().map(|h| (Some(h), "", ""));
            }
            "default" => {
                flush(current.take(), &mut out);
                current = Some((None, "", ""));
            }
            "login" | "password" | "account" => {
                let value = it.next().unwrap_or_default();
                if let Some(c) = current.as_mut() {
                    match t {
                        "login" => c.1 = value,
                        "password" => c.2 = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    flush(current, &mut out);
    out
}

/// A URL as it may be shown: without its user and password (a token is
/// often written as the user).
pub(super) fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_password(None);
                let _ = url.set_username("****");
            }
            url.to_string()
        }
        // Anything else: whatever sits before an `@` may be a secret.
        _ => match raw.rsplit_once('@') {
            Some((_, rest)) => format!("****@{rest}"),
            None => raw.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{config, name, A_METADATA, JSON};
    use super::super::test_server::{Reply, Server};
    use super::super::{index_url, Index, IndexConfig, IndexError};
    use super::*;
    use crate::store::Store;

    #[test]
    fn index_urls_lose_their_credentials() {
        let mut creds = Vec::new();
        let u = index_url("https://me:p%40ss@Private.example:8443/simple", &mut creds).unwrap();
        assert_eq!(u.as_str(), "https://private.example:8443/simple/");
        let token = base64::engine::general_purpose::STANDARD.encode("me:p@ss");
        assert_eq!(
            creds,
            vec![(
                Origin {
                    scheme: "https".into(),
                    host: "private.example".into(),
                    port: Some(8443)
                },
                format!("Basic {token}")
            )]
        );
        let u = index_url("https://pypi.org/simple/", &mut creds).unwrap();
        assert_eq!(u.as_str(), "https://pypi.org/simple/");
        assert_eq!(creds.len(), 1);

        for bad in ["file:///srv/simple", "not a url", "ftp://x/simple"] {
            assert!(index_url(bad, &mut creds).is_err(), "{bad}");
        }
        let err = index_url("ftp://me:secret@x/simple", &mut creds)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            redact("https://me:secret@x/simple/"),
            "https://****@x/simple/"
        );
        assert_eq!(redact("me:secret@x/simple"), "****@x/simple");
        assert_eq!(redact("https://token@x/simple/"), "https://****@x/simple/");
        assert_eq!(redact("https://x/simple/"), "https://x/simple/");
    }

    #[test]
    fn credentials_go_to_their_origin_only() {
        let files = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl.metadata",
            vec![Reply::ok("text/plain", A_METADATA)],
        )]);
        let page = format!(
            r#"{{"files":[{{"filename":"a-1.0-py3-none-any.whl","url":"{}/f/a-1.0-py3-none-any.whl","core-metadata":true}}]}}"#,
            files.url
        );
        let main = Server::start(vec![("/simple/a/", vec![Reply::ok(JSON, page)])]);
        let with_creds = main.url.replace("http://", "http://me:secret@");
        let index = Index::new(config(&format!("{with_creds}/simple/"))).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let f = &index.files(&name("a")).unwrap()[0];
        let m = index.metadata(f, &store).unwrap();
        assert_eq!(m.requires_dist.len(), 1);

        let token = base64::engine::general_purpose::STANDARD.encode("me:secret");
        assert_eq!(
            main.seen()[0].header("authorization"),
            Some(format!("Basic {token}").as_str())
        );
        assert_eq!(files.seen()[0].header("authorization"), None);
    }

    #[test]
    fn netrc_table() {
        type Entry = (&'static str, &'static str, &'static str);
        let cases: &[(&str, &[Entry])] = &[
            ("", &[]),
            (
                "machine a.example login me password s3cret\nmachine b.example\n  login you\n  password pw # comment\n",
                &[("a.example", "me", "s3cret"), ("b.example", "you", "pw")],
            ),
            (
                "default login anyone password x\nmachine c.example login c account acct password p\n",
                &[("c.example", "c", "p")],
            ),
            (
                "macdef init\nmachine hidden.example login no password no\n\nmachine d.example login d password q\n",
                &[("d.example", "d", "q")],
            ),
            ("machine", &[]),
            ("machine e.example login", &[("e.example", "", "")]),
        ];
        for (text, want) in cases {
            let got = parse_netrc(text);
            let got: Vec<(&str, &str, &str)> = got
                .iter()
                .map(|(h, l, p)| (h.as_str(), l.as_str(), p.as_str()))
                .collect();
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn netrc_credentials_go_to_their_host_unless_the_url_has_some() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine 127.0.0.1 login net password rc\n").unwrap();
        let cfg = IndexConfig::from_vars(|k| (k == "NETRC").then(|| netrc.display().to_string()))
            .unwrap();
        assert_eq!(cfg.netrc.as_deref(), Some(netrc.as_path()));
        let no_file = IndexConfig::from_vars(|k| (k == "HOME").then(|| "/no/such/home".to_owned()));
        assert_eq!(no_file.unwrap().netrc, None);

        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, r#"{"files":[]}"#)],
        )]);
        let index = Index::new(IndexConfig {
            index_url: format!("{}/simple/", main.url),
            ..cfg.clone()
        })
        .unwrap();
        index.files(&name("a")).unwrap();
        let header = |user: &str, pw: &str| basic(user, pw);
        assert_eq!(
            main.seen()[0].header("authorization"),
            Some(header("net", "rc").as_str())
        );

        let with_url = Index::new(IndexConfig {
            index_url: format!("{}/simple/", main.url.replace("http://", "http://u:p@")),
            ..cfg.clone()
        })
        .unwrap();
        with_url.files(&name("a")).unwrap();
        assert_eq!(
            main.seen()[1].header("authorization"),
            Some(header("u", "p").as_str())
        );

        let unreadable = Index::new(IndexConfig {
            netrc: Some(dir.path().join("missing")),
            ..cfg
        });
        assert!(matches!(unreadable, Err(IndexError::Netrc { .. })));
    }
}
