//! Transport tests over hand-made layouts and archives: images are built
//! with the store and the layer writer, and packed into layouts and tars
//! by the helpers here (not by the code under test), then read back.

use std::io::Read;
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::engine::Engine;
use super::tarfile::TarIndex;
use super::*;
use crate::image::{to_json, ContainerConfig, Healthcheck, History, Index, RootFs};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerWriter};
use crate::ops::inspect::inspect;

const REF: &str = "org.opencontainers.image.ref.name";

struct Fx {
    _tmp: tempfile::TempDir,
    /// The store the fixture images are made in.
    src: Store,
    /// A second, empty store that `load_base` imports into.
    dst: Store,
    /// A folder for layouts and archives.
    work: PathBuf,
}

fn fx() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let src = Store::open(tmp.path().join("src-store")).unwrap();
    let dst = Store::open(tmp.path().join("dst-store")).unwrap();
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    Fx {
        _tmp: tmp,
        src,
        dst,
        work,
    }
}

fn layer(store: &Store, files: &[(&str, &str)], c: Compression) -> Layer {
    let mut w = LayerWriter::new(store, c, 0).unwrap();
    for (path, content) in files {
        w.file(
            &ImagePath::new(path).unwrap(),
            EntryMeta::root(0o644),
            content.len() as u64,
            &mut content.as_bytes(),
        )
        .unwrap();
    }
    w.finish().unwrap()
}

/// One image in the store: its manifest descriptor (with platform), the
/// documents, and its layers.
#[derive(Clone)]
struct Img {
    manifest: Descriptor,
    manifest_json: Manifest,
    config: ImageConfig,
    layers: Vec<Layer>,
}

impl Img {
    fn blobs(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self
            .layers
            .iter()
            .map(|l| l.descriptor.digest.clone())
            .collect();
        v.push(self.manifest_json.config.digest.clone());
        v.push(self.manifest.digest.clone());
        v
    }

    fn built(&self) -> BuiltImage {
        BuiltImage {
            manifest: self.manifest.clone(),
            manifest_json: self.manifest_json.clone(),
            config_json: self.config.clone(),
        }
    }
}

/// An image for `platform` (whose config carries no variant, as umoci
/// writes them) with `n` small layers, gzip unless `c` says otherwise.
fn image(store: &Store, platform: &str, tag: &str, c: Compression) -> Img {
    let layers = vec![
        layer(
            store,
            &[("etc/os-release", &format!("ID={tag} {platform}\n"))],
            c,
        ),
        layer(store, &[("app/a.txt", "hello"), ("app/b.txt", tag)], c),
    ];
    let p = Platform::parse(platform).unwrap();
    let config = ImageConfig {
        created: Some("2023-11-14T22:13:20Z".into()),
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        config: Some(ContainerConfig {
            user: Some("1001:1001".into()),
            env: Some(vec!["PATH=/usr/bin:/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            exposed_ports: Some([("3000/tcp".to_owned(), serde_json::json!({}))].into()),
            labels: Some([("org.example".to_owned(), "yes".to_owned())].into()),
            working_dir: Some("/app".into()),
            healthcheck: Some(Healthcheck {
                test: Some(vec!["CMD-SHELL".into(), "true".into()]),
                interval: Some(30_000_000_000),
                ..Healthcheck::default()
            }),
            ..ContainerConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: vec![
            History {
                created_by: Some("ADD os-release".into()),
                ..History::default()
            },
            History {
                created_by: Some("ENV A=1".into()),
                empty_layer: true,
                ..History::default()
            },
            History {
                created_by: Some("COPY app".into()),
                ..History::default()
            },
        ],
        ..ImageConfig::default()
    };
    let config_bytes = to_json(&config);
    let (cd, cs) = store.put_bytes(&config_bytes).unwrap();
    let manifest_json = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, cd, cs),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: None,
    };
    let bytes = to_json(&manifest_json);
    let (md, ms) = store.put_bytes(&bytes).unwrap();
    let mut manifest = Descriptor::new(media::OCI_MANIFEST, md, ms);
    manifest.platform = Some(p);
    Img {
        manifest,
        manifest_json,
        config,
        layers,
    }
}

/// An index blob in the store listing `children`.
fn index_blob(store: &Store, media_type: &str, children: Vec<Descriptor>) -> Descriptor {
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type.into()),
        manifests: children,
        annotations: None,
    };
    let (d, n) = store.put_bytes(&to_json(&index)).unwrap();
    Descriptor::new(media_type, d, n)
}

fn named(mut d: Descriptor, name: &str) -> Descriptor {
    d.annotations = Some([(REF.to_owned(), name.to_owned())].into());
    d
}

/// Writes an OCI layout by hand: the given blobs copied from the store,
/// and an index.json of `entries`.
fn layout(dir: &Path, store: &Store, blobs: &[Digest], entries: Vec<Descriptor>) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for d in blobs {
        fs::copy(store.blob_path(d), dir.join("blobs/sha256").join(d.hex())).unwrap();
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: entries,
        annotations: None,
    };
    fs::write(dir.join("index.json"), to_json(&index)).unwrap();
}

/// Packs a folder into a tar, as `tar -C dir -cf out .` would.
fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

