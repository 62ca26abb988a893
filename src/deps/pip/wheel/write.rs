//! Streaming the planned entries into one layer.
//!
//! Entries come in path order, which mixes wheels (`bin/` before `lib/`,
//! and in site-packages one project's folders between another's), so a
//! zip is opened when one of its files comes up. Zips allow random
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
use super::plan::{Content, Plan};
use super::scripts::skip_first_line;
use super::WheelError;
use crate::layer::{Compression, EntryMeta, Layer, LayerError, LayerWriter};
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

/// Writes the planned layer into the store.
pub fn write(
    plan: &Plan,
    store: &Store,
    compression: Compression,
    epoch: u64,
) -> Result<Layer, WheelError> {
    let mut out = LayerWriter::new(store, compression, epoch)?;
    let mut open = OpenWheels { open: Vec::new() };
    for (path, planned) in &plan.entries {
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
                    Err(LayerError::Io(e)) if reader.has_failed() => {
                        return Err(reader.read_error(e))
                    }
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
    }
    Ok(out.finish()?)
}
