//! Writing to registries: blobs (skip, mount or upload), then manifests,
//! then the index and tags.
//!
//! Each request is a round trip, and on a code edit round trips are most
//! of what a push costs, so each blob takes the cheapest way that is
//! still sure:
//!
//! - remembered there (`known.rs`: hoist pushed, mounted or found it in
//!   this repository before): no request at all. If the memory is wrong
//!   (the blob was deleted behind hoist's back), the registry refuses the
//!   manifest naming a missing blob; [`Client::push`] then forgets the
//!   repository's memory, goes over every blob again as below, and puts
//!   the manifest once more;
//! - else `HEAD` (already there: skip it), except for a small stored blob
//!   in a repository hoist knows: that is most likely new, and is sent
//!   without asking;
//! - a cross-repository mount from the base's repository when the base
//!   lives on the same registry (201: done; 202: the registry opened an
//!   upload instead, which is then used);
//! - else an upload from the store: a blob under [`SINGLE_POST_MAX`] in one
//!   `POST ?digest=` with its bytes (the distribution spec's single-request
//!   upload; a registry that does not take it answers 202 with a session,
//!   and the push sends no more such POSTs); a blob up to [`UPLOAD_CHUNK`]
//!   in one `PUT ?digest=` into the session; larger ones in `PATCH` chunks
//!   and a final `PUT`. A blob that is not in the local store is
//!   downloaded from the base only when it has to be uploaded, so pushing
//!   onto the registry that holds the base never downloads base layers.
//!
//! Up to [`super::Options::parallel`] blobs move at once.
//!
//! An upload counts only when the registry confirms it: each `PATCH`'s
//! `Range` must end where the bytes sent end, and the final `PUT`'s
//! `Docker-Content-Digest` must be the blob's (without one, a `HEAD` must
//! find the blob at its size); a mount's answer is checked the same way.
//! Anything else fails the push naming the blob and what the registry
//! said, before any manifest is put.
//!
//! Manifests go up only when all their blobs are there, children (by
//! digest) before the index, and the index (or the single manifest) last,
//! under every tag: a reader never sees a tag pointing at something
//! incomplete.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::auth::Scope;
use super::client::{Call, Client, Endpoint};
use super::known::KnownBlobs;
use super::pull::blob_deadline;
use super::{BlobOutcome, Direction, Event, Progress, RegistryError};
use crate::digest::Digest;
use crate::image::{media, Descriptor};
use crate::net::retry::{is_retryable_status, retry_after};
use crate::reference::{is_valid_tag, Reference};
use crate::store::Store;

/// One image to push.
#[derive(Debug, Clone)]
pub struct PushImage {
    /// The manifest's descriptor: media type, digest and size (and the
    /// platform, for an image under an index).
    pub manifest: Descriptor,
    /// The manifest exactly as hashed into `manifest.digest`.
    pub manifest_bytes: Vec<u8>,
    /// The config and layers. A blob need not be in the local store when
    /// the target registry has it or the plan's `base` can provide it.
    pub blobs: Vec<Descriptor>,
}

/// What to push to a target reference.
#[derive(Debug, Clone, Copy)]
pub struct PushPlan<'a> {
    /// One image, or several under `index`.
    pub images: &'a [PushImage],
    /// An image index over `images` (exact bytes); pushed under the tags,
    /// its children by digest. Required when there are several images.
    pub index: Option<&'a [u8]>,
    /// Tags to push besides the target reference's own.
    pub extra_tags: &'a [String],
    /// The base image's reference: its blobs are mounted from it when it
    /// is on the target's registry, and downloaded from it when they must
    /// be uploaded but are not in the local store.
    pub base: Option<&'a Reference>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The target as pushed (after any registries.conf location rewrite).
    pub target: Reference,
    /// The digest of what the tags point at: the index, or the manifest.
    pub digest: Digest,
    pub uploaded: Vec<Digest>,
    pub mounted: Vec<Digest>,
    /// Blobs the registry already had.
    pub skipped: Vec<Digest>,
    /// Blobs downloaded from the base to be uploaded.
    pub downloaded: Vec<Digest>,
    pub bytes_uploaded: u64,
    /// Every manifest and index pushed, in order.
    pub manifests: Vec<Digest>,
    /// The tags pushed.
    pub tags: Vec<String>,
}

