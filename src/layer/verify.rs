//! Checking a base's layers once, as they come in.
//!
//! A layer blob's digest says the compressed bytes are the ones the
//! manifest names; it says nothing about whether they decompress, or to
//! what. A runtime checks the uncompressed stream against the config's
//! `rootfs.diff_ids` (containerd and podman refuse a mismatch), so an image
//! built on a base whose layer is damaged inside (a bad gzip CRC, a stream
//! cut short, a layer re-compressed without fixing the config) would fail
//! only on the user's server. [`verify_base`] reads each layer to its end
//! through the decoder its media type names (which checks the gzip/zstd
//! checksums as the stream ends), hashes what comes out and compares it
//! with the diff_id, refusing with the image, the layer index, the media
//! type and both digests.
//!
//! The pair (blob digest, diff_id) is remembered in the store under
//! [`KEY_KIND`] once checked: it is a fact about content, so it stays true
//! however the blob is later reached, and the next build on the same base
//! reads nothing.
//!
//! One mismatch is accepted, because a widely used writer makes it:
//! containers/storage's `zstd:chunked` compressor (podman and buildah
//! `push --compression-format zstd:chunked`) drops the zero padding that
//! GNU tar, bsdtar and Python put after a tar's end-of-archive marker,
//! while the config keeps the diff_id of the padded tar
//! (containers/storage#1771). The files are the same; only bytes no tar
//! reader looks at are missing. podman 4 runs such images, containerd and
//! newer podman refuse them. So for a layer whose descriptor carries the
//! `zstd:chunked` annotations, whose stream ends on an end-of-archive
//! marker and whose diff_id is exactly the stream padded with zeros to the
//! next 10 KiB record, [`verify_base`] answers the stream's own digest as
//! the layer's true diff_id, and [`correct_base`] puts it in the base's
//! config (and drops the layer's table-of-contents annotations, which
//! describe the padded tar): an image hoist builds on it names what its
//! layer really holds, and every reader accepts it.

use std::io;

use crate::digest::{Digest, HashingWriter};
use crate::image::Descriptor;
use crate::store::{Store, StoreError};

use super::compress::{decode, Compression, LayerType};

/// The store key kind under which verified (digest, diff_id) pairs live,
/// named by the blob's hex digest.
pub const KEY_KIND: &str = "layer-verified";

