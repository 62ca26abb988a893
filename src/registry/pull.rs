//! Reading from registries: manifests, the image for a platform, blobs.
//!
//! Pulls go to the mirrors registries.conf names first, then to the
//! registry itself. Every manifest, index and config a resolve reads is
//! stored once it has been parsed and checked (it is content-addressed,
//! so that is safe and cheap), which lets a later [`Client::resolve`] of
//! a digest reference work offline; a document hoist refuses is never
//! stored, and a tag is recorded only when the whole resolve succeeded.
//!
//! An interrupted blob download resumes; a try counts as progress (and
//! does not use up the retry budget) only when it brought the blob well
//! past the most bytes any try had received (see [`made_progress`]), so a
//! server that ignores `Range` and sends a little more each time is not
//! tried once per increment.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::Method;

use super::answer::read_small;
use super::auth::Scope;
use super::client::{Call, Client};
use super::{
    BlobOutcome, Direction, Event, Progress, PullPolicy, RegistryError, MAX_MANIFEST_SIZE,
};
use crate::digest::Digest;
use crate::image::{media, Descriptor, ImageConfig, ImageDoc, Index, Manifest, Platform};
use crate::image::{platform_list, select_platform};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// Indexes nested deeper than this are refused.
const MAX_INDEX_DEPTH: usize = 4;

/// What manifests are asked for, in order of preference.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The index an image was chosen from.
#[derive(Debug, Clone)]
pub struct RemoteIndex {
    pub digest: Digest,
    pub media_type: String,
    /// The index exactly as served (and stored).
    pub bytes: Vec<u8>,
    pub index: Index,
    /// Its entries' platforms, for messages (attestations left out).
    pub platforms: Vec<String>,
}

/// An image on a registry, resolved for one platform. The manifest, the
/// index (if any) and the config are in the store; layers are described,
/// not downloaded.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// The reference asked for.
    pub reference: Reference,
    /// Where the manifest was read: the reference, or a mirror's (or a
    /// registries.conf location's) rewrite of it.
    pub source: Reference,
    /// The manifest's descriptor: its media type, digest and size, and the
    /// image's platform.
    pub manifest_descriptor: Descriptor,
    pub manifest_digest: Digest,
    /// The manifest exactly as served (its digest is `manifest_digest`).
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// The layers as the manifest lists them (Docker media types kept).
    pub layers: Vec<Descriptor>,
    /// The config's platform, with the index entry's variant when the
    /// config has none.
    pub platform: Platform,
    pub index: Option<RemoteIndex>,
}

impl RemoteImage {
    /// The layers with OCI media types, as an image built on this base
    /// lists them (Docker's gzip layers are byte-identical to OCI's).
    pub fn oci_layers(&self) -> Vec<Descriptor> {
        self.layers
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.media_type = media::oci_layer_type(&d.media_type).to_owned();
                d
            })
            .collect()
    }

    /// The reference pinned to this image's manifest digest.
    pub fn pinned(&self) -> Reference {
        self.reference.with_digest(self.manifest_digest.clone())
    }
}

/// What [`Client::fetch_blobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    pub downloaded: Vec<Digest>,
    /// Already in the store.
    pub present: Vec<Digest>,
    pub bytes_downloaded: u64,
}

/// A manifest or index as read.
struct Fetched {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: Option<String>,
    /// Which source it came from (index into the source list), or `None`
    /// when it came from the store.
    source: Option<usize>,
}

impl Client {
    /// Where to pull `r` from: mirrors first, then the registry.
    pub(crate) fn pull_sources(&self, r: &Reference) -> Result<Vec<Reference>, RegistryError> {
        self.check_blocked(r)?;
        let sources = self.conf.pull_sources(r)?;
        for s in &sources {
            self.check_blocked(s)?;
        }
        Ok(sources)
    }

    /// Reads the manifest or index `r` names, as served: its digest (checked
    /// against a digest reference and the `Docker-Content-Digest` header),
    /// media type and bytes. Tries mirrors first. Nothing is stored.
    pub fn get_manifest(
        &self,
        r: &Reference,
        progress: &dyn Progress,
    ) -> Result<(Digest, String, Vec<u8>), RegistryError> {
        let sources = self.pull_sources(r)?;
        let f = self.fetch_manifest(&sources, &r.api_reference(), None, progress)?;
        let media_type = f
            .media_type
            .or_else(|| embedded_media_type(&f.bytes))
            .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
        Ok((f.digest, media_type, f.bytes))
    }

