//! The registry client: pull bases from, and push images to, an OCI
//! distribution (Docker Registry v2) registry.
//!
//! # Why a thin client of our own, not oci-client
//!
//! oci-client 0.18 is async (tokio), while hoist is synchronous: std::io
//! readers and writers, `std::thread::scope` for parallel work. Bridging
//! would mean a runtime inside the library and `AsyncWrite` adapters over
//! the store. And where hoist needs it most, oci-client falls short
//! (FACTS.md): `pull()` buffers every layer in memory; `push_blob` takes
//! the blob from memory; there is no Docker config or credential helper
//! support; its platform resolver ignores `variant`; its manifest types are
//! its own, not the ones hoist hashes. What is left (the v2 endpoints, the
//! token dance) is small. So this is a thin blocking client over the
//! shared reqwest client ([`crate::net`]), and every transfer streams
//! between the network and the store:
//!
//! - a blob download goes straight into [`crate::store::Store::writer`] and is finished
//!   with its expected digest and size, so a blob that does not match is
//!   never stored; an interrupted download resumes with `Range` when the
//!   server answers 206 (hashing simply continues), else starts over;
//! - an upload streams the stored file (`POST`, one streaming `PATCH`,
//!   `PUT ?digest=`, as Docker and containers/image do);
//! - manifests are bounded to [`MAX_MANIFEST_SIZE`] and verified against
//!   the digest asked for and any `Docker-Content-Digest` header; manifests
//!   are pushed as the exact bytes that were hashed.
//!
//! # Shape
//!
//! [`Client`] holds the [`Options`] and, per registry, a connection: the
//! scheme found by pinging `/v2/`, a reqwest client with that registry's
//! TLS files, its auth challenge and a cache of tokens per scope. It is
//! `Sync`: the parallel transfers share it. Its operations:
//!
//! - [`Client::resolve`]: reference + platform → [`RemoteImage`] (manifest,
//!   config in the store, layer descriptors, the index it came through).
//!   Layers are not downloaded: call [`Client::fetch_blobs`] when their
//!   bytes are needed.
//! - [`Client::fetch_blobs`]: downloads, up to [`Options::parallel`] at
//!   once, the blobs not already in the store.
//! - [`Client::pull`]: both, for each of several platforms.
//! - [`Client::get_manifest`], [`Client::head_manifest`],
//!   [`Client::blob_exists`], [`Client::tags`]: single requests, for
//!   `inspect` and checks.
//! - [`Client::push`]: a [`PushPlan`] (one image, or several under an
//!   index, plus tags) → [`PushReport`]; blobs already on the registry are
//!   skipped, blobs of the base are mounted when it lives on the same
//!   registry, and only what is missing is uploaded.
//! - [`Client::login`] / [`logout`]: podman's auth.json.
//!
//! Progress goes through the [`Progress`] trait; the library never prints.
//!
//! # Offline
//!
//! With [`Options::offline`] no request is made: whatever needs the
//! network fails at once with [`RegistryError::Offline`], naming what was
//! missing. What the store already holds still works: a digest reference
//! whose manifest, index and config are stored, and a tag that an earlier
//! online resolve recorded (the store's `registry-tag` keys).
//!
//! # Where the rest lives
//!
//! [`challenge`] parses `WWW-Authenticate`; [`crate::net::retry`] decides waits;
//! [`conf`] reads registries.conf (mirrors, insecure, blocked); [`certs`]
//! finds certs.d files; [`credentials`] reads Docker's and podman's auth
//! files and runs credential helpers. All of them take text and return
//! data, so they are tested without a network.
//!
//! # Transport rules
//!
//! HTTPS with the system CA store plus the registry's certs.d folder.
//! Plain HTTP only for a registry marked insecure (`--insecure-registry`,
//! [`Options::insecure`], or registries.conf `insecure = true`; TLS
//! verification is then off too, as podman does) and for loopback
//! registries (`localhost`, 127.0.0.0/8, `[::1]`), as Docker allows: HTTPS
//! is tried first, and plain HTTP when the TLS connection fails (a
//! loopback registry is pinged over plain HTTP first, since it may use it
//! anyway: when that answers like a registry, no TLS handshake is spent;
//! else HTTPS is tried as for any other). Unlike
//! Docker, a loopback registry's certificate is still verified when it
//! speaks TLS: mark it insecure to skip that.
//!
//! Credentials go only to the registry they were looked up for: never on a
//! redirect to another host (redirects are followed by hand, with the
//! `Authorization` header dropped when the host changes), never to the
//! `urls` of a foreign layer (hoist never fetches those). A token realm
//! gets them over HTTPS, with TLS always verified when the realm is on
//! another host (an insecure mark covers the host the user named, nothing
//! else), or over the registry's own scheme on its own host: a plain-HTTP
//! registry may have a plain-HTTP realm beside it, an HTTPS registry's
//! credentials never go down to `http://`. A realm's certificate error is
//! not retried and names the realm's host.
//!
//! # What servers say
//!
//! Error bodies and token errors reach messages only as
//! [`redact::ServerText`], made by the one redaction step in [`redact`]:
//! the secrets this client sent and any `Authorization`, `Basic` or
//! `Bearer` value are removed first, so an echoing proxy cannot put a
//! password into a CI log.
//!
//! # Timeouts
//!
//! The connect timeout and TCP keep-alive come from [`crate::net`].
//! Small requests (manifests, tokens, HEADs) have a whole-request timeout
//! ([`Options::request_timeout`]). The blocking client cannot time out
//! an idle read on its own, so a blob transfer gets a deadline scaled to
//! its size (5 minutes plus 4 s per MiB, i.e. a 256 KiB/s floor); when it
//! passes mid-download, the download resumes with `Range` like any other
//! interruption, and tries that made progress do not count against the
//! retry budget. A stalled peer thus costs at most one deadline per try.