struct BlobResult {
    outcome: BlobOutcome,
    downloaded: bool,
}

impl Client {
    /// Pushes `plan` to `target` (see the module docs for the order).
    /// `target`'s tag is pushed, and `plan.extra_tags`; a target with only
    /// a digest is pushed by digest, which must be the top document's.
    pub fn push(
        &self,
        target: &Reference,
        plan: &PushPlan<'_>,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<PushReport, RegistryError> {
        let invalid = |why: String| RegistryError::Protocol {
            what: format!("pushing to {target}"),
            registry: target.registry().to_owned(),
            why,
        };
        if plan.images.is_empty() {
            return Err(invalid("there is no image to push".into()));
        }
        if plan.index.is_none() && plan.images.len() != 1 {
            return Err(invalid(format!(
                "{} images need an index to be pushed under one name",
                plan.images.len()
            )));
        }
        for im in plan.images {
            let actual = Digest::of(&im.manifest_bytes);
            if actual != im.manifest.digest {
                return Err(invalid(format!(
                    "manifest bytes hash to {actual}, but its descriptor says {}",
                    im.manifest.digest
                )));
            }
        }
        let top = match plan.index {
            Some(ix) => Digest::of(ix),
            None => plan.images[0].manifest.digest.clone(),
        };
        if let Some(d) = target.digest() {
            if *d != top {
                return Err(invalid(format!(
                    "the target names digest {d}, but what is pushed is {top}"
                )));
            }
        }
        let mut tags: Vec<String> = Vec::new();
        for t in target
            .tag()
            .into_iter()
            .map(str::to_owned)
            .chain(plan.extra_tags.iter().cloned())
        {
            if !is_valid_tag(&t) {
                return Err(invalid(format!("`{t}` is not a valid tag")));
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        self.check_blocked(target)?;
        let target = self.conf.rewrite(target)?;
        let what = format!("pushing to {target}");
        let ep = self.endpoint(&target, &what, progress)?;

        // The base: mounted from when on the same registry, downloaded
        // from when a blob must be uploaded and is not in the store.
        let base = match plan.base {
            Some(b) => {
                self.check_blocked(b)?;
                Some(self.conf.rewrite(b)?)
            }
            None => None,
        };
        let mount_from = base
            .as_ref()
            .filter(|b| b.api_host() == target.api_host() && b.repository() != target.repository());
        let base_sources = match plan.base {
            Some(b) => self.pull_sources(b)?,
            None => Vec::new(),
        };
        let scope = Scope::push(target.repository(), mount_from.map(|b| b.repository()));
        // One token for all the parallel transfers (and an early, clear
        // error when it cannot be had).
        self.authorization(&ep, &scope, &what, progress)?;

        let mut blobs: Vec<&Descriptor> = Vec::new();
        for im in plan.images {
            for b in &im.blobs {
                if !blobs.iter().any(|x| x.digest == b.digest) {
                    blobs.push(b);
                }
            }
        }
        let single_post = AtomicBool::new(true);
        let mut ctx = BlobCtx {
            ep: &ep,
            target: &target,
            scope: &scope,
            mount_from,
            base: plan.base,
            base_sources: &base_sources,
            store,
            progress,
            known: KnownBlobs::load(store, &target),
            single_post: &single_post,
        };
        let trusted = blobs.iter().any(|b| ctx.known.contains(&b.digest));
        let attempt = Attempt {
            plan,
            blobs: &blobs,
            tags: &tags,
            top: &top,
        };
        let report = match self.push_once(&ctx, &attempt) {
            Ok(r) => r,
            // The memory was wrong: a blob skipped on its word is gone.
            // Forget it, check every blob again, and put once more.
            Err(e) if trusted && names_missing_blob(&e, &blobs) => {
                let why = e.to_string();
                progress.event(&Event::Retrying {
                    what: &what,
                    retry: 1,
                    wait: Duration::ZERO,
                    why: &format!("{why}; checking every blob again instead of trusting what hoist remembered of {}", target.name()),
                });
                // Best effort: a store that cannot be written still
                // pushes; the memory is not consulted below either way.
                let _ = KnownBlobs::forget(store, &target);
                ctx.known = KnownBlobs::default();
                self.push_once(&ctx, &attempt)?
            }
            Err(e) => return Err(e),
        };
        // Every blob is there now: the registry accepted manifests naming
        // them. Best effort, as above.
        let mut known = ctx.known;
        let learnt = blobs.iter().any(|b| !known.contains(&b.digest));
        for b in &blobs {
            known.add(b.digest.clone());
        }
        if learnt {
            let _ = known.save(store, &target);
        }
        Ok(report)
    }

    /// One go at [`Client::push`] after its checks: the blobs, then the
    /// manifests.
    fn push_once(
        &self,
        ctx: &BlobCtx<'_>,
        attempt: &Attempt<'_>,
    ) -> Result<PushReport, RegistryError> {
        let Attempt {
            plan,
            blobs,
            tags,
            top,
        } = *attempt;
        let (ep, target, scope, progress) = (ctx.ep, ctx.target, ctx.scope, ctx.progress);

        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, BlobResult)>> = Mutex::new(Vec::new());
        let errors: Mutex<Vec<RegistryError>> = Mutex::new(Vec::new());
        let workers = self.opts.parallel.clamp(1, 16).min(blobs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(d) = blobs.get(i) else { return };
                    match self.push_blob(ctx, d) {
                        Ok(r) => {
                            progress.event(&Event::BlobDone {
                                digest: &d.digest,
                                size: d.size,
                                outcome: r.outcome,
                            });
                            lock(&results).push((i, r));
                        }
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
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        let mut report = PushReport {
            target: target.clone(),
            digest: top.clone(),
            uploaded: Vec::new(),
            mounted: Vec::new(),
            skipped: Vec::new(),
            downloaded: Vec::new(),
            bytes_uploaded: 0,
            manifests: Vec::new(),
            tags: Vec::new(),
        };
        for (i, r) in results {
            let d = blobs[i];
            if r.downloaded {
                report.downloaded.push(d.digest.clone());
            }
            match r.outcome {
                BlobOutcome::Uploaded => {
                    report.uploaded.push(d.digest.clone());
                    report.bytes_uploaded += d.size;
                }
                BlobOutcome::Mounted => report.mounted.push(d.digest.clone()),
                _ => report.skipped.push(d.digest.clone()),
            }
        }

        match plan.index {
            Some(ix) => {
                for im in plan.images {
                    self.put_manifest(
                        ep,
                        target,
                        scope,
                        im.manifest.digest.as_str(),
                        &im.manifest_bytes,
                        &manifest_media_type(&im.manifest, &im.manifest_bytes),
                        &im.manifest.digest,
                        progress,
                    )?;
                    report.manifests.push(im.manifest.digest.clone());
                }
                let mt = embedded_media_type(ix).unwrap_or_else(|| media::OCI_INDEX.to_owned());
                self.put_tagged(ep, target, scope, tags, ix, &mt, top, progress)?;
                report.manifests.push(top.clone());
            }
            None => {
                let im = &plan.images[0];
                let mt = manifest_media_type(&im.manifest, &im.manifest_bytes);
                self.put_tagged(
                    ep,
                    target,
                    scope,
                    tags,
                    &im.manifest_bytes,
                    &mt,
                    top,
                    progress,
                )?;
                report.manifests.push(top.clone());
            }
        }
        report.tags = tags.to_vec();
        Ok(report)
    }

    /// Puts the top document under every tag, or by digest when there is
    /// no tag.
    #[allow(clippy::too_many_arguments)]
    fn put_tagged(
        &self,
        ep: &Endpoint,
        target: &Reference,
        scope: &Scope,
        tags: &[String],
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        if tags.is_empty() {
            return self.put_manifest(
                ep,
                target,
                scope,
                digest.as_str(),
                bytes,
                media_type,
                digest,
                progress,
            );
        }
        for t in tags {
            self.put_manifest(ep, target, scope, t, bytes, media_type, digest, progress)?;
        }
        Ok(())
    }

    /// `PUT /v2/NAME/manifests/REFERENCE` with the exact bytes.
    #[allow(clippy::too_many_arguments)]
    fn put_manifest(
        &self,
        ep: &Endpoint,
        target: &Reference,
        scope: &Scope,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let shown = if reference.starts_with("sha256:") {
            format!("{}@{reference}", target.name())
        } else {
            format!("{}:{reference}", target.name())
        };
        let what = format!("pushing manifest {shown}");
        let url = ep.url(&format!("v2/{}/manifests/{reference}", target.repository()))?;
        let make = || -> std::io::Result<Body> { Ok(Body::from(bytes.to_vec())) };
        let mut call = Call::new(self, Method::PUT, url, scope, &what, progress)
            .header(CONTENT_TYPE, media_type);
        call.body = Some(&make);
        let resp = self.send(ep, &call)?;
        let resp = self.check(ep, resp, &[200, 201, 202, 204], &what, scope)?;
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
        {
            if h != *digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    registry: ep.registry.clone(),
                    expected: digest.clone(),
                    actual: h,
                });
            }
        }
        progress.event(&Event::ManifestPushed {
            reference: &shown,
            digest,
        });
        Ok(())
    }

