//! Reading an OCI image layout, from a folder (`oci:`) or a tar of one
//! (`oci-archive:`).
//!
//! Both hold the same files (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), so the layout logic is written once over
//! [`Files`], a read-only view of "a file of the layout by relative path"
//! that a folder and an indexed tar both provide. Paths asked for are
//! fixed names or built from a validated [`crate::digest::Digest`], never
//! from what a document says.
//!
//! The entry in `index.json` is chosen as skopeo chooses it: by the
//! `org.opencontainers.image.ref.name` annotation, matching either the
//! whole value or its part after the last `:`; without a tag, the layout
//! must hold exactly one entry.

use std::io::Read;
use std::path::{Path, PathBuf};

use fs_err as fs;

use crate::image::{Descriptor, ImageError, Index, Platform};

use super::source::{read_bounded, select_platform, walk, Digester, RawBlob, Resolved, Source};
use super::tarfile::TarIndex;
use super::{TransportError, MAX_JSON_SIZE};
use crate::reference::name::ref_name_matches;

/// The annotation naming an entry of `index.json`.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A file of a layout, opened, with its size.
pub(crate) type Opened<'a> = Option<(Box<dyn Read + 'a>, u64)>;

/// Read-only access to the files of a layout.
pub(crate) trait Files {
    /// Where `rel` is, for messages.
    fn location(&self, rel: &str) -> String;
    /// The layout's root, for messages.
    fn root(&self) -> String;
    /// Opens `rel` with its size; `Ok(None)` when it does not exist.
    fn open(&self, rel: &str) -> Result<Opened<'_>, TransportError>;
}

/// A layout in a folder.
pub(crate) struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    pub(crate) fn new(root: &Path) -> Self {
        DirFiles {
            root: root.to_owned(),
        }
    }
}

impl Files for DirFiles {
    fn location(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    fn root(&self) -> String {
        self.root.display().to_string()
    }

    fn open(&self, rel: &str) -> Result<Opened<'_>, TransportError> {
        let path = self.root.join(rel);
        match fs::File::open(&path) {
            Ok(f) => {
                let meta = f.metadata()?;
                if !meta.is_file() {
                    return Err(TransportError::NotLayout {
                        path: self.root(),
                        why: format!("{} is not a regular file", path.display()),
                    });
                }
                Ok(Some((Box::new(f), meta.len())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Files for TarIndex {
    fn location(&self, rel: &str) -> String {
        TarIndex::location(self, rel)
    }

    fn root(&self) -> String {
        self.path().display().to_string()
    }

    fn open(&self, rel: &str) -> Result<Opened<'_>, TransportError> {
        Ok(self
            .open_member(rel)?
            .map(|(r, size)| (Box::new(r) as Box<dyn Read>, size)))
    }
}

/// An OCI layout as a [`Source`].
pub(crate) struct Layout<F> {
    files: F,
    name: String,
    tag: Option<String>,
}

impl<F: Files> Layout<F> {
    pub(crate) fn new(files: F, name: String, tag: Option<String>) -> Self {
        Layout { files, name, tag }
    }

    /// Reads a small file of the layout whole.
    fn read_small(&self, rel: &str) -> Result<Vec<u8>, TransportError> {
        let Some((reader, size)) = self.files.open(rel)? else {
            return Err(TransportError::NotLayout {
                path: self.files.root(),
                why: format!("it has no `{rel}` file"),
            });
        };
        if size > MAX_JSON_SIZE {
            return Err(TransportError::TooLarge {
                what: self.files.location(rel),
                size,
                limit: MAX_JSON_SIZE,
            });
        }
        Ok(read_bounded(reader, MAX_JSON_SIZE)?)
    }

    fn check_layout_file(&self) -> Result<(), TransportError> {
        let bytes = self.read_small("oci-layout")?;
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_owned));
        match version {
            Some(v) if v.starts_with("1.") => Ok(()),
            Some(v) => Err(TransportError::NotLayout {
                path: self.files.root(),
                why: format!("its layout version is {v}; hoist reads version 1.x"),
            }),
            None => Err(TransportError::NotLayout {
                path: self.files.root(),
                why: "its `oci-layout` file has no imageLayoutVersion".into(),
            }),
        }
    }
}

impl<F: Files> Source for Layout<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn resolve(
        &mut self,
        platform: Option<&Platform>,
        _digester: &mut dyn Digester,
    ) -> Result<Resolved, TransportError> {
        self.check_layout_file()?;
        let bytes = self.read_small("index.json")?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: self.files.location("index.json"),
            source,
        })?;
        let top = select_entry(&index.manifests, self.tag.as_deref(), platform, &self.name)?;
        walk(self, top, platform)
    }

