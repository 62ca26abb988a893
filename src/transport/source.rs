//! Sources: reading an image out of a local layout or archive.
//!
//! A [`Source`] answers two questions: which image does this name mean
//! ([`Source::resolve`]: tag, then platform through any indexes), and what
//! are the bytes of a blob ([`Source::open_raw`]). Everything else is
//! shared here: bounded reading of JSON documents, digest checks, platform
//! choice, and importing into the store. [`crate::transport::load_base`]
//! resolves and imports; `inspect` resolves and only reads, so looking at
//! an image never fills the store.
//!
//! Nothing a source returns is trusted before it is checked: a JSON
//! document is read whole only when its descriptor says it is small, and
//! is hashed before it is parsed; a layer is verified as it streams, by
//! [`Source::open_blob`] or by the store's import.

use std::io::{self, Read};

use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::image::{media, Descriptor, ImageConfig, ImageDoc, Manifest, Platform};
use crate::store::{Store, StoreError};

use super::docker_archive::DockerArchive;
use super::layout::{DirFiles, Layout};
use super::tarfile::TarIndex;
use super::{Transport, TransportError, MAX_JSON_SIZE};

/// How many indexes deep a source may nest before hoist gives up.
const MAX_INDEX_DEPTH: usize = 4;

/// A blob's bytes as the source holds them, not yet verified.
pub struct RawBlob<'a> {
    pub reader: Box<dyn Read + 'a>,
    /// The size of the file or member holding it.
    pub size: u64,
    /// Where the bytes are, for messages (`DIR/blobs/sha256/<hex>`,
    /// `FILE (member NAME)`).
    pub location: String,
}

/// Learns the digest of a blob whose digest the source does not record
/// (a compressed layer in a docker-archive, named only by file name). The
/// caller chooses what else happens to the bytes on the way: `load_base`
/// keeps them in the store in the same pass, `inspect` only hashes them.
pub trait Digester {
    fn digest(&mut self, reader: &mut dyn Read) -> Result<(Digest, u64), TransportError>;
}

/// A [`Digester`] that only hashes.
pub struct HashOnly;

impl Digester for HashOnly {
    fn digest(&mut self, reader: &mut dyn Read) -> Result<(Digest, u64), TransportError> {
        let mut w = HashingWriter::new(io::sink());
        io::copy(reader, &mut w)?;
        let (_, digest, size) = w.finish();
        Ok((digest, size))
    }
}

/// A [`Digester`] that imports into the store while hashing.
pub(crate) struct Importer<'a>(pub &'a Store);

impl Digester for Importer<'_> {
    fn digest(&mut self, reader: &mut dyn Read) -> Result<(Digest, u64), TransportError> {
        let mut w = self.0.writer()?;
        io::copy(reader, &mut w)?;
        Ok(w.finish(None, None)?)
    }
}

/// The index an image was chosen from, when its name led to one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexSummary {
    pub digest: Digest,
    pub media_type: String,
    /// The platforms its entries are for, in its order.
    pub platforms: Vec<String>,
}

/// The image a source's name means, with its small documents read and
/// verified. Layers are only described, not read.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The manifest's descriptor: digest and size of `manifest_bytes`, its
    /// media type, and the image's platform.
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub manifest_doc: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
    /// The config's platform, with the index entry's variant when the
    /// config has none.
    pub platform: Platform,
    pub index: Option<IndexSummary>,
    /// Whether the manifest was made by hoist from a docker-archive's
    /// `manifest.json` rather than read.
    pub synthesized: bool,
}

impl Resolved {
    /// The layers, with the media types the source gave them.
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest_doc.layers
    }

    pub fn config_digest(&self) -> &Digest {
        &self.manifest_doc.config.digest
    }
}

/// A place images can be read from without writing anything.
pub trait Source {
    /// The source as the user spelled it.
    fn name(&self) -> &str;

    /// Finds the image the source's tag names for `platform`. With no
    /// platform, an index is resolved for the host and a single image is
    /// taken whatever its platform.
    fn resolve(
        &mut self,
        platform: Option<&Platform>,
        digester: &mut dyn Digester,
    ) -> Result<Resolved, TransportError>;

    /// Opens a blob's bytes, unverified.
    fn open_raw(&self, desc: &Descriptor) -> Result<RawBlob<'_>, TransportError>;

    /// Opens a blob; the reader fails with `InvalidData` at its end if the
    /// bytes do not match the descriptor's digest and size.
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError> {
        let raw = self.open_raw(desc)?;
        check_size(desc, &raw)?;
        Ok(Box::new(Labelled {
            inner: VerifyingReader::new(raw.reader, desc.digest.clone(), Some(desc.size)),
            label: raw.location,
        }))
    }
}

