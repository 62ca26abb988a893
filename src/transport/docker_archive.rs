//! Reading a docker-archive: what `docker save`, `podman save` and
//! `skopeo copy ... docker-archive:` write.
//!
//! Its table of contents is `manifest.json`, a list of
//! `{"Config": PATH, "RepoTags": [...], "Layers": [PATH, ...]}`. The paths
//! take three shapes: legacy `<hex>.json` and `<id>/layer.tar` (or
//! `<hex>.tar`, podman linking `<id>/layer.tar` to it), and Docker 25+'s
//! `blobs/sha256/<hex>` (with an `index.json` beside it, which hoist does
//! not need). Every path comes from the archive, so each is checked (not
//! absolute, no `..`) before it is looked up.
//!
//! There is no manifest to read, so one is synthesized: an OCI manifest
//! whose config is the config file and whose layers are the layer files.
//! Layers are usually uncompressed tars, and then their digest is the
//! config's `rootfs.diff_ids[i]`, checked when the bytes are imported. A
//! compressed layer's digest is written nowhere, so it is computed by the
//! caller's [`Digester`] (while importing it, for `load_base`).

use std::collections::HashMap;
use std::io::Read;

use crate::digest::Digest;
use crate::image::{
    media, to_json, Descriptor, DockerArchiveEntry, ImageConfig, ImageError, Manifest, Platform,
};
use crate::layer::{Compression, ImagePath};

use super::source::{check_platform, read_bounded, Digester, RawBlob, Resolved, Source};
use super::tarfile::TarIndex;
use super::{TransportError, MAX_JSON_SIZE};
use crate::reference::name::{parse_index_tag, same_image_name};

/// A docker-archive as a [`Source`].
pub(crate) struct DockerArchive {
    tar: TarIndex,
    name: String,
    tag: Option<String>,
    /// Where each blob the synthesized manifest names is in the archive,
    /// filled by `resolve`.
    blobs: HashMap<Digest, String>,
}

impl DockerArchive {
    pub(crate) fn new(tar: TarIndex, name: String, tag: Option<String>) -> Self {
        DockerArchive {
            tar,
            name,
            tag,
            blobs: HashMap::new(),
        }
    }

    fn archive(&self) -> String {
        self.tar.path().display().to_string()
    }

    /// Finds a member named by `manifest.json`.
    fn member(&self, path: &str) -> Result<(u64, u64), TransportError> {
        self.tar
            .find(path)?
            .ok_or_else(|| TransportError::MissingMember {
                archive: self.archive(),
                member: path.to_owned(),
            })
    }

    fn read_small(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        let (offset, size) = self.member(path)?;
        if size > MAX_JSON_SIZE {
            return Err(TransportError::TooLarge {
                what: self.tar.location(path),
                size,
                limit: MAX_JSON_SIZE,
            });
        }
        Ok(read_bounded(
            self.tar.reader(path, offset, size),
            MAX_JSON_SIZE,
        )?)
    }
}

impl Source for DockerArchive {
    fn name(&self) -> &str {
        &self.name
    }