    /// Skips, mounts or uploads one blob.
    fn push_blob(&self, ctx: &BlobCtx<'_>, d: &Descriptor) -> Result<BlobResult, RegistryError> {
        let repo = ctx.target.repository();
        let what = format!("pushing blob {} to {}", d.digest, ctx.target.name());
        // Remembered there: no request (a wrong memory shows when the
        // manifest is put; see `Client::push`).
        if ctx.known.contains(&d.digest) {
            return Ok(BlobResult {
                outcome: BlobOutcome::Exists,
                downloaded: false,
            });
        }
        // A small stored blob that a repository hoist knows is not
        // remembered to hold is most likely new (a code edit's layer and
        // config): sending it costs about what asking would, and saves the
        // question. Anything else is asked about first.
        let ask = d.size > SINGLE_POST_MAX || ctx.known.is_empty() || !ctx.store.has(&d.digest);
        // Already there?
        if ask {
            let url = ctx.ep.url(&format!("v2/{repo}/blobs/{}", d.digest))?;
            let call = Call::new(self, Method::HEAD, url, ctx.scope, &what, ctx.progress);
            let resp = self.send(ctx.ep, &call)?;
            match resp.status().as_u16() {
                200 => {
                    return Ok(BlobResult {
                        outcome: BlobOutcome::Exists,
                        downloaded: false,
                    })
                }
                404 => {}
                _ => {
                    self.check(ctx.ep, resp, &[], &what, ctx.scope)?;
                }
            }
        }
        // Mount from the base's repository.
        let mut session: Option<Url> = None;
        if let (Some(from), true) = (ctx.mount_from, ask) {
            let mut url = ctx.ep.url(&format!("v2/{repo}/blobs/uploads/"))?;
            url.query_pairs_mut()
                .append_pair("mount", d.digest.as_str())
                .append_pair("from", from.repository());
            let call = Call::new(self, Method::POST, url, ctx.scope, &what, ctx.progress)
                .header(CONTENT_LENGTH, "0");
            let resp = self.send(ctx.ep, &call)?;
            match resp.status().as_u16() {
                201 => {
                    self.confirm(ctx, d, &what, "the mount", resp.headers())?;
                    return Ok(BlobResult {
                        outcome: BlobOutcome::Mounted,
                        downloaded: false,
                    });
                }
                202 => session = Some(ctx.ep.resolve_location(&resp, &what)?),
                // Anything else (no pull right on the base, mounts not
                // supported): upload instead.
                _ => {}
            }
        }
        // Upload, from the store (downloading from the base first if need be).
        let mut downloaded = false;
        if !ctx.store.has(&d.digest) {
            match (ctx.base, ctx.base_sources.is_empty()) {
                (Some(base), false) => {
                    self.fetch_one(ctx.base_sources, base, d, ctx.store, ctx.progress)?;
                    downloaded = true;
                }
                _ => {
                    return Err(RegistryError::MissingBlob {
                        digest: d.digest.clone(),
                        target: ctx.target.name(),
                        why: "the registry does not have it either, and no base to fetch it from was given".into(),
                    })
                }
            }
        }
        let mut failures = 0u32;
        loop {
            // What the registry asked for with `Retry-After` when it turned
            // a chunk or the final PUT away (those are not resent within
            // the session, so `send` does not wait for them).
            let mut asked = None;
            let result = match session.take() {
                Some(s) => self.upload_to(ctx, s, d, &what, &mut asked),
                None => self
                    .start_upload(ctx, d, &what, &mut asked)
                    .and_then(|started| match started {
                        Some(s) => self.upload_to(ctx, s, d, &what, &mut asked),
                        None => Ok(()),
                    }),
            };
            let err = match result {
                Ok(()) => {
                    return Ok(BlobResult {
                        outcome: BlobOutcome::Uploaded,
                        downloaded,
                    })
                }
                Err(e) => e,
            };
            let retryable = match &err {
                RegistryError::Unreachable { .. } | RegistryError::Io { .. } => true,
                RegistryError::Status { status, .. } => is_retryable_status(*status),
                // An upload session the registry forgot (expired).
                RegistryError::NotFound { .. } => true,
                _ => false,
            };
            failures += 1;
            let too_long = asked.is_some_and(|a| a > self.opts.retry.max_retry_after);
            if !retryable || too_long || failures >= self.opts.retry.tries {
                return Err(err);
            }
            let wait = self.opts.retry.delay(failures, asked);
            let why = err.to_string();
            ctx.progress.event(&Event::Retrying {
                what: &what,
                retry: failures,
                wait,
                why: &why,
            });
            std::thread::sleep(wait);
        }
    }

