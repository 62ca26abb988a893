//! Writing a built image: an OCI layout folder, an oci-archive, or a
//! docker-archive (or, through [`super::engine`], a local engine, which
//! gets the same archives as a stream).
//!
//! Every output is built beside its final path and renamed into place
//! only when complete: archives in a temporary file in the same folder
//! (fsynced first), a new layout in a temporary sibling folder. An
//! existing layout is updated in place, which is safe because blobs are
//! content-addressed (a file named by its digest is complete or absent)
//! and `index.json` is replaced by rename. So on any error nothing is left
//! at the output path, and a reader never sees half an image. A writer
//! that is killed (`kill -9`, no destructor runs) leaves its temporary
//! archive beside the output, or a temporary blob in a layout; the next
//! write of that output removes it, telling it from a running writer's by
//! the `flock` every writer holds on its own.
//!
//! Archives are deterministic: entries sorted by name, mtime 0, owner
//! 0:0, modes 0644/0755, no user names. Blobs stream from the store into
//! the tar, verified against their digests on the way; no layer is held
//! in memory.
//!
//! The oci-archive carries Docker's `manifest.json` beside `index.json`
//! so that one file loads with `podman load` (which reads the index and
//! wants exactly one entry in it) and with `docker load` (Docker 25+ reads
//! `manifest.json` and accepts compressed layers there). The
//! docker-archive is the legacy `docker save` layout that Docker 20.10
//! reads: uncompressed layer tars named by diff_id.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fs_err as fs;
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::image::{media, to_json, Descriptor, DockerArchiveEntry, ImageError, Index};
use crate::layer::compress::decompress;
use crate::store::{flock, sync_dir, Store, StoreError};

use super::layout::REF_NAME;
use super::source::{read_bounded, Labelled};
use super::{BuiltImage, Transport, TransportError, MAX_JSON_SIZE};
use crate::reference::name::{is_valid_oci_ref_name, normalize_name};
use crate::reference::transport::NameError;

/// The annotation containerd (and so Docker with the containerd image
/// store) reads an image's name from.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub(crate) fn write(
    t: &Transport,
    image: &BuiltImage,
    tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let names = tags
        .iter()
        .map(|t| normalize_name(t))
        .collect::<Result<Vec<_>, _>>()?;
    let blobs = image_blobs(image);
    match t {
        Transport::Registry(r) => Err(TransportError::RegistryNotYet {
            reference: r.clone(),
        }),
        Transport::Oci { dir, tag } => {
            let ref_name = oci_ref_name(tag.as_deref(), &names)?;
            check_in_store(&blobs, store)?;
            write_oci_dir(dir, &image.manifest, ref_name, &blobs, store)
        }
        Transport::OciArchive { file, tag } => {
            let ref_name = oci_ref_name(tag.as_deref(), &names)?;
            check_in_store(&blobs, store)?;
            write_oci_archive(file, &image.manifest, image, ref_name, names, &blobs, store)
        }
        Transport::DockerArchive { file, tag } => {
            let mut repo_tags = Vec::new();
            if let Some(t) = tag {
                repo_tags.push(normalize_name(t)?);
            }
            for n in names {
                if !repo_tags.contains(&n) {
                    repo_tags.push(n);
                }
            }
            check_in_store(&blobs, store)?;
            write_docker_archive(file, image, &repo_tags, store)
        }
        Transport::Engine { engine, name } => {
            super::engine::load(*engine, name.as_deref(), image, &names, store)
        }
    }
}