/// Opens the source a transport names.
pub fn open_source(t: &Transport) -> Result<Box<dyn Source>, TransportError> {
    let name = t.to_string();
    Ok(match t {
        Transport::Oci { dir, tag } => {
            if !dir.is_dir() {
                return Err(TransportError::NotLayout {
                    path: dir.display().to_string(),
                    why: "there is no such folder".into(),
                });
            }
            Box::new(Layout::new(DirFiles::new(dir), name, tag.clone()))
        }
        Transport::OciArchive { file, tag } => {
            Box::new(Layout::new(TarIndex::open(file)?, name, tag.clone()))
        }
        Transport::DockerArchive { file, tag } => {
            Box::new(DockerArchive::new(TarIndex::open(file)?, name, tag.clone()))
        }
        Transport::Registry(r) => {
            return Err(TransportError::RegistryNotYet {
                reference: r.clone(),
            })
        }
        Transport::Engine { .. } => return Err(TransportError::OutputOnly { name }),
    })
}

/// Prefixes I/O errors with where the bytes came from.
pub(crate) struct Labelled<R> {
    pub(crate) inner: R,
    pub(crate) label: String,
}

impl<R: Read> Read for Labelled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.label)))
    }
}

fn check_size(desc: &Descriptor, raw: &RawBlob<'_>) -> Result<(), TransportError> {
    if raw.size != desc.size {
        return Err(TransportError::BlobCorrupt {
            digest: desc.digest.clone(),
            location: raw.location.clone(),
            detail: format!(
                "it has {} bytes, its descriptor says {}",
                raw.size, desc.size
            ),
        });
    }
    Ok(())
}

