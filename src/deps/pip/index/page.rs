//! One simple-index page: fetched, kept in the store, parsed by its type.
//!
//! Online, every page asked for is kept in the store (its body a blob, its
//! status, final URL, content type, validators and freshness in a
//! `pip-page` entry keyed by the URL), a 404 included: an offline run then
//! answers from what an earlier run saw, and says so when it saw nothing.
//! A kept page still fresh by the index's `Cache-Control: max-age`
//! ([`super::freshness`]: PyPI gives ten minutes) is used without a
//! request, as pip and uv use it; `--refresh` ([`super::IndexConfig::revalidate`])
//! asks anyway. A page past that is asked for again with its validators
//! (`ETag`, `Last-Modified`): the index answers 304 and no page crosses
//! the network again unless it changed, so a warm store resolves on
//! conditional requests alone. A changed page (200) replaces the kept
//! one. Blobs and entries reach the store by temp file and rename, never
//! half-written. A page is read as PEP 691
//! JSON ([`super::json`]) when its content type says JSON, or says nothing
//! and the body starts like JSON; else as PEP 503 HTML ([`super::html`]).
//!
//! A kept page that must be asked for again is also a hint
//! ([`Index::kept_page`]): the resolver's reading ahead walks what it
//! says (a likely version's dependencies) while the request is under way,
//! so that a warm resolution sends its requests at once rather than one
//! level of the dependency tree at a time.

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
        match self.fetch_page(url)? {
            Some(page) => parse_page(&page, url).map(Some),
            None => Ok(None),
        }
    }

    /// A page's bytes: from the store while it is fresh, else from the
    /// network (then kept in the store), or, when offline, from the store.
    fn fetch_page(&self, url: &Url) -> Result<Option<StoredPage>, IndexError> {
        let key = page_key(url);
        if self.offline {
            return match self.stored_page(&key)? {
                Some(page) if page.status == 200 => Ok(Some(page)),
                Some(_) => Ok(None),
                None => Err(IndexError::Offline {
                    url: url.to_string(),
                }),
            };
        }
        // The kept entry, if any: its body is read only when it is used.
        let kept = self.stored_entry(&key)?.filter(|e| e.status == 200);
        let now = super::freshness::now();
        if let Some(entry) = &kept {
            if !self.revalidate && entry.fresh_until.is_some_and(|t| now < t) {
                if let Some(page) = self.entry_page(entry)? {
                    return Ok(Some(page));
                }
            }
        }
        let validators = kept
            .as_ref()
            .map(|e| e.validators.clone())
            .unwrap_or_default();
        let got = self.get_if(url, ACCEPT, MAX_PAGE_BYTES, Some(PAGE_TIMEOUT), &validators)?;
        let (page, fresh_for) = match got {
            Fetched::NotModified { fresh_for } => {
                let page = match &kept {
                    Some(entry) => self.entry_page(entry)?,
                    None => None,
                };
                let Some(page) = page else {
                    // Validators come from a kept page whose body was
                    // there a moment ago: only a concurrent clean-up gets
                    // here. Ask again for the whole page.
                    return self.refetch_page(url);
                };
                (page, fresh_for)
            }
            Fetched::Got(g) => (
                StoredPage {
                    status: 200,
                    url: g.url,
                    content_type: g.content_type,
                    body: g.body,
                    validators: g.validators,
                },
                g.fresh_for,
            ),
            Fetched::Missing => (
                StoredPage {
                    status: 404,
                    url: url.to_string(),
                    content_type: String::new(),
                    body: Vec::new(),
                    validators: Validators::default(),
                },
                None,
            ),
        };
        self.keep_page(&key, &page, fresh_for.map(|s| now.saturating_add(s)))?;
        Ok((page.status == 200).then_some(page))
    }

    /// The page asked for whole, its kept copy ignored.
    fn refetch_page(&self, url: &Url) -> Result<Option<StoredPage>, IndexError> {
        let got = self.get(url, ACCEPT, MAX_PAGE_BYTES, Some(PAGE_TIMEOUT))?;
        let Some(g) = got else {
            return Ok(None);
        };
        let page = StoredPage {
            status: 200,
            url: g.url,
            content_type: g.content_type,
            body: g.body,
            validators: g.validators,
        };
        let fresh_until = g
            .fresh_for
            .map(|s| super::freshness::now().saturating_add(s));
        self.keep_page(&page_key(url), &page, fresh_until)?;
        Ok(Some(page))
    }

    /// Keeps a page in the store (when the index has one).
    fn keep_page(
        &self,
        key: &str,
        page: &StoredPage,
        fresh_until: Option<u64>,
    ) -> Result<(), IndexError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let (digest, _) = store.put_bytes(&page.body)?;
        let entry = PageEntry {
            status: page.status,
            url: page.url.clone(),
            content_type: page.content_type.clone(),
            body: digest,
            validators: page.validators.clone(),
            fresh_until,
        };
        if let Ok(json) = serde_json::to_vec(&entry) {
            store.put_key(PAGE_KEY_KIND, key, &json)?;
        }
        Ok(())
    }

    /// The links of a kept page, read from the store alone (no request),
    /// when the store has one that is no longer fresh: what an earlier run
    /// saw, a hint of what the index will say. `None` when nothing is
    /// kept, or the kept page is fresh (asking for it costs no request).
    pub(super) fn kept_page(&self, url: &Url) -> Option<Vec<RawFile>> {
        let entry = self.stored_entry(&page_key(url)).ok()??;
        if entry.status != 200 {
            return None;
        }
        if !self.revalidate
            && entry
                .fresh_until
                .is_some_and(|t| super::freshness::now() < t)
        {
            return None;
        }
        let page = self.entry_page(&entry).ok()??;
        parse_page(&page, url).ok()
    }

    fn stored_page(&self, key: &str) -> Result<Option<StoredPage>, IndexError> {
        match self.stored_entry(key)? {
            Some(entry) => self.entry_page(&entry),
            None => Ok(None),
        }
    }

    fn stored_entry(&self, key: &str) -> Result<Option<PageEntry>, IndexError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(bytes) = store.get_key(PAGE_KEY_KIND, key)? else {
            return Ok(None);
        };
        // An unreadable entry is a miss.
        Ok(serde_json::from_slice::<PageEntry>(&bytes).ok())
    }

    /// An entry with its body read; `None` when the body's blob is gone.
    fn entry_page(&self, entry: &PageEntry) -> Result<Option<StoredPage>, IndexError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let body = match store.read_blob(&entry.body) {
            Ok(b) => b,
            Err(StoreError::Missing(..)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(StoredPage {
            status: entry.status,
            url: entry.url.clone(),
            content_type: entry.content_type.clone(),
            body,
            validators: entry.validators.clone(),
        }))
    }
}

