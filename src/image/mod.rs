//! Image documents: manifests, indexes, configs and descriptors.
//!
//! These are hoist's own serde types rather than oci-spec's, for two
//! reasons. First, determinism: every map here is a `BTreeMap` (or keeps
//! the order it was read in), so the same image always serialises to the
//! same bytes and so to the same digest; oci-spec's `HashMap`s do not.
//! Second, fidelity: a base's config carries Docker fields the OCI spec
//! does not define (`Healthcheck`, `OnBuild`, `Shell`, `os.version`...),
//! and an image built on it must inherit them untouched, so unknown fields
//! are kept in `extra` maps instead of being dropped.
//!
//! This module is pure data: no files, no network, no store.

pub mod media;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;

pub use media::MediaType;

/// What a document could not be read as.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} is not valid JSON for an image document: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} has both `manifests` and `layers`/`config`: it is ambiguous, so it is refused")]
    Ambiguous(String),
    #[error(
        "{0} is a Docker schema 1 manifest; convert it with `skopeo copy --format v2s2` first"
    )]
    Schema1(String),
    #[error("{what} has media type `{media_type}`, which is not an image manifest or index")]
    NotImage { what: String, media_type: String },
    #[error("{what} says its media type is `{inside}` but it was referenced as `{outside}`")]
    MediaTypeDisagrees {
        what: String,
        inside: String,
        outside: String,
    },
}

/// An OS/architecture pair with optional variant, as in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "platform `{s}` is not of the form os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
            ));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| v.to_string()),
            ..Platform::default()
        })
    }

    /// The platform of the machine hoist runs on, in OCI's names.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            ..Platform::default()
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform.
    /// A wanted platform without a variant takes any variant, except that
    /// arm64 prefers v8 (handled by the caller's ranking); with a variant,
    /// the variant must agree, where arm64's missing variant means v8.
    pub fn satisfied_by(&self, have: &Platform) -> bool {
        if self.os != have.os || self.architecture != have.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have_v = have
                    .variant
                    .clone()
                    .or_else(|| (have.architecture == "arm64").then(|| "v8".to_string()));
                have_v.as_deref() == Some(want.as_str())
            }
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The value of an annotation, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An image manifest (OCI, or Docker v2 schema 2: the same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest or an index, told apart by media type or, where a document
/// has none (umoci writes manifests without `mediaType`), by its fields.
#[derive(Debug, Clone)]
// A manifest is larger than an index, but documents are parsed once and
// matched at once: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum ImageDoc {
    Manifest(Manifest),
    Index(Index),
}

impl ImageDoc {
    /// Parses `bytes`; `what` names the document in errors, and
    /// `referenced_as` is the media type of the descriptor that led here.
    pub fn parse(
        bytes: &[u8],
        what: &str,
        referenced_as: Option<&str>,
    ) -> Result<Self, ImageError> {
        let json = |source| ImageError::Json {
            what: what.to_owned(),
            source,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(json)?;
        let obj = value.as_object().ok_or_else(|| ImageError::NotImage {
            what: what.to_owned(),
            media_type: "(not a JSON object)".into(),
        })?;
        if obj.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
            return Err(ImageError::Schema1(what.to_owned()));
        }
        let has_manifests = obj.contains_key("manifests");
        let has_image = obj.contains_key("layers") || obj.contains_key("config");
        if has_manifests && has_image {
            return Err(ImageError::Ambiguous(what.to_owned()));
        }
        let inside = obj.get("mediaType").and_then(Value::as_str);
        if let (Some(inside), Some(outside)) = (inside, referenced_as) {
            if MediaType::classify(inside) != MediaType::classify(outside) {
                return Err(ImageError::MediaTypeDisagrees {
                    what: what.to_owned(),
                    inside: inside.to_owned(),
                    outside: outside.to_owned(),
                });
            }
        }
        let kind = inside.or(referenced_as).map(MediaType::classify);
        let is_index = match kind {
            Some(MediaType::Index) => true,
            Some(MediaType::Manifest) => false,
            Some(_) => {
                return Err(ImageError::NotImage {
                    what: what.to_owned(),
                    media_type: inside.or(referenced_as).unwrap_or_default().to_owned(),
                })
            }
            None => has_manifests,
        };
        if is_index {
            Ok(ImageDoc::Index(
                serde_json::from_value(value).map_err(json)?,
            ))
        } else {
            Ok(ImageDoc::Manifest(
                serde_json::from_value(value).map_err(json)?,
            ))
        }
    }
}

/// The `config` part of an image config, in Docker's field names (which
/// OCI adopted). Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Docker's HEALTHCHECK, kept in Docker's config form. Durations are
/// nanoseconds, as Docker stores them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(rename = "Test", default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(
        rename = "StartPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<u64>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// The root file system part of a config: the layers' uncompressed digests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// One history entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An image config (OCI and Docker share this shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: what.to_owned(),
            source,
        })
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
            ..Platform::default()
        }
    }

    /// History entries that describe a layer (not `empty_layer`), in
    /// order; `None` where the config has fewer entries than layers.
    pub fn layer_history(&self) -> Vec<Option<&History>> {
        let mut out: Vec<Option<&History>> = self
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .map(Some)
            .collect();
        out.resize(self.rootfs.diff_ids.len().max(out.len()), None);
        out
    }
}

fn norm_variant(p: &Platform) -> Option<&str> {
    p.variant
        .as_deref()
        .or_else(|| (p.architecture == "arm64").then_some("v8"))
}

