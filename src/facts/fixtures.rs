//! Bases made by hand for the tests of every facts module: the files real
//! bases hold (os-release, dpkg's and apk's databases, a Debian root) and
//! the helpers that put layers into a store and check what facts say.
//!
//! The tests of the overlay view, the C library and Python read whole
//! bases through [`read_facts`]; sharing the bases keeps their cases
//! about one thing each, not about building a root.

use super::{read_facts, FileFact, Libc, PythonFacts, PythonLayout};
use crate::image::Descriptor;
use crate::layer::reader::tests::RawTar;
use crate::layer::{Compression, EntryMeta, ImagePath, LayerWriter};
use crate::store::Store;

pub(super) const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
pub(super) const DEBIAN_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";
/// Alpine's installed database, as in alpine:3.20 with python3 added.
pub(super) const ALPINE_APK_DB: &[u8] = b"C:Q1PS2iNeHDH3BF6TgqSMu/pcc3XIY=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:411527\nI:657408\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\nC:Q1abc=\nP:busybox\nV:1.36.1-r29\n\nC:Q1def=\nP:python3\nV:3.12.3-r1\nA:x86_64\nT:A high-level scripting language\nD:so:libc.musl-x86_64.so.1 so:libpython3.12.so.1.0\n";
/// dpkg's status file, as in Debian bookworm with python3 installed,
/// shortened, with a removed Python whose configuration files remain.
pub(super) const DEBIAN_DPKG_STATUS: &[u8] = b"Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries that are used by nearly all programs on\n the system.\n\nPackage: libpython3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u2\nConffiles:\n /etc/python3.11/sitecustomize.py 0123456789abcdef\n\nPackage: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u2\n\nPackage: python3.9-minimal\nStatus: deinstall ok config-files\nVersion: 3.9.2-1\n\nPackage: python3-minimal\nStatus: install ok installed\nSource: python3-defaults\nVersion: 3.11.2-1+b1\n";

pub(super) fn p(s: &str) -> ImagePath {
    ImagePath::new(s).unwrap()
}

pub(super) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Gzips a hand-made tar into the store.
pub(super) fn raw_layer(store: &Store, tar: &[u8]) -> Descriptor {
    crate::layer::reader::tests::put_gzip(store, tar)
}

pub(super) enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
}

/// A layer from the deterministic writer (entries sorted here).
pub(super) fn layer(store: &Store, entries: &[E]) -> Descriptor {
    let mut sorted: Vec<&E> = entries.iter().collect();
    let name = |e: &E| match e {
        E::Dir(n) | E::File(n, _) => n.to_string(),
    };
    sorted.sort_by_key(|e| name(e));
    let mut w = LayerWriter::new(store, Compression::Zstd, 0).unwrap();
    for e in sorted {
        match e {
            E::Dir(n) => w.dir(&p(n), EntryMeta::root(0o755)).unwrap(),
            E::File(n, c) => w
                .file(&p(n), EntryMeta::root(0o644), c.len() as u64, &mut &c[..])
                .unwrap(),
        }
    }
    w.finish().unwrap().descriptor
}

pub(super) fn content(f: &Option<FileFact>) -> Option<&[u8]> {
    f.as_ref().map(|f| &f.content[..])
}

pub(super) const PASSWD_A: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";
pub(super) const PASSWD_B: &[u8] =
    b"root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:Linux User,,,:/home/node:/bin/sh\n";

/// Python's version, interpreter, layout and package version.
pub(super) type PyWant = ((u32, u32), &'static str, PythonLayout, Option<&'static str>);

/// A base with the layers and what its facts say of libc and Python.
pub(super) struct PyCase {
    pub(super) name: &'static str,
    pub(super) layers: Vec<Vec<u8>>,
    pub(super) libc: Option<Libc>,
    pub(super) libc_version: Option<(u32, u32)>,
    /// version, interpreter, layout, package version
    pub(super) python: Option<PyWant>,
}

pub(super) fn check(cases: Vec<PyCase>) {
    for c in cases {
        let (_d, s) = store();
        let layers: Vec<Descriptor> = c.layers.iter().map(|t| raw_layer(&s, t)).collect();
        let facts = read_facts(&s, &layers).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(facts.libc, c.libc, "{}", c.name);
        assert_eq!(facts.libc_version, c.libc_version, "{}", c.name);
        let want = c
            .python
            .map(|(version, interpreter, layout, package)| PythonFacts {
                version,
                interpreter: p(interpreter),
                layout,
                package_version: package.map(str::to_owned),
            });
        assert_eq!(facts.python, want, "{}", c.name);
    }
}

/// A Debian bookworm root as mmdebstrap leaves it: merged-usr links,
/// the loader, libc.so.6 and dpkg's status.
pub(super) fn bookworm(t: &mut RawTar) -> &mut RawTar {
    t.symlink("bin", "usr/bin")
        .symlink("lib", "usr/lib")
        .symlink("lib64", "usr/lib64")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .symlink(
            "usr/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        )
        .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"\x7fELF")
        .file(
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            b"\x7fELF\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.36\0GLIBC_PRIVATE\0",
        )
        .file("var/lib/dpkg/status", DEBIAN_DPKG_STATUS)
}
