//! Software bills of materials: what a build put in its image, as SPDX 2.3
//! or CycloneDX 1.5 JSON, written next to the image's outputs and attached
//! to a pushed image as an OCI artifact that refers to it.
//!
//! hoist knows every package it installs, so nothing is scanned: the
//! installers hand over their package lists ([`crate::deps::Package`],
//! known on a cache hit too), the build adds the base (where it came
//! from, its manifest digest, its os-release, the packages its dpkg or
//! apk database lists, distroless's status.d records included) and the
//! image itself, and
//! that [`Inventory`] is rendered by [`spdx`] or [`cyclonedx`].
//!
//! A document depends on the inventory and `SOURCE_DATE_EPOCH` only: its
//! time is the epoch's, its namespace and serial number are derived from
//! the image's manifest digest, packages are sorted. So two builds of the
//! same inputs give the same SBOM bytes, as they give the same image.
//!
//! Where documents go ([`emit`]):
//! - `--sbom-output FILE`: that file;
//! - else next to each archive or layout output: `FILE.spdx.json` or
//!   `FILE.cdx.json` for `oci-archive:FILE`, `docker-archive:FILE` and
//!   `oci:FILE`;
//! - with several platforms, one document per platform, the platform put
//!   before the extension (`web.tar.linux-arm64.spdx.json`);
//! - pushed images: an artifact whose `subject` is the image's manifest,
//!   per repository pushed to ([`attach`]).

pub mod attach;
pub mod cyclonedx;
pub mod purl;
pub mod spdx;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::deps::Package;
use crate::digest::Digest;
use crate::facts::{Facts, OsRelease, PackageManager};
use crate::image::{Descriptor, Platform};
use crate::reference::Reference;
use crate::registry::{self, Client, RegistryError};
use crate::store::{Store, StoreError};
use crate::transport::{BaseImage, Transport};

/// The SBOM formats hoist writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    CycloneDx,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "spdx" | "spdx-json" => Ok(Format::Spdx),
            "cyclonedx" | "cyclonedx-json" | "cdx" => Ok(Format::CycloneDx),
            other => Err(format!(
                "unknown --sbom `{other}`: use spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Spdx => "SPDX",
            Format::CycloneDx => "CycloneDX",
        }
    }

    /// The document's media type, also the artifact type of the OCI
    /// artifact that carries it.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => "application/spdx+json",
            Format::CycloneDx => "application/vnd.cyclonedx+json",
        }
    }

    /// The file name suffix: `.spdx.json` or `.cdx.json`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Spdx => ".spdx.json",
            Format::CycloneDx => ".cdx.json",
        }
    }
}

/// `--sbom FORMAT [--sbom-output FILE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomOptions {
    pub format: Format,
    /// Where to write the document instead of next to the outputs.
    pub output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(
        "--sbom has nowhere to go: the build writes no archive or layout and pushes nothing; \
         add --output oci-archive:FILE, --push, or --sbom-output FILE"
    )]
    NoDestination,
    #[error("writing the SBOM {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("attaching the SBOM to {target}: {source}")]
    Attach {
        target: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("attaching the SBOM to {target}: the registry's referrers tag {tag} holds {why}")]
    BadReferrersIndex {
        target: String,
        tag: String,
        why: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An image as an SBOM names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// The last segment of its repository (`web`), or `image`.
    pub name: String,
    /// `registry/repository` when it has a tag naming one.
    pub repository: Option<String>,
    pub tag: Option<String>,
    /// The manifest's media type, digest and size.
    pub manifest: Descriptor,
    pub platform: Platform,
}

/// The base an image was built on.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseInfo {
    /// Where it came from, as the user spelt it (`docker://...`,
    /// `oci-archive:FILE`).
    pub source: String,
    pub name: String,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub manifest_digest: Digest,
    pub platform: Platform,
    /// Its `/etc/os-release`, when the build read the base's facts.
    pub os: Option<OsRelease>,
}

/// Everything an SBOM of one image says.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub image: ImageInfo,
    pub base: BaseInfo,
    /// Sorted by ecosystem, name and version; one entry per package
    /// version (npm may install one at several paths).
    pub packages: Vec<Package>,
}