enum Item {
    Data(Vec<u8>),
    Symlink(&'static str),
}

/// Writes a tar of the given members.
fn tar_of(out: &Path, items: Vec<(String, Item)>) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    for (name, item) in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match item {
            Item::Data(data) => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &name, &data[..]).unwrap();
            }
            Item::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &name, target).unwrap();
            }
        }
    }
    b.finish().unwrap();
}

fn plat(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

fn t(s: &str) -> Transport {
    Transport::parse(s).unwrap()
}

fn blob_count(store: &Store) -> usize {
    fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

/// Names in a folder, sorted.
fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read_member(archive: &Path, name: &str) -> Vec<u8> {
    let idx = TarIndex::open(archive).unwrap();
    let (mut r, _) = idx.open_member(name).unwrap().unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn assert_loaded(base: &BaseImage, img: &Img, dst: &Store) {
    assert_eq!(base.manifest_digest, img.manifest.digest);
    assert_eq!(base.config_digest, img.manifest_json.config.digest);
    let want: Vec<&Digest> = img.layers.iter().map(|l| &l.descriptor.digest).collect();
    let got: Vec<&Digest> = base.layers.iter().map(|l| &l.digest).collect();
    assert_eq!(got, want);
    for d in img.blobs() {
        assert!(dst.has(&d), "{d} not imported");
    }
}

// ------------------------------------------------------------------ names

#[test]
fn transport_parse_table() {
    let sha = format!("sha256:{}", "a".repeat(64));
    let reg_digest = format!("quay.io/x/y@{sha}");
    type Case<'a> = (&'a str, Result<(Transport, &'a str), &'a str>);
    let cases: Vec<Case> = vec![
        (
            "oci:/tmp/x",
            Ok((
                Transport::Oci {
                    dir: "/tmp/x".into(),
                    tag: None,
                },
                "oci:/tmp/x",
            )),
        ),
        (
            "oci:/tmp/x:latest",
            Ok((
                Transport::Oci {
                    dir: "/tmp/x".into(),
                    tag: Some("latest".into()),
                },
                "oci:/tmp/x:latest",
            )),
        ),
        (
            "oci:x:",
            Ok((
                Transport::Oci {
                    dir: "x".into(),
                    tag: None,
                },
                "oci:x",
            )),
        ),
        (
            "oci-archive:a.tar:localhost/web:dev",
            Ok((
                Transport::OciArchive {
                    file: "a.tar".into(),
                    tag: Some("localhost/web:dev".into()),
                },
                "oci-archive:a.tar:localhost/web:dev",
            )),
        ),
        (
            "docker-archive:b.tar:busybox:latest",
            Ok((
                Transport::DockerArchive {
                    file: "b.tar".into(),
                    tag: Some("busybox:latest".into()),
                },
                "docker-archive:b.tar:busybox:latest",
            )),
        ),
        (
            "docker-archive:b.tar:@1",
            Ok((
                Transport::DockerArchive {
                    file: "b.tar".into(),
                    tag: Some("@1".into()),
                },
                "docker-archive:b.tar:@1",
            )),
        ),
        (
            "docker://alpine:3.20",
            Ok((
                Transport::Registry("alpine:3.20".into()),
                "docker://alpine:3.20",
            )),
        ),
        (
            "alpine",
            Ok((Transport::Registry("alpine".into()), "docker://alpine")),
        ),
        (
            "docker:24-dind",
            Ok((
                Transport::Registry("docker:24-dind".into()),
                "docker://docker:24-dind",
            )),
        ),
        (
            &reg_digest,
            Ok((Transport::Registry(reg_digest.clone()), "")),
        ),
        ("oci:", Err("empty path")),
        ("oci::tag", Err("empty path")),
        ("oci-archive:", Err("empty path")),
        ("docker-archive::x", Err("empty path")),
        ("docker://", Err("needs a reference")),
        ("", Err("empty")),
        ("dir:/tmp/x", Err("`dir:` transport")),
        (
            "containers-storage:foo/bar",
            Ok((
                Transport::Engine {
                    engine: Engine::Podman,
                    name: Some("foo/bar".into()),
                },
                "containers-storage:foo/bar",
            )),
        ),
        (
            "docker-daemon:web:dev",
            Ok((
                Transport::Engine {
                    engine: Engine::Docker,
                    name: Some("web:dev".into()),
                },
                "docker-daemon:web:dev",
            )),
        ),
        (
            "docker-daemon:",
            Ok((
                Transport::Engine {
                    engine: Engine::Docker,
                    name: None,
                },
                "docker-daemon:",
            )),
        ),
        ("docker-daemon:Web:dev", Err("`Web:dev`")),
        ("docker-daemon:web@sha256:abc", Err("has a digest")),
        (
            "containers-storage:[overlay@/var/lib/x]web",
            Err("store specifier"),
        ),
        ("docker-archive:x.tar:Bad!", Err("`Bad!`")),
        ("oci:x:bad tag", Err("`bad tag`")),
        ("a b", Err("spaces")),
        ("./img", Err("`./img` is a path")),
        ("/srv/base.tar", Err("oci-archive:/srv/base.tar")),
        ("../a", Err("docker-archive:../a")),
        (".", Err("oci:.")),
        ("~/x", Err("is a path")),
    ];
    for (input, want) in cases {
        match (Transport::parse(input), want) {
            (Ok(got), Ok((t, display))) => {
                assert_eq!(got, t, "{input}");
                let shown = got.to_string();
                if !display.is_empty() {
                    assert_eq!(shown, display, "{input}");
                }
                // What Display prints parses back to the same transport.
                assert_eq!(Transport::parse(&shown).unwrap(), got, "{input}");
            }
            (Err(e), Err(msg)) => {
                let e = e.to_string();
                assert!(e.contains(msg), "{input}: {e}");
            }
            (got, _) => panic!("{input}: {got:?}"),
        }
    }
}

#[test]
fn engine_full_name_table() {
    let cases = [
        (Engine::Docker, "web", "web:latest"),
        (Engine::Docker, "web:dev", "web:dev"),
        (Engine::Docker, "team/web", "team/web:latest"),
        (
            Engine::Docker,
            "localhost:5000/web",
            "localhost:5000/web:latest",
        ),
        (Engine::Docker, "localhost/web:1", "localhost/web:1"),
        (Engine::Podman, "web", "localhost/web:latest"),
        (Engine::Podman, "web:dev", "localhost/web:dev"),
        (Engine::Podman, "quay.io/x/y:1", "quay.io/x/y:1"),
    ];
    for (engine, name, want) in cases {
        assert_eq!(engine.full_name(name).unwrap(), want, "{engine:?} {name}");
    }
    let tags = [
        (Engine::Docker, "localhost/web:dev", "web:dev"),
        (Engine::Docker, "localhost/team/web:1", "team/web:1"),
        (Engine::Docker, "quay.io/x/y:1", "quay.io/x/y:1"),
        (Engine::Podman, "localhost/web:dev", "localhost/web:dev"),
    ];
    for (engine, tag, want) in tags {
        assert_eq!(engine.tag_name(tag), want, "{engine:?} {tag}");
    }
}

// ---------------------------------------------------------------- reading

#[test]
fn oci_dir_read_imports_everything() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let dir = fx.work.join("layout");
    layout(
        &dir,
        &fx.src,
        &img.blobs(),
        vec![named(img.manifest.clone(), "latest")],
    );
    for spec in ["oci:{}", "oci:{}:latest"] {
        let tr = t(&spec.replace("{}", dir.to_str().unwrap()));
        let base = load_base(&tr, &plat("linux/amd64"), &fx.dst).unwrap();
        assert_loaded(&base, &img, &fx.dst);
        assert_eq!(base.platform, plat("linux/amd64"));
        assert_eq!(
            base.config.config.as_ref().unwrap().cmd.as_deref(),
            Some(&["sh".to_owned()][..])
        );
        assert!(base
            .layers
            .iter()
            .all(|l| l.media_type == media::OCI_LAYER_GZIP));
        assert_eq!(base.source, tr.to_string());
    }
}

#[test]
fn oci_archive_is_read_in_place() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Zstd);
    let dir = fx.work.join("layout");
    layout(
        &dir,
        &fx.src,
        &img.blobs(),
        vec![named(img.manifest.clone(), "library/alpine:3.20.3")],
    );
    let archive = fx.work.join("img.tar");
    tar_dir(&dir, &archive);
    fs::remove_dir_all(&dir).unwrap();
    for tag in ["", ":3.20.3", ":library/alpine:3.20.3"] {
        let tr = t(&format!("oci-archive:{}{tag}", archive.display()));
        let base = load_base(&tr, &plat("linux/amd64"), &fx.dst).unwrap();
        assert_loaded(&base, &img, &fx.dst);
        assert!(base
            .layers
            .iter()
            .all(|l| l.media_type == media::OCI_LAYER_ZSTD));
    }
    // Nothing was unpacked beside the archive.
    assert_eq!(ls(&fx.work), ["img.tar"]);
}