/// Writes several images under one OCI index (`index`, already in the
/// store, naming each image's manifest with its platform). A layout or an
/// oci-archive holds the index as its one entry, so `podman load` and
/// skopeo pick the platform they need; the oci-archive's Docker
/// `manifest.json` names the first image, which is what `docker load`
/// (one platform per image) takes. A docker-archive cannot hold an index.
pub(crate) fn write_index(
    t: &Transport,
    index: &Descriptor,
    images: &[BuiltImage],
    tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let names = tags
        .iter()
        .map(|t| normalize_name(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut by_digest = BTreeMap::new();
    for b in images.iter().flat_map(image_blobs).chain([index.clone()]) {
        by_digest.entry(b.digest.clone()).or_insert(b);
    }
    let blobs: Vec<Descriptor> = by_digest.into_values().collect();
    let first = images.first().ok_or_else(|| {
        TransportError::from(NameError::BadName {
            name: t.to_string(),
            why: "no image to write".into(),
        })
    })?;
    match t {
        Transport::Oci { dir, tag } => {
            let ref_name = oci_ref_name(tag.as_deref(), &names)?;
            check_in_store(&blobs, store)?;
            write_oci_dir(dir, index, ref_name, &blobs, store)
        }
        Transport::OciArchive { file, tag } => {
            let ref_name = oci_ref_name(tag.as_deref(), &names)?;
            check_in_store(&blobs, store)?;
            write_oci_archive(file, index, first, ref_name, names, &blobs, store)
        }
        Transport::Engine { .. } => Err(super::engine::EngineError::OnePlatform {
            output: t.to_string(),
        }
        .into()),
        Transport::DockerArchive { .. } | Transport::Registry(_) => Err(NameError::BadName {
            name: t.to_string(),
            why: "holds one platform only: write several platforms to oci: or oci-archive:, or build with one --platform".into(),
        }
        .into()),
    }
}

/// The ref name of the index entry: the transport's TAG as written, else
/// the first tag's full name.
fn oci_ref_name(tag: Option<&str>, names: &[String]) -> Result<Option<String>, TransportError> {
    match tag {
        Some(t) if !is_valid_oci_ref_name(t) => Err(NameError::BadName {
            name: t.to_owned(),
            why: "is not a valid OCI ref name (letters, digits and `-._:@/+` between them)".into(),
        }
        .into()),
        Some(t) => Ok(Some(t.to_owned())),
        None => Ok(names.first().cloned()),
    }
}

/// Every blob of the image, once each, in digest order.
pub(crate) fn image_blobs(image: &BuiltImage) -> Vec<Descriptor> {
    let m = &image.manifest_json;
    let mut by_digest = BTreeMap::new();
    for d in m.layers.iter().chain([&m.config, &image.manifest]) {
        by_digest
            .entry(d.digest.clone())
            .or_insert_with(|| d.clone());
    }
    by_digest.into_values().collect()
}

/// Fails before anything is written when a blob is missing.
pub(crate) fn check_in_store(blobs: &[Descriptor], store: &Store) -> Result<(), TransportError> {
    for b in blobs {
        if !store.has(&b.digest) {
            return Err(StoreError::Missing(b.digest.clone(), store.blob_path(&b.digest)).into());
        }
    }
    Ok(())
}

/// A store blob, verified as it is read; errors name the file.
fn store_reader(store: &Store, desc: &Descriptor) -> Result<impl Read, TransportError> {
    let path = store.blob_path(&desc.digest);
    let file = store.open_blob(&desc.digest)?;
    Ok(Labelled {
        inner: VerifyingReader::new(file, desc.digest.clone(), Some(desc.size)),
        label: format!("{} (in the store)", path.display()),
    })
}

/// The folder a new output is built in, created if needed.
fn parent_of(path: &Path) -> Result<PathBuf, TransportError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    Ok(parent)
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

/// A temporary-file builder whose file gets the permissions a plain
/// `File::create` would (0666 less the umask), not tempfile's 0600: the
/// output is for people and other tools to read.
fn temp_builder(mode: u32) -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    b.suffix(".tmp");
    b
}

/// The error for an output that cannot be created in `parent`: it names
/// the user's `dest`, not hoist's temporary file beside it, and says why.
fn cannot_create(dest: &Path, parent: &Path, e: io::Error) -> TransportError {
    let folder = parent.display();
    // tempfile wraps the error with its temporary path: judge by kind.
    let why = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "the folder {folder} is not writable for this user: choose another path, or fix its permissions"
        ),
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("the folder {folder} is on a read-only file system: choose another path")
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!("no space left in {folder}")
        }
        // The folder is there but refuses a new entry: /proc, /sys.
        io::ErrorKind::NotFound if parent.is_dir() => format!(
            "the folder {folder} does not take new files (a virtual file system such as /proc or /sys): choose another path"
        ),
        _ => format!("creating a file in {folder}: {}", io::Error::from(e.kind())),
    };
    TransportError::CannotCreate {
        path: dest.display().to_string(),
        why,
    }
}

