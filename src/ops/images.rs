//! What hoist built: `hoist images` and `hoist history IMAGE`.
//!
//! Every successful build leaves a record in the store, an entry of kind
//! `image` named by the image's digest (the index's, for several
//! platforms), holding its tags, platforms, sizes and when it was built.
//! The record names the manifest, so the store's garbage collector keeps
//! the manifest, config and layers of every recorded image; pruning the
//! record (by age, by size, or `--all`) is how a built image is forgotten.
//! Building the same digest again merges the tags and refreshes the date.
//!
//! `history` reads layer by layer what the image's config says made it
//! (its `history`), paired with the manifest's layers as `docker history`
//! pairs them: entries marked `empty_layer` (ENV, CMD...) take none. The
//! image is a recorded one (a tag, a name, or a digest prefix), or any
//! source hoist can read (`oci:`, `oci-archive:`, `docker-archive:`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{select_platform, ImageConfig, ImageDoc, ImageError, Manifest, Platform};
use crate::store::gc::format_date;
use crate::store::human_size;
use crate::store::{Store, StoreError};
use crate::transport::{open_source, HashOnly, Transport, TransportError};

/// The store entry kind of build records.
pub const KEY_KIND: &str = crate::store::IMAGES_KIND;

/// Errors from `images` and `history`.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no image `{0}` was built with this store; `hoist images` lists those that were, or name a source such as oci-archive:FILE")]
    Unknown(String),
    #[error("`{given}` names several built images ({}); give more of the digest or a tag", candidates.join(", "))]
    Ambiguous {
        given: String,
        candidates: Vec<String>,
    },
    #[error("image {digest} is recorded, but its {what} is no longer in the store (pruned?); build it again")]
    Gone { digest: Digest, what: &'static str },
    #[error("{0}: `history` reads built images and local sources; for a registry image, `hoist pull {0} -o oci-archive:FILE` first and run `hoist history oci-archive:FILE`")]
    Registry(String),
    #[error("image {digest} has no manifest for {wanted}; it has {}", have.join(", "))]
    NoPlatform {
        digest: Digest,
        wanted: String,
        have: Vec<String>,
    },
}

/// One build's result, as the store remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The image's digest: its manifest's, or its index's.
    pub manifest: Digest,
    /// The image's name in the project (or the app folder's).
    pub name: String,
    pub target: String,
    /// Full names it was tagged with (`localhost/app:latest`).
    pub tags: Vec<String>,
    pub platforms: Vec<PlatformImage>,
    /// Compressed bytes of every distinct config and layer.
    pub size: u64,
    /// When it was built, in seconds since 1970 (its config's `created`
    /// is `SOURCE_DATE_EPOCH`, so says little).
    pub built: u64,
    /// Where it was written or pushed.
    pub outputs: Vec<String>,
}

/// One platform's image in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformImage {
    pub platform: String,
    pub manifest: Digest,
    pub config: Digest,
    pub layers: usize,
    pub size: u64,
}

/// Remembers `record`, merging the tags and outputs of an earlier build
/// of the same digest.
pub fn record(store: &Store, mut record: Record) -> Result<(), StoreError> {
    let name = record.manifest.hex().to_owned();
    if let Some(old) = store
        .get_key(KEY_KIND, &name)?
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
    {
        for t in old.tags {
            if !record.tags.contains(&t) {
                record.tags.push(t);
            }
        }
        for o in old.outputs {
            if !record.outputs.contains(&o) {
                record.outputs.push(o);
            }
        }
    }
    let json = serde_json::to_vec(&record).unwrap_or_default();
    store.put_key(KEY_KIND, &name, &json)
}

