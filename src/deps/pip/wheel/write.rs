//! Streaming the planned entries into one layer.
//!
//! The layer is segmented ([`crate::layer::segments`]): a skeleton of
//! every folder (and of the files several wheels ship alike), then one
//! segment per wheel with that wheel's files. Each segment is kept in the
//! store under a key of its entries and their wheel's blob, so adding one
//! requirement compresses the new wheel and the skeleton only. A segment
//! mostly reads one wheel; the skeleton's shared files may come from any,
//! so a zip is opened when one of its files comes up. Zips allow random
//! access, so no order inside a wheel matters; the last few opened stay
//! open ([`MAX_OPEN`]), which bounds the open files whatever the number of
//! wheels and makes reopening rare. Each file is copied through a hasher
//! straight into the layer writer: memory stays flat whatever the sizes.
//!
//! Every file's hash is checked against RECORD as it is copied. A
//! mismatch, a short or over-long entry, or a read error ends the layer:
//! the error is returned and the layer writer dropped unfinished, which
//! deletes its temporary blob, so nothing of a bad wheel reaches the
//! store.

use std::io::{BufReader, Read};

use super::archive::{self, Zip};
use super::plan::{Content, Plan, Planned};
use super::scripts::skip_first_line;
use super::WheelError;
use crate::digest::Digest;
use crate::layer::segments::{self, EntryKind, Segment, SegmentKey, SegmentWriter};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerError};
use crate::store::Store;

/// The most wheels kept open at once.
pub const MAX_OPEN: usize = 8;

/// Recently used open wheels, least recent first.
struct OpenWheels {
    open: Vec<(usize, Zip)>,
}

impl OpenWheels {
    fn get(&mut self, store: &Store, plan: &Plan, wheel: usize) -> Result<&mut Zip, WheelError> {
        let found = match self.open.iter().position(|(w, _)| *w == wheel) {
            Some(i) => self.open.remove(i),
            None => {
                if self.open.len() >= MAX_OPEN {
                    self.open.remove(0);
                }
                let w = &plan.wheels[wheel];
                // Planning checked the names already.
                (wheel, archive::open(store, &w.filename, &w.blob, false)?)
            }
        };
        self.open.push(found);
        let last = self.open.len() - 1;
        Ok(&mut self.open[last].1)
    }
}

/// Writes the planned layer into the store, as segments (see the module
/// docs): the stored ones are reused, the others made on every core.
pub fn write(
    plan: &Plan,
    store: &Store,
    compression: Compression,
    epoch: u64,
) -> Result<Layer, WheelError> {
    let layout = segments(plan);
    let keys: Vec<Segment> = layout
        .iter()
        .map(|entries| key(plan, entries, compression, epoch))
        .collect();
    segments::write(store, compression, epoch, &keys, |i, out| {
        let mut open = OpenWheels { open: Vec::new() };
        for (path, planned) in &layout[i] {
            write_entry(out, &mut open, store, plan, path, planned)?;
        }
        Ok(())
    })
}

type Entries<'p> = Vec<(&'p ImagePath, &'p Planned)>;

/// The layer's segments: the skeleton (folders and files several wheels
/// ship alike), then each wheel's own entries, wheels in the order of
/// their first path; entries in path order inside each. The layout
/// depends on the set of wheels only, not on the order they were given.
fn segments(plan: &Plan) -> Vec<Entries<'_>> {
    let mut skeleton = Vec::new();
    let mut wheels: Vec<Entries<'_>> = vec![Vec::new(); plan.wheels.len()];
    for (path, planned) in &plan.entries {
        match planned.owner {
            Some(w) if w < wheels.len() => wheels[w].push((path, planned)),
            _ => skeleton.push((path, planned)),
        }
    }
    wheels.retain(|w| !w.is_empty());
    wheels.sort_by(|a, b| a[0].0.cmp(b[0].0));
    let mut out = vec![skeleton];
    out.extend(wheels);
    out
}

/// A segment's key: every entry's header fields and where its bytes come
/// from (the wheel's blob, the zip entry, RECORD's hash and the new first
/// line; or a hash of bytes made here).
fn key(plan: &Plan, entries: &Entries<'_>, compression: Compression, epoch: u64) -> Segment {
    let mut k = SegmentKey::new(compression, epoch);
    for (path, planned) in entries {
        let meta = EntryMeta::root(planned.mode);
        match &planned.content {
            Content::Dir => k.entry(path, EntryKind::Dir, meta, 0, "", b""),
            Content::Bytes(bytes) => {
                let id = Digest::of(bytes);
                let size = bytes.len() as u64;
                k.entry(
                    path,
                    EntryKind::File,
                    meta,
                    size,
                    "",
                    id.as_str().as_bytes(),
                );
            }
            Content::Zip {
                wheel,
                entry,
                hash,
                shebang,
                size,
            } => {
                let blob = plan.wheels.get(*wheel).map(|w| w.blob.as_str());
                let id = format!(
                    "{}\0{}\0{}\0{}",
                    blob.unwrap_or_default(),
                    entry.name,
                    hash.as_ref().map(|h| h.to_string()).unwrap_or_default(),
                    shebang.as_deref().map(hex::encode).unwrap_or_default(),
                );
                k.entry(path, EntryKind::File, meta, *size, "", id.as_bytes());
            }
        }
    }
    k.finish()
}

/// Writes one planned entry.
fn write_entry(
    out: &mut SegmentWriter,
    open: &mut OpenWheels,
    store: &Store,
    plan: &Plan,
    path: &ImagePath,
    planned: &Planned,
) -> Result<(), WheelError> {
    let meta = EntryMeta::root(planned.mode);
    match &planned.content {
        Content::Dir => out.dir(path, meta)?,
        Content::Bytes(bytes) => out.file(path, meta, bytes.len() as u64, &mut &bytes[..])?,
        Content::Zip {
            wheel,
            entry,
            hash,
            shebang,
            size,
        } => {
            let filename = &plan.wheels[*wheel].filename;
            let zip = open.get(store, plan, *wheel)?;
            let reader = archive::open_entry(zip, filename, entry, hash.as_ref())?;
            let mut br = BufReader::new(reader);
            if shebang.is_some() {
                if let Err(e) = skip_first_line(&mut br, entry.size) {
                    return Err(br.into_inner().read_error(e));
                }
            }
            let head: &[u8] = shebang.as_deref().unwrap_or_default();
            let result = out.file(path, meta, *size, &mut head.chain(&mut br));
            let mut reader = br.into_inner();
            match result {
                Ok(()) => {}
                Err(LayerError::Io(e)) if reader.has_failed() => return Err(reader.read_error(e)),
                // Short data: the check names the entry and its sizes.
                Err(e @ LayerError::FileChanged { .. }) => {
                    reader.finish(entry.size)?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
            reader.finish(entry.size)?;
        }
    }
    Ok(())
}