impl Inventory {
    /// The inventory of a built image: `manifest` its descriptor, `tags`
    /// its names, `base` and `transport` where its base came from
    /// (`remote` when from a registry), `facts` what the base's files say.
    pub fn new(
        manifest: &Descriptor,
        tags: &[String],
        base: &BaseImage,
        transport: &Transport,
        remote: Option<&Reference>,
        facts: Option<&Facts>,
        mut packages: Vec<Package>,
    ) -> Inventory {
        for p in facts.map_or(&[][..], |f| &f.packages) {
            packages.push(Package {
                ecosystem: match p.manager {
                    PackageManager::Dpkg => crate::deps::Ecosystem::Deb,
                    PackageManager::Apk => crate::deps::Ecosystem::Apk,
                },
                name: p.name.clone(),
                version: p.version.clone(),
                download: None,
                file: None,
                path: None,
                hashes: Vec::new(),
            });
        }
        packages.sort();
        packages.dedup_by(|a, b| {
            a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version
        });
        let named = tags.iter().find_map(|t| Reference::parse(t).ok());
        let image = ImageInfo {
            name: named
                .as_ref()
                .map_or_else(|| "image".to_owned(), last_segment),
            repository: named.as_ref().map(Reference::name),
            tag: named.as_ref().and_then(|r| r.tag().map(str::to_owned)),
            manifest: Descriptor::new(
                manifest.media_type.clone(),
                manifest.digest.clone(),
                manifest.size,
            ),
            platform: manifest
                .platform
                .clone()
                .unwrap_or_else(|| base.platform.clone()),
        };
        let (name, repository, tag) = match (remote, transport) {
            (Some(r), _) => (last_segment(r), Some(r.name()), r.tag().map(str::to_owned)),
            (None, Transport::Oci { dir: file, tag })
            | (None, Transport::OciArchive { file, tag })
            | (None, Transport::DockerArchive { file, tag }) => {
                (file_stem(file), None, tag.clone())
            }
            (None, Transport::Registry(r)) => (r.clone(), None, None),
            (None, t @ Transport::Engine { .. }) => (t.to_string(), None, None),
        };
        Inventory {
            image,
            base: BaseInfo {
                source: base.source.clone(),
                name,
                repository,
                tag,
                manifest_digest: base.manifest_digest.clone(),
                platform: base.platform.clone(),
                os: facts.and_then(|f| f.os_release.clone()),
            },
            packages,
        }
    }
}

fn last_segment(r: &Reference) -> String {
    r.repository()
        .rsplit('/')
        .next()
        .unwrap_or(r.repository())
        .to_owned()
}

/// `node` of `/bases/node.oci.tar`.
fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split('.').next() {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => "base".to_owned(),
    }
}