/// Why a base's layers were refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{image}: the manifest lists {layers} layers but the config's rootfs.diff_ids has {diff_ids}; the image is broken")]
    CountMismatch {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{image}: layer {index} ({digest}, diff_id {diff_id}) has {why}")]
    MediaType {
        image: String,
        index: usize,
        digest: Digest,
        diff_id: Digest,
        why: String,
    },
    #[error("{image}: layer {index} ({media_type}, {digest}) is damaged: {detail}; the config says its diff_id is {diff_id}. Pull or export the base again")]
    Corrupt {
        image: String,
        index: usize,
        media_type: String,
        digest: Digest,
        diff_id: Digest,
        detail: String,
    },
    #[error("{image}: layer {index} ({media_type}, {digest}) uncompresses to {actual}, but the config says its diff_id is {diff_id}; the layer or the config was changed")]
    DiffIdMismatch {
        image: String,
        index: usize,
        media_type: String,
        digest: Digest,
        diff_id: Digest,
        actual: Digest,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`verify_base`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Layers read to their end and hashed now.
    pub read: usize,
    /// Layers known verified from an earlier build (not read).
    pub remembered: usize,
    /// Uncompressed bytes hashed now.
    pub bytes: u64,
    /// Layers whose true diff_id differs from the config's (the
    /// `zstd:chunked` padding case in the module doc): index and the
    /// digest of what the layer really uncompresses to.
    pub corrected: Vec<(usize, Digest)>,
}

/// The annotations containers/storage puts on a `zstd:chunked` layer's
/// descriptor (the second spelling is the older one).
const CHUNKED_ANNOTATIONS: [&str; 2] = [
    "io.github.containers.zstd-chunked.manifest-checksum",
    "io.containers.zstd-chunked.manifest-checksum",
];

/// Whether `desc` names a layer written as `zstd:chunked`.
pub fn is_zstd_chunked(desc: &Descriptor) -> bool {
    desc.annotations
        .as_ref()
        .is_some_and(|a| CHUNKED_ANNOTATIONS.iter().any(|k| a.contains_key(*k)))
}

/// The tar record size GNU tar, bsdtar and Python's tarfile pad to.
const RECORD: u64 = 10240;

/// Puts a verification's corrections into a base: each corrected layer's
/// true diff_id into `diff_ids`, and its `zstd:chunked` annotations off
/// its descriptor (they describe the padded tar, and a reader that
/// follows them would rebuild that one).
pub fn correct_base(report: &VerifyReport, layers: &mut [Descriptor], diff_ids: &mut [Digest]) {
    for (index, actual) in &report.corrected {
        if let Some(d) = diff_ids.get_mut(*index) {
            *d = actual.clone();
        }
        if let Some(l) = layers.get_mut(*index) {
            l.annotations = l.annotations.take().and_then(|mut a| {
                a.retain(|k, _| !k.contains(".zstd-chunked."));
                (!a.is_empty()).then_some(a)
            });
        }
    }
}

/// The media type problem of a layer, if any: an unknown media type, or a
/// foreign (non-distributable) layer, which only Windows bases carry.
pub fn check_media_type(media_type: &str) -> Result<LayerType, String> {
    let t = LayerType::parse(media_type).map_err(|e| e.to_string())?;
    if t.foreign {
        return Err(format!(
            "media type `{media_type}`, a foreign (non-distributable) layer as Windows bases use; hoist builds Linux images and does not copy such layers"
        ));
    }
    Ok(t)
}

/// Checks every layer of the image `image` (a name for messages): all
/// blobs must already be in `store`, their digests checked on the way in.
/// Layers verified before are not read again.
pub fn verify_base(
    store: &Store,
    image: &str,
    layers: &[Descriptor],
    diff_ids: &[Digest],
) -> Result<VerifyReport, Box<VerifyError>> {
    if layers.len() != diff_ids.len() {
        return Err(Box::new(VerifyError::CountMismatch {
            image: image.to_owned(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        }));
    }
    let mut report = VerifyReport::default();
    for (index, (desc, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let kind = check_media_type(&desc.media_type).map_err(|why| VerifyError::MediaType {
            image: image.to_owned(),
            index,
            digest: desc.digest.clone(),
            diff_id: diff_id.clone(),
            why,
        })?;
        if let Some(r) = remembered(store, &desc.digest).map_err(VerifyError::from)? {
            if r.diff_id == *diff_id || r.config_diff_id.as_ref() == Some(diff_id) {
                if r.diff_id != *diff_id {
                    report.corrected.push((index, r.diff_id));
                }
                report.remembered += 1;
                continue;
            }
        }
        // An uncompressed layer whose digest is its diff_id was checked
        // when its digest was.
        let mut record = Record {
            diff_id: diff_id.clone(),
            config_diff_id: None,
        };
        if !(kind.compression == Compression::None && desc.digest == *diff_id) {
            let (size, actual) = check_one(store, image, index, desc, diff_id)?;
            report.bytes += size;
            report.read += 1;
            if actual != *diff_id {
                report.corrected.push((index, actual.clone()));
                record = Record {
                    diff_id: actual,
                    config_diff_id: Some(diff_id.clone()),
                };
            }
        }
        remember(store, &desc.digest, &record).map_err(VerifyError::from)?;
    }
    Ok(report)
}

/// Reads one layer to its end: its uncompressed size and true diff_id
/// (the config's, or the unpadded stream's in the `zstd:chunked` case).
fn check_one(
    store: &Store,
    image: &str,
    index: usize,
    desc: &Descriptor,
    diff_id: &Digest,
) -> Result<(u64, Digest), Box<VerifyError>> {
    let corrupt = |detail: String| VerifyError::Corrupt {
        image: image.to_owned(),
        index,
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        diff_id: diff_id.clone(),
        detail,
    };
    let blob = store.open_blob(&desc.digest).map_err(VerifyError::from)?;
    let mut stream = decode(&desc.media_type, blob).map_err(|e| corrupt(e.to_string()))?;
    let mut sink = HashingWriter::new(Tail::default());
    io::copy(&mut stream, &mut sink).map_err(|e| corrupt(describe(&e)))?;
    let unpadded = is_zstd_chunked(desc)
        && sink.get_ref().ends_archive()
        && sink.digest_with_zeros(padding(sink.count())) == *diff_id;
    let (_, actual, size) = sink.finish();
    if actual != *diff_id && !unpadded {
        return Err(Box::new(VerifyError::DiffIdMismatch {
            image: image.to_owned(),
            index,
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            diff_id: diff_id.clone(),
            actual,
        }));
    }
    Ok((size, actual))
}

/// Zero bytes that bring a tar of `len` bytes to the next whole record;
/// none for an empty stream or one that ends on a record already.
fn padding(len: u64) -> u64 {
    match len % RECORD {
        0 => 0,
        r => RECORD - r,
    }
}

/// A sink that keeps what a tar's end needs checking: whether the stream
/// is whole 512-byte blocks ending with the two zero blocks of the
/// end-of-archive marker.
#[derive(Default)]
struct Tail {
    len: u64,
    /// Bytes written since the last non-zero byte.
    zero_run: u64,
}

impl Tail {
    fn ends_archive(&self) -> bool {
        self.len.is_multiple_of(512) && self.len >= 1024 && self.zero_run >= 1024
    }
}

impl io::Write for Tail {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match buf.iter().rposition(|b| *b != 0) {
            Some(i) => self.zero_run = (buf.len() - 1 - i) as u64,
            None => self.zero_run += buf.len() as u64,
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The decoders' errors in words a user can act on.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("its compressed stream ends early ({e})"),
        _ => format!("its compressed stream does not decode ({e})"),
    }
}

/// A verified layer: what it uncompresses to, and the config's diff_id
/// when that differs (the `zstd:chunked` padding case).
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    diff_id: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_diff_id: Option<Digest>,
}

fn remembered(store: &Store, digest: &Digest) -> Result<Option<Record>, StoreError> {
    Ok(store
        .get_key(KEY_KIND, digest.hex())?
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok()))
}

fn remember(store: &Store, digest: &Digest, record: &Record) -> Result<(), StoreError> {
    let value = serde_json::to_vec(record).map_err(|e| StoreError::from(io::Error::other(e)))?;
    store.put_key(KEY_KIND, digest.hex(), &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    #[test]
    fn padding_to_the_record() {
        for (len, want) in [(0, 0), (1024, 9216), (10240, 0), (10752, 9728), (20480, 0)] {
            assert_eq!(padding(len), want, "{len}");
        }
    }

    #[test]
    fn tail_sees_the_end_of_archive_marker() {
        let zeros = |n| vec![0u8; n];
        let with_data = |n| {
            let mut v = vec![7u8; 512];
            v.extend(zeros(n));
            v
        };
        let cases: [(&str, Vec<Vec<u8>>, bool); 6] = [
            (
                "a header then the two zero blocks",
                vec![with_data(1024)],
                true,
            ),
            (
                "written in small pieces",
                vec![with_data(100), zeros(924)],
                true,
            ),
            ("one zero block only", vec![with_data(512)], false),
            ("not whole blocks", vec![with_data(1030)], false),
            (
                "data after the zeros",
                vec![zeros(1024), vec![1; 512]],
                false,
            ),
            ("empty", vec![], false),
        ];
        for (what, pieces, want) in cases {
            let mut t = Tail::default();
            for p in pieces {
                t.write_all(&p).unwrap();
            }
            assert_eq!(t.ends_archive(), want, "{what}");
        }
    }

    /// A one-file tar as Go's archive/tar writes it (no record padding),
    /// and the same tar padded to 10 KiB as GNU tar writes it.
    fn tars() -> (Vec<u8>, Vec<u8>) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/hello", &b"hello"[..]).unwrap();
        let unpadded = b.into_inner().unwrap();
        let mut padded = unpadded.clone();
        padded.resize(10240, 0);
        (unpadded, padded)
    }

    fn zstd_layer(store: &Store, tar: &[u8], chunked: bool) -> Descriptor {
        let blob = zstd::encode_all(tar, 3).unwrap();
        let (digest, size) = store.put_bytes(&blob).unwrap();
        let mut d = Descriptor::new("application/vnd.oci.image.layer.v1.tar+zstd", digest, size);
        if chunked {
            d.annotations = Some(BTreeMap::from([(
                CHUNKED_ANNOTATIONS[0].to_owned(),
                "sha256:0".to_owned(),
            )]));
        }
        d
    }

    #[test]
    fn a_chunked_layer_missing_only_its_padding_is_corrected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let (unpadded, padded) = tars();
        let (actual, config) = (Digest::of(&unpadded), Digest::of(&padded));
        let mut layers = vec![zstd_layer(&store, &unpadded, true)];
        let mut ids = vec![config.clone()];
        let report = verify_base(&store, "img", &layers, &ids).unwrap();
        assert_eq!(
            (report.read, report.corrected.clone()),
            (1, vec![(0, actual.clone())])
        );
        correct_base(&report, &mut layers, &mut ids);
        assert_eq!(
            (ids.clone(), layers[0].annotations.clone()),
            (vec![actual.clone()], None)
        );
        // Remembered: asked with the config's id or the true one, nothing
        // is read and the answer is the same.
        for asked in [&config, &actual] {
            let again = verify_base(&store, "img", &layers, std::slice::from_ref(asked)).unwrap();
            assert_eq!(again.read, 0);
            let want: Vec<(usize, Digest)> = if asked == &config {
                vec![(0, actual.clone())]
            } else {
                vec![]
            };
            assert_eq!(again.corrected, want);
        }
    }

    #[test]
    fn other_mismatches_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let (unpadded, padded) = tars();
        let mut other = padded.clone();
        other[600] ^= 1;
        let cases = [
            (
                "plain zstd, not chunked",
                unpadded.clone(),
                false,
                Digest::of(&padded),
            ),
            (
                "chunked, content changed",
                unpadded.clone(),
                true,
                Digest::of(&other),
            ),
            ("chunked, padded twice over", unpadded.clone(), true, {
                let mut p = padded.clone();
                p.resize(20480, 0);
                Digest::of(&p)
            }),
            (
                "chunked, end marker missing",
                unpadded[..512].to_vec(),
                true,
                {
                    let mut p = unpadded[..512].to_vec();
                    p.resize(10240, 0);
                    Digest::of(&p)
                },
            ),
        ];
        for (what, tar, chunked, config) in cases {
            let layer = zstd_layer(&store, &tar, chunked);
            let e = verify_base(&store, "img", &[layer], &[config]).unwrap_err();
            assert!(
                matches!(*e, VerifyError::DiffIdMismatch { .. }),
                "{what}: {e}"
            );
        }
    }
}