    /// `POST /v2/NAME/blobs/uploads/`: opens an upload session, or, for a
    /// blob of at most [`SINGLE_POST_MAX`] bytes, sends it whole with
    /// `?digest=` (the distribution spec's single-request upload). `None`
    /// when that finished the upload (201); else the session to upload to
    /// (202: a registry that ignores the body opens one, as the spec
    /// says, and is then asked no more single requests in this push).
    fn start_upload(
        &self,
        ctx: &BlobCtx<'_>,
        d: &Descriptor,
        what: &str,
        asked: &mut Option<Duration>,
    ) -> Result<Option<Url>, RegistryError> {
        let mut url = ctx
            .ep
            .url(&format!("v2/{}/blobs/uploads/", ctx.target.repository()))?;
        if d.size > SINGLE_POST_MAX || !ctx.single_post.load(Ordering::Relaxed) {
            let call = Call::new(self, Method::POST, url, ctx.scope, what, ctx.progress)
                .header(CONTENT_LENGTH, "0");
            let resp = self.send(ctx.ep, &call)?;
            let resp = self.check(ctx.ep, resp, &[202], what, ctx.scope)?;
            return ctx.ep.resolve_location(&resp, what).map(Some);
        }
        let bytes = read_whole(ctx, d, what)?;
        url.query_pairs_mut()
            .append_pair("digest", d.digest.as_str());
        ctx.progress.event(&Event::BlobStart {
            digest: &d.digest,
            size: d.size,
            direction: Direction::Upload,
        });
        let make = || -> std::io::Result<Body> { Ok(Body::from(bytes.clone())) };
        let mut call = Call::new(self, Method::POST, url, ctx.scope, what, ctx.progress)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, &bytes.len().to_string());
        call.body = Some(&make);
        call.retry = false;
        let resp = self.send(ctx.ep, &call)?;
        *asked = retry_after(&resp);
        let resp = self.check(ctx.ep, resp, &[201, 202], what, ctx.scope)?;
        if resp.status().as_u16() == 202 {
            ctx.single_post.store(false, Ordering::Relaxed);
            return ctx.ep.resolve_location(&resp, what).map(Some);
        }
        self.uploaded(ctx, d, what, "the single-request upload", resp.headers())?;
        Ok(None)
    }

    /// Sends the stored blob into an upload session in chunks of at most
    /// [`UPLOAD_CHUNK`] bytes (`PATCH` with `Content-Range`, as Docker's
    /// chunked upload), then `PUT ?digest=`. Each chunk is read into memory
    /// and sent whole: memory stays bounded by the chunk size whatever the
    /// blob's, and reqwest's blocking client, which pumps a streamed body
    /// through a channel 8 KiB at a time, is not the bottleneck.
    fn upload_to(
        &self,
        ctx: &BlobCtx<'_>,
        session: Url,
        d: &Descriptor,
        what: &str,
        asked: &mut Option<Duration>,
    ) -> Result<(), RegistryError> {
        let path = ctx.store.blob_path(&d.digest);
        let count = Arc::new(AtomicU64::new(0));
        let io_err = |source: std::io::Error| RegistryError::Io {
            what: format!("{what}: reading {}", path.display()),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        ctx.progress.event(&Event::BlobStart {
            digest: &d.digest,
            size: d.size,
            direction: Direction::Upload,
        });
        let mut next = session;
        if len <= UPLOAD_CHUNK {
            // One request: `PUT ?digest=` with the whole blob (the spec's
            // monolithic upload; no `PATCH`).
            let mut chunk = vec![0u8; len as usize];
            file.read_exact(&mut chunk).map_err(io_err)?;
            next.query_pairs_mut()
                .append_pair("digest", d.digest.as_str());
            let make = || -> std::io::Result<Body> { Ok(Body::from(chunk.clone())) };
            let mut call = Call::new(self, Method::PUT, next, ctx.scope, what, ctx.progress)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, &len.to_string());
            call.body = Some(&make);
            call.retry = false;
            call.timeout = Some(blob_deadline(len));
            let resp = with_monitor(ctx.progress, d, &count, || self.send(ctx.ep, &call))?;
            *asked = retry_after(&resp);
            let resp = self.check(ctx.ep, resp, &[201, 204], what, ctx.scope)?;
            return self.uploaded(ctx, d, what, "the final PUT", resp.headers());
        }
        let mut offset = 0u64;
        loop {
            let n = UPLOAD_CHUNK.min(len - offset);
            let mut chunk = vec![0u8; n as usize];
            file.read_exact(&mut chunk).map_err(io_err)?;
            let make = || -> std::io::Result<Body> { Ok(Body::from(chunk.clone())) };
            let mut call = Call::new(
                self,
                Method::PATCH,
                next.clone(),
                ctx.scope,
                what,
                ctx.progress,
            )
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, &n.to_string());
            if n > 0 {
                call = call.header(
                    reqwest::header::CONTENT_RANGE,
                    &format!("{offset}-{}", offset + n - 1),
                );
            }
            call.body = Some(&make);
            call.retry = false;
            call.timeout = Some(blob_deadline(n));
            let resp = with_monitor(ctx.progress, d, &count, || self.send(ctx.ep, &call))?;
            *asked = retry_after(&resp);
            let resp = self.check(ctx.ep, resp, &[202, 204], what, ctx.scope)?;
            // The registry's `Range` says what it holds: it must end where
            // the bytes sent end, or part of the blob was lost.
            let held = resp
                .headers()
                .get(reqwest::header::RANGE)
                .and_then(|v| v.to_str().ok());
            if let (true, Some(held)) = (n > 0, held) {
                if range_end(held) != Some(offset + n - 1) {
                    return Err(self.not_confirmed(
                        ctx,
                        d,
                        what,
                        format!(
                            "after bytes {offset}-{} were sent, its upload holds `Range: {}`",
                            offset + n - 1,
                            self.secrets.clean(held)
                        ),
                    ));
                }
            }
            if resp.headers().get(reqwest::header::LOCATION).is_some() {
                next = ctx.ep.resolve_location(&resp, what)?;
            }
            offset += n;
            count.store(offset, Ordering::Relaxed);
            if offset >= len {
                break;
            }
        }
        next.query_pairs_mut()
            .append_pair("digest", d.digest.as_str());
        let call = Call::new(self, Method::PUT, next, ctx.scope, what, ctx.progress)
            .header(CONTENT_LENGTH, "0");
        let mut call = call;
        call.retry = false;
        let resp = self.send(ctx.ep, &call)?;
        *asked = retry_after(&resp);
        let resp = self.check(ctx.ep, resp, &[201, 204], what, ctx.scope)?;
        self.uploaded(ctx, d, what, "the final PUT", resp.headers())
    }
}

