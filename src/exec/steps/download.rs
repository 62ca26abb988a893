//! `ADD https://...`: a file downloaded into the store, as BuildKit's
//! HTTP source fetches it.
//!
//! The body streams through hoist's HTTP client (proxies, the system CA
//! store and `SSL_CERT_FILE`, see `net::client`) straight into a store
//! blob, hashed on the way, so memory stays flat and a failed or
//! mismatching download leaves nothing behind. With `--checksum` the blob
//! is looked up first: a file the store already holds is not fetched
//! again, and a download that hashes to anything else is an error naming
//! the URL and both digests. Without it the URL is fetched on every build
//! and the step's key is the content's digest (BuildKit keys on it too,
//! after asking the server). `--offline` serves only a stored checksum.
//!
//! The file's name is the URL path's last part (BuildKit's
//! `path.Base(u.Path)`, `__unnamed__` when there is none).

use std::path::PathBuf;

use crate::digest::Digest;
use crate::exec::BuildError;
use crate::store::{Store, StoreError};

/// A downloaded file in the store.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub url: String,
    /// Its name in the image when the destination is a folder.
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub digest: Digest,
}

/// The file name BuildKit gives a download: the URL path's last part,
/// percent-decoded.
pub fn file_name(url: &str) -> String {
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    match decoded.trim_end_matches('/').rsplit('/').next() {
        None | Some("") | Some(".") | Some("..") => "__unnamed__".to_owned(),
        Some(n) => n.to_owned(),
    }
}

/// Fetches `url` into the store (or finds it there by `checksum`).
pub fn fetch(
    store: &Store,
    url: &str,
    checksum: Option<&Digest>,
    offline: bool,
    at: &str,
) -> Result<Downloaded, BuildError> {
    let err = |message: String| BuildError::Instruction {
        at: at.to_owned(),
        message: format!("ADD {url}: {message}"),
    };
    let done = |digest: Digest, size: u64| Downloaded {
        url: url.to_owned(),
        name: file_name(url),
        path: store.blob_path(&digest),
        size,
        digest,
    };
    if let Some(d) = checksum {
        if store.has(d) {
            let size = std::fs::metadata(store.blob_path(d))
                .map(|m| m.len())
                .map_err(|e| err(format!("reading the stored copy: {e}")))?;
            return Ok(done(d.clone(), size));
        }
    }
    if offline {
        return Err(err(match checksum {
            Some(d) => format!("--offline: {d} is not in the store; build once with the network, or download the file into the context and ADD it from there"),
            None => "--offline: a URL without --checksum is fetched on every build; add --checksum=sha256:... (then a stored copy serves), or ADD the file from the context".into(),
        }));
    }
    let client =
        crate::net::client().map_err(|e| err(format!("setting up the HTTP client: {e}")))?;
    // hoist's one retry policy: a dropped connection, a cut-off body or
    // a 429/503 is tried again; any other answer is final.
    use crate::net::retry::{retry_on_status, Attempt, RetryPolicy};
    RetryPolicy::default().run(
        || {
            let mut resp = client.get(url).send().map_err(|e| Attempt::broken(&e))?;
            retry_on_status(&resp)?;
            if !resp.status().is_success() {
                return Err(Attempt::Fatal(err(format!(
                    "the server answered HTTP {}; check the URL (hoist sends no credentials)",
                    resp.status()
                ))));
            }
            let mut w = store.writer().map_err(|e| Attempt::Fatal(e.into()))?;
            std::io::copy(&mut resp, &mut w).map_err(|e| Attempt::broken(&e))?;
            match w.finish(checksum, None) {
                Ok((digest, size)) => Ok(done(digest, size)),
                Err(StoreError::DigestMismatch {
                    expected, actual, ..
                }) => Err(Attempt::Fatal(err(format!(
                    "checksum mismatch: --checksum says {expected} but the download is {actual}; fix --checksum if the file changed on purpose, else the server sent something else"
                )))),
                Err(e) => Err(Attempt::Fatal(e.into())),
            }
        },
        |_, _, _| {},
        |tries, why| {
            err(format!(
                "the download failed after {tries} tries: {why} (check the URL, and HTTPS_PROXY / SSL_CERT_FILE behind a proxy)"
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_table() {
        let cases = [
            ("https://example.com/foo/bar.tar.gz", "bar.tar.gz"),
            ("https://example.com/foo/bar/", "bar"),
            ("https://example.com/a%20b.txt?x=1#frag", "a b.txt"),
            ("https://example.com", "__unnamed__"),
            ("https://example.com/", "__unnamed__"),
            ("http://127.0.0.1:8080/dl/tool", "tool"),
        ];
        for (url, want) in cases {
            assert_eq!(file_name(url), want, "{url}");
        }
    }
}