/// Reads a small document (manifest, index, config) whole, refusing one
/// larger than [`MAX_JSON_SIZE`] before reading it, and checks its digest.
pub(crate) fn read_json_blob<S: Source + ?Sized>(
    src: &S,
    desc: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, TransportError> {
    if desc.size > MAX_JSON_SIZE {
        return Err(TransportError::TooLarge {
            what: what.to_owned(),
            size: desc.size,
            limit: MAX_JSON_SIZE,
        });
    }
    let raw = src.open_raw(desc)?;
    check_size(desc, &raw)?;
    let RawBlob {
        reader, location, ..
    } = raw;
    let bytes = read_bounded(reader, desc.size).map_err(|source| TransportError::ReadBlob {
        digest: desc.digest.clone(),
        source,
    })?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest || bytes.len() as u64 != desc.size {
        return Err(TransportError::BlobCorrupt {
            digest: desc.digest.clone(),
            location,
            detail: format!(
                "its {} bytes hash to {actual}; the file was damaged or changed",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Reads at most `limit + 1` bytes, so an overlong input is seen as such
/// without reading it all.
pub(crate) fn read_bounded(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Imports one blob into the store, verified; a blob already there is
/// not read again. A mismatch leaves nothing in the store.
pub(crate) fn import_blob<S: Source + ?Sized>(
    src: &S,
    desc: &Descriptor,
    store: &Store,
) -> Result<(), TransportError> {
    if store.has(&desc.digest) {
        return Ok(());
    }
    let raw = src.open_raw(desc)?;
    check_size(desc, &raw)?;
    let RawBlob {
        mut reader,
        location,
        ..
    } = raw;
    store
        .import(&mut reader, &desc.digest, Some(desc.size))
        .map_err(|e| match e {
            StoreError::DigestMismatch { actual, .. } => TransportError::BlobCorrupt {
                digest: desc.digest.clone(),
                location,
                detail: format!("its content hashes to {actual}; the file was damaged or changed"),
            },
            StoreError::SizeMismatch {
                expected, actual, ..
            } => TransportError::BlobCorrupt {
                digest: desc.digest.clone(),
                location,
                detail: format!("it has {actual} bytes, its descriptor says {expected}"),
            },
            other => other.into(),
        })
}

/// Follows `top` through indexes to one image manifest for `wanted` (the
/// host when `None`), reads its config and checks the platform.
pub(crate) fn walk<S: Source + ?Sized>(
    src: &S,
    top: Descriptor,
    wanted: Option<&Platform>,
) -> Result<Resolved, TransportError> {
    let mut desc = top;
    let mut summary: Option<IndexSummary> = None;
    for _ in 0..=MAX_INDEX_DEPTH {
        let what = format!("manifest {} in {}", desc.digest, src.name());
        let bytes = read_json_blob(src, &desc, &what)?;
        let hint = (!desc.media_type.is_empty()).then_some(desc.media_type.as_str());
        match ImageDoc::parse(&bytes, &what, hint)? {
            ImageDoc::Index(index) => {
                let want = wanted.cloned().unwrap_or_else(Platform::host);
                if summary.is_none() {
                    summary = Some(IndexSummary {
                        digest: desc.digest.clone(),
                        media_type: index
                            .media_type
                            .clone()
                            .unwrap_or_else(|| desc.media_type.clone()),
                        platforms: crate::image::platform_list(&index.manifests),
                    });
                }
                desc = select_platform(&index.manifests, &want, src.name())?.clone();
            }
            ImageDoc::Manifest(manifest) => {
                return finish(src, desc, bytes, manifest, wanted, summary);
            }
        }
    }
    Err(TransportError::IndexTooDeep {
        source_name: src.name().to_owned(),
        digest: desc.digest,
        depth: MAX_INDEX_DEPTH,
    })
}

fn finish<S: Source + ?Sized>(
    src: &S,
    desc: Descriptor,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    wanted: Option<&Platform>,
    index: Option<IndexSummary>,
) -> Result<Resolved, TransportError> {
    let what = format!("config {} in {}", manifest.config.digest, src.name());
    let config_bytes = read_json_blob(src, &manifest.config, &what)?;
    let config = ImageConfig::parse(&config_bytes, &what)?;
    let mut platform = config.platform();
    if platform.variant.is_none() {
        if let Some(p) = &desc.platform {
            if p.os == platform.os && p.architecture == platform.architecture {
                platform.variant = p.variant.clone();
            }
        }
    }
    if let Some(w) = wanted {
        check_platform(src.name(), w, &platform)?;
    }
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(TransportError::LayerCountMismatch {
            source_name: src.name().to_owned(),
            digest: desc.digest,
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    let media_type = manifest
        .media_type
        .clone()
        .or_else(|| (!desc.media_type.is_empty()).then(|| desc.media_type.clone()))
        .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
    let mut mdesc = Descriptor::new(media_type, desc.digest, desc.size);
    mdesc.platform = Some(platform.clone());
    Ok(Resolved {
        manifest: mdesc,
        manifest_bytes,
        manifest_doc: manifest,
        config_bytes,
        config,
        platform,
        index,
        synthesized: false,
    })
}

/// Checks a single image's platform against the wanted one. A config
/// without a variant (umoci writes none) is judged by os and architecture.
pub(crate) fn check_platform(
    source_name: &str,
    wanted: &Platform,
    have: &Platform,
) -> Result<(), TransportError> {
    let fits = if have.variant.is_none() {
        wanted.os == have.os && wanted.architecture == have.architecture
    } else {
        wanted.satisfied_by(have)
    };
    if fits {
        Ok(())
    } else {
        Err(TransportError::PlatformMismatch {
            source_name: source_name.to_owned(),
            wanted: wanted.to_string(),
            have: have.to_string(),
        })
    }
}

/// A variant with arm64's default spelled out, for ranking.
/// Picks the entry of an index for `wanted` (see
/// [`crate::image::select_platform`]); the error lists what there is.
pub(crate) fn select_platform<'a>(
    entries: &'a [Descriptor],
    wanted: &Platform,
    source_name: &str,
) -> Result<&'a Descriptor, TransportError> {
    crate::image::select_platform(entries, wanted).map_err(|available| TransportError::NoPlatform {
        source_name: source_name.to_owned(),
        wanted: wanted.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: char, platform: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::parse(&format!("sha256:{}", n.to_string().repeat(64))).unwrap(),
            1,
        );
        d.platform = platform.map(|p| Platform::parse(p).unwrap());
        d
    }

    #[test]
    fn select_platform_table() {
        let entries = vec![
            entry('a', Some("linux/amd64")),
            entry('b', Some("linux/arm64/v9")),
            entry('c', Some("linux/arm64/v8")),
            entry('d', Some("linux/arm/v6")),
            entry('e', Some("linux/arm/v7")),
            entry('f', None),
        ];
        let cases: &[(&str, Option<char>)] = &[
            ("linux/amd64", Some('a')),
            ("linux/arm64", Some('c')),
            ("linux/arm64/v8", Some('c')),
            ("linux/arm64/v9", Some('b')),
            ("linux/arm/v7", Some('e')),
            ("linux/arm", Some('d')),
            ("linux/s390x", None),
            ("windows/amd64", None),
        ];
        for (want, pick) in cases {
            let want = Platform::parse(want).unwrap();
            let got = select_platform(&entries, &want, "src")
                .ok()
                .map(|d| d.digest.hex().as_bytes()[0] as char);
            assert_eq!(got, *pick, "{want}");
        }
        let err = select_platform(&entries, &Platform::parse("linux/s390x").unwrap(), "src")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/amd64, linux/arm64/v9, linux/arm64/v8"),
            "{err}"
        );
        assert!(err.contains("linux/s390x"), "{err}");
    }

    #[test]
    fn check_platform_table() {
        let cases = [
            ("linux/amd64", "linux/amd64", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/arm/v7", "linux/arm", true),
            ("linux/arm/v7", "linux/arm/v6", false),
            ("linux/amd64", "linux/arm64", false),
            ("linux/amd64", "windows/amd64", false),
        ];
        for (want, have, ok) in cases {
            let r = check_platform(
                "src",
                &Platform::parse(want).unwrap(),
                &Platform::parse(have).unwrap(),
            );
            assert_eq!(r.is_ok(), ok, "{want} vs {have}");
            if let Err(e) = r {
                let msg = e.to_string();
                assert!(msg.contains(want) && msg.contains(have), "{msg}");
            }
        }
    }
}