mod answer;
mod auth;
pub mod certs;
pub mod challenge;
mod client;
pub mod conf;
pub mod credentials;
mod known;
#[cfg(test)]
mod live_tests;
mod login;
mod pull;
mod push;
pub mod redact;
mod referrers;

use std::path::PathBuf;
use std::time::Duration;

use crate::digest::Digest;
use crate::image::ImageError;
use crate::reference::ReferenceError;
use crate::store::StoreError;

pub use crate::image::select_platform;
pub use crate::net::retry::RetryPolicy;
#[cfg(test)]
pub(crate) use answer::parse_error_body as client_parse_error_body;
#[cfg(test)]
pub(crate) use auth::parse_token_answer as client_parse_token_answer;
pub use client::Client;
pub use credentials::{Credentials, Secret};
pub use pull::{FetchReport, RemoteImage, RemoteIndex};
pub use push::{PushImage, PushPlan, PushReport};
pub use redact::ServerText;

/// Manifests and indexes larger than this are refused: they are JSON read
/// into memory, and a real one is a few KiB.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Registries (`HOST[:PORT]`) that may use plain HTTP or unverified
    /// TLS, besides those registries.conf marks insecure.
    pub insecure: Vec<String>,
    /// registries.conf to read; `None` for the default (see [`conf`]).
    pub registries_conf: Option<PathBuf>,
    /// certs.d roots, searched in order (see [`certs`]).
    pub certs_dirs: Vec<PathBuf>,
    /// Credential files, in order (see [`credentials`]).
    pub auth_files: Vec<PathBuf>,
    /// Fail every network call at once, naming what it needed.
    pub offline: bool,
    pub retry: RetryPolicy,
    /// Blobs transferred at once.
    pub parallel: usize,
    /// Whole-request timeout for everything but blob bodies.
    pub request_timeout: Duration,
    /// When a tag's manifest is read again rather than taken from the
    /// store (see [`PullPolicy`]).
    pub pull: PullPolicy,
}

/// When [`Client::resolve`] asks the registry what a tag names, with
/// podman's `--pull` spelling. Digest references never need asking, and
/// `--offline` never asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Read the manifest every time.
    Always,
    /// Use what the tag named at the last resolve when the store has it;
    /// ask only when it does not.
    Missing,
    /// Never ask: what the store has, or an error naming the image.
    Never,
    /// Ask whether the tag still names what the store has (one `HEAD`,
    /// comparing `Docker-Content-Digest`), and read the manifest only when
    /// it does not. The default.
    #[default]
    Newer,
}

impl PullPolicy {
    /// From podman's words: `always`, `missing`, `never`, `newer`
    /// (`true` and `false` as podman takes them: always and missing).
    pub fn parse(s: &str) -> Option<PullPolicy> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "always" | "true" => PullPolicy::Always,
            "missing" | "ifmissing" | "false" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            "newer" | "ifnewer" => PullPolicy::Newer,
            _ => return None,
        })
    }
}

impl Options {
    /// Defaults from the environment: certs.d roots, credential files and
    /// registries.conf at their usual places; 4 parallel transfers; 5
    /// tries from 0.5 s to 8 s; online.
    pub fn from_env() -> Options {
        Options {
            insecure: Vec::new(),
            registries_conf: None,
            certs_dirs: certs::default_roots(),
            auth_files: credentials::default_files(),
            offline: false,
            retry: RetryPolicy::default(),
            parallel: 4,
            request_timeout: Duration::from_secs(60),
            pull: PullPolicy::default(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::from_env()
    }
}

/// What a transfer did with a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was already in the local store.
    Present,
    Downloaded,
    /// It was already on the target registry.
    Exists,
    Mounted,
    Uploaded,
}

/// Which way a blob moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

/// What the client reports while it works.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A transfer started (not sent for blobs that need none).
    BlobStart {
        digest: &'a Digest,
        size: u64,
        direction: Direction,
    },
    /// Bytes moved so far (for a resumed download, from the blob's start).
    BlobProgress {
        digest: &'a Digest,
        done: u64,
        size: u64,
    },
    /// A blob is where it should be, and how it got there.
    BlobDone {
        digest: &'a Digest,
        size: u64,
        outcome: BlobOutcome,
    },
    /// A manifest or index was stored under `reference` (a tag or digest).
    ManifestPushed {
        reference: &'a str,
        digest: &'a Digest,
    },
    /// A request failed and will be tried again after `wait`.
    Retrying {
        what: &'a str,
        retry: u32,
        wait: Duration,
        why: &'a str,
    },
}