/// Every recorded image, newest build first. Records that do not read
/// back (from another version of hoist) are skipped.
pub fn list(store: &Store) -> Result<Vec<Record>, StoreError> {
    let mut out: Vec<Record> = store
        .list_keys(KEY_KIND)?
        .into_iter()
        .filter_map(|(_, b)| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by(|a, b| (b.built, &a.name).cmp(&(a.built, &b.name)));
    Ok(out)
}

/// `hoist images`: one line per tag (or per untagged image).
pub fn render_list(records: &[Record]) -> String {
    let mut t = format!(
        "{:<40} {:<14} {:<24} {:>10}  {}\n",
        "IMAGE", "DIGEST", "PLATFORM", "SIZE", "BUILT"
    );
    for r in records {
        let platforms: Vec<&str> = r.platforms.iter().map(|p| p.platform.as_str()).collect();
        let untagged = [format!("{} ({})", r.name, r.target)];
        let names = match r.tags.is_empty() {
            true => &untagged[..],
            false => &r.tags[..],
        };
        for n in names {
            let _ = writeln!(
                t,
                "{:<40} {:<14} {:<24} {:>10}  {}",
                n,
                r.manifest.short(),
                platforms.join(","),
                human_size(r.size),
                format_date(r.built)
            );
        }
    }
    t
}

/// Finds the recorded image `given` names: a tag (`app:1`, with or
/// without the `localhost/` hoist adds), an image name, or a digest or a
/// prefix of its hex.
pub fn find<'a>(records: &'a [Record], given: &str) -> Result<&'a Record, ImagesError> {
    let normalized = crate::transport::normalize_name(given).ok();
    let by_tag: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.tags
                .iter()
                .any(|t| t == given || Some(t) == normalized.as_ref())
        })
        .collect();
    if let [one] = by_tag[..] {
        return Ok(one);
    }
    let by_name: Vec<&Record> = records.iter().filter(|r| r.name == given).collect();
    if let Some(first) = by_tag.first().or(by_name.first()) {
        // The newest build of that name (records are newest first).
        return Ok(first);
    }
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    if hex.len() < 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImagesError::Unknown(given.to_owned()));
    }
    let hex = hex.to_ascii_lowercase();
    let matches = |d: &Digest| d.hex().starts_with(&hex);
    let mut found: Vec<&Record> = records
        .iter()
        .filter(|r| matches(&r.manifest) || r.platforms.iter().any(|p| matches(&p.manifest)))
        .collect();
    found.dedup_by(|a, b| a.manifest == b.manifest);
    match found[..] {
        [] => Err(ImagesError::Unknown(given.to_owned())),
        [one] => Ok(one),
        _ => Err(ImagesError::Ambiguous {
            given: given.to_owned(),
            candidates: found.iter().map(|r| r.manifest.to_string()).collect(),
        }),
    }
}

/// One line of `hoist history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    /// The layer this step made; none for config-only steps.
    pub layer: Option<Digest>,
    /// Compressed size of the layer.
    pub size: u64,
}

/// What `history` shows of one image.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub image: String,
    pub manifest: Digest,
    pub platform: String,
    /// Oldest first, as in the config.
    pub steps: Vec<Step>,
}

/// Pairs the config's history with the manifest's layers. Layers the
/// history does not account for get a step with no text of their own.
pub fn steps(config: &ImageConfig, manifest: &Manifest) -> Vec<Step> {
    let mut layers = manifest.layers.iter();
    let mut out: Vec<Step> = config
        .history
        .iter()
        .map(|h| {
            let layer = match h.empty_layer {
                true => None,
                false => layers.next(),
            };
            Step {
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone(),
                layer: layer.map(|l| l.digest.clone()),
                size: layer.map_or(0, |l| l.size),
            }
        })
        .collect();
    out.extend(layers.map(|l| Step {
        created: None,
        created_by: String::new(),
        comment: None,
        layer: Some(l.digest.clone()),
        size: l.size,
    }));
    out
}

/// The history of `given`: a recorded image, or else a source.
pub fn history(
    store: &Store,
    given: &str,
    platform: Option<&Platform>,
) -> Result<History, ImagesError> {
    let is_source = ["oci:", "oci-archive:", "docker-archive:", "docker://"]
        .iter()
        .any(|p| given.starts_with(p));
    if !is_source {
        let records = list(store)?;
        return recorded_history(store, find(&records, given)?, given, platform);
    }
    let t = Transport::parse(given).map_err(TransportError::from)?;
    if let Transport::Registry(r) = &t {
        return Err(ImagesError::Registry(r.clone()));
    }
    let mut src = open_source(&t)?;
    let resolved = src.resolve(platform, &mut HashOnly)?;
    Ok(History {
        image: given.to_owned(),
        manifest: resolved.manifest.digest.clone(),
        platform: resolved.platform.to_string(),
        steps: steps(&resolved.config, &resolved.manifest_doc),
    })
}

fn recorded_history(
    store: &Store,
    r: &Record,
    given: &str,
    platform: Option<&Platform>,
) -> Result<History, ImagesError> {
    let gone = |what| ImagesError::Gone {
        digest: r.manifest.clone(),
        what,
    };
    let read = |d: &Digest, what| match store.read_blob(d) {
        Err(StoreError::Missing(..)) => Err(gone(what)),
        other => other.map_err(ImagesError::from),
    };
    let bytes = read(&r.manifest, "manifest")?;
    let (manifest, digest) = match ImageDoc::parse(&bytes, &format!("image {}", r.manifest), None)?
    {
        ImageDoc::Manifest(m) => (m, r.manifest.clone()),
        ImageDoc::Index(i) => {
            let wanted = platform.cloned().unwrap_or_else(Platform::host);
            let entry = match select_platform(&i.manifests, &wanted) {
                Ok(e) => e,
                // With no platform asked for, the first is as good as any.
                Err(_) if platform.is_none() && !i.manifests.is_empty() => &i.manifests[0],
                Err(have) => {
                    return Err(ImagesError::NoPlatform {
                        digest: r.manifest.clone(),
                        wanted: wanted.to_string(),
                        have,
                    })
                }
            };
            let bytes = read(&entry.digest, "platform manifest")?;
            match ImageDoc::parse(&bytes, &format!("manifest {}", entry.digest), None)? {
                ImageDoc::Manifest(m) => (m, entry.digest.clone()),
                ImageDoc::Index(_) => return Err(gone("platform manifest")),
            }
        }
    };
    let config_bytes = read(&manifest.config.digest, "config")?;
    let config = ImageConfig::parse(&config_bytes, &format!("config {}", manifest.config.digest))?;
    Ok(History {
        image: given.to_owned(),
        manifest: digest,
        platform: config.platform().to_string(),
        steps: steps(&config, &manifest),
    })
}