/// An output that ran out of room, named by the user's path and the
/// folder that is full rather than by hoist's temporary file beside it
/// (removed by then); other errors pass unchanged.
fn disk_full(e: TransportError, dest: &Path, parent: &Path) -> TransportError {
    let kind = match &e {
        TransportError::Io(io) | TransportError::Store(StoreError::Io(io)) => Some(io.kind()),
        _ => None,
    };
    match kind {
        Some(io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => {
            TransportError::CannotCreate {
                path: dest.display().to_string(),
                why: format!(
                    "no space left on the disk of {}: free space there, or write the output to a larger disk",
                    parent.display()
                ),
            }
        }
        _ => e,
    }
}

/// Writes `bytes` to `dir/name` by temp file and rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TransportError> {
    let mut tmp = temp_builder(0o666)
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .map_err(|e| cannot_create(&dir.join(name), dir, e))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

// ---------------------------------------------------------------- oci: DIR

fn write_oci_dir(
    dir: &Path,
    top: &Descriptor,
    ref_name: Option<String>,
    blobs: &[Descriptor],
    store: &Store,
) -> Result<(), TransportError> {
    let entry = index_entry(top, ref_name.iter().map(|n| (REF_NAME, n.clone())));
    if dir.exists() {
        if !dir.is_dir() {
            return Err(TransportError::OutputExists {
                path: dir.display().to_string(),
                why: "exists and is not a folder".into(),
            });
        }
        let is_layout = dir.join("oci-layout").is_file();
        if !is_layout && fs::read_dir(dir)?.next().is_some() {
            return Err(TransportError::OutputExists {
                path: dir.display().to_string(),
                why: "exists, is not empty, and is not an OCI layout (it has no oci-layout file)"
                    .into(),
            });
        }
        return fill_layout(dir, &entry, ref_name.as_deref(), blobs, store);
    }
    let parent = parent_of(dir)?;
    let tmp = temp_builder(0o777)
        .prefix(&temp_prefix(dir))
        .tempdir_in(&parent)?;
    fill_layout(tmp.path(), &entry, ref_name.as_deref(), blobs, store)?;
    fs::rename(tmp.path(), dir)?;
    let _ = tmp.keep();
    sync_dir(&parent);
    Ok(())
}

/// The index entry for the built manifest, with the given annotations.
fn index_entry<'a>(
    top: &Descriptor,
    annotations: impl Iterator<Item = (&'a str, String)>,
) -> Descriptor {
    let m = top;
    let mut d = Descriptor::new(m.media_type.clone(), m.digest.clone(), m.size);
    d.platform = m.platform.clone();
    let annotations: BTreeMap<String, String> =
        annotations.map(|(k, v)| (k.to_owned(), v)).collect();
    d.annotations = (!annotations.is_empty()).then_some(annotations);
    d
}

/// Adds the image to the layout at `root`: missing blobs copied, the
/// entry put into `index.json` (replacing one with the same ref name).
fn fill_layout(
    root: &Path,
    entry: &Descriptor,
    ref_name: Option<&str>,
    blobs: &[Descriptor],
    store: &Store,
) -> Result<(), TransportError> {
    let blob_dir = root.join("blobs/sha256");
    fs::create_dir_all(&blob_dir)?;
    if !root.join("oci-layout").is_file() {
        write_atomic(root, "oci-layout", OCI_LAYOUT)?;
    }
    sweep_dead_writers(&blob_dir, ".");
    for b in blobs {
        copy_blob(store, b, &blob_dir)?;
    }
    sync_dir(&blob_dir);

    let index_path = root.join("index.json");
    let mut index = if index_path.exists() {
        let file = fs::File::open(&index_path)?;
        let size = file.metadata()?.len();
        if size > MAX_JSON_SIZE {
            return Err(TransportError::TooLarge {
                what: index_path.display().to_string(),
                size,
                limit: MAX_JSON_SIZE,
            });
        }
        let bytes = read_bounded(file, MAX_JSON_SIZE)?;
        serde_json::from_slice::<Index>(&bytes).map_err(|source| ImageError::Json {
            what: index_path.display().to_string(),
            source,
        })?
    } else {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: None,
        }
    };
    index.manifests.retain(|d| match ref_name {
        Some(name) => d.annotation(REF_NAME) != Some(name),
        None => d.annotation(REF_NAME).is_some() || d.digest != entry.digest,
    });
    index.manifests.push(entry.clone());
    write_atomic(root, "index.json", &to_json(&index))
}