impl Client {
    /// The end of an upload: [`Client::confirm`], then the blob reported
    /// whole.
    fn uploaded(
        &self,
        ctx: &BlobCtx<'_>,
        d: &Descriptor,
        what: &str,
        step: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<(), RegistryError> {
        self.confirm(ctx, d, what, step, headers)?;
        ctx.progress.event(&Event::BlobProgress {
            digest: &d.digest,
            done: d.size,
            size: d.size,
        });
        Ok(())
    }

    /// Confirms that the registry holds blob `d` after `step` (an upload's
    /// final `PUT`, a mount): its `Docker-Content-Digest` must be the
    /// blob's; without one, a `HEAD` must find the blob with its size.
    fn confirm(
        &self,
        ctx: &BlobCtx<'_>,
        d: &Descriptor,
        what: &str,
        step: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<(), RegistryError> {
        let said = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        match said.map(Digest::parse) {
            Some(Ok(h)) if h == d.digest => return Ok(()),
            Some(Ok(h)) => {
                return Err(self.not_confirmed(
                    ctx,
                    d,
                    what,
                    format!("its answer to {step} names digest {h}, not the blob's"),
                ))
            }
            // No header, or one hoist cannot check (another algorithm).
            _ => {}
        }
        let url = ctx.ep.url(&format!(
            "v2/{}/blobs/{}",
            ctx.target.repository(),
            d.digest
        ))?;
        let call = Call::new(self, Method::HEAD, url, ctx.scope, what, ctx.progress);
        let resp = self.send(ctx.ep, &call)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.not_confirmed(
                ctx,
                d,
                what,
                format!("its answer to {step} names no digest, and a HEAD of the blob then answered HTTP {status}"),
            ));
        }
        let h = |k| resp.headers().get(k).and_then(|v| v.to_str().ok());
        if let Some(len) = h(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok()) {
            if len != d.size {
                return Err(self.not_confirmed(
                    ctx,
                    d,
                    what,
                    format!(
                        "a HEAD of the blob after {step} says {len} bytes, not the blob's {}",
                        d.size
                    ),
                ));
            }
        }
        if let Some(Ok(h)) = h(reqwest::header::HeaderName::from_static(
            "docker-content-digest",
        ))
        .map(Digest::parse)
        {
            if h != d.digest {
                return Err(self.not_confirmed(
                    ctx,
                    d,
                    what,
                    format!("a HEAD of the blob after {step} names digest {h}"),
                ));
            }
        }
        Ok(())
    }