#[test]
fn docker_list_of_v2s2_manifests_maps_media_types() {
    let fx = fx();
    // A Docker v2s2 manifest (same shape, Docker media types) in a Docker
    // manifest list, as buildah writes `--format v2s2` into an oci: dir.
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let mut m = img.manifest_json.clone();
    m.media_type = Some(media::DOCKER_MANIFEST.into());
    m.config.media_type = media::DOCKER_CONFIG.into();
    for l in &mut m.layers {
        l.media_type = media::DOCKER_LAYER_GZIP.into();
    }
    let (md, ms) = fx.src.put_bytes(&to_json(&m)).unwrap();
    let mut mdesc = Descriptor::new(media::DOCKER_MANIFEST, md.clone(), ms);
    mdesc.platform = Some(plat("linux/amd64"));
    let list = index_blob(&fx.src, media::DOCKER_LIST, vec![mdesc]);
    let mut blobs = img.blobs();
    blobs.extend([md.clone(), list.digest.clone()]);
    let dir = fx.work.join("layout");
    layout(&dir, &fx.src, &blobs, vec![named(list, "3.20")]);
    let base = load_base(
        &t(&format!("oci:{}:3.20", dir.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap();
    assert_eq!(base.manifest_digest, md);
    assert!(
        base.layers
            .iter()
            .all(|l| l.media_type == media::OCI_LAYER_GZIP),
        "{:?}",
        base.layers
    );
}

/// A layout whose one entry is an index of amd64 and arm64/v8 images.
fn multi_arch(fx: &Fx) -> (PathBuf, Img, Img, Descriptor) {
    let amd = image(&fx.src, "linux/amd64", "amd", Compression::Gzip);
    let arm = image(&fx.src, "linux/arm64", "arm", Compression::Gzip);
    let mut arm_entry = arm.manifest.clone();
    arm_entry.platform = Some(plat("linux/arm64/v8"));
    let index = index_blob(
        &fx.src,
        media::OCI_INDEX,
        vec![amd.manifest.clone(), arm_entry],
    );
    let mut blobs = amd.blobs();
    blobs.extend(arm.blobs());
    blobs.push(index.digest.clone());
    let dir = fx.work.join("multi");
    layout(&dir, &fx.src, &blobs, vec![named(index.clone(), "3.20")]);
    (dir, amd, arm, index)
}

#[test]
fn index_selects_the_wanted_platform() {
    let fx = fx();
    let (dir, amd, arm, _) = multi_arch(&fx);
    let tr = t(&format!("oci:{}", dir.display()));
    for want in ["linux/arm64", "linux/arm64/v8"] {
        let base = load_base(&tr, &plat(want), &fx.dst).unwrap();
        assert_loaded(&base, &arm, &fx.dst);
        // The config has no variant; the index entry's is kept.
        assert_eq!(base.platform.to_string(), "linux/arm64/v8");
    }
    assert!(!fx.dst.has(&amd.layers[0].descriptor.digest));
    let base = load_base(&tr, &plat("linux/amd64"), &fx.dst).unwrap();
    assert_loaded(&base, &amd, &fx.dst);
}

#[test]
fn unknown_platform_lists_available_and_imports_nothing() {
    let fx = fx();
    let (dir, ..) = multi_arch(&fx);
    let err = load_base(
        &t(&format!("oci:{}", dir.display())),
        &plat("linux/s390x"),
        &fx.dst,
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::NoPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/amd64, linux/arm64/v8"),
        "{msg}"
    );
    assert_eq!(blob_count(&fx.dst), 0);
}

#[test]
fn single_image_of_another_platform_is_refused() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let dir = fx.work.join("layout");
    layout(&dir, &fx.src, &img.blobs(), vec![img.manifest.clone()]);
    let err = load_base(
        &t(&format!("oci:{}", dir.display())),
        &plat("linux/arm64"),
        &fx.dst,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TransportError::PlatformMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("linux/amd64") && msg.contains("linux/arm64"),
        "{msg}"
    );
}

#[test]
fn missing_tag_lists_names() {
    let fx = fx();
    let a = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let b = image(&fx.src, "linux/amd64", "b", Compression::Gzip);
    let mut blobs = a.blobs();
    blobs.extend(b.blobs());
    let dir = fx.work.join("layout");
    layout(
        &dir,
        &fx.src,
        &blobs,
        vec![
            named(a.manifest.clone(), "a"),
            named(b.manifest.clone(), "b"),
        ],
    );
    let amd = plat("linux/amd64");
    let err = load_base(&t(&format!("oci:{}:c", dir.display())), &amd, &fx.dst).unwrap_err();
    assert!(matches!(err, TransportError::TagNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("no image named `c`; it has: a, b"),
        "{err}"
    );
    let err = load_base(&t(&format!("oci:{}", dir.display())), &amd, &fx.dst).unwrap_err();
    assert!(matches!(err, TransportError::TagRequired { .. }), "{err}");
    assert!(err.to_string().contains("a, b"), "{err}");
    let base = load_base(&t(&format!("oci:{}:b", dir.display())), &amd, &fx.dst).unwrap();
    assert_loaded(&base, &b, &fx.dst);
}

#[test]
fn corrupt_blob_is_named_and_not_imported() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let dir = fx.work.join("layout");
    layout(&dir, &fx.src, &img.blobs(), vec![img.manifest.clone()]);
    let bad = &img.layers[0].descriptor;
    let path = dir.join("blobs/sha256").join(bad.digest.hex());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let archive = fx.work.join("img.tar");
    tar_dir(&dir, &archive);
    for tr in [
        format!("oci:{}", dir.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        let err = load_base(&t(&tr), &plat("linux/amd64"), &fx.dst).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TransportError::BlobCorrupt { .. }), "{msg}");
        assert!(msg.contains(bad.digest.as_str()), "{msg}");
        assert!(
            msg.contains(bad.digest.hex())
                && msg.contains(if tr.starts_with("oci:") {
                    "layout"
                } else {
                    "img.tar"
                }),
            "{msg}"
        );
        // Nothing of the image is in the store: layers go first, and the
        // corrupt one is the first.
        assert_eq!(blob_count(&fx.dst), 0, "{tr}");
        // Inspect finds it too.
        let err = inspect(&t(&tr), None).unwrap_err().to_string();
        assert!(err.contains(bad.digest.as_str()), "{err}");
    }

    // A corrupt manifest: named by digest too.
    layout(&dir, &fx.src, &img.blobs(), vec![img.manifest.clone()]);
    let mpath = dir.join("blobs/sha256").join(img.manifest.digest.hex());
    let mut m = fs::read(&mpath).unwrap();
    m[0] = b' ';
    fs::write(&mpath, &m).unwrap();
    let err = load_base(
        &t(&format!("oci:{}", dir.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(img.manifest.digest.as_str()) && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn oversized_documents_are_refused_unread() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let dir = fx.work.join("layout");
    let mut entry = img.manifest.clone();
    entry.size = 5 << 20;
    layout(&dir, &fx.src, &img.blobs(), vec![entry]);
    let err = load_base(
        &t(&format!("oci:{}", dir.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");

    let archive = fx.work.join("big.tar");
    tar_of(
        &archive,
        vec![("manifest.json".into(), Item::Data(vec![b' '; 5 << 20]))],
    );
    let err = load_base(
        &t(&format!("docker-archive:{}", archive.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");
}

#[test]
fn nested_indexes_are_followed_within_a_bound() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let mut blobs = img.blobs();
    let mut top = img.manifest.clone();
    let mut chain = Vec::new();
    for _ in 0..6 {
        let mut child = top.clone();
        child.platform = Some(plat("linux/amd64"));
        top = index_blob(&fx.src, media::OCI_INDEX, vec![child]);
        blobs.push(top.digest.clone());
        chain.push(top.clone());
    }
    let amd = plat("linux/amd64");
    // Two levels deep: fine.
    let dir = fx.work.join("two");
    layout(&dir, &fx.src, &blobs, vec![chain[1].clone()]);
    let base = load_base(&t(&format!("oci:{}", dir.display())), &amd, &fx.dst).unwrap();
    assert_loaded(&base, &img, &fx.dst);
    // Six: refused.
    let dir = fx.work.join("six");
    layout(&dir, &fx.src, &blobs, vec![chain[5].clone()]);
    let err = load_base(&t(&format!("oci:{}", dir.display())), &amd, &fx.dst).unwrap_err();
    assert!(matches!(err, TransportError::IndexTooDeep { .. }), "{err}");
}

// --------------------------------------------------------- docker-archive

/// A legacy docker-archive of `img`, whose layers must be uncompressed:
/// config `<hex>.json`, layers as `<id>/layer.tar`, either real files or
/// (podman) symlinks to `<hex>.tar`.
fn docker_archive(out: &Path, store: &Store, img: &Img, symlinks: bool) {
    let cfg = &img.manifest_json.config.digest;
    let mut items = vec![(
        format!("{}.json", cfg.hex()),
        Item::Data(store.read_blob(cfg).unwrap()),
    )];
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let data = store.read_blob(&l.descriptor.digest).unwrap();
        let id = format!("{i:064x}");
        if symlinks {
            items.push((format!("{}.tar", l.diff_id.hex()), Item::Data(data)));
            let target: &'static str =
                Box::leak(format!("../{}.tar", l.diff_id.hex()).into_boxed_str());
            items.push((format!("{id}/layer.tar"), Item::Symlink(target)));
        } else {
            items.push((format!("{id}/layer.tar"), Item::Data(data)));
        }
        layers.push(format!("{id}/layer.tar"));
    }
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", cfg.hex()),
        "RepoTags": ["localhost/busybox:latest"],
        "Layers": layers,
    }]);
    items.push((
        "manifest.json".into(),
        Item::Data(manifest.to_string().into_bytes()),
    ));
    tar_of(out, items);
}

#[test]
fn docker_archive_legacy_read() {
    for symlinks in [false, true] {
        let fx = fx();
        let img = image(&fx.src, "linux/amd64", "a", Compression::None);
        let archive = fx.work.join("busybox.tar");
        docker_archive(&archive, &fx.src, &img, symlinks);
        let mut digests = Vec::new();
        for tag in [
            "",
            ":busybox",
            ":busybox:latest",
            ":localhost/busybox:latest",
            ":@0",
        ] {
            let tr = t(&format!("docker-archive:{}{tag}", archive.display()));
            let base = load_base(&tr, &plat("linux/amd64"), &fx.dst).unwrap();
            assert_eq!(base.config_digest, img.manifest_json.config.digest);
            for (l, want) in base.layers.iter().zip(&img.layers) {
                assert_eq!(l.digest, want.diff_id);
                assert_eq!(l.media_type, media::OCI_LAYER);
                assert!(fx.dst.has(&l.digest));
            }
            assert!(fx.dst.has(&base.manifest_digest));
            let manifest = fx.dst.read_blob(&base.manifest_digest).unwrap();
            let parsed: Manifest = serde_json::from_slice(&manifest).unwrap();
            assert_eq!(parsed.layers, base.layers);
            digests.push(base.manifest_digest);
        }
        digests.dedup();
        assert_eq!(digests.len(), 1, "the synthesized manifest is stable");
        let err = load_base(
            &t(&format!("docker-archive:{}:nginx", archive.display())),
            &plat("linux/amd64"),
            &fx.dst,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("localhost/busybox:latest"), "{err}");
    }
}

#[test]
fn docker_archive_compressed_layers_are_hashed_on_import() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let cfg = &img.manifest_json.config.digest;
    // Docker 25+ names: blobs/sha256/<hex>.
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let mut items = vec![(path(cfg), Item::Data(fx.src.read_blob(cfg).unwrap()))];
    for l in &img.layers {
        items.push((
            path(&l.descriptor.digest),
            Item::Data(fx.src.read_blob(&l.descriptor.digest).unwrap()),
        ));
    }
    let manifest = serde_json::json!([{
        "Config": path(cfg),
        "RepoTags": null,
        "Layers": img.layers.iter().map(|l| path(&l.descriptor.digest)).collect::<Vec<_>>(),
    }]);
    items.push((
        "manifest.json".into(),
        Item::Data(manifest.to_string().into_bytes()),
    ));
    let archive = fx.work.join("d25.tar");
    tar_of(&archive, items);
    let base = load_base(
        &t(&format!("docker-archive:{}", archive.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap();
    for (l, want) in base.layers.iter().zip(&img.layers) {
        assert_eq!(l, &want.descriptor);
        assert!(fx.dst.has(&l.digest));
    }
    // Inspect computes the same without the store.
    let report = inspect(&t(&format!("docker-archive:{}", archive.display())), None).unwrap();
    assert_eq!(report.manifest_digest, base.manifest_digest);
    assert!(report.synthesized_manifest);
}

#[test]
fn docker_archive_refuses_escaping_paths() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::None);
    let cfg = &img.manifest_json.config.digest;
    let cfg_name = format!("{}.json", cfg.hex());
    let cases = [
        (cfg_name.clone(), "../x", "climbs out"),
        (cfg_name.clone(), "a/../../x", "climbs out"),
        ("/etc/passwd".to_owned(), "x", "is absolute"),
    ];
    for (config, layer, why) in cases {
        let manifest =
            serde_json::json!([{ "Config": config, "RepoTags": [], "Layers": [layer, layer] }]);
        let archive = fx.work.join("evil.tar");
        tar_of(
            &archive,
            vec![
                (cfg_name.clone(), Item::Data(fx.src.read_blob(cfg).unwrap())),
                (
                    "manifest.json".into(),
                    Item::Data(manifest.to_string().into_bytes()),
                ),
            ],
        );
        let err = load_base(
            &t(&format!("docker-archive:{}", archive.display())),
            &plat("linux/amd64"),
            &fx.dst,
        )
        .unwrap_err();
        assert!(
            matches!(err, TransportError::BadArchivePath { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn docker_archive_layer_not_matching_diff_id_is_refused() {
    let fx = fx();
    // The first layer's file holds the second layer's bytes; the config
    // still lists the true diff_ids.
    let archive = fx.work.join("bad.tar");
    let real = image(&fx.src, "linux/amd64", "a", Compression::None);
    let mut swapped = real.clone();
    swapped.layers[0].descriptor = real.layers[1].descriptor.clone();
    docker_archive(&archive, &fx.src, &swapped, false);
    let err = load_base(
        &t(&format!("docker-archive:{}", archive.display())),
        &plat("linux/amd64"),
        &fx.dst,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TransportError::BlobCorrupt { .. }), "{msg}");
    assert!(msg.contains(real.layers[0].diff_id.as_str()), "{msg}");
    assert!(!fx.dst.has(&real.layers[0].diff_id));
}

// ---------------------------------------------------------------- writing

#[test]
fn write_then_read_back_each_format() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let tags = vec!["web:dev".to_owned(), "web:latest".to_owned()];
    let amd = plat("linux/amd64");

    let dir = fx.work.join("out/layout");
    write_output(
        &t(&format!("oci:{}", dir.display())),
        &img.built(),
        &tags,
        &fx.src,
    )
    .unwrap();
    for tag in ["", ":localhost/web:dev", ":dev"] {
        let base = load_base(&t(&format!("oci:{}{tag}", dir.display())), &amd, &fx.dst).unwrap();
        assert_loaded(&base, &img, &fx.dst);
    }

    let oa = fx.work.join("out/web.oci.tar");
    write_output(
        &t(&format!("oci-archive:{}", oa.display())),
        &img.built(),
        &tags,
        &fx.src,
    )
    .unwrap();
    for (i, tag) in ["", ":localhost/web:dev", ":dev"].iter().enumerate() {
        let dst = Store::open(fx.work.join(format!("s{i}"))).unwrap();
        let base = load_base(
            &t(&format!("oci-archive:{}{tag}", oa.display())),
            &amd,
            &dst,
        )
        .unwrap();
        assert_loaded(&base, &img, &dst);
    }
    let index: Index = serde_json::from_slice(&read_member(&oa, "index.json")).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let ann = index.manifests[0].annotations.clone().unwrap();
    assert_eq!(ann.get(REF).map(String::as_str), Some("localhost/web:dev"));
    assert_eq!(
        ann.get("io.containerd.image.name").map(String::as_str),
        Some("localhost/web:dev")
    );
    assert_eq!(index.manifests[0].platform, Some(amd.clone()));
    let dm: serde_json::Value = serde_json::from_slice(&read_member(&oa, "manifest.json")).unwrap();
    assert_eq!(
        dm[0]["RepoTags"],
        serde_json::json!(["localhost/web:dev", "localhost/web:latest"])
    );
    assert_eq!(
        dm[0]["Config"],
        format!("blobs/sha256/{}", img.manifest_json.config.digest.hex())
    );
    // The same file read as a docker-archive (what `docker load` does).
    let dst = Store::open(fx.work.join("s-as-docker")).unwrap();
    let base = load_base(
        &t(&format!("docker-archive:{}:web:dev", oa.display())),
        &amd,
        &dst,
    )
    .unwrap();
    assert_eq!(base.config_digest, img.manifest_json.config.digest);
    assert_eq!(base.layers, img.manifest_json.layers);

    let da = fx.work.join("out/web.docker.tar");
    write_output(
        &t(&format!("docker-archive:{}", da.display())),
        &img.built(),
        &tags,
        &fx.src,
    )
    .unwrap();
    let dst = Store::open(fx.work.join("s-docker")).unwrap();
    let base = load_base(
        &t(&format!("docker-archive:{}:web:latest", da.display())),
        &amd,
        &dst,
    )
    .unwrap();
    assert_eq!(base.config_digest, img.manifest_json.config.digest);
    for (l, want) in base.layers.iter().zip(&img.layers) {
        assert_eq!(l.digest, want.diff_id);
        assert_eq!(l.size, want.uncompressed_size);
        assert_eq!(l.media_type, media::OCI_LAYER);
    }
    let repos: serde_json::Value =
        serde_json::from_slice(&read_member(&da, "repositories")).unwrap();
    let cfg_hex = img.manifest_json.config.digest.hex();
    assert_eq!(
        repos,
        serde_json::json!({"localhost/web": {"dev": cfg_hex, "latest": cfg_hex}})
    );
    let dm: serde_json::Value = serde_json::from_slice(&read_member(&da, "manifest.json")).unwrap();
    assert_eq!(dm[0]["Config"], format!("{cfg_hex}.json"));
    assert_eq!(
        dm[0]["Layers"][0],
        format!("{}.tar", img.layers[0].diff_id.hex())
    );
    // Nothing else was left in the output folder.
    assert_eq!(
        ls(&fx.work.join("out")),
        ["layout", "web.docker.tar", "web.oci.tar"]
    );
}

#[test]
fn archives_are_deterministic() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let tags = vec!["web:dev".to_owned()];
    for (kind, name) in [("oci-archive", "o"), ("docker-archive", "d")] {
        let a = fx.work.join(format!("{name}1.tar"));
        let b = fx.work.join(format!("{name}2.tar"));
        write_output(
            &t(&format!("{kind}:{}", a.display())),
            &img.built(),
            &tags,
            &fx.src,
        )
        .unwrap();
        write_output(
            &t(&format!("{kind}:{}", b.display())),
            &img.built(),
            &tags,
            &fx.src,
        )
        .unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{kind}");
        let mut ar = tar::Archive::new(fs::File::open(&a).unwrap());
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            assert_eq!(h.username().unwrap(), Some(""));
            let mode = h.mode().unwrap();
            assert!(mode == 0o644 || mode == 0o755, "{mode:o}");
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{kind}");
    }
}

#[test]
fn oci_dir_update_replaces_same_name() {
    let fx = fx();
    let a = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let b = image(&fx.src, "linux/amd64", "b", Compression::Gzip);
    let dir = fx.work.join("layout");
    let tr = t(&format!("oci:{}", dir.display()));
    let read_index =
        || -> Index { serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap() };
    write_output(&tr, &a.built(), &["web:dev".into()], &fx.src).unwrap();
    write_output(&tr, &b.built(), &["web:dev".into()], &fx.src).unwrap();
    let index = read_index();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest, b.manifest.digest);
    write_output(&tr, &a.built(), &["web:prod".into()], &fx.src).unwrap();
    let index = read_index();
    let names: Vec<_> = index
        .manifests
        .iter()
        .map(|d| d.annotation(REF).unwrap().to_owned())
        .collect();
    assert_eq!(names, ["localhost/web:dev", "localhost/web:prod"]);
    // An explicit TAG is the ref name as written.
    write_output(
        &t(&format!("oci:{}:v1", dir.display())),
        &a.built(),
        &[],
        &fx.src,
    )
    .unwrap();
    assert_eq!(
        read_index().manifests.last().unwrap().annotation(REF),
        Some("v1")
    );
    for d in a.blobs().iter().chain(&b.blobs()) {
        assert!(dir.join("blobs/sha256").join(d.hex()).is_file());
    }
    // A folder that is not a layout is not written into.
    let other = fx.work.join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("file"), "x").unwrap();
    let err = write_output(
        &t(&format!("oci:{}", other.display())),
        &a.built(),
        &[],
        &fx.src,
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::OutputExists { .. }), "{err}");
}

#[test]
fn failed_writes_leave_nothing_at_the_output_path() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let outs = [
        "oci:{}/layout",
        "oci-archive:{}/o.tar",
        "docker-archive:{}/d.tar",
    ];

    // A layer missing from the store.
    let other = Store::open(fx.work.join("other-store")).unwrap();
    let mut missing = img.clone();
    let extra = layer(&other, &[("x", "y")], Compression::Gzip);
    missing.manifest_json.layers.push(extra.descriptor.clone());
    missing.config.rootfs.diff_ids.push(extra.diff_id.clone());
    let out = fx.work.join("out1");
    fs::create_dir_all(&out).unwrap();
    for spec in outs {
        let tr = t(&spec.replace("{}", out.to_str().unwrap()));
        let err = write_output(&tr, &missing.built(), &["web".into()], &fx.src).unwrap_err();
        assert!(
            err.to_string().contains(extra.descriptor.digest.as_str()),
            "{err}"
        );
    }
    assert!(ls(&out).is_empty(), "{:?}", ls(&out));

    // A store blob that is corrupt: found only while streaming it.
    let bad = &img.layers[1].descriptor;
    let path = fx.src.blob_path(&bad.digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    let store_copy = Store::open(fx.work.join("corrupt-store")).unwrap();
    for d in img.blobs() {
        fs::copy(fx.src.blob_path(&d), store_copy.blob_path(&d)).unwrap();
    }
    fs::write(store_copy.blob_path(&bad.digest), &bytes).unwrap();
    let out = fx.work.join("out2");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("o.tar"), "old").unwrap();
    for spec in outs {
        let tr = t(&spec.replace("{}", out.to_str().unwrap()));
        let err = write_output(&tr, &img.built(), &["web".into()], &store_copy).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(bad.digest.as_str()) || msg.contains(bad.digest.hex()),
            "{spec}: {msg}"
        );
    }
    // The old file is untouched, and no temp file is left beside it.
    assert_eq!(ls(&out), ["o.tar"]);
    assert_eq!(fs::read(out.join("o.tar")).unwrap(), b"old");
}

#[test]
fn bad_tags_and_registry_are_refused() {
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let out = fx.work.join("o.tar");
    let err = write_output(
        &t(&format!("oci-archive:{}", out.display())),
        &img.built(),
        &["Web:dev".into()],
        &fx.src,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Web:dev"), "{err}");
    assert!(!out.exists());
    let reg = t("docker://localhost:5000/web:dev");
    let err = write_output(&reg, &img.built(), &[], &fx.src).unwrap_err();
    assert!(
        matches!(err, TransportError::RegistryNotYet { .. }),
        "{err}"
    );
    let err = load_base(&reg, &plat("linux/amd64"), &fx.dst).unwrap_err();
    assert!(
        err.to_string().contains("is a registry, not a file"),
        "{err}"
    );
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_reports_without_importing() {
    let fx = fx();
    let (dir, amd, arm, index) = multi_arch(&fx);
    let tr = t(&format!("oci:{}:3.20", dir.display()));
    let report = inspect(&tr, Some(&plat("linux/arm64"))).unwrap();
    assert_eq!(report.manifest_digest, arm.manifest.digest);
    assert_eq!(report.platform, "linux/arm64/v8");
    let summary = report.index.as_ref().unwrap();
    assert_eq!(summary.digest, index.digest);
    assert_eq!(summary.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(report.user.as_deref(), Some("1001:1001"));
    assert_eq!(report.exposed_ports, ["3000/tcp"]);
    assert_eq!(report.layers.len(), 2);
    for (l, want) in report.layers.iter().zip(&arm.layers) {
        assert_eq!(l.size, want.descriptor.size);
        assert_eq!(l.uncompressed_size, want.uncompressed_size);
        assert_eq!(l.diff_id, want.diff_id);
    }
    // History pairs with layers, skipping the empty_layer entry.
    assert_eq!(
        report.layers[0].created_by.as_deref(),
        Some("ADD os-release")
    );
    assert_eq!(report.layers[1].created_by.as_deref(), Some("COPY app"));
    assert_eq!(
        report.total_uncompressed_size,
        arm.layers.iter().map(|l| l.uncompressed_size).sum::<u64>()
    );

    let text = report.render();
    for want in [
        "Platform:      linux/arm64/v8",
        "Platforms:     linux/amd64, linux/arm64/v8",
        "User:          1001:1001",
        "Cmd:           [\"sh\"]",
        "Env:           PATH=/usr/bin:/bin\n               A=1",
        "Labels:        org.example=yes",
        "Healthcheck:   true (interval 30s)",
        "COPY app",
        arm.layers[0].descriptor.digest.short(),
        "Total: 2 layers,",
        " kB uncompressed",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["total_size"], report.total_size);
    assert_eq!(
        json["layers"][1]["uncompressed_size"],
        arm.layers[1].uncompressed_size
    );

    // The host's platform when none is given (amd64 or arm64 here).
    let host = Platform::host();
    if host.architecture == "amd64" {
        assert_eq!(
            inspect(&tr, None).unwrap().manifest_digest,
            amd.manifest.digest
        );
    }
    // No store was touched: inspect has none to touch, and the fixture
    // folder holds only what the test made.
    assert_eq!(ls(&fx.work), ["multi"]);
}

/// An archive written to a file (store blobs copied by the kernel, checked
/// on another thread) holds exactly the bytes the streamed archive (every
/// byte read through, as `podman load` gets it) holds.
#[test]
fn a_file_archive_is_byte_for_byte_the_streamed_one() {
    use std::io::Write as _;
    let fx = fx();
    let img = image(&fx.src, "linux/amd64", "a", Compression::Gzip);
    let built = img.built();
    let blobs = output::image_blobs(&built);
    let entries = || {
        output::oci_archive_entries(
            &built.manifest,
            &built,
            Some("dev".into()),
            vec!["localhost/web:dev".into()],
            &blobs,
        )
    };
    let mut streamed = output::TarStream::new(Vec::new());
    streamed.write_all(entries(), &fx.src).unwrap();
    let streamed = streamed.finish().unwrap();

    let path = fx.work.join("file.tar");
    let file = std::fs::File::create(&path).unwrap();
    let mut tar = output::TarStream::new(std::io::BufWriter::new(file));
    tar.write_all_to_file(entries(), &fx.src).unwrap();
    tar.finish().unwrap().flush().unwrap();
    let written = fs::read(&path).unwrap();
    assert!(written.len() > 2048, "{} bytes", written.len());
    assert!(written == streamed, "the two archives differ");
}