/// Copies one blob out of the store into a layout's blob folder, unless a
/// file of the right size is already there (content-addressed: same name,
/// same bytes).
fn copy_blob(store: &Store, desc: &Descriptor, blob_dir: &Path) -> Result<(), TransportError> {
    let dest = blob_dir.join(desc.digest.hex());
    if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == desc.size) {
        return Ok(());
    }
    let mut reader = store_reader(store, desc)?;
    let mut tmp = locked_temp(|| {
        Ok(temp_builder(0o666)
            .prefix(&format!(".{}.", desc.digest.short()))
            .tempfile_in(blob_dir)?)
    })?;
    io::copy(&mut reader, &mut tmp)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&dest).map_err(|e| e.error)?;
    Ok(())
}

// ------------------------------------------------------------ tar archives

/// What one archive entry holds.
pub(crate) enum Content<'a> {
    Dir,
    Bytes(Vec<u8>),
    /// A store blob, copied as is.
    Blob(&'a Descriptor),
    /// A store layer, uncompressed on the way; `size` and `diff_id` were
    /// measured by a first pass.
    Uncompressed {
        layer: &'a Descriptor,
        diff_id: Digest,
        size: u64,
    },
}

/// An archive being written to a temporary file beside `dest`.
struct TarOut {
    /// Writes through its own handle on `tmp`'s file, so that store blobs
    /// can be copied into it by the kernel (see [`TarStream::write_all_to_file`]).
    tar: TarStream<BufWriter<std::fs::File>>,
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    parent: PathBuf,
}

impl TarOut {
    fn create(dest: &Path) -> Result<TarOut, TransportError> {
        if dest.is_dir() {
            return Err(TransportError::OutputExists {
                path: dest.display().to_string(),
                why: "is a folder".into(),
            });
        }
        let parent = parent_of(dest)?;
        let prefix = temp_prefix(dest);
        let tmp = locked_temp(|| {
            temp_builder(0o666)
                .prefix(&prefix)
                .tempfile_in(&parent)
                .map_err(|e| cannot_create(dest, &parent, e))
        })?;
        sweep_dead_writers(&parent, &prefix);
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| cannot_create(dest, &parent, e))?;
        Ok(TarOut {
            tar: TarStream::new(BufWriter::with_capacity(256 * 1024, file)),
            tmp,
            dest: dest.to_owned(),
            parent,
        })
    }

    fn write_all(
        &mut self,
        entries: Vec<(String, Content<'_>)>,
        store: &Store,
    ) -> Result<(), TransportError> {
        let (dest, parent) = (self.dest.clone(), self.parent.clone());
        self.tar
            .write_all_to_file(entries, store)
            .map_err(|e| disk_full(e, &dest, &parent))
    }

    /// Ends the archive, fsyncs it and renames it into place.
    fn finish(self) -> Result<(), TransportError> {
        let full = |e: TransportError| disk_full(e, &self.dest, &self.parent);
        let buf = self.tar.finish().map_err(full)?;
        drop(buf.into_inner().map_err(|e| full(e.into_error().into()))?);
        let tmp = self.tmp;
        tmp.as_file().sync_all().map_err(|e| full(e.into()))?;
        tmp.persist(&self.dest).map_err(|e| full(e.error.into()))?;
        sync_dir(&self.parent);
        Ok(())
    }
}