/// The store key of a page: the sha256 of its URL.
fn page_key(url: &Url) -> String {
    Digest::of(url.as_str().as_bytes()).hex().to_owned()
}

/// A page's links, read as its content type says.
fn parse_page(page: &StoredPage, url: &Url) -> Result<Vec<RawFile>, IndexError> {
    let base = Url::parse(&page.url).map_err(|e| IndexError::BadPage {
        url: url.to_string(),
        why: format!("it redirected to `{}`: {e}", page.url),
    })?;
    let json = page.content_type.contains("json")
        || (!page.content_type.contains("html") && page.body.trim_ascii_start().starts_with(b"{"));
    if json {
        parse_json_page(&page.body, &base).map_err(|why| IndexError::BadPage {
            url: url.to_string(),
            why,
        })
    } else {
        Ok(parse_html_page(&page.body, &base))
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
    /// Until when (seconds since the epoch) the page is used without
    /// asking ([`super::freshness`]); absent: always asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fresh_until: Option<u64>,
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

    #[test]
    fn fresh_pages_are_used_without_a_request_and_refresh_asks_again() {
        let v1 = r#"<a href="a-1.0-py3-none-any.whl">a</a>"#;
        let v2 = r#"<a href="a-1.0-py3-none-any.whl">a</a><a href="a-2.0-py3-none-any.whl">a</a>"#;
        let main = Server::start(vec![(
            "/simple/a/",
            vec![
                Reply::ok("text/html", v1)
                    .header("ETag", "\"v1\"")
                    .header("Cache-Control", "max-age=600, public"),
                Reply::status(304).header("Cache-Control", "max-age=600, public"),
                Reply::ok("text/html", v2)
                    .header("ETag", "\"v2\"")
                    .header("Cache-Control", "max-age=600, public"),
            ],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        let run = |revalidate: bool| {
            let cfg = IndexConfig {
                revalidate,
                ..cfg.clone()
            };
            let index = Index::new(cfg).unwrap().with_store(store.clone());
            let files = index.files(&name("a")).unwrap();
            files.into_iter().map(|f| f.filename).collect::<Vec<_>>()
        };
        let one = vec!["a-1.0-py3-none-any.whl".to_owned()];
        let two = vec![
            "a-1.0-py3-none-any.whl".to_owned(),
            "a-2.0-py3-none-any.whl".to_owned(),
        ];
        // (revalidate, the files seen, requests made so far)
        let steps = [
            (false, &one, 1),
            // Fresh: no request.
            (false, &one, 1),
            // --refresh: asked conditionally, 304.
            (true, &one, 2),
            // The 304 renewed it: no request.
            (false, &one, 2),
            // --refresh again: the page changed, and is seen.
            (true, &two, 3),
            (false, &two, 3),
        ];
        for (i, (revalidate, want, requests)) in steps.into_iter().enumerate() {
            assert_eq!(&run(revalidate), want, "step {i}");
            assert_eq!(main.hits("/simple/a/"), requests, "step {i}");
        }
        let conditional: Vec<Option<String>> = main
            .seen()
            .iter()
            .map(|s| s.header("if-none-match").map(str::to_owned))
            .collect();
        assert_eq!(
            conditional,
            [None, Some("\"v1\"".to_owned()), Some("\"v1\"".to_owned())]
        );
    }

    #[test]
    fn pages_without_age_left_are_asked_again() {
        // (Cache-Control, Age) of each answer: none leaves the page fresh.
        let cases: &[(&str, Option<&str>)] = &[
            ("max-age=600", Some("600")),
            ("max-age=0", None),
            ("max-age=600, no-cache", None),
            ("public", None),
            ("", None),
        ];
        for (cc, age) in cases {
            let mut reply = Reply::ok("text/html", r#"<a href="a-1.0-py3-none-any.whl">a</a>"#);
            if !cc.is_empty() {
                reply = reply.header("Cache-Control", cc);
            }
            if let Some(age) = age {
                reply = reply.header("Age", age);
            }
            let main = Server::start(vec![("/simple/a/", vec![reply])]);
            let store_dir = tempfile::tempdir().unwrap();
            let store = Store::open(store_dir.path()).unwrap();
            let cfg = config(&format!("{}/simple/", main.url));
            for _ in 0..2 {
                let index = Index::new(cfg.clone()).unwrap().with_store(store.clone());
                assert_eq!(index.files(&name("a")).unwrap().len(), 1);
            }
            assert_eq!(
                main.hits("/simple/a/"),
                2,
                "Cache-Control: {cc}, Age: {age:?}"
            );
        }
    }

    #[test]
    fn kept_pages_are_hints_only_when_they_must_be_asked_again() {
        let body = r#"<a href="a-1.0-py3-none-any.whl">a</a>"#;
        // (Cache-Control, revalidate, a hint is given)
        let cases = [
            ("", false, true),
            ("max-age=600", false, false),
            ("max-age=600", true, true),
        ];
        for (cc, revalidate, hint) in cases {
            let mut reply = Reply::ok("text/html", body);
            if !cc.is_empty() {
                reply = reply.header("Cache-Control", cc);
            }
            let main = Server::start(vec![("/simple/a/", vec![reply])]);
            let store_dir = tempfile::tempdir().unwrap();
            let store = Store::open(store_dir.path()).unwrap();
            let cfg = IndexConfig {
                revalidate,
                ..config(&format!("{}/simple/", main.url))
            };
            let first = Index::new(cfg.clone()).unwrap().with_store(store.clone());
            assert_eq!(first.kept_files(&name("a")), None, "nothing kept yet");
            let want = first.files(&name("a")).unwrap();
            assert_eq!(first.kept_files(&name("a")), None, "in memory already");
            let next = Index::new(cfg.clone()).unwrap().with_store(store.clone());
            let got = next.kept_files(&name("a"));
            assert_eq!(
                got.is_some(),
                hint,
                "Cache-Control: {cc}, revalidate {revalidate}"
            );
            if let Some(got) = got {
                assert_eq!(got, want);
            }
            // A hint is read from the store: no request.
            assert_eq!(main.hits("/simple/a/"), 1);
            let no_store = Index::new(cfg).unwrap();
            assert_eq!(no_store.kept_files(&name("a")), None);
        }
    }
}
