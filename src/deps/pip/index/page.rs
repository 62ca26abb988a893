//! One simple-index page: fetched, kept in the store, parsed by its type.
//!
//! Online, every page asked for is kept in the store (its body a blob, its
//! status, final URL, content type and validators in a `pip-page` entry
//! keyed by the URL), a 404 included: an offline run then answers from
//! what an earlier run saw, and says so when it saw nothing. A page the
//! store has is asked for again with its validators (`ETag`,
//! `Last-Modified`): the index answers 304 and no page crosses the
//! network again unless it changed, so a warm store resolves on
//! conditional requests alone. A changed page (200) replaces the kept
//! one. Blobs and entries reach the store by temp file and rename, never
//! half-written. `Cache-Control: max-age` is not taken as leave to skip
//! the request: a release published a minute ago must be seen. A page is read as PEP 691
//! JSON ([`super::json`]) when its content type says JSON, or says nothing
//! and the body starts like JSON; else as PEP 503 HTML ([`super::html`]).

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::client::{Fetched, Validators};
use super::html::parse_html_page;
use super::json::parse_json_page;
use super::{Index, IndexError, RawFile, ACCEPT, MAX_PAGE_BYTES, PAGE_TIMEOUT};
use crate::digest::Digest;
use crate::store::StoreError;

/// Store cache-entry kind of pages.
const PAGE_KEY_KIND: &str = "pip-page";

impl Index {
    /// A page's links; `None` when the index has no such page (404, 410).
    pub(super) fn page(&self, url: &Url) -> Result<Option<Vec<RawFile>>, IndexError> {
        let Some(page) = self.fetch_page(url)? else {
            return Ok(None);
        };
        let base = Url::parse(&page.url).map_err(|e| IndexError::BadPage {
            url: url.to_string(),
            why: format!("it redirected to `{}`: {e}", page.url),
        })?;
        let json = page.content_type.contains("json")
            || (!page.content_type.contains("html")
                && page.body.trim_ascii_start().starts_with(b"{"));
        let raws = if json {
            parse_json_page(&page.body, &base).map_err(|why| IndexError::BadPage {
                url: url.to_string(),
                why,
            })?
        } else {
            parse_html_page(&page.body, &base)
        };
        Ok(Some(raws))
    }

    /// A page's bytes, from the network (then kept in the store) or, when
    /// offline, from the store.
    fn fetch_page(&self, url: &Url) -> Result<Option<StoredPage>, IndexError> {
        let key = Digest::of(url.as_str().as_bytes()).hex().to_owned();
        if self.offline {
            return match self.stored_page(&key)? {
                Some(page) if page.status == 200 => Ok(Some(page)),
                Some(_) => Ok(None),
                None => Err(IndexError::Offline {
                    url: url.to_string(),
                }),
            };
        }
        // The kept copy, if any, and what to revalidate it with.
        let kept = self.stored_page(&key)?.filter(|p| p.status == 200);
        let validators = kept
            .as_ref()
            .map(|p| p.validators.clone())
            .unwrap_or_default();
        let got = self.get_if(url, ACCEPT, MAX_PAGE_BYTES, Some(PAGE_TIMEOUT), &validators)?;
        let page = match got {
            Fetched::NotModified => {
                if let Some(page) = kept {
                    return Ok(Some(page));
                }
                // Unreachable: validators come from a kept page.
                return Err(IndexError::Http {
                    url: url.to_string(),
                    status: 304,
                    hint: " to an unconditional request".to_owned(),
                });
            }
            Fetched::Got(g) => StoredPage {
                status: 200,
                url: g.url,
                content_type: g.content_type,
                body: g.body,
                validators: g.validators,
            },
            Fetched::Missing => StoredPage {
                status: 404,
                url: url.to_string(),
                content_type: String::new(),
                body: Vec::new(),
                validators: Validators::default(),
            },
        };
        if let Some(store) = &self.store {
            let (digest, _) = store.put_bytes(&page.body)?;
            let entry = PageEntry {
                status: page.status,
                url: page.url.clone(),
                content_type: page.content_type.clone(),
                body: digest,
                validators: page.validators.clone(),
            };
            if let Ok(json) = serde_json::to_vec(&entry) {
                store.put_key(PAGE_KEY_KIND, &key, &json)?;
            }
        }
        Ok((page.status == 200).then_some(page))
    }

    fn stored_page(&self, key: &str) -> Result<Option<StoredPage>, IndexError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(bytes) = store.get_key(PAGE_KEY_KIND, key)? else {
            return Ok(None);
        };
        // An unreadable entry, or one whose blob is gone, is a miss.
        let Ok(entry) = serde_json::from_slice::<PageEntry>(&bytes) else {
            return Ok(None);
        };
        let body = match store.read_blob(&entry.body) {
            Ok(b) => b,
            Err(StoreError::Missing(..)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(StoredPage {
            status: entry.status,
            url: entry.url,
            content_type: entry.content_type,
            body,
            validators: entry.validators,
        }))
    }
}

