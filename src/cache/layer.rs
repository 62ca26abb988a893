//! Layers remembered in the local store under a cache key: the entry
//! `keys/KIND/KEY` names the layer's blob, diff_id and size, so a hit
//! needs no layer bytes read. The user, app and run-step layers and the
//! npm layer made by install scripts are kept this way (the deps
//! installers keep richer entries of their own). The layers copied from
//! build stages are also looked up in, and shared through, a
//! [`SharedCache`] with this same entry: a CI job that finds them there
//! runs no stage at all.

use serde::{Deserialize, Serialize};

use super::SharedCache;
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::Layer;
use crate::store::{Store, StoreError};

/// The entry's form in the store.
#[derive(Serialize, Deserialize)]
struct Entry {
    descriptor: Descriptor,
    diff_id: Digest,
    uncompressed_size: u64,
}

/// The layer the store has under `kind/key`, when its blob is there too.
pub fn lookup(store: &Store, kind: &str, key: &str) -> Result<Option<Layer>, StoreError> {
    let Some(bytes) = store.get_key(kind, key)? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<Entry>(&bytes)
        .ok()
        .filter(|e| store.has(&e.descriptor.digest))
        .map(|e| Layer {
            descriptor: e.descriptor,
            diff_id: e.diff_id,
            uncompressed_size: e.uncompressed_size,
        }))
}

/// The entry's bytes for `layer`, as the store and a shared cache keep it.
fn entry(layer: &Layer) -> Vec<u8> {
    let entry = Entry {
        descriptor: layer.descriptor.clone(),
        diff_id: layer.diff_id.clone(),
        uncompressed_size: layer.uncompressed_size,
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// Records `layer` under `kind/key`. The entry only saves work, so it is
/// written as a hint (atomically, without fsync: [`Store::put_hint`]):
/// the blob it names was made durable first, and an entry lost or
/// emptied by a crash reads as a miss here, so the layer is made again.
/// That spares a code-edit rebuild two of its fsyncs.
pub fn remember(store: &Store, kind: &str, key: &str, layer: &Layer) -> Result<(), StoreError> {
    store.put_hint(kind, key, &entry(layer))
}

/// The layer under `kind/key` in the store, else in `shared` (a hit
/// there brings the entry and its blob into the store, verified).
pub fn lookup_shared(
    store: &Store,
    shared: Option<&dyn SharedCache>,
    kind: &str,
    key: &str,
) -> Result<Option<Layer>, StoreError> {
    match lookup(store, kind, key)? {
        Some(layer) => Ok(Some(layer)),
        None if super::fetch(shared, kind, key, store) => lookup(store, kind, key),
        None => Ok(None),
    }
}

/// Shares `layer`, kept under `kind/key`, through `shared`, if there is
/// one (nothing when its destination has it already).
pub fn share(
    shared: Option<&dyn SharedCache>,
    store: &Store,
    kind: &str,
    key: &str,
    layer: &Layer,
) {
    super::share(
        shared,
        kind,
        key,
        &entry(layer),
        std::slice::from_ref(&layer.descriptor),
        store,
    );
}

/// The layer under `kind/key`, or made by `make` and remembered; says
/// whether it was found. A key whose blob is gone is made again.
pub fn get_or_make<E: From<StoreError>>(
    store: &Store,
    kind: &str,
    key: &str,
    make: impl FnOnce() -> Result<Layer, E>,
) -> Result<(Layer, bool), E> {
    if let Some(layer) = lookup(store, kind, key)? {
        return Ok((layer, true));
    }
    let layer = make()?;
    remember(store, kind, key, &layer)?;
    Ok((layer, false))
}
