//! The facts of a base kept in the store, so a rebuild on the same base
//! reads no layer at all (for a registry base, downloads none).
//!
//! Facts depend on the layers only, so they are keyed by the base's
//! manifest digest and a version of what they hold
//! ([`FACTS_CACHE_VERSION`]). The stored form is JSON of its own,
//! separate from the types the rest of hoist uses, so those can change
//! without breaking old entries silently: an entry that does not read back
//! whole is a miss, read again from the layers and rewritten.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{
    read_facts, Facts, FactsError, FileFact, Libc, OsPackage, OsRelease, PackageManager, PathKind,
    PythonFacts, PythonLayout,
};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::{EntryMeta, ImagePath};
use crate::store::Store;

/// The store's cache-entry kind for facts; the entry name is
/// `v<FACTS_CACHE_VERSION>-<manifest hex>`.
const FACTS_KEY_KIND: &str = "facts";

/// Bumped whenever what facts hold or how they are read changes.
const FACTS_CACHE_VERSION: u32 = 3;

/// [`read_facts`], through a cache entry keyed by the base's manifest
/// digest. `fetch` is called before the layers are read, on a miss only
/// (a registry base downloads its layers there).
pub fn read_facts_cached<E: From<FactsError>>(
    store: &Store,
    manifest: &Digest,
    layers: &[Descriptor],
    fetch: &mut dyn FnMut() -> Result<(), E>,
) -> Result<Facts, E> {
    let name = format!("v{FACTS_CACHE_VERSION}-{}", manifest.hex());
    let cached = store
        .get_key(FACTS_KEY_KIND, &name)
        .map_err(FactsError::from)?;
    let cached = cached.and_then(|b| serde_json::from_slice::<Stored>(&b).ok());
    // An entry that does not read back whole is a miss, and is rewritten.
    if let Some(facts) = cached.and_then(Stored::into_facts) {
        return Ok(facts);
    }
    fetch()?;
    let facts = read_facts(store, layers)?;
    let json = serde_json::to_vec(&Stored::from(&facts)).unwrap_or_default();
    store
        .put_key(FACTS_KEY_KIND, &name, &json)
        .map_err(FactsError::from)?;
    Ok(facts)
}

/// [`super::path_kinds`], kept in the store by the layers' digests
/// (content-addressed, so the answer never goes stale): a rebuild reads
/// no layer to know where a Dockerfile's COPY lands.
pub fn path_kinds_cached(
    store: &Store,
    layers: &[Descriptor],
    paths: &[String],
) -> Result<Vec<PathKind>, FactsError> {
    const KIND: &str = "path-kinds";
    let stack: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let key = Digest::of(format!("{}\n{}", stack.join(" "), paths.join("\n")).as_bytes())
        .hex()
        .to_owned();
    let decode = |t: &str| -> Option<PathKind> {
        let mut f = t.split(' ');
        match f.next()? {
            "absent" => Some(PathKind::Absent),
            "other" => Some(PathKind::Other),
            "dir" => {
                let mut n = || f.next()?.parse::<u32>().ok();
                let (mode, uid, gid) = (n()?, n()?, n()?);
                Some(PathKind::Dir(EntryMeta {
                    mode,
                    uid: uid.into(),
                    gid: gid.into(),
                }))
            }
            _ => None,
        }
    };
    if let Some(bytes) = store.get_key(KIND, &key)? {
        let got: Option<Vec<PathKind>> = String::from_utf8_lossy(&bytes)
            .lines()
            .map(decode)
            .collect();
        if let Some(k) = got.filter(|k| k.len() == paths.len()) {
            return Ok(k);
        }
    }
    let k = super::path_kinds(store, layers, paths)?;
    let text: Vec<String> = k
        .iter()
        .map(|k| match k {
            PathKind::Absent => "absent".to_owned(),
            PathKind::Other => "other".to_owned(),
            PathKind::Dir(m) => format!("dir {} {} {}", m.mode, m.uid, m.gid),
        })
        .collect();
    store.put_key(KIND, &key, text.join("\n").as_bytes())?;
    Ok(k)
}

/// The serialised form of [`Facts`] in the store.
#[derive(Serialize, Deserialize)]
struct Stored {
    passwd: Option<File>,
    group: Option<File>,
    shadow: Option<File>,
    gshadow: Option<File>,
    os_release: Option<Os>,
    home: Option<Meta>,
    libc: Option<String>,
    libc_version: Option<(u32, u32)>,
    python: Option<Python>,
    node: Option<String>,
    shell: bool,
    /// `[manager, name, version]`.
    packages: Vec<(String, String, String)>,
}