/// Removes the temporary archives that writers of the same output left
/// when they died (a `kill -9`, a power cut: no destructor ran). A live
/// writer holds a `flock` on its temporary file from its creation until
/// the rename, and the kernel lets go of it when the process dies, so a
/// file whose lock can be taken is a dead writer's. Best effort: what
/// cannot be opened or removed stays.
fn sweep_dead_writers(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) || !name.ends_with(".tmp") {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A temporary file from `make`, locked for as long as it lives (see
/// [`sweep_dead_writers`]).
fn locked_temp(
    make: impl Fn() -> Result<tempfile::NamedTempFile, TransportError>,
) -> Result<tempfile::NamedTempFile, TransportError> {
    loop {
        let tmp = make()?;
        if flock(tmp.as_file(), libc::LOCK_EX).is_err() {
            // A file system without flock (some network and FUSE ones):
            // a sweeper cannot lock it either, so it is never taken for a
            // dead writer's.
            return Ok(tmp);
        }
        if still_linked(&tmp) {
            return Ok(tmp);
        }
        // Another hoist took it for a dead writer's between its creation
        // and the lock: make another.
    }
}

/// Whether the temporary file is still at its path (a sweeper may have
/// removed it in the moment between its creation and its lock).
fn still_linked(tmp: &tempfile::NamedTempFile) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        tmp.as_file().metadata(),
        std::fs::symlink_metadata(tmp.path()),
    ) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// A deterministic tar written to any sink: a file, a pipe, a socket.
pub(crate) struct TarStream<W: Write> {
    tar: tar::Builder<W>,
}

impl<W: Write> TarStream<W> {
    pub(crate) fn new(w: W) -> Self {
        TarStream {
            tar: tar::Builder::new(w),
        }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    /// Writes the entries in name order.
    pub(crate) fn write_all(
        &mut self,
        entries: Vec<(String, Content<'_>)>,
        store: &Store,
    ) -> Result<(), TransportError> {
        self.write_entries(entries, store, None)
    }

    /// [`TarStream::write_all`]; with `copy`, a store blob's bytes go in
    /// through it unread (its digest checked elsewhere) after a header
    /// written here, and are padded here.
    fn write_entries(
        &mut self,
        mut entries: Vec<(String, Content<'_>)>,
        store: &Store,
        mut copy: Option<&mut BlobCopy<'_, W>>,
    ) -> Result<(), TransportError> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, content) in entries {
            if let (Some(copy), Content::Blob(desc)) = (copy.as_mut(), &content) {
                let mut h = Self::header(tar::EntryType::Regular, desc.size, 0o644);
                // Blob paths are short; a long one takes the usual way.
                if h.set_path(&name).is_ok() {
                    h.set_cksum();
                    let mut file = store.open_blob(&desc.digest)?.into_file();
                    let size = file.metadata()?.len();
                    if size != desc.size {
                        return Err(TransportError::BlobCorrupt {
                            digest: desc.digest.clone(),
                            location: format!(
                                "{} (in the store)",
                                store.blob_path(&desc.digest).display()
                            ),
                            detail: format!("{size} bytes where the manifest says {}", desc.size),
                        });
                    }
                    let w = self.tar.get_mut();
                    w.write_all(h.as_bytes())?;
                    copy(w, &mut file, size)?;
                    let pad = (512 - size % 512) % 512;
                    w.write_all(&[0u8; 512][..pad as usize])?;
                    continue;
                }
            }
            match content {
                Content::Dir => {
                    let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
                    self.tar.append_data(&mut h, &name, io::empty())?;
                }
                Content::Bytes(bytes) => {
                    let mut h = Self::header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
                    self.tar.append_data(&mut h, &name, &bytes[..])?;
                }
                Content::Blob(desc) => {
                    let mut h = Self::header(tar::EntryType::Regular, desc.size, 0o644);
                    let reader = store_reader(store, desc)?;
                    let mut exact = Exact::new(reader, desc.size, &name);
                    self.tar.append_data(&mut h, &name, &mut exact)?;
                }
                Content::Uncompressed {
                    layer,
                    diff_id,
                    size,
                } => {
                    let mut h = Self::header(tar::EntryType::Regular, size, 0o644);
                    let mut blob = store_reader(store, layer)?;
                    let actual = {
                        let (_, r) = decompress(&mut blob)?;
                        let mut exact = Exact::new(HashRead::new(r), size, &name);
                        self.tar.append_data(&mut h, &name, &mut exact)?;
                        exact.inner.finish()
                    };
                    drain(&mut blob)?;
                    if actual != diff_id {
                        return Err(TransportError::DiffIdMismatch {
                            digest: layer.digest.clone(),
                            expected: diff_id,
                            actual,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the archive (its two zero blocks) and hands back the sink.
    pub(crate) fn finish(self) -> Result<W, TransportError> {
        Ok(self.tar.into_inner()?)
    }
}

/// Copies a store blob's `size` bytes into the sink (see
/// [`TarStream::write_entries`]).
type BlobCopy<'a, W> = dyn FnMut(&mut W, &mut std::fs::File, u64) -> io::Result<()> + 'a;

impl TarStream<BufWriter<std::fs::File>> {
    /// [`TarStream::write_all`] into a file, with the store's blobs (the
    /// base's tens of megabytes) copied by the kernel (`copy_file_range`:
    /// no pass through hoist's memory) while another thread reads each
    /// one to check its digest, as every other output does. The two run
    /// side by side, so the check costs no time of its own; a blob that
    /// does not match fails the archive, which is then never renamed into
    /// place.
    pub(crate) fn write_all_to_file(
        &mut self,
        entries: Vec<(String, Content<'_>)>,
        store: &Store,
    ) -> Result<(), TransportError> {
        let blobs: Vec<Descriptor> = entries
            .iter()
            .filter_map(|(_, c)| match c {
                Content::Blob(d) => Some((*d).clone()),
                _ => None,
            })
            .collect();
        std::thread::scope(|s| {
            let checker = s.spawn(|| -> Result<(), TransportError> {
                for d in &blobs {
                    drain(&mut store_reader(store, d)?)?;
                }
                Ok(())
            });
            let mut copy = |w: &mut BufWriter<std::fs::File>, file: &mut std::fs::File, size| {
                // std copies File to BufWriter<File> with copy_file_range
                // (after flushing the buffer), falling back to read/write.
                let n = io::copy(&mut (&*file).take(size), w)?;
                match n == size {
                    true => Ok(()),
                    false => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("a store blob ended after {n} of its {size} bytes"),
                    )),
                }
            };
            let written = self.write_entries(entries, store, Some(&mut copy));
            let checked = checker.join().unwrap_or_else(|_| {
                Err(io::Error::other("the thread checking the store's blobs failed").into())
            });
            // A blob that does not match its digest says more than a
            // copy that went wrong because of it.
            checked.and(written)
        })
    }
}

/// Reads to the end, so a verifying reader below checks its digest even
/// when the decompressor above it stopped at the end of its stream.
fn drain(r: &mut impl Read) -> io::Result<()> {
    io::copy(r, &mut io::sink()).map(|_| ())
}

/// Yields exactly `size` bytes, or fails: a tar entry must hold exactly
/// what its header says, or every entry after it is garbage.
struct Exact<R> {
    inner: R,
    left: u64,
    size: u64,
    what: String,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64, what: &str) -> Self {
        Exact {
            inner,
            left: size,
            size,
            what: what.to_owned(),
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One more read: it must find the end (and lets a verifying
            // reader underneath check its digest).
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is longer than the {} bytes measured",
                        self.what, self.size
                    ),
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ended after {} of the {} bytes measured",
                    self.what,
                    self.size - self.left,
                    self.size
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes what is read through it.
struct HashRead<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashRead<R> {
    fn new(inner: R) -> Self {
        HashRead {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> Digest {
        Digest::from_sha256(self.hasher)
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

// ----------------------------------------------------------- oci-archive:

fn write_oci_archive(
    file: &Path,
    top: &Descriptor,
    image: &BuiltImage,
    ref_name: Option<String>,
    names: Vec<String>,
    blobs: &[Descriptor],
    store: &Store,
) -> Result<(), TransportError> {
    let entries = oci_archive_entries(top, image, ref_name, names, blobs);
    let mut out = TarOut::create(file)?;
    out.write_all(entries, store)?;
    out.finish()
}

/// The members of an oci-archive holding `top` (a manifest, or an index
/// over `image` and others) under `ref_name`, with Docker's
/// `manifest.json` naming `image` as `names`.
pub(crate) fn oci_archive_entries<'a>(
    top: &Descriptor,
    image: &BuiltImage,
    ref_name: Option<String>,
    names: Vec<String>,
    blobs: &'a [Descriptor],
) -> Vec<(String, Content<'a>)> {
    // containerd needs a full name; a bare TAG (`dev`) gets podman's
    // spelling of it (`localhost/dev:latest`), as podman would load it.
    let containerd_name = ref_name.as_deref().and_then(|r| normalize_name(r).ok());
    let repo_tags = if names.is_empty() {
        containerd_name.iter().cloned().collect()
    } else {
        names
    };
    let annotations = containerd_name
        .map(|n| (CONTAINERD_NAME, n))
        .into_iter()
        .chain(ref_name.map(|n| (REF_NAME, n)));
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_owned()),
        manifests: vec![index_entry(top, annotations)],
        annotations: None,
    };
    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let m = &image.manifest_json;
    let docker_manifest = vec![DockerArchiveEntry {
        config: blob_path(&m.config.digest),
        repo_tags: Some(repo_tags),
        layers: m.layers.iter().map(|l| blob_path(&l.digest)).collect(),
    }];

    let mut entries: Vec<(String, Content<'_>)> = vec![
        ("blobs/".into(), Content::Dir),
        ("blobs/sha256/".into(), Content::Dir),
        ("oci-layout".into(), Content::Bytes(OCI_LAYOUT.to_vec())),
        ("index.json".into(), Content::Bytes(to_json(&index))),
        (
            "manifest.json".into(),
            Content::Bytes(to_json(&docker_manifest)),
        ),
    ];
    entries.extend(
        blobs
            .iter()
            .map(|b| (blob_path(&b.digest), Content::Blob(b))),
    );
    entries
}

// -------------------------------------------------------- docker-archive:

fn write_docker_archive(
    file: &Path,
    image: &BuiltImage,
    repo_tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let entries = docker_archive_entries(image, repo_tags, store)?;
    let mut out = TarOut::create(file)?;
    out.write_all(entries, store)?;
    out.finish()
}

/// The members of a docker-archive holding `image` as `repo_tags`, every
/// layer measured (and its diff_id checked) before anything is written.
pub(crate) fn docker_archive_entries<'a>(
    image: &'a BuiltImage,
    repo_tags: &[String],
    store: &Store,
) -> Result<Vec<(String, Content<'a>)>, TransportError> {
    let m = &image.manifest_json;
    let diff_ids = &image.config_json.rootfs.diff_ids;
    if m.layers.len() != diff_ids.len() {
        return Err(TransportError::LayerCountMismatch {
            source_name: "the built image".into(),
            digest: image.manifest.digest.clone(),
            layers: m.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }

    // The tar header needs each layer's uncompressed size before its
    // bytes, and nothing records it. Decompress twice (measure, then
    // write) rather than spooling to a temp file: it needs no extra disk
    // (an uncompressed layer can be gigabytes, and the archive already
    // holds one copy), decompression is fast next to the writing, and
    // the first pass checks every diff_id before anything is written.
    let mut measured: BTreeMap<Digest, (Digest, u64)> = BTreeMap::new();
    for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
        let (actual, _) = match measured.get(&layer.digest) {
            Some(found) => found.clone(),
            None => {
                let found = measure(store, layer)?;
                measured.insert(layer.digest.clone(), found.clone());
                found
            }
        };
        if &actual != diff_id {
            return Err(TransportError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: diff_id.clone(),
                actual,
            });
        }
    }

    let config_desc = &m.config;
    let config_bytes = {
        if config_desc.size > MAX_JSON_SIZE {
            return Err(TransportError::TooLarge {
                what: format!("config {}", config_desc.digest),
                size: config_desc.size,
                limit: MAX_JSON_SIZE,
            });
        }
        let reader = store_reader(store, config_desc)?;
        let mut bytes = Vec::new();
        let mut exact = Exact::new(reader, config_desc.size, "the config");
        exact.read_to_end(&mut bytes)?;
        bytes
    };
    let config_name = format!("{}.json", config_desc.digest.hex());
    let layer_name = |d: &Digest| format!("{}.tar", d.hex());

    let manifest = vec![DockerArchiveEntry {
        config: config_name.clone(),
        repo_tags: Some(repo_tags.to_vec()),
        layers: diff_ids.iter().map(layer_name).collect(),
    }];
    let mut repositories: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for t in repo_tags {
        if let Some((repo, tag)) = t.rsplit_once(':') {
            repositories
                .entry(repo)
                .or_default()
                .insert(tag, config_desc.digest.hex());
        }
    }

    let mut entries: Vec<(String, Content<'_>)> = vec![
        (config_name, Content::Bytes(config_bytes)),
        ("manifest.json".into(), Content::Bytes(to_json(&manifest))),
        (
            "repositories".into(),
            Content::Bytes(to_json(&repositories)),
        ),
    ];
    let mut seen = BTreeSet::new();
    for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
        if !seen.insert(diff_id) {
            continue;
        }
        let size = measured.get(&layer.digest).map_or(0, |(_, size)| *size);
        entries.push((
            layer_name(diff_id),
            Content::Uncompressed {
                layer,
                diff_id: diff_id.clone(),
                size,
            },
        ));
    }
    Ok(entries)
}

/// The diff_id and uncompressed size of a stored layer, by decompressing
/// it (verified against its digest on the way).
fn measure(store: &Store, layer: &Descriptor) -> Result<(Digest, u64), TransportError> {
    let read_err = |source| TransportError::ReadBlob {
        digest: layer.digest.clone(),
        source,
    };
    let mut blob = store_reader(store, layer)?;
    let mut sink = HashingWriter::new(io::sink());
    {
        let (_, mut r) = decompress(&mut blob).map_err(read_err)?;
        io::copy(&mut r, &mut sink).map_err(read_err)?;
    }
    drain(&mut blob).map_err(read_err)?;
    let (_, diff_id, size) = sink.finish();
    Ok((diff_id, size))
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn a_dead_writers_temporary_archive_goes_and_a_live_ones_stays() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        for n in [
            ".out.tar.dead.tmp",
            ".out.tar.live.tmp",
            ".other.tar.x.tmp",
            ".out.tar.keep",
        ] {
            std::fs::write(p(n), b"x").unwrap();
        }
        // Another open file holding the lock, as a running writer does.
        let live = std::fs::File::open(p(".out.tar.live.tmp")).unwrap();
        flock(&live, libc::LOCK_EX).unwrap();
        sweep_dead_writers(dir.path(), &temp_prefix(&p("out.tar")));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".other.tar.x.tmp", ".out.tar.keep", ".out.tar.live.tmp"]
        );
    }
}