    fn not_confirmed(
        &self,
        ctx: &BlobCtx<'_>,
        d: &Descriptor,
        what: &str,
        why: String,
    ) -> RegistryError {
        RegistryError::BlobNotConfirmed {
            what: what.to_owned(),
            registry: ctx.ep.registry.clone(),
            digest: d.digest.clone(),
            why,
        }
    }
}

/// The last byte of an upload's `Range: 0-END` (also `bytes=0-END`).
fn range_end(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v.split_once('-')?;
    start.trim().parse::<u64>().ok()?;
    end.trim().parse().ok()
}

/// The largest piece of a blob one upload request carries.
const UPLOAD_CHUNK: u64 = 16 << 20;

/// Blobs up to this size (configs, small layers) are sent in the `POST`
/// that starts their upload.
const SINGLE_POST_MAX: u64 = 1 << 20;

/// A small stored blob, read whole for a single-request upload.
fn read_whole(ctx: &BlobCtx<'_>, d: &Descriptor, what: &str) -> Result<Vec<u8>, RegistryError> {
    let path = ctx.store.blob_path(&d.digest);
    let bytes = std::fs::read(&path).map_err(|source| RegistryError::Io {
        what: format!("{what}: reading {}", path.display()),
        source,
    })?;
    if bytes.len() as u64 != d.size {
        return Err(RegistryError::Protocol {
            what: what.to_owned(),
            registry: ctx.ep.registry.clone(),
            why: format!(
                "the stored blob has {} bytes, but its descriptor says {}",
                bytes.len(),
                d.size
            ),
        });
    }
    Ok(bytes)
}