    /// Asks whether `r`'s manifest exists, without reading it: its
    /// descriptor (media type, digest, size) or `None` on 404. Goes to the
    /// registry itself, not to mirrors.
    pub fn head_manifest(
        &self,
        r: &Reference,
        progress: &dyn Progress,
    ) -> Result<Option<Descriptor>, RegistryError> {
        self.check_blocked(r)?;
        let r = self.conf.rewrite(r)?;
        let what = format!("checking manifest {r}");
        let ep = self.endpoint(&r, &what, progress)?;
        let scope = Scope::pull(r.repository());
        let url = ep.url(&format!(
            "v2/{}/manifests/{}",
            r.repository(),
            r.api_reference()
        ))?;
        let call = Call::new(self, Method::HEAD, url, &scope, &what, progress)
            .header(ACCEPT, MANIFEST_ACCEPT);
        let resp = self.send(&ep, &call)?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = self.check(&ep, resp, &[200], &what, &scope)?;
        let h = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok());
        let digest = h("docker-content-digest")
            .and_then(|d| Digest::parse(d).ok())
            .or_else(|| r.digest().cloned());
        let Some(digest) = digest else {
            return Err(RegistryError::Protocol {
                what,
                registry: ep.registry.clone(),
                why: "its answer has no usable Docker-Content-Digest header".into(),
            });
        };
        let size = h("content-length")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let media_type = h("content-type").unwrap_or(media::OCI_MANIFEST).to_owned();
        Ok(Some(Descriptor::new(media_type, digest, size)))
    }

    /// Finds the image `r` names for `platform`: reads the manifest (through
    /// any index, choosing by os, architecture and variant, where arm64
    /// means v8), then the config into the store. Layers are not
    /// downloaded: see [`Client::fetch_blobs`].
    ///
    /// A digest reference whose documents are already in the store is
    /// resolved without the network. Each online resolve of a tag records
    /// the digest it found in the store, and an `--offline` resolve of that
    /// tag uses it: so a base pulled once can be built on offline.
    pub fn resolve(
        &self,
        r: &Reference,
        platform: &Platform,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<RemoteImage, RegistryError> {
        let sources = self.pull_sources(r)?;
        let top = match r.digest() {
            Some(_) => r.api_reference(),
            None => self.tag_to_read(r, &sources, store, progress)?,
        };
        let fetched = self.fetch_manifest(&sources, &top, Some(store), progress)?;
        let (top_digest, from_network) = (fetched.digest.clone(), fetched.source.is_some());
        let resolved = self
            .resolve_from(r, platform, store, progress, &sources, fetched)
            .and_then(|mut img| {
                self.correct_chunked(r, &mut img, store, progress)?;
                Ok(img)
            });
        // The tag is recorded only for an image hoist accepted.
        if resolved.is_ok() && r.digest().is_none() && from_network {
            remember_tag(store, r, &top_digest)?;
        }
        resolved
    }

    /// Reads the base's `zstd:chunked` layers now rather than when their
    /// bytes are needed: such a layer may uncompress to its tar without
    /// the end padding its config's diff_id counts (see
    /// [`crate::layer::verify`]), and an image built on it must name the
    /// true diff_id from the start.
    fn correct_chunked(
        &self,
        r: &Reference,
        img: &mut RemoteImage,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        use crate::layer::verify;
        let chunked: Vec<usize> = (0..img.layers.len())
            .filter(|i| verify::is_zstd_chunked(&img.layers[*i]))
            .collect();
        if chunked.is_empty() {
            return Ok(());
        }
        let layers: Vec<Descriptor> = chunked.iter().map(|i| img.layers[*i].clone()).collect();
        let ids: Vec<Digest> = chunked
            .iter()
            .filter_map(|i| img.config.rootfs.diff_ids.get(*i).cloned())
            .collect();
        self.fetch_blobs(r, &layers, store, progress)?;
        let name = format!("docker://{}", img.reference);
        let mut report = verify::verify_base(store, &name, &layers, &ids)?;
        for c in &mut report.corrected {
            c.0 = chunked[c.0];
        }
        verify::correct_base(&report, &mut img.layers, &mut img.config.rootfs.diff_ids);
        verify::correct_base(&report, &mut img.manifest.layers, &mut []);
        Ok(())
    }

    /// What to read for tag reference `r`: the digest the tag named at
    /// the last resolve, when the store has it and the pull policy (or
    /// `--offline`) allows using it, else the tag itself.
    fn tag_to_read(
        &self,
        r: &Reference,
        sources: &[Reference],
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<String, RegistryError> {
        let stored = || remembered_tag(store, r);
        // Offline, a tag means what it meant at the last online resolve.
        if self.opts.offline {
            return Ok(stored()?.map_or_else(|| r.api_reference(), |d| d.to_string()));
        }
        let known = match self.opts.pull {
            PullPolicy::Always => None,
            PullPolicy::Missing => stored()?,
            PullPolicy::Never => match stored()? {
                Some(d) => Some(d),
                None => {
                    return Err(RegistryError::NotStored {
                        reference: r.to_string(),
                    })
                }
            },
            // One HEAD to the registry itself; mirrors are read with a
            // GET as before (a HEAD there would not say what they serve).
            PullPolicy::Newer if sources.len() == 1 => match stored()? {
                Some(d) => match self.head_manifest(r, progress) {
                    Ok(Some(now)) if now.digest == d => Some(d),
                    // Moved, gone, or not answered: the GET says which.
                    _ => None,
                },
                None => None,
            },
            PullPolicy::Newer => None,
        };
        Ok(known.map_or_else(|| r.api_reference(), |d| d.to_string()))
    }

    /// The rest of [`Client::resolve`], from the top document read.
    fn resolve_from(
        &self,
        r: &Reference,
        platform: &Platform,
        store: &Store,
        progress: &dyn Progress,
        sources: &[Reference],
        mut fetched: Fetched,
    ) -> Result<RemoteImage, RegistryError> {
        // Children are read from where the top document came from.
        let mut preferred = fetched.source;
        let mut index: Option<RemoteIndex> = None;
        let mut entry_platform: Option<Platform> = None;
        for depth in 0..=MAX_INDEX_DEPTH {
            let what = format!("manifest {} of {r}", fetched.digest);
            let doc = ImageDoc::parse(&fetched.bytes, &what, fetched.media_type.as_deref())?;
            match doc {
                ImageDoc::Index(ix) => {
                    if depth == MAX_INDEX_DEPTH {
                        break;
                    }
                    let entry = select_platform(&ix.manifests, platform).map_err(|available| {
                        RegistryError::NoPlatform {
                            reference: r.to_string(),
                            wanted: platform.to_string(),
                            available,
                        }
                    })?;
                    let entry = entry.clone();
                    if index.is_none() {
                        index = Some(RemoteIndex {
                            digest: fetched.digest.clone(),
                            media_type: ix
                                .media_type
                                .clone()
                                .or_else(|| fetched.media_type.clone())
                                .unwrap_or_else(|| media::OCI_INDEX.to_owned()),
                            bytes: fetched.bytes.clone(),
                            platforms: platform_list(&ix.manifests),
                            index: ix,
                        });
                    }
                    entry_platform = entry.platform.clone();
                    let ordered = prefer(sources, preferred);
                    let hint = Some(entry.media_type.clone()).filter(|m| !m.is_empty());
                    fetched = self.fetch_manifest(
                        &ordered,
                        entry.digest.as_str(),
                        Some(store),
                        progress,
                    )?;
                    if fetched.media_type.is_none() {
                        fetched.media_type = hint;
                    }
                    preferred = fetched.source.map(|i| source_index(sources, &ordered, i));
                }
                ImageDoc::Manifest(m) => {
                    let source = preferred
                        .and_then(|i| sources.get(i))
                        .cloned()
                        .unwrap_or_else(|| r.clone());
                    return self.finish_resolve(
                        r,
                        source,
                        sources,
                        fetched,
                        m,
                        entry_platform,
                        index,
                        platform,
                        store,
                        progress,
                    );
                }
            }
        }
        Err(RegistryError::Protocol {
            what: format!("resolving {r}"),
            registry: r.registry().to_owned(),
            why: format!("indexes nested deeper than {MAX_INDEX_DEPTH} levels"),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_resolve(
        &self,
        r: &Reference,
        source: Reference,
        sources: &[Reference],
        fetched: Fetched,
        manifest: Manifest,
        entry_platform: Option<Platform>,
        index: Option<RemoteIndex>,
        wanted: &Platform,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<RemoteImage, RegistryError> {
        let cdesc = &manifest.config;
        let what = format!("config {} of {r}", cdesc.digest);
        if cdesc.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::Protocol {
                what,
                registry: r.registry().to_owned(),
                why: format!(
                    "its descriptor says {} bytes, more than the {MAX_MANIFEST_SIZE} hoist reads",
                    cdesc.size
                ),
            });
        }
        let ordered = prefer(sources, sources.iter().position(|s| *s == source));
        // Read into memory (it is small) and parsed before it is stored.
        let (bytes, stored) = self.fetch_small_blob(&ordered, r, cdesc, store, progress)?;
        let config = ImageConfig::parse(&bytes, &what)?;
        if !stored {
            store.put_bytes(&bytes)?;
            progress.event(&Event::BlobDone {
                digest: &cdesc.digest,
                size: cdesc.size,
                outcome: BlobOutcome::Downloaded,
            });
        }
        let mut platform = config.platform();
        if platform.variant.is_none() {
            if let Some(p) = &entry_platform {
                if p.os == platform.os && p.architecture == platform.architecture {
                    platform.variant = p.variant.clone();
                }
            }
        }
        let fits = if platform.variant.is_none() {
            wanted.os == platform.os && wanted.architecture == platform.architecture
        } else {
            wanted.satisfied_by(&platform)
        };
        if !fits {
            return Err(RegistryError::PlatformMismatch {
                reference: r.to_string(),
                wanted: wanted.to_string(),
                have: platform.to_string(),
            });
        }
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(RegistryError::LayerCountMismatch {
                reference: r.to_string(),
                digest: fetched.digest,
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        let media_type = manifest
            .media_type
            .clone()
            .or(fetched.media_type)
            .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
        let mut mdesc = Descriptor::new(
            media_type,
            fetched.digest.clone(),
            fetched.bytes.len() as u64,
        );
        mdesc.platform = Some(platform.clone());
        Ok(RemoteImage {
            reference: r.clone(),
            source,
            manifest_descriptor: mdesc,
            manifest_digest: fetched.digest,
            manifest_bytes: fetched.bytes,
            config_digest: cdesc.digest.clone(),
            layers: manifest.layers.clone(),
            manifest,
            config,
            platform,
            index,
        })
    }

    /// Reads one manifest or index by tag or digest: from the store when
    /// it is a digest the store has, else from the first source that has
    /// it (and then stores it, when a store is given).
    fn fetch_manifest(
        &self,
        sources: &[Reference],
        reference: &str,
        store: Option<&Store>,
        progress: &dyn Progress,
    ) -> Result<Fetched, RegistryError> {
        let pinned = Digest::parse(reference).ok();
        if let (Some(d), Some(store)) = (&pinned, store) {
            if store.has(d) {
                let bytes = store.read_blob(d)?;
                return Ok(Fetched {
                    media_type: embedded_media_type(&bytes),
                    bytes,
                    digest: d.clone(),
                    source: None,
                });
            }
        }
        let mut last = None;
        for (i, src) in sources.iter().enumerate() {
            match self.fetch_manifest_from(src, reference, pinned.as_ref(), progress) {
                Ok(mut f) => {
                    f.source = Some(i);
                    if let Some(store) = store {
                        // Parsed and checked before it is kept: a document
                        // hoist refuses never reaches the store.
                        let what = format!("manifest {} of {src}", f.digest);
                        if let Err(e) = ImageDoc::parse(&f.bytes, &what, f.media_type.as_deref()) {
                            last = Some(e.into());
                            continue;
                        }
                        store.put_bytes(&f.bytes)?;
                    }
                    return Ok(f);
                }
                // Offline fails the same way everywhere.
                Err(e @ RegistryError::Offline { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Protocol {
            what: format!("reading manifest {reference}"),
            registry: "-".into(),
            why: "no source to read it from".into(),
        }))
    }

    fn fetch_manifest_from(
        &self,
        src: &Reference,
        reference: &str,
        pinned: Option<&Digest>,
        progress: &dyn Progress,
    ) -> Result<Fetched, RegistryError> {
        let shown = match pinned {
            Some(d) => src.with_digest(d.clone()).to_string(),
            None => src.to_string(),
        };
        let what = format!("reading manifest {shown}");
        let ep = self.endpoint(src, &format!("the manifest of {shown}"), progress)?;
        let scope = Scope::pull(src.repository());
        let url = ep.url(&format!("v2/{}/manifests/{reference}", src.repository()))?;
        let call = Call::new(self, Method::GET, url, &scope, &what, progress)
            .header(ACCEPT, MANIFEST_ACCEPT);
        // A body cut off half way (a reset, a proxy that drops a stalled
        // connection) is asked for again like a failed request, within the
        // same retry budget; a body over the size limit is not.
        let policy = &self.opts.retry;
        let mut retry = 0;
        let (media_type, served_digest, bytes) = loop {
            let resp = self.send(&ep, &call)?;
            let resp = self.check(&ep, resp, &[200], &what, &scope)?;
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let media_type = header(CONTENT_TYPE.as_str())
                .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
                .filter(|c| {
                    matches!(
                        crate::image::MediaType::classify(c),
                        crate::image::MediaType::Manifest | crate::image::MediaType::Index
                    )
                });
            let served_digest = header("docker-content-digest");
            match read_small(resp, MAX_MANIFEST_SIZE) {
                Ok(bytes) => break (media_type, served_digest, bytes),
                Err(e)
                    if e.kind() != std::io::ErrorKind::InvalidData && retry + 1 < policy.tries =>
                {
                    retry += 1;
                    let wait = policy.delay(retry, None);
                    progress.event(&Event::Retrying {
                        what: &what,
                        retry,
                        wait,
                        why: &crate::error_chain(&e),
                    });
                    std::thread::sleep(wait);
                }
                Err(e) => {
                    return Err(RegistryError::Io {
                        what: what.clone(),
                        source: e,
                    })
                }
            }
        };
        let digest = Digest::of(&bytes);
        let mismatch = |expected: Digest| RegistryError::DigestMismatch {
            what: what.clone(),
            registry: ep.registry.clone(),
            expected,
            actual: digest.clone(),
        };
        if let Some(p) = pinned {
            if *p != digest {
                return Err(mismatch(p.clone()));
            }
        }
        // Only sha256 headers can be checked; others are ignored.
        if let Some(h) = served_digest.and_then(|h| Digest::parse(&h).ok()) {
            if h != digest {
                return Err(mismatch(h));
            }
        }
        Ok(Fetched {
            bytes,
            digest,
            media_type,
            source: None,
        })
    }

    /// Whether the blob is in `r`'s repository (HEAD).
    pub fn blob_exists(
        &self,
        r: &Reference,
        digest: &Digest,
        progress: &dyn Progress,
    ) -> Result<bool, RegistryError> {
        let what = format!("checking blob {digest} in {}", r.name());
        let ep = self.endpoint(r, &what, progress)?;
        let scope = Scope::pull(r.repository());
        let url = ep.url(&format!("v2/{}/blobs/{digest}", r.repository()))?;
        let call = Call::new(self, Method::HEAD, url, &scope, &what, progress);
        let resp = self.send(&ep, &call)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => self.check(&ep, resp, &[], &what, &scope).map(|_| false),
        }
    }

    /// Downloads into the store, up to [`super::Options::parallel`] at a
    /// time, each of `blobs` that is not there yet; every blob is verified
    /// against its digest and size before it is kept. Mirrors are tried
    /// first. Offline, a missing blob is an error naming it.
    pub fn fetch_blobs(
        &self,
        r: &Reference,
        blobs: &[Descriptor],
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<FetchReport, RegistryError> {
        let mut report = FetchReport::default();
        let mut todo: Vec<&Descriptor> = Vec::new();
        for d in blobs {
            if report.present.contains(&d.digest) || todo.iter().any(|t| t.digest == d.digest) {
                continue;
            }
            if store.has(&d.digest) {
                report.present.push(d.digest.clone());
                progress.event(&Event::BlobDone {
                    digest: &d.digest,
                    size: d.size,
                    outcome: BlobOutcome::Present,
                });
            } else {
                todo.push(d);
            }
        }
        if todo.is_empty() {
            return Ok(report);
        }
        if let Some(first) = todo.first() {
            self.check_online(&format!("blob {} of {r}", first.digest), r)?;
        }
        let sources = self.pull_sources(r)?;
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let errors: Mutex<Vec<RegistryError>> = Mutex::new(Vec::new());
        let done: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());
        let workers = self.opts.parallel.clamp(1, 16).min(todo.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(d) = todo.get(i) else { return };
                    match self.fetch_one(&sources, r, d, store, progress) {
                        Ok(BlobOutcome::Downloaded) => {
                            lock(&done).push((i, d.size));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            lock(&errors).push(e);
                        }
                    }
                });
            }
        });
        if let Some(e) = errors
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .next()
        {
            return Err(e);
        }
        let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        done.sort();
        for (i, size) in done {
            report.downloaded.push(todo[i].digest.clone());
            report.bytes_downloaded += size;
        }
        Ok(report)
    }

    /// Resolves `r` for each of `platforms` and downloads every layer not
    /// yet in the store: all a pull needs before writing an output. The
    /// images come back in the order of `platforms`.
    pub fn pull(
        &self,
        r: &Reference,
        platforms: &[Platform],
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Vec<RemoteImage>, RegistryError> {
        let mut out = Vec::with_capacity(platforms.len());
        for p in platforms {
            let img = self.resolve(r, p, store, progress)?;
            self.fetch_blobs(r, &img.layers, store, progress)?;
            let name = format!("docker://{}", img.reference);
            crate::layer::verify::verify_base(
                store,
                &name,
                &img.layers,
                &img.config.rootfs.diff_ids,
            )?;
            out.push(img);
        }
        Ok(out)
    }

    /// A small blob (a config), from the store or else read into memory
    /// from the first source that has it, verified against its digest and
    /// size but not stored: the caller stores it once it has checked it.
    /// Whether it came from the store.
    fn fetch_small_blob(
        &self,
        sources: &[Reference],
        r: &Reference,
        desc: &Descriptor,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(Vec<u8>, bool), RegistryError> {
        if store.has(&desc.digest) {
            return Ok((store.read_blob(&desc.digest)?, true));
        }
        self.check_online(&format!("blob {} of {r}", desc.digest), r)?;
        let mut last = None;
        for src in sources {
            let what = format!("downloading blob {} from {}", desc.digest, src.name());
            let ep = match self.endpoint(src, &what, progress) {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let scope = Scope::pull(src.repository());
            let url = ep.url(&format!("v2/{}/blobs/{}", src.repository(), desc.digest))?;
            let mut tries = 0;
            let read = loop {
                let call = Call::new(self, Method::GET, url.clone(), &scope, &what, progress);
                let read = self
                    .send(&ep, &call)
                    .and_then(|resp| self.check(&ep, resp, &[200], &what, &scope))
                    .and_then(|resp| {
                        read_small(resp, MAX_MANIFEST_SIZE).map_err(|e| RegistryError::Io {
                            what: what.clone(),
                            source: e,
                        })
                    });
                // A body cut short is tried again (`send` retries the rest).
                tries += 1;
                match read {
                    Err(RegistryError::Io { source, .. })
                        if tries < self.opts.retry.tries
                            && source.kind() != std::io::ErrorKind::InvalidData =>
                    {
                        let why = super::client::error_chain(&source);
                        self.wait_to_retry(&what, tries, &why, progress);
                    }
                    other => break other,
                }
            };
            let bytes = match read {
                Ok(b) => b,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let actual = Digest::of(&bytes);
            if actual != desc.digest {
                last = Some(RegistryError::DigestMismatch {
                    what,
                    registry: ep.registry.clone(),
                    expected: desc.digest.clone(),
                    actual,
                });
                continue;
            }
            if bytes.len() as u64 != desc.size {
                last = Some(RegistryError::Protocol {
                    what,
                    registry: ep.registry.clone(),
                    why: format!(
                        "it is {} bytes, but its descriptor says {}",
                        bytes.len(),
                        desc.size
                    ),
                });
                continue;
            }
            return Ok((bytes, false));
        }
        Err(last.unwrap_or_else(|| no_source(desc, r)))
    }

    /// Waits before retry number `retry` of `what`, saying why.
    fn wait_to_retry(&self, what: &str, retry: u32, why: &str, progress: &dyn Progress) {
        let wait = self.opts.retry.delay(retry, None);
        progress.event(&Event::Retrying {
            what,
            retry,
            wait,
            why,
        });
        std::thread::sleep(wait);
    }

    /// Downloads one blob into the store from the first source that has
    /// it (unless the store has it already).
    pub(crate) fn fetch_one(
        &self,
        sources: &[Reference],
        r: &Reference,
        desc: &Descriptor,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<BlobOutcome, RegistryError> {
        if store.has(&desc.digest) {
            return Ok(BlobOutcome::Present);
        }
        self.check_online(&format!("blob {} of {r}", desc.digest), r)?;
        let mut last = None;
        for src in sources {
            match self.download(src, desc, store, progress) {
                Ok(()) => {
                    progress.event(&Event::BlobDone {
                        digest: &desc.digest,
                        size: desc.size,
                        outcome: BlobOutcome::Downloaded,
                    });
                    return Ok(BlobOutcome::Downloaded);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| no_source(desc, r)))
    }

    /// Streams one blob from `src` into the store: resumes with `Range`
    /// after an interruption when the server answers 206, else starts
    /// over; tries that made progress do not use up the retry budget.
    fn download(
        &self,
        src: &Reference,
        desc: &Descriptor,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let what = format!("downloading blob {} from {}", desc.digest, src.name());
        let ep = self.endpoint(src, &what, progress)?;
        let scope = Scope::pull(src.repository());
        let url = ep.url(&format!("v2/{}/blobs/{}", src.repository(), desc.digest))?;
        progress.event(&Event::BlobStart {
            digest: &desc.digest,
            size: desc.size,
            direction: Direction::Download,
        });
        let mut writer = store.writer()?;
        let mut failures: u32 = 0;
        // The most bytes any try has received: progress is measured
        // against it, not against where this try started.
        let mut most: u64 = 0;
        loop {
            let start = writer.count();
            let mut call = Call::new(self, Method::GET, url.clone(), &scope, &what, progress);
            call.timeout = Some(blob_deadline(desc.size.saturating_sub(start)));
            if start > 0 {
                call = call.header(RANGE, &format!("bytes={start}-"));
            }
            let resp = self.send(&ep, &call)?;
            let resp = self.check(&ep, resp, &[200, 206], &what, &scope)?;
            let status = resp.status().as_u16();
            if status == 206 {
                let range_start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start);
                if start == 0 || range_start != Some(start) {
                    // Not the range asked for: start over without one.
                    writer = store.writer()?;
                    failures += 1;
                    if failures >= self.opts.retry.tries {
                        return Err(RegistryError::Protocol {
                            what,
                            registry: ep.registry.clone(),
                            why: format!(
                                "it answered 206 with Content-Range starting at {range_start:?}, not at byte {start}"
                            ),
                        });
                    }
                    continue;
                }
            } else if start > 0 {
                // 200: the server ignored Range; the body is the whole blob.
                writer = store.writer()?;
            }
            let why = match copy_body(resp, &mut writer, desc, progress) {
                Ok(()) if writer.count() == desc.size => break,
                Ok(()) => format!(
                    "the body ended after {} of {} bytes",
                    writer.count(),
                    desc.size
                ),
                Err(CopyError::TooLong) => {
                    return Err(RegistryError::Protocol {
                        what,
                        registry: ep.registry.clone(),
                        why: format!("it sent more than the descriptor's {} bytes", desc.size),
                    })
                }
                Err(CopyError::Io(e)) => super::client::error_chain(&e),
            };
            if made_progress(most, writer.count(), desc.size) {
                failures = 0;
            }
            most = most.max(writer.count());
            failures += 1;
            if failures >= self.opts.retry.tries {
                return Err(RegistryError::Unreachable {
                    what,
                    registry: ep.registry.clone(),
                    detail: format!(
                        "interrupted after {} of {} bytes, {failures} times in a row: {why}",
                        writer.count(),
                        desc.size
                    ),
                });
            }
            self.wait_to_retry(&what, failures, &why, progress);
        }
        match writer.finish(Some(&desc.digest), Some(desc.size)) {
            Ok(_) => Ok(()),
            Err(StoreError::DigestMismatch {
                expected, actual, ..
            }) => Err(RegistryError::DigestMismatch {
                what,
                registry: ep.registry.clone(),
                expected,
                actual,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The repository's tags (following `Link` pagination).
    pub fn tags(
        &self,
        r: &Reference,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, RegistryError> {
        self.check_blocked(r)?;
        let r = self.conf.rewrite(r)?;
        let what = format!("listing tags of {}", r.name());
        let ep = self.endpoint(&r, &what, progress)?;
        let scope = Scope::pull(r.repository());
        let mut url = ep.url(&format!("v2/{}/tags/list", r.repository()))?;
        let mut out = Vec::new();
        for _ in 0..1000 {
            let call = Call::new(self, Method::GET, url.clone(), &scope, &what, progress);
            let resp = self.send(&ep, &call)?;
            let resp = self.check(&ep, resp, &[200], &what, &scope)?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|l| resp.url().join(&l).ok());
            let body = read_small(resp, 16 << 20).map_err(|e| RegistryError::Io {
                what: what.clone(),
                source: e,
            })?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    what: what.clone(),
                    registry: ep.registry.clone(),
                    why: format!("its tag list is not JSON: {e}"),
                })?;
            if let Some(tags) = v.get("tags").and_then(|t| t.as_array()) {
                out.extend(tags.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
            match next {
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// The error when no source was there to read `desc` from.
fn no_source(desc: &Descriptor, r: &Reference) -> RegistryError {
    RegistryError::Protocol {
        what: format!("downloading blob {}", desc.digest),
        registry: r.registry().to_owned(),
        why: "no source to read it from".into(),
    }
}

/// The store's cache kind for tag → digest records.
const TAG_KIND: &str = "registry-tag";

/// The store key for a tag reference: the hash of its full name.
fn tag_key(r: &Reference) -> String {
    Digest::of(r.to_string().as_bytes()).hex().to_owned()
}

fn remember_tag(store: &Store, r: &Reference, d: &Digest) -> Result<(), RegistryError> {
    store.put_key(TAG_KIND, &tag_key(r), d.as_str().as_bytes())?;
    Ok(())
}

fn remembered_tag(store: &Store, r: &Reference) -> Result<Option<Digest>, RegistryError> {
    let Some(bytes) = store.get_key(TAG_KIND, &tag_key(r))? else {
        return Ok(None);
    };
    // A damaged record is as good as none: the network would be needed.
    Ok(std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| Digest::parse(s.trim()).ok())
        .filter(|d| store.has(d)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The deadline for one blob transfer of `remaining` bytes (see the module
/// docs of [`crate::registry`]: a 256 KiB/s floor on top of 5 minutes).
pub(crate) fn blob_deadline(remaining: u64) -> Duration {
    Duration::from_secs(300 + remaining / (256 * 1024))
}

/// How far past the most bytes ever received a try must get to count as
/// progress (or to the blob's end, when less is left).
const MIN_PROGRESS: u64 = 1 << 20;

/// Whether a download try that ended with `now` bytes made progress,
/// given that tries before it got at most `most` bytes of `size`.
fn made_progress(most: u64, now: u64, size: u64) -> bool {
    now > most && now - most >= MIN_PROGRESS.min(size.saturating_sub(most))
}

enum CopyError {
    TooLong,
    Io(std::io::Error),
}

/// Copies a body into the store writer, refusing more than the
/// descriptor's size, reporting progress every 512 KiB.
fn copy_body(
    mut resp: reqwest::blocking::Response,
    writer: &mut crate::store::BlobWriter,
    desc: &Descriptor,
    progress: &dyn Progress,
) -> Result<(), CopyError> {
    use std::io::Write;
    let mut buf = vec![0u8; 256 * 1024];
    let mut since_report = 0u64;
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e)),
        };
        if writer.count() + n as u64 > desc.size {
            return Err(CopyError::TooLong);
        }
        writer.write_all(&buf[..n]).map_err(CopyError::Io)?;
        since_report += n as u64;
        if since_report >= 512 * 1024 {
            since_report = 0;
            progress.event(&Event::BlobProgress {
                digest: &desc.digest,
                done: writer.count(),
                size: desc.size,
            });
        }
    }
    progress.event(&Event::BlobProgress {
        digest: &desc.digest,
        done: writer.count(),
        size: desc.size,
    });
    Ok(())
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

/// The `rel="next"` target of a `Link` header.
fn next_link(v: &str) -> Option<String> {
    for part in v.split(',') {
        let (target, params) = part.split_once(';')?;
        if params.replace(' ', "").contains("rel=\"next\"") {
            let t = target.trim();
            return Some(t.strip_prefix('<')?.strip_suffix('>')?.to_owned());
        }
    }
    None
}

/// The `mediaType` field inside a document, if it has one.
fn embedded_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Peek>(bytes).ok()?.media_type
}

/// `sources` with the one at `first` moved to the front.
fn prefer(sources: &[Reference], first: Option<usize>) -> Vec<Reference> {
    let mut out = Vec::with_capacity(sources.len());
    if let Some(s) = first.and_then(|i| sources.get(i)) {
        out.push(s.clone());
    }
    for (i, s) in sources.iter().enumerate() {
        if Some(i) != first {
            out.push(s.clone());
        }
    }
    out
}

/// Maps an index into `ordered` back to `sources`.
fn source_index(sources: &[Reference], ordered: &[Reference], i: usize) -> usize {
    ordered
        .get(i)
        .and_then(|s| sources.iter().position(|x| x == s))
        .unwrap_or(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsers_table() {
        for (v, want) in [
            ("bytes 100-999/1000", Some(100)),
            ("bytes 0-0/1", Some(0)),
            ("bytes */1000", None),
            ("items 1-2/3", None),
            ("", None),
        ] {
            assert_eq!(content_range_start(v), want, "{v}");
        }
        for (v, want) in [
            (
                r#"</v2/a/tags/list?last=x&n=100>; rel="next""#,
                Some("/v2/a/tags/list?last=x&n=100"),
            ),
            (
                r#"<https://x/y>; rel="prev", <https://x/z>; rel="next""#,
                Some("https://x/z"),
            ),
            (r#"<https://x/y>; rel="prev""#, None),
            ("garbage", None),
        ] {
            assert_eq!(next_link(v).as_deref(), want, "{v}");
        }
        assert_eq!(
            embedded_media_type(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#)
                .as_deref(),
            Some(media::OCI_INDEX)
        );
        assert_eq!(embedded_media_type(b"{}"), None);
        assert!(blob_deadline(0) >= Duration::from_secs(300));
        let mib = MIN_PROGRESS;
        for (most, now, size, want) in [
            (0, 10, 100, false),
            (0, 100, 100, true),
            (90, 95, 100, false),
            (90, 100, 100, true),
            (0, mib, 10 * mib, true),
            (mib, mib + 10, 10 * mib, false),
            (mib, 2 * mib, 10 * mib, true),
            (5 * mib, 3 * mib, 10 * mib, false),
        ] {
            assert_eq!(made_progress(most, now, size), want, "{most} {now} {size}");
        }
        assert_eq!(blob_deadline(256 * 1024 * 100), Duration::from_secs(400));
    }
}
