//! PEP 691 JSON project pages: bytes in, links out.
//!
//! The JSON form is what hoist asks for first (see [`super::ACCEPT`]): it
//! states hashes, sizes, `Requires-Python`, yanking and PEP 658 metadata
//! in named fields, so nothing is guessed from markup. A major API version
//! other than 1 is refused, as PEP 691 says a client must; a link that does
//! not join onto the page URL is skipped.

use std::collections::BTreeMap;

use reqwest::Url;
use serde::Deserialize;

use super::super::dist::Location;
use super::RawFile;

/// PEP 691 JSON.
#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    meta: Option<JsonMeta>,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<BoolOr<String>>,
    /// PEP 714's name, preferred over the older one.
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOr<T> {
    Bool(bool),
    Other(T),
}

pub(crate) fn parse_json_page(bytes: &[u8], page_url: &Url) -> Result<Vec<RawFile>, String> {
    let page: JsonPage = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    // PEP 691: a client must refuse a major API version it does not know.
    if let Some(v) = page.meta.and_then(|m| m.api_version) {
        if v.split('.').next() != Some("1") {
            return Err(format!(
                "API version {v} is not one hoist reads (1.x); a newer hoist may read it"
            ));
        }
    }
    let mut out = Vec::new();
    for f in page.files {
        let Ok(mut url) = page_url.join(&f.url) else {
            continue;
        };
        url.set_fragment(None);
        let metadata = match f.core_metadata.or(f.dist_info_metadata) {
            None | Some(BoolOr::Bool(false)) => None,
            Some(BoolOr::Bool(true)) => Some(None),
            Some(BoolOr::Other(hashes)) => Some(hashes.get("sha256").cloned()),
        };
        out.push(RawFile {
            filename: f.filename,
            location: Location::Url(url.to_string()),
            sha256: f.hashes.get("sha256").cloned(),
            requires_python: f.requires_python,
            // PEP 691: a string, any string, is a reason, so yanked.
            yanked: match f.yanked {
                None | Some(BoolOr::Bool(false)) => false,
                Some(BoolOr::Bool(true)) | Some(BoolOr::Other(_)) => true,
            },
            metadata,
            size: f.size,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{raw, url, SIX_WHL};
    use super::*;

    #[test]
    fn json_pages_table() {
        let page = url("https://idx.example/simple/six/");
        let cases: Vec<(&str, &str, Vec<RawFile>)> = vec![
            (
                "PyPI's shape: absolute URL, hashes, requires-python, size",
                r#"{"meta":{"api-version":"1.1"},"name":"six","files":[{"filename":"six-1.16.0-py2.py3-none-any.whl","hashes":{"sha256":"8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"},"requires-python":">=2.7, !=3.0.*","size":11053,"upload-time":"2021-05-05T14:18:17Z","url":"https://files.example/six-1.16.0-py2.py3-none-any.whl","yanked":false}]}"#,
                vec![RawFile {
                    sha256: Some(SIX_WHL.to_owned()),
                    requires_python: Some(">=2.7, !=3.0.*".to_owned()),
                    size: Some(11053),
                    ..raw(
                        "six-1.16.0-py2.py3-none-any.whl",
                        "https://files.example/six-1.16.0-py2.py3-none-any.whl",
                    )
                }],
            ),
            (
                "relative URLs, fragments dropped; yanked with a reason; core-metadata forms",
                r#"{"files":[
                    {"filename":"a-1-py3-none-any.whl","url":"../../files/a-1-py3-none-any.whl#sha256=00","hashes":{"md5":"x"},"yanked":"broken","core-metadata":{"sha256":"ab"}},
                    {"filename":"a-2-py3-none-any.whl","url":"a-2-py3-none-any.whl","hashes":{},"yanked":true,"core-metadata":true},
                    {"filename":"a-3-py3-none-any.whl","url":"/a-3-py3-none-any.whl","dist-info-metadata":{"sha256":"cd"}},
                    {"filename":"a-4-py3-none-any.whl","url":"a-4-py3-none-any.whl","core-metadata":false,"dist-info-metadata":true},
                    {"filename":"a-5-py3-none-any.whl","url":"a-5-py3-none-any.whl","core-metadata":{"md5":"x"}}
                ]}"#,
                vec![
                    RawFile {
                        yanked: true,
                        metadata: Some(Some("ab".to_owned())),
                        ..raw(
                            "a-1-py3-none-any.whl",
                            "https://idx.example/files/a-1-py3-none-any.whl",
                        )
                    },
                    RawFile {
                        yanked: true,
                        metadata: Some(None),
                        ..raw(
                            "a-2-py3-none-any.whl",
                            "https://idx.example/simple/six/a-2-py3-none-any.whl",
                        )
                    },
                    RawFile {
                        metadata: Some(Some("cd".to_owned())),
                        ..raw(
                            "a-3-py3-none-any.whl",
                            "https://idx.example/a-3-py3-none-any.whl",
                        )
                    },
                    // core-metadata wins over dist-info-metadata, even false.
                    raw(
                        "a-4-py3-none-any.whl",
                        "https://idx.example/simple/six/a-4-py3-none-any.whl",
                    ),
                    RawFile {
                        metadata: Some(None),
                        ..raw(
                            "a-5-py3-none-any.whl",
                            "https://idx.example/simple/six/a-5-py3-none-any.whl",
                        )
                    },
                ],
            ),
            (
                "no files",
                r#"{"meta":{"api-version":"1.0"},"files":[]}"#,
                vec![],
            ),
        ];
        for (what, json, want) in cases {
            let got =
                parse_json_page(json.as_bytes(), &page).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, want, "{what}");
        }

        for (what, json) in [
            (
                "API version 2",
                r#"{"meta":{"api-version":"2.0"},"files":[]}"#,
            ),
            ("not JSON", "<html></html>"),
            ("no files", r#"{"name":"six"}"#),
            (
                "a file without url",
                r#"{"files":[{"filename":"a-1.tar.gz"}]}"#,
            ),
        ] {
            assert!(parse_json_page(json.as_bytes(), &page).is_err(), "{what}");
        }
    }
}