/// Picks the index entry for `wanted`: the first whose platform satisfies
/// it, preferring one whose variant is exactly the wanted one (so
/// `linux/arm64` picks v8 over another arm64 variant, and `linux/arm`
/// takes the first arm entry). On failure, the platforms there are.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    let mut best: Option<(bool, &Descriptor)> = None;
    for entry in entries {
        let Some(p) = &entry.platform else { continue };
        if !wanted.satisfied_by(p) {
            continue;
        }
        if !matches!(
            MediaType::classify(&entry.media_type),
            MediaType::Manifest | MediaType::Index
        ) && !entry.media_type.is_empty()
        {
            continue;
        }
        let exact = norm_variant(wanted) == norm_variant(p);
        let better = match best {
            None => true,
            Some((was_exact, _)) => exact && !was_exact,
        };
        if better {
            best = Some((exact, entry));
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| platform_list(entries))
}

/// The platforms of an index's entries; attestations (`unknown/unknown`)
/// are left out.
pub fn platform_list(entries: &[Descriptor]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        let s = match &e.platform {
            Some(p) if p.os == "unknown" && p.architecture == "unknown" => continue,
            Some(p) => p.to_string(),
            None => format!("(no platform: {})", e.digest.short()),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Serialises a document to the bytes hoist stores and hashes. Compact,
/// field order fixed by the types, maps sorted or in read order: the same
/// document always gives the same bytes.
pub fn to_json<T: Serialize>(doc: &T) -> Vec<u8> {
    // Serialising these types cannot fail: keys are strings, no floats
    // from untrusted sources are re-encoded lossily.
    serde_json::to_vec(doc).unwrap_or_default()
}

/// One entry of a Docker archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn parse_docs_table() {
        let manifest_no_type = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":1}},"layers":[]}}"#,
            d('a')
        );
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            d('b')
        );
        let ambiguous = format!(
            r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[]}}"#,
            d('c')
        );
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            (&manifest_no_type, None, "manifest"),
            (&manifest_no_type, Some(media::OCI_MANIFEST), "manifest"),
            (&index, None, "index"),
            (&index, Some(media::DOCKER_LIST), "index"),
            (&index, Some(media::OCI_MANIFEST), "error"),
            (&ambiguous, None, "error"),
            (r#"{"schemaVersion":1,"fsLayers":[]}"#, None, "error"),
            ("not json", None, "error"),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:bad","size":1},"layers":[]}"#,
                None,
                "error",
            ),
        ];
        for (doc, hint, want) in cases {
            let got = match ImageDoc::parse(doc.as_bytes(), "test", hint) {
                Ok(ImageDoc::Manifest(_)) => "manifest",
                Ok(ImageDoc::Index(_)) => "index",
                Err(_) => "error",
            };
            assert_eq!(got, want, "{doc} {hint:?}");
        }
    }

    fn entry(n: char, platform: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::parse(&format!("sha256:{}", n.to_string().repeat(64))).unwrap(),
            1,
        );
        d.platform = platform.map(|p| Platform::parse(p).unwrap());
        d
    }

    #[test]
    fn select_platform_table() {
        let mut attestation = entry('9', Some("unknown/unknown"));
        attestation.annotations = None;
        let entries = vec![
            entry('a', Some("linux/amd64")),
            entry('b', Some("linux/arm64/v9")),
            entry('c', Some("linux/arm64/v8")),
            entry('d', Some("linux/arm/v6")),
            entry('e', Some("linux/arm/v7")),
            entry('f', None),
            attestation,
        ];
        let cases: &[(&str, Option<char>)] = &[
            ("linux/amd64", Some('a')),
            ("linux/arm64", Some('c')),
            ("linux/arm64/v8", Some('c')),
            ("linux/arm64/v9", Some('b')),
            ("linux/arm/v7", Some('e')),
            ("linux/arm/v6", Some('d')),
            ("linux/arm", Some('d')),
            ("linux/s390x", None),
            ("windows/amd64", None),
        ];
        for (want, pick) in cases {
            let want = Platform::parse(want).unwrap();
            let got = select_platform(&entries, &want)
                .ok()
                .map(|d| d.digest.hex().as_bytes()[0] as char);
            assert_eq!(got, *pick, "{want}");
        }
        // arm64 without a variant in the index is v8.
        let plain = vec![entry('a', Some("linux/arm64"))];
        assert!(select_platform(&plain, &Platform::parse("linux/arm64/v8").unwrap()).is_ok());
        let available =
            select_platform(&entries, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            available,
            vec![
                "linux/amd64",
                "linux/arm64/v9",
                "linux/arm64/v8",
                "linux/arm/v6",
                "linux/arm/v7",
                "(no platform: ffffffffffff)"
            ]
        );
    }

    #[test]
    fn platform_table() {
        let cases = [
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/arm/v7", "linux/arm/v6", false),
            ("linux/amd64", "linux/arm64", false),
            ("linux/arm", "linux/arm/v7", true),
        ];
        for (want, have, ok) in cases {
            let want = Platform::parse(want).unwrap();
            let have = Platform::parse(have).unwrap();
            assert_eq!(want.satisfied_by(&have), ok, "{want} vs {have}");
        }
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }

    #[test]
    fn config_keeps_unknown_fields_in_order() {
        let src = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"OnBuild":null,"Shell":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]},"zeta":1,"alpha":2}"#;
        let c = ImageConfig::parse(src.as_bytes(), "t").unwrap();
        let out = String::from_utf8(to_json(&c)).unwrap();
        assert!(
            out.contains(r#""OnBuild":null,"Shell":["/bin/sh"]"#),
            "{out}"
        );
        assert!(out.find("zeta").unwrap() < out.find("alpha").unwrap());
    }
}

/// `SOURCE_DATE_EPOCH` as RFC 3339 in UTC, as image configs spell times.
pub fn rfc3339(epoch: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch.min(253_402_300_799) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod rfc3339_tests {
    #[test]
    fn rfc3339_table() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