impl History {
    /// Newest step first, as `docker history` prints.
    pub fn render(&self) -> String {
        let mut t = format!(
            "{} {} ({})\n{:<14} {:<22} {:>10}  {}\n",
            self.image,
            self.manifest.short(),
            self.platform,
            "LAYER",
            "CREATED",
            "SIZE",
            "CREATED BY"
        );
        for s in self.steps.iter().rev() {
            let by: String = s.created_by.chars().take(80).collect();
            let by = match &s.comment {
                Some(c) if !c.is_empty() => format!("{by} ({c})"),
                _ => by,
            };
            let _ = writeln!(
                t,
                "{:<14} {:<22} {:>10}  {}",
                s.layer.as_ref().map_or("<none>", |d| d.short()),
                s.created.as_deref().unwrap_or(""),
                human_size(s.size),
                by
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Descriptor, History as H};

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn rec(name: &str, tags: &[&str], manifest: Digest, built: u64) -> Record {
        Record {
            manifest,
            name: name.into(),
            target: "prod".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            platforms: Vec::new(),
            size: 0,
            built,
            outputs: Vec::new(),
        }
    }

    #[test]
    fn find_by_tag_name_and_digest_prefix() {
        let records = vec![
            rec("web", &["localhost/web:latest"], d(1), 20),
            rec("api", &["localhost/api:1"], d(2), 10),
            rec("web", &[], d(3), 5),
        ];
        let hex = |n: u8| d(n).hex().to_owned();
        let cases: Vec<(String, Result<Digest, &str>)> = vec![
            ("localhost/web:latest".into(), Ok(d(1))),
            ("web:latest".into(), Ok(d(1))),
            ("api:1".into(), Ok(d(2))),
            ("web".into(), Ok(d(1))),
            (hex(2)[..8].to_owned(), Ok(d(2))),
            (format!("sha256:{}", &hex(3)[..12]), Ok(d(3))),
            (d(3).to_string(), Ok(d(3))),
            ("nothing:here".into(), Err("no image")),
            ("abc".into(), Err("no image")),
            ("ffffffffffff".into(), Err("no image")),
        ];
        for (given, want) in cases {
            match (find(&records, &given), want) {
                (Ok(r), Ok(w)) => assert_eq!(r.manifest, w, "{given}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{given}: {e}"),
                (got, want) => panic!("{given}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn ambiguous_prefix_names_the_candidates() {
        let hex = |tail: &str| Digest::parse(&format!("sha256:{}{tail}", "ab".repeat(31))).unwrap();
        let records = vec![rec("x", &[], hex("01"), 1), rec("y", &[], hex("02"), 2)];
        let e = find(&records, "abababab").unwrap_err();
        assert!(matches!(e, ImagesError::Ambiguous { .. }), "{e}");
        assert!(e.to_string().contains("sha256:ababab"), "{e}");
        assert_eq!(find(&records, hex("02").hex()).unwrap().name, "y");
    }

    #[test]
    fn steps_pair_history_with_layers() {
        let layer = |n: u8, size| {
            Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", d(n), size)
        };
        let h = |by: &str, empty| H {
            created: None,
            created_by: Some(by.into()),
            author: None,
            comment: None,
            empty_layer: empty,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: None,
            config: Descriptor::new("application/vnd.oci.image.config.v1+json", d(9), 10),
            layers: vec![layer(1, 100), layer(2, 200), layer(3, 300)],
            annotations: None,
        };
        let config = ImageConfig {
            history: vec![h("ADD base", false), h("ENV A=1", true), h("deps", false)],
            ..ImageConfig::default()
        };
        let got: Vec<(String, Option<Digest>, u64)> = steps(&config, &manifest)
            .into_iter()
            .map(|s| (s.created_by, s.layer, s.size))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ADD base".into(), Some(d(1)), 100),
                ("ENV A=1".into(), None, 0),
                ("deps".into(), Some(d(2)), 200),
                // A layer the history does not mention still shows.
                (String::new(), Some(d(3)), 300),
            ]
        );
    }

    #[test]
    fn record_merges_tags_of_an_earlier_build() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        record(&store, rec("web", &["localhost/web:1"], d(1), 1)).unwrap();
        record(&store, rec("web", &["localhost/web:2"], d(1), 2)).unwrap();
        record(&store, rec("api", &[], d(2), 3)).unwrap();
        let all = list(&store).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "api", "newest first");
        assert_eq!(all[1].tags, ["localhost/web:2", "localhost/web:1"]);
        assert_eq!(all[1].built, 2);
    }
}
