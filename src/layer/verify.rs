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
        if remembered(store, &desc.digest)
            .map_err(VerifyError::from)?
            .as_ref()
            == Some(diff_id)
        {
            report.remembered += 1;
            continue;
        }
        // An uncompressed layer whose digest is its diff_id was checked
        // when its digest was.
        if !(kind.compression == Compression::None && desc.digest == *diff_id) {
            report.bytes += check_one(store, image, index, desc, diff_id)?;
            report.read += 1;
        }
        remember(store, &desc.digest, diff_id).map_err(VerifyError::from)?;
    }
    Ok(report)
}

fn check_one(
    store: &Store,
    image: &str,
    index: usize,
    desc: &Descriptor,
    diff_id: &Digest,
) -> Result<u64, Box<VerifyError>> {
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
    let mut sink = HashingWriter::new(io::sink());
    io::copy(&mut stream, &mut sink).map_err(|e| corrupt(describe(&e)))?;
    let (_, actual, size) = sink.finish();
    if actual != *diff_id {
        return Err(Box::new(VerifyError::DiffIdMismatch {
            image: image.to_owned(),
            index,
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            diff_id: diff_id.clone(),
            actual,
        }));
    }
    Ok(size)
}

/// The decoders' errors in words a user can act on.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("its compressed stream ends early ({e})"),
        _ => format!("its compressed stream does not decode ({e})"),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    diff_id: Digest,
}

fn remembered(store: &Store, digest: &Digest) -> Result<Option<Digest>, StoreError> {
    Ok(store
        .get_key(KEY_KIND, digest.hex())?
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .map(|r| r.diff_id))
}

fn remember(store: &Store, digest: &Digest, diff_id: &Digest) -> Result<(), StoreError> {
    let value = serde_json::to_vec(&Record {
        diff_id: diff_id.clone(),
    })
    .map_err(|e| StoreError::from(io::Error::other(e)))?;
    store.put_key(KEY_KIND, digest.hex(), &value)
}