/// A page as kept in the store.
struct StoredPage {
    status: u16,
    url: String,
    content_type: String,
    body: Vec<u8>,
    validators: Validators,
}

/// The cache entry of a page: its body is a blob.
#[derive(Serialize, Deserialize)]
struct PageEntry {
    status: u16,
    url: String,
    content_type: String,
    body: Digest,
    /// Absent in entries older than revalidation: asked unconditionally.
    #[serde(default)]
    validators: Validators,
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{config, name};
    use super::super::test_server::{Reply, Server};
    use super::super::IndexConfig;
    use super::*;
    use crate::store::Store;

    #[test]
    fn offline_runs_read_the_pages_an_online_run_kept() {
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(
                "text/html",
                r#"<a href="a-1.0-py3-none-any.whl">a</a>"#,
            )],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        let online = Index::new(cfg.clone()).unwrap().with_store(store.clone());
        let want = online.files(&name("a")).unwrap();
        assert!(matches!(
            online.files(&name("gone")),
            Err(IndexError::UnknownPackage { .. })
        ));

        let offline = Index::new(IndexConfig {
            offline: true,
            ..cfg.clone()
        })
        .unwrap()
        .with_store(store);
        assert_eq!(offline.files(&name("a")).unwrap(), want);
        assert!(matches!(
            offline.files(&name("gone")),
            Err(IndexError::UnknownPackage { .. })
        ));
        let err = offline.files(&name("never-seen")).unwrap_err();
        assert!(matches!(err, IndexError::Offline { .. }), "{err}");
        assert_eq!(main.seen().len(), 2);

        let bare = Index::new(IndexConfig {
            offline: true,
            ..cfg
        })
        .unwrap();
        assert!(matches!(
            bare.files(&name("a")),
            Err(IndexError::Offline { .. })
        ));
    }

    #[test]
    fn kept_pages_are_revalidated_and_a_changed_page_is_seen() {
        let v1 = r#"<a href="a-1.0-py3-none-any.whl">a</a>"#;
        let v2 = r#"<a href="a-1.0-py3-none-any.whl">a</a><a href="a-2.0-py3-none-any.whl">a</a>"#;
        let main = Server::start(vec![(
            "/simple/a/",
            vec![
                Reply::ok("text/html", v1)
                    .header("ETag", "\"v1\"")
                    .header("Last-Modified", "Sun, 06 Nov 2026 08:49:37 GMT"),
                Reply::status(304),
                Reply::ok("text/html", v2).header("ETag", "\"v2\""),
                Reply::status(304),
            ],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        // Each run is a new Index: nothing is remembered in memory.
        let run = || {
            let index = Index::new(cfg.clone()).unwrap().with_store(store.clone());
            let files = index.files(&name("a")).unwrap();
            files.into_iter().map(|f| f.filename).collect::<Vec<_>>()
        };
        let one = vec!["a-1.0-py3-none-any.whl".to_owned()];
        let two = vec![
            "a-1.0-py3-none-any.whl".to_owned(),
            "a-2.0-py3-none-any.whl".to_owned(),
        ];
        assert_eq!(run(), one, "first run: the page as served");
        assert_eq!(run(), one, "second run: 304, the kept page");
        assert_eq!(run(), two, "third run: the page changed and is seen");
        assert_eq!(run(), two, "fourth run: 304, the changed page was kept");
        let seen = main.seen();
        let asked: Vec<(Option<&str>, Option<&str>)> = seen
            .iter()
            .map(|s| (s.header("if-none-match"), s.header("if-modified-since")))
            .collect();
        assert_eq!(
            asked,
            [
                (None, None),
                (Some("\"v1\""), Some("Sun, 06 Nov 2026 08:49:37 GMT")),
                (Some("\"v1\""), Some("Sun, 06 Nov 2026 08:49:37 GMT")),
                (Some("\"v2\""), None),
            ]
        );
    }

    #[test]
    fn no_store_pages_are_asked_for_whole() {
        let main = Server::start(vec![(
            "/simple/a/",
            vec![
                Reply::ok("text/html", r#"<a href="a-1.0-py3-none-any.whl">a</a>"#)
                    .header("ETag", "\"v1\"")
                    .header("Cache-Control", "no-store"),
            ],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        for _ in 0..2 {
            let index = Index::new(cfg.clone()).unwrap().with_store(store.clone());
            assert_eq!(index.files(&name("a")).unwrap().len(), 1);
        }
        assert!(main
            .seen()
            .iter()
            .all(|s| s.header("if-none-match").is_none()));
        assert_eq!(main.hits("/simple/a/"), 2);
    }
}