/// The document for `inventory`, dated `epoch` (`SOURCE_DATE_EPOCH`).
pub fn render(format: Format, inventory: &Inventory, epoch: u64) -> Vec<u8> {
    let created = crate::image::rfc3339(epoch);
    let doc = match format {
        Format::Spdx => spdx::document(inventory, &created),
        Format::CycloneDx => cyclonedx::document(inventory, &created),
    };
    // A serde_json::Value always serialises.
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A UUID (RFC 9562 version 8: custom, here the leading bytes of a
/// SHA-256) derived from `seed`, so that a document's identifier is
/// unique to its image and still reproducible.
pub(crate) fn uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// Fails early when an SBOM is asked for and the build would leave it
/// nowhere.
pub fn check_destination(
    opts: &SbomOptions,
    outputs: &[Transport],
    pushing: bool,
) -> Result<(), SbomError> {
    // A local engine keeps no file beside the image to put the SBOM next to.
    let has = opts.output.is_some()
        || pushing
        || outputs
            .iter()
            .any(|o| !matches!(o, Transport::Engine { .. }));
    match has {
        true => Ok(()),
        false => Err(SbomError::NoDestination),
    }
}

/// Where the documents go on disk: `--sbom-output`, else beside each
/// archive or layout output.
pub fn file_destinations(opts: &SbomOptions, outputs: &[Transport]) -> Vec<PathBuf> {
    if let Some(o) = &opts.output {
        return vec![o.clone()];
    }
    outputs
        .iter()
        .filter_map(|o| match o {
            Transport::Oci { dir: path, .. }
            | Transport::OciArchive { file: path, .. }
            | Transport::DockerArchive { file: path, .. } => {
                let mut s = path.as_os_str().to_owned();
                // `oci:out/` names the folder `out`.
                let trimmed = s.to_string_lossy().trim_end_matches('/').to_owned();
                if !trimmed.is_empty() {
                    s = trimmed.into();
                }
                s.push(opts.format.extension());
                Some(PathBuf::from(s))
            }
            Transport::Registry(_) | Transport::Engine { .. } => None,
        })
        .collect()
}

/// `path` with the platform put before its extension (`.spdx.json`,
/// `.cdx.json` or `.json`), or after the name when it has none:
/// `web.spdx.json` -> `web.linux-arm64-v8.spdx.json`.
pub fn platform_path(path: &Path, platform: &Platform) -> PathBuf {
    let mut p = format!("{}-{}", platform.os, platform.architecture);
    if let Some(v) = &platform.variant {
        p.push('-');
        p.push_str(v);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = [".spdx.json", ".cdx.json", ".json"]
        .iter()
        .find_map(|ext| {
            name.strip_suffix(ext)
                .filter(|stem| !stem.is_empty())
                .map(|stem| format!("{stem}.{p}{ext}"))
        })
        .unwrap_or_else(|| format!("{name}.{p}"));
    path.with_file_name(new)
}

/// Writes (and attaches) the documents of a build's images: one
/// inventory for a single image, one per platform under an index.
/// Returns what was written, for the build's report.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    opts: &SbomOptions,
    inventories: &[&Inventory],
    outputs: &[Transport],
    pushes: &[Reference],
    client: Option<&Client>,
    store: &Store,
    epoch: u64,
    progress: &dyn registry::Progress,
) -> Result<Vec<String>, SbomError> {
    let mut done = Vec::new();
    let files = file_destinations(opts, outputs);
    let mut repositories: Vec<&Reference> = Vec::new();
    for r in pushes {
        let seen = repositories
            .iter()
            .any(|g| g.registry() == r.registry() && g.repository() == r.repository());
        if !seen {
            repositories.push(r);
        }
    }
    for inv in inventories {
        let bytes = render(opts.format, inv, epoch);
        for f in &files {
            let path = match inventories.len() {
                1 => f.clone(),
                _ => platform_path(f, &inv.image.platform),
            };
            write_atomically(&path, &bytes)?;
            done.push(format!("{} ({} SBOM)", path.display(), opts.format.name()));
        }
        if let Some(client) = client {
            for target in &repositories {
                let a = attach::attach(
                    client,
                    target,
                    opts.format,
                    &bytes,
                    &inv.image.manifest,
                    &crate::image::rfc3339(epoch),
                    store,
                    progress,
                )?;
                done.push(format!(
                    "{}@{} ({} SBOM referring to {}, {})",
                    target.name(),
                    a.digest,
                    opts.format.name(),
                    inv.image.manifest.digest.short(),
                    a.how
                ));
            }
        }
    }
    Ok(done)
}

/// A temporary file beside `path`, renamed over it: a reader never sees
/// half a document.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SbomError> {
    use std::io::Write as _;
    let err = |source| SbomError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    // A document to publish, not a secret: readable as any output is
    // (temporary files start 0600).
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        for (s, f) in [
            ("spdx", Format::Spdx),
            ("spdx-json", Format::Spdx),
            ("cyclonedx", Format::CycloneDx),
            ("cdx", Format::CycloneDx),
        ] {
            assert_eq!(Format::parse(s), Ok(f));
        }
        assert!(Format::parse("swid").unwrap_err().contains("spdx"));
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = uuid("x");
        assert_eq!(a, uuid("x"));
        assert_ne!(a, uuid("y"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&a[14..15], "8", "version 8");
    }

    #[test]
    fn destinations() {
        let spdx = SbomOptions {
            format: Format::Spdx,
            output: None,
        };
        let outputs = vec![
            Transport::parse("oci-archive:out/web.tar:x").unwrap(),
            Transport::parse("oci:out/layout/").unwrap(),
            Transport::parse("docker-archive:d.tar").unwrap(),
            Transport::parse("docker://127.0.0.1:5000/web:1").unwrap(),
        ];
        assert_eq!(
            file_destinations(&spdx, &outputs),
            [
                PathBuf::from("out/web.tar.spdx.json"),
                PathBuf::from("out/layout.spdx.json"),
                PathBuf::from("d.tar.spdx.json"),
            ]
        );
        let cdx = SbomOptions {
            format: Format::CycloneDx,
            output: None,
        };
        assert_eq!(
            file_destinations(&cdx, &outputs[..1]),
            [PathBuf::from("out/web.tar.cdx.json")]
        );
        let chosen = SbomOptions {
            format: Format::Spdx,
            output: Some("sbom.json".into()),
        };
        assert_eq!(
            file_destinations(&chosen, &outputs),
            [PathBuf::from("sbom.json")]
        );
        // Nowhere to go: an error before the build; a push is enough.
        assert!(matches!(
            check_destination(&spdx, &[], false),
            Err(SbomError::NoDestination)
        ));
        assert!(check_destination(&spdx, &[], true).is_ok());
        let engine = Transport::parse("docker-daemon:web").unwrap();
        assert!(matches!(
            check_destination(&spdx, &[engine], false),
            Err(SbomError::NoDestination)
        ));
        assert!(check_destination(&chosen, &[], false).is_ok());
    }

    #[test]
    fn platform_paths() {
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        for (path, p, want) in [
            (
                "out/web.tar.spdx.json",
                &amd,
                "out/web.tar.linux-amd64.spdx.json",
            ),
            ("web.cdx.json", &arm, "web.linux-arm64-v8.cdx.json"),
            ("sbom.json", &amd, "sbom.linux-amd64.json"),
            ("sbom", &amd, "sbom.linux-amd64"),
            (".json", &amd, ".json.linux-amd64"),
        ] {
            assert_eq!(platform_path(Path::new(path), p), PathBuf::from(want));
        }
    }
}
