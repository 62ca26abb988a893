//! `--find-links` places: a folder of archives, or one page of links.
//!
//! A find-links entry is read as pip reads it: a `file://` URL or a plain
//! path is a folder (the wheelhouse of an air-gapped host), an http(s) URL
//! is a page listing every project's files (parsed by [`super::html`]).
//! Unlike an index, such a place is listed once for all projects: the
//! listing is kept per source by [`super::Index`] and filtered by name.

use std::io;
use std::path::{Path, PathBuf};

use reqwest::Url;

use super::super::dist::Location;
use super::auth::{redact, take_credentials, Origin};
use super::{IndexError, RawFile, Source};

pub(super) fn find_links_source(
    raw: &str,
    credentials: &mut Vec<(Origin, String)>,
) -> Result<Source, IndexError> {
    let raw = raw.trim();
    let bad = |why: String| IndexError::BadUrl {
        url: redact(raw),
        why,
    };
    match Url::parse(raw) {
        Ok(url) if url.scheme() == "file" => url
            .to_file_path()
            .map(Source::Folder)
            .map_err(|()| bad("not a local path".to_owned())),
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            take_credentials(&mut url, credentials);
            url.set_fragment(None);
            Ok(Source::Page(url))
        }
        // A Windows drive (`c:`) or any other single-letter "scheme" is no
        // URL; anything else unknown is a mistake.
        Ok(url) if url.scheme().len() > 1 => {
            Err(bad(format!("`{}:` links are not supported", url.scheme())))
        }
        _ => Ok(Source::Folder(PathBuf::from(raw))),
    }
}

/// The archives of a find-links folder, in name order. A folder that does
/// not exist holds nothing (pip ignores it too).
pub(super) fn list_folder(path: &Path) -> Result<Vec<RawFile>, IndexError> {
    let folder_err = |source| IndexError::Folder {
        path: path.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(folder_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(folder_err)?;
        let Ok(filename) = entry.file_name().into_string() else {
            continue;
        };
        let meta = match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        let location = std::path::absolute(entry.path()).unwrap_or_else(|_| entry.path());
        out.push(RawFile {
            filename,
            location: Location::Path(location),
            sha256: None,
            requires_python: None,
            yanked: false,
            metadata: None,
            size: Some(meta.len()),
        });
    }
    out.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_links_sources_table() {
        let mut creds = Vec::new();
        let folder = |s: &str| {
            find_links_source(s, &mut Vec::new()).map(|s| match s {
                Source::Folder(p) => p.display().to_string(),
                Source::Page(u) => format!("page {u}"),
                Source::Index(u) => format!("index {u}"),
            })
        };
        assert_eq!(folder("/wheels").unwrap(), "/wheels");
        assert_eq!(folder("wheels").unwrap(), "wheels");
        assert_eq!(folder("file:///opt/wheels").unwrap(), "/opt/wheels");
        assert_eq!(
            folder("https://h.example/w.html#x").unwrap(),
            "page https://h.example/w.html"
        );
        assert!(folder("s3://bucket/wheels").is_err());
        let Source::Page(u) = find_links_source("https://u:p@h.example/w/", &mut creds).unwrap()
        else {
            panic!("not a page")
        };
        assert_eq!(u.as_str(), "https://h.example/w/");
        assert_eq!(creds.len(), 1);
    }
}