/// What every blob of one push shares.
struct BlobCtx<'a> {
    ep: &'a Endpoint,
    target: &'a Reference,
    scope: &'a Scope,
    mount_from: Option<&'a Reference>,
    base: Option<&'a Reference>,
    base_sources: &'a [Reference],
    store: &'a Store,
    progress: &'a dyn Progress,
    /// What the target repository is remembered to hold (see `known.rs`).
    known: KnownBlobs,
    /// Whether a small blob is still sent in one `POST ?digest=`: cleared
    /// when the registry answers one with an upload session instead.
    single_post: &'a AtomicBool,
}

/// What one go at a push sends.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    plan: &'a PushPlan<'a>,
    blobs: &'a [&'a Descriptor],
    tags: &'a [String],
    top: &'a Digest,
}

/// Whether `e`, the refusal of a manifest, says one of its blobs is
/// missing: a 4xx other than 401/403 whose message has distribution's
/// `BLOB_UNKNOWN` / `MANIFEST_BLOB_UNKNOWN`, names one of `blobs`, or
/// speaks of a blob.
fn names_missing_blob(e: &RegistryError, blobs: &[&Descriptor]) -> bool {
    let message = match e {
        RegistryError::Status {
            status: 400..=499,
            message,
            ..
        }
        | RegistryError::NotFound { message, .. } => message.as_str(),
        _ => return false,
    };
    let lower = message.to_ascii_lowercase();
    lower.contains("blob_unknown")
        || lower.contains("blob")
        || blobs.iter().any(|b| lower.contains(b.digest.hex()))
}