#[derive(Serialize, Deserialize)]
struct File {
    /// base64, so any bytes round-trip.
    content: String,
    meta: Meta,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
}

#[derive(Serialize, Deserialize)]
struct Os {
    id: String,
    id_like: Vec<String>,
    version_id: Option<String>,
    pretty_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Python {
    version: (u32, u32),
    interpreter: String,
    layout: String,
    package_version: Option<String>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn meta(m: &EntryMeta) -> Meta {
    Meta {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
    }
}

fn entry_meta(m: Meta) -> EntryMeta {
    EntryMeta {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
    }
}

fn file(f: &Option<FileFact>) -> Option<File> {
    f.as_ref().map(|f| File {
        content: B64.encode(&f.content),
        meta: meta(&f.meta),
    })
}

/// `Some(None)` for no file, `None` for an entry that does not decode.
fn file_fact(f: Option<File>) -> Option<Option<FileFact>> {
    let Some(f) = f else {
        return Some(None);
    };
    Some(Some(FileFact {
        content: B64.decode(f.content).ok()?,
        meta: entry_meta(f.meta),
    }))
}

/// The same, for the optional fields whose stored form can be bad.
fn decode<S, T>(stored: Option<S>, read: impl FnOnce(S) -> Option<T>) -> Option<Option<T>> {
    match stored {
        None => Some(None),
        Some(s) => read(s).map(Some),
    }
}

impl From<&Facts> for Stored {
    fn from(f: &Facts) -> Stored {
        Stored {
            passwd: file(&f.passwd),
            group: file(&f.group),
            shadow: file(&f.shadow),
            gshadow: file(&f.gshadow),
            os_release: f.os_release.as_ref().map(|o| Os {
                id: o.id.clone(),
                id_like: o.id_like.clone(),
                version_id: o.version_id.clone(),
                pretty_name: o.pretty_name.clone(),
            }),
            home: f.home.as_ref().map(meta),
            libc: f.libc.map(|l| l.as_str().to_owned()),
            libc_version: f.libc_version,
            python: f.python.as_ref().map(|p| Python {
                version: p.version,
                interpreter: p.interpreter.as_str().to_owned(),
                layout: p.layout.as_str().to_owned(),
                package_version: p.package_version.clone(),
            }),
            node: f.node.as_ref().map(|n| n.as_str().to_owned()),
            shell: f.shell,
            packages: f
                .packages
                .iter()
                .map(|p| {
                    (
                        p.manager.as_str().to_owned(),
                        p.name.clone(),
                        p.version.clone(),
                    )
                })
                .collect(),
        }
    }
}

impl Stored {
    /// The facts, unless a field does not read back.
    fn into_facts(self) -> Option<Facts> {
        let packages = self
            .packages
            .into_iter()
            .map(|(manager, name, version)| {
                let manager = match manager.as_str() {
                    "dpkg" => PackageManager::Dpkg,
                    "apk" => PackageManager::Apk,
                    _ => return None,
                };
                Some(OsPackage {
                    name,
                    version,
                    manager,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Facts {
            node: decode(self.node, |n| ImagePath::new(&n).ok())?,
            packages,
            shell: self.shell,
            passwd: file_fact(self.passwd)?,
            group: file_fact(self.group)?,
            shadow: file_fact(self.shadow)?,
            gshadow: file_fact(self.gshadow)?,
            os_release: self.os_release.map(|o| OsRelease {
                id: o.id,
                id_like: o.id_like,
                version_id: o.version_id,
                pretty_name: o.pretty_name,
            }),
            home: self.home.map(entry_meta),
            libc: decode(self.libc, |l| match l.as_str() {
                "glibc" => Some(Libc::Glibc),
                "musl" => Some(Libc::Musl),
                _ => None,
            })?,
            libc_version: self.libc_version,
            python: decode(self.python, |p| {
                Some(PythonFacts {
                    version: p.version,
                    interpreter: ImagePath::new(&p.interpreter).ok()?,
                    layout: match p.layout.as_str() {
                        "usr-local" => PythonLayout::UsrLocal,
                        "debian" => PythonLayout::Debian,
                        "usr" => PythonLayout::Usr,
                        _ => return None,
                    },
                    package_version: p.package_version,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::fixtures::*;
    use crate::layer::reader::tests::RawTar;
    use crate::layer::Compression;

    #[test]
    fn cached_facts_round_trip_and_skip_the_layers() {
        let (_d, s) = store();
        let base = raw_layer(
            &s,
            &RawTar::new()
                .file_meta(
                    "etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\n\xff",
                    0o600,
                    0,
                    42,
                )
                .file("etc/group", b"root:x:0:\n")
                .file("etc/os-release", ALPINE_OS_RELEASE)
                .file("lib/apk/db/installed", ALPINE_APK_DB)
                .file("usr/bin/python3.12", b"")
                .file("usr/lib/python3.12/os.py", b"")
                .dir("home/")
                .finish(),
        );
        let manifest = Digest::of(b"a manifest");
        let mut fetched = 0;
        let mut fetch = || -> Result<(), FactsError> {
            fetched += 1;
            Ok(())
        };
        let first =
            read_facts_cached(&s, &manifest, std::slice::from_ref(&base), &mut fetch).unwrap();
        assert_eq!(first, read_facts(&s, std::slice::from_ref(&base)).unwrap());
        assert_eq!(first.libc, Some(Libc::Musl));
        assert_eq!(first.libc_version, Some((1, 2)));
        assert_eq!(
            first.python.as_ref().map(|p| p.package_version.as_deref()),
            Some(Some("3.12.3"))
        );
        // The second time, not a layer is read: not even the missing one.
        let missing = Descriptor::new(
            Compression::Gzip.media_type(),
            Digest::of(b"not in the store"),
            1,
        );
        let mut fetch = || -> Result<(), FactsError> { panic!("fetched on a hit") };
        let second = read_facts_cached(&s, &manifest, &[missing], &mut fetch).unwrap();
        assert_eq!(second, first);
        assert_eq!(fetched, 1);
    }

    #[test]
    fn cache_form_round_trips_every_fact() {
        let python = |layout, package: Option<&str>| PythonFacts {
            version: (3, 9),
            interpreter: p("usr/local/bin/python3.9"),
            layout,
            package_version: package.map(str::to_owned),
        };
        let cases = [
            Facts::default(),
            Facts {
                passwd: Some(FileFact {
                    content: b"\xff\0".to_vec(),
                    meta: EntryMeta::root(0o600),
                }),
                os_release: Some(OsRelease::parse(DEBIAN_OS_RELEASE)),
                home: Some(EntryMeta::root(0o755)),
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 36)),
                python: Some(python(PythonLayout::UsrLocal, None)),
                ..Facts::default()
            },
            Facts {
                libc: Some(Libc::Musl),
                python: Some(python(PythonLayout::Debian, Some("3.9.2"))),
                ..Facts::default()
            },
            Facts {
                python: Some(python(PythonLayout::Usr, Some("3.9.18"))),
                ..Facts::default()
            },
        ];
        for facts in cases {
            let json = serde_json::to_vec(&Stored::from(&facts)).unwrap();
            let back = serde_json::from_slice::<Stored>(&json).unwrap();
            assert_eq!(back.into_facts(), Some(facts));
        }
    }

    #[test]
    fn a_cache_entry_that_does_not_read_back_is_a_miss() {
        let (_d, s) = store();
        let base = raw_layer(
            &s,
            &RawTar::new()
                .file("usr/local/bin/python3.12", b"")
                .file("usr/local/lib/python3.12/os.py", b"")
                .finish(),
        );
        let manifest = Digest::of(b"a manifest");
        let name = format!("v{FACTS_CACHE_VERSION}-{}", manifest.hex());
        let mut stored = serde_json::to_value(Stored::from(&Facts::default())).unwrap();
        stored["python"] = serde_json::json!({
            "version": [3, 12],
            "interpreter": "usr/local/bin/python3.12",
            "layout": "a layout from the future",
            "package_version": null,
        });
        s.put_key(FACTS_KEY_KIND, &name, stored.to_string().as_bytes())
            .unwrap();
        let mut fetched = 0;
        let mut fetch = || -> Result<(), FactsError> {
            fetched += 1;
            Ok(())
        };
        let facts = read_facts_cached(&s, &manifest, &[base], &mut fetch).unwrap();
        assert_eq!(fetched, 1);
        assert_eq!(facts.python.map(|p| p.layout), Some(PythonLayout::UsrLocal));
        // And it was rewritten.
        let again = s.get_key(FACTS_KEY_KIND, &name).unwrap().unwrap();
        let again = serde_json::from_slice::<Stored>(&again).unwrap();
        assert!(again.into_facts().is_some());
    }
}