    fn resolve(
        &mut self,
        platform: Option<&Platform>,
        digester: &mut dyn Digester,
    ) -> Result<Resolved, TransportError> {
        let archive = self.archive();
        let entries = parse_manifest_json(&self.read_small("manifest.json")?, &archive)?;
        let entry = select_archive_entry(&entries, self.tag.as_deref(), &self.name)?;

        let config_path = archive_path(&archive, &entry.config)?;
        let config_bytes = self.read_small(&config_path)?;
        let config_digest = Digest::of(&config_bytes);
        if let Some(named) = digest_in_name(&config_path) {
            if named != config_digest {
                return Err(TransportError::BlobCorrupt {
                    digest: named,
                    location: self.tar.location(&config_path),
                    detail: format!(
                        "its content hashes to {config_digest}; the file was damaged or changed"
                    ),
                });
            }
        }
        let config = ImageConfig::parse(&config_bytes, &self.tar.location(&config_path))?;
        let image_platform = config.platform();
        if let Some(w) = platform {
            check_platform(&self.name, w, &image_platform)?;
        }
        if entry.layers.len() != config.rootfs.diff_ids.len() {
            return Err(TransportError::BadDockerArchive {
                archive,
                why: format!(
                    "image {} lists {} layers but its config has {} diff_ids",
                    entry.config,
                    entry.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }

        let mut blobs = HashMap::new();
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = archive_path(&archive, path)?;
            let (offset, size) = self.member(&path)?;
            let mut head = Vec::with_capacity(8);
            self.tar
                .reader(&path, offset, size)
                .take(8)
                .read_to_end(&mut head)?;
            let desc = match Compression::sniff(&head) {
                Compression::None => Descriptor::new(media::OCI_LAYER, diff_id.clone(), size),
                c => {
                    let (digest, n) = digester.digest(&mut self.tar.reader(&path, offset, size))?;
                    Descriptor::new(c.media_type(), digest, n)
                }
            };
            blobs.insert(desc.digest.clone(), path);
            layers.push(desc);
        }
        blobs.insert(config_digest.clone(), config_path);
        self.blobs = blobs;

        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers,
            annotations: None,
        };
        let manifest_bytes = to_json(&manifest);
        let mut mdesc = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::of(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        mdesc.platform = Some(image_platform.clone());
        Ok(Resolved {
            manifest: mdesc,
            manifest_bytes,
            manifest_doc: manifest,
            config_bytes,
            config,
            platform: image_platform,
            index: None,
            synthesized: true,
        })
    }

    fn open_raw(&self, desc: &Descriptor) -> Result<RawBlob<'_>, TransportError> {
        let Some(path) = self.blobs.get(&desc.digest) else {
            return Err(TransportError::MissingBlob {
                digest: desc.digest.clone(),
                location: format!("{} (not named by its manifest.json)", self.archive()),
            });
        };
        let (offset, size) = self.member(path)?;
        Ok(RawBlob {
            reader: Box::new(self.tar.reader(path, offset, size)),
            size,
            location: self.tar.location(path),
        })
    }
}

/// Parses `manifest.json`.
pub(crate) fn parse_manifest_json(
    bytes: &[u8],
    archive: &str,
) -> Result<Vec<DockerArchiveEntry>, TransportError> {
    serde_json::from_slice(bytes).map_err(|source| {
        ImageError::Json {
            what: format!("{archive} (member manifest.json)"),
            source,
        }
        .into()
    })
}

/// Chooses the image of `manifest.json` that `tag` names: `@N` by
/// position, else by RepoTags (exact, or the same name once `localhost/`
/// and `docker.io/library/` are set aside); without a tag, the archive
/// must hold one image.
pub(crate) fn select_archive_entry<'a>(
    entries: &'a [DockerArchiveEntry],
    tag: Option<&str>,
    source_name: &str,
) -> Result<&'a DockerArchiveEntry, TransportError> {
    let available = || -> Vec<String> {
        entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| match e.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => tags.to_vec(),
                _ => vec![format!("@{i}")],
            })
            .collect()
    };
    let not_found = |tag: &str| TransportError::TagNotFound {
        source_name: source_name.to_owned(),
        tag: tag.to_owned(),
        available: available(),
    };
    let Some(tag) = tag else {
        return match entries {
            [one] => Ok(one),
            [] => Err(not_found("(any)")),
            _ => Err(TransportError::TagRequired {
                source_name: source_name.to_owned(),
                count: entries.len(),
                available: available(),
            }),
        };
    };
    if let Some(i) = parse_index_tag(tag) {
        return entries.get(i).ok_or_else(|| not_found(tag));
    }
    let has = |e: &DockerArchiveEntry, exact: bool| {
        e.repo_tags.iter().flatten().any(|t| {
            if exact {
                t == tag
            } else {
                same_image_name(tag, t)
            }
        })
    };
    entries
        .iter()
        .find(|e| has(e, true))
        .or_else(|| entries.iter().find(|e| has(e, false)))
        .ok_or_else(|| not_found(tag))
}

/// Checks a path `manifest.json` gives: relative, no `..`, not empty.
pub(crate) fn archive_path(archive: &str, path: &str) -> Result<String, TransportError> {
    let bad = |why: &str| TransportError::BadArchivePath {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.to_owned(),
    };
    if path.starts_with('/') {
        return Err(bad("is absolute"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(bad("climbs out with `..`"));
    }
    ImagePath::new(path)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| bad(e.why))
}

/// The digest a file name spells (`<hex>.json`, `blobs/sha256/<hex>`).
fn digest_in_name(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_path_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("abc.json", Some("abc.json")),
            ("./abc/layer.tar", Some("abc/layer.tar")),
            ("blobs/sha256/abc", Some("blobs/sha256/abc")),
            ("../x", None),
            ("a/../../x", None),
            ("a/..", None),
            ("/etc/passwd", None),
            ("", None),
            (".", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                archive_path("a.tar", input).ok().as_deref(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn select_archive_entry_table() {
        let e = |cfg: &str, tags: Option<&[&str]>| DockerArchiveEntry {
            config: cfg.to_owned(),
            repo_tags: tags.map(|t| t.iter().map(|s| s.to_string()).collect()),
            layers: vec![],
        };
        let entries = vec![
            e("a", Some(&["localhost/busybox:latest"])),
            e("b", Some(&["docker.io/library/alpine:3.20", "alpine:edge"])),
            e("c", None),
        ];
        let cases: &[(Option<&str>, Result<&str, &str>)] = &[
            (Some("busybox"), Ok("a")),
            (Some("busybox:latest"), Ok("a")),
            (Some("localhost/busybox:latest"), Ok("a")),
            (Some("alpine:3.20"), Ok("b")),
            (Some("alpine:edge"), Ok("b")),
            (Some("@2"), Ok("c")),
            (Some("@3"), Err("has no image named `@3`")),
            (
                Some("nginx"),
                Err("localhost/busybox:latest, docker.io/library/alpine:3.20, alpine:edge, @2"),
            ),
            (None, Err("holds 3 images")),
        ];
        for (tag, want) in cases {
            match (
                select_archive_entry(&entries, *tag, "docker-archive:x"),
                want,
            ) {
                (Ok(got), Ok(cfg)) => assert_eq!(got.config, *cfg, "{tag:?}"),
                (Err(err), Err(msg)) => {
                    let err = err.to_string();
                    assert!(err.contains(msg), "{tag:?}: {err}");
                }
                (got, _) => panic!("{tag:?}: {got:?}"),
            }
        }
        assert_eq!(
            select_archive_entry(&entries[..1], None, "x")
                .unwrap()
                .config,
            "a"
        );
    }

    #[test]
    fn index_tag_table() {
        let cases = [
            ("@0", Some(0)),
            ("@12", Some(12)),
            ("@", None),
            ("@+1", None),
            ("0", None),
            ("@x", None),
        ];
        for (t, want) in cases {
            assert_eq!(parse_index_tag(t), want, "{t}");
        }
    }
}
