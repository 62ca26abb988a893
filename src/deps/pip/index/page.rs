//! One simple-index page: fetched, kept in the store, parsed by its type.
//!
//! Online, every page asked for is kept in the store (its body a blob, its
//! status, final URL and content type in a `pip-page` entry keyed by the
//! URL), a 404 included: an offline run then answers from what an earlier
//! run saw, and says so when it saw nothing. A page is read as PEP 691
//! JSON ([`super::json`]) when its content type says JSON, or says nothing
//! and the body starts like JSON; else as PEP 503 HTML ([`super::html`]).

use reqwest::Url;
use serde::{Deserialize, Serialize};

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
        let got = self.get(url, ACCEPT, MAX_PAGE_BYTES, Some(PAGE_TIMEOUT))?;
        let page = match got {
            Some(g) => StoredPage {
                status: 200,
                url: g.url,
                content_type: g.content_type,
                body: g.body,
            },
            None => StoredPage {
                status: 404,
                url: url.to_string(),
                content_type: String::new(),
                body: Vec::new(),
            },
        };
        if let Some(store) = &self.store {
            let (digest, _) = store.put_bytes(&page.body)?;
            let entry = PageEntry {
                status: page.status,
                url: page.url.clone(),
                content_type: page.content_type.clone(),
                body: digest,
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
        }))
    }
}

/// A page as kept in the store.
struct StoredPage {
    status: u16,
    url: String,
    content_type: String,
    body: Vec<u8>,
}

/// The cache entry of a page: its body is a blob.
#[derive(Serialize, Deserialize)]
struct PageEntry {
    status: u16,
    url: String,
    content_type: String,
    body: Digest,
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
}