    fn open_raw(&self, desc: &Descriptor) -> Result<RawBlob<'_>, TransportError> {
        let rel = format!("blobs/sha256/{}", desc.digest.hex());
        let location = self.files.location(&rel);
        match self.files.open(&rel)? {
            Some((reader, size)) => Ok(RawBlob {
                reader,
                size,
                location,
            }),
            None => Err(TransportError::MissingBlob {
                digest: desc.digest.clone(),
                location,
            }),
        }
    }
}

/// How an entry is listed in messages: its ref name, or its digest.
fn entry_label(d: &Descriptor) -> String {
    match d.annotation(REF_NAME) {
        Some(n) => n.to_owned(),
        None => format!("(unnamed) {}", d.digest),
    }
}

/// Chooses the entry of `index.json` that `tag` names. Several entries
/// with one name are taken as one image for several platforms, as
/// containerd exports them, when each says its platform.
pub(crate) fn select_entry(
    entries: &[Descriptor],
    tag: Option<&str>,
    wanted: Option<&Platform>,
    source_name: &str,
) -> Result<Descriptor, TransportError> {
    let available = || entries.iter().map(entry_label).collect::<Vec<_>>();
    let Some(tag) = tag else {
        return match entries {
            [one] => Ok(one.clone()),
            _ => Err(TransportError::TagRequired {
                source_name: source_name.to_owned(),
                count: entries.len(),
                available: available(),
            }),
        };
    };
    let named = |exact: bool| -> Vec<Descriptor> {
        entries
            .iter()
            .filter(|d| {
                d.annotation(REF_NAME).is_some_and(|n| {
                    if exact {
                        n == tag
                    } else {
                        ref_name_matches(tag, n)
                    }
                })
            })
            .cloned()
            .collect()
    };
    let mut matches = named(true);
    if matches.is_empty() {
        matches = named(false);
    }
    match matches.len() {
        0 => Err(TransportError::TagNotFound {
            source_name: source_name.to_owned(),
            tag: tag.to_owned(),
            available: available(),
        }),
        1 => Ok(matches.swap_remove(0)),
        _ if matches.iter().all(|d| d.platform.is_some()) => {
            let want = wanted.cloned().unwrap_or_else(Platform::host);
            Ok(select_platform(&matches, &want, source_name)?.clone())
        }
        count => Err(TransportError::AmbiguousTag {
            source_name: source_name.to_owned(),
            tag: tag.to_owned(),
            count,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::image::media;

    fn entry(n: char, name: Option<&str>, platform: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::parse(&format!("sha256:{}", n.to_string().repeat(64))).unwrap(),
            1,
        );
        if let Some(name) = name {
            d.annotations = Some([(REF_NAME.to_owned(), name.to_owned())].into());
        }
        d.platform = platform.map(|p| Platform::parse(p).unwrap());
        d
    }

    #[test]
    fn select_entry_table() {
        let entries = vec![
            entry('a', Some("library/alpine:3.20.3"), None),
            entry('b', Some("3.20"), None),
            entry('c', Some("multi"), Some("linux/amd64")),
            entry('d', Some("multi"), Some("linux/arm64")),
            entry('e', Some("dup"), None),
            entry('f', Some("dup"), None),
            entry('0', None, None),
        ];
        let amd = Platform::parse("linux/amd64").unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        let cases: &[(Option<&str>, &Platform, Result<char, &str>)] = &[
            (Some("3.20.3"), &amd, Ok('a')),
            (Some("library/alpine:3.20.3"), &amd, Ok('a')),
            (Some("3.20"), &amd, Ok('b')),
            (Some("multi"), &arm, Ok('d')),
            (Some("multi"), &amd, Ok('c')),
            (Some("nope"), &amd, Err("has no image named `nope`")),
            (Some("dup"), &amd, Err("2 entries are named `dup`")),
            (None, &amd, Err("holds 7 images")),
        ];
        for (tag, want, expect) in cases {
            let got = select_entry(&entries, *tag, Some(want), "oci:x");
            match (got, expect) {
                (Ok(d), Ok(c)) => assert_eq!(d.digest.hex().as_bytes()[0] as char, *c, "{tag:?}"),
                (Err(e), Err(msg)) => {
                    let e = e.to_string();
                    assert!(e.contains(msg), "{tag:?}: {e}");
                }
                (got, _) => panic!("{tag:?}: {got:?}"),
            }
        }
        let err = select_entry(&entries, None, None, "oci:x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("library/alpine:3.20.3, 3.20, multi"), "{err}");
        assert!(err.contains("(unnamed) sha256:000"), "{err}");
        let one = [entry('1', None, None)];
        assert!(select_entry(&one, None, None, "oci:x").is_ok());
    }
}