/// Runs `f` (an upload) while a helper thread reports how many bytes the
/// body has handed over, every 250 ms; small blobs get no helper.
fn with_monitor<T>(
    progress: &dyn Progress,
    d: &Descriptor,
    count: &AtomicU64,
    f: impl FnOnce() -> T,
) -> T {
    if d.size < 1 << 20 {
        return f();
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(250));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                progress.event(&Event::BlobProgress {
                    digest: &d.digest,
                    done: count.load(Ordering::Relaxed),
                    size: d.size,
                });
            }
        });
        let out = f();
        stop.store(true, Ordering::Relaxed);
        monitor.thread().unpark();
        out
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The media type to push a manifest as: its descriptor's, else the one
/// inside it, else OCI's.
fn manifest_media_type(desc: &Descriptor, bytes: &[u8]) -> String {
    if !desc.media_type.is_empty() {
        return desc.media_type.clone();
    }
    embedded_media_type(bytes).unwrap_or_else(|| media::OCI_MANIFEST.to_owned())
}

fn embedded_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Peek>(bytes)
        .ok()?
        .media_type
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_blob_table() {
        let layer = Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(b"layer"), 5);
        let blobs = [&layer];
        let secrets = super::super::redact::Secrets::default();
        let status = |status: u16, m: &str| RegistryError::Status {
            what: "pushing manifest".into(),
            registry: "r".into(),
            status,
            message: secrets.clean(m),
        };
        let hex = layer.digest.hex().to_owned();
        for (e, want) in [
            (
                status(400, "MANIFEST_BLOB_UNKNOWN: blob unknown to registry"),
                true,
            ),
            (status(400, "BLOB_UNKNOWN: x"), true),
            (status(404, &format!("missing sha256:{hex}")), true),
            (status(400, "MANIFEST_INVALID: manifest invalid"), false),
            (status(500, "BLOB_UNKNOWN: x"), false),
            (status(429, "slow down"), false),
            (
                RegistryError::NotFound {
                    what: "m".into(),
                    registry: "r".into(),
                    message: secrets.clean("BLOB_UNKNOWN"),
                },
                true,
            ),
            (
                RegistryError::Denied {
                    what: "m".into(),
                    registry: "r".into(),
                    message: secrets.clean("BLOB_UNKNOWN"),
                },
                false,
            ),
        ] {
            assert_eq!(names_missing_blob(&e, &blobs), want, "{e}");
        }
    }

    #[test]
    fn range_end_table() {
        for (v, want) in [
            ("0-1023", Some(1023)),
            ("bytes=0-9", Some(9)),
            (" 0-0 ", Some(0)),
            ("0-", None),
            ("-5", None),
            ("0--1", None),
            ("junk", None),
            ("", None),
        ] {
            assert_eq!(range_end(v), want, "{v:?}");
        }
    }
}