/// Receives [`Event`]s; called from the transfer threads, so `Sync`.
pub trait Progress: Sync {
    fn event(&self, event: &Event<'_>);
}

/// Ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &Event<'_>) {}
}

impl<F: Fn(&Event<'_>) + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Errors talking to registries. Each names what was being done and the
/// registry; none carries a credential: what a server said is held as a
/// [`ServerText`], which only the redaction step makes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("--offline: {what} is not in the local store and getting it needs the network; on a connected host run `hoist pull {reference} --output oci-archive:FILE` and use oci-archive:FILE instead")]
    Offline { what: String, reference: String },
    #[error("{what}: cannot reach {registry}: {detail}")]
    Unreachable {
        what: String,
        registry: String,
        detail: String,
    },
    #[error("{what}: {registry} answered HTTP {status}{}", message_suffix(.message))]
    Status {
        what: String,
        registry: String,
        status: u16,
        message: ServerText,
    },
    #[error("{what}: {registry} answered HTTP {status}{} and asked to be tried again in {}; hoist waits at most {} between tries, so it stops here: try again later", message_suffix(.message), crate::net::retry::human_wait(.asked), crate::net::retry::human_wait(.limit))]
    WaitTooLong {
        what: String,
        registry: String,
        status: u16,
        message: ServerText,
        /// What the server's `Retry-After` asked for.
        asked: Duration,
        /// [`RetryPolicy::max_retry_after`].
        limit: Duration,
    },
    #[error("{what}: {registry} refused the request (HTTP 401){}; {hint}", message_suffix(.message))]
    Unauthorized {
        what: String,
        registry: String,
        message: ServerText,
        hint: String,
    },
    #[error("{what}: {registry} denied access (HTTP 403){}; check that your account may do this", message_suffix(.message))]
    Denied {
        what: String,
        registry: String,
        message: ServerText,
    },
    #[error("{what}: not found on {registry}{}", message_suffix(.message))]
    NotFound {
        what: String,
        registry: String,
        message: ServerText,
    },
    #[error(
        "{what}: what {registry} sent does not match its digest: expected {expected}, got {actual}"
    )]
    DigestMismatch {
        what: String,
        registry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: {registry} did not confirm blob {digest}: {why}; the manifest was not pushed, so no tag points at an image the registry cannot serve")]
    BlobNotConfirmed {
        what: String,
        registry: String,
        digest: Digest,
        why: String,
    },
    #[error("{what}: {registry}: {why}")]
    Protocol {
        what: String,
        registry: String,
        why: String,
    },
    #[error("{reference} has no image for platform {wanted}; it has: {}", list(.available))]
    NoPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{reference} is an image for {have}, not for the wanted platform {wanted}")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        have: String,
    },
    #[error("{reference}: manifest {digest} has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCountMismatch {
        reference: String,
        digest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("--pull=never: {reference} is not in the local store; pull it once (`hoist build --pull=missing`, or `hoist pull {reference}`), or build it from a local source (oci-archive:FILE)")]
    NotStored { reference: String },
    #[error("{reference} is blocked by {conf}")]
    Blocked { reference: String, conf: String },
    #[error("login to {registry} failed: {why}")]
    Login { registry: String, why: String },
    #[error("cannot push blob {digest} to {target}: it is not in the local store and {why}")]
    MissingBlob {
        digest: Digest,
        target: String,
        why: String,
    },
    #[error("registries.conf {0}")]
    Conf(#[from] conf::ConfError),
    #[error("certs.d {0}")]
    Certs(#[from] certs::CertsError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    LayerRefused(#[from] Box<crate::layer::verify::VerifyError>),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn message_suffix(m: &ServerText) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// A wait for people: `100000 s (about 28 hours)`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// Removes `registry`'s credentials from `file` (the default login file
/// when `None`). Returns the file and whether there were credentials to
/// remove. No network is used.
pub fn logout(
    registry: &str,
    file: Option<&std::path::Path>,
) -> Result<(PathBuf, bool), RegistryError> {
    let key =
        crate::reference::normalize_registry(registry).ok_or_else(|| RegistryError::Login {
            registry: registry.to_owned(),
            why: "it is not a registry host name (HOST[:PORT])".into(),
        })?;
    let path = match file {
        Some(f) => f.to_owned(),
        None => credentials::default_login_file().ok_or_else(|| RegistryError::Login {
            registry: key.clone(),
            why: "no auth file location: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME".into(),
        })?,
    };
    let shown = path.display().to_string();
    let existing = match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((path, false)),
        Err(e) => {
            return Err(credentials::CredentialsError::File {
                path: shown,
                why: e.to_string(),
            }
            .into())
        }
    };
    let (text, removed) = credentials::without_login(existing.as_deref(), &shown, &key)?;
    if removed {
        credentials::write_private(&path, &text)?;
    }
    Ok((path, removed))
}
