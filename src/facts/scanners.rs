//! The streaming scanners a pass feeds a file through when a version is
//! wanted from it, not its content.
//!
//! `libc.so.6` is about 2 MB and a package database can be larger than any
//! file hoist keeps ([`super::MAX_FACT_FILE_BYTES`]), yet only a few names
//! and numbers are wanted from them. The overlay engine
//! ([`super::merged`]) streams such a file through the scanners its path
//! asked for, in chunks of any size, and keeps only what they found. This
//! file names the kinds and joins the engine to the scanners themselves,
//! which live with what they read: [`super::libc`]'s `GlibcScan` and
//! [`super::pkgdb`]'s `DbScan`.

use super::libc::GlibcScan;
use super::pkgdb::{DbFormat, DbScan, Packages};

/// What a scanned file is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum ScanKind {
    /// `libc.so.6`: the highest `GLIBC_X.Y` it defines.
    Glibc,
    /// dpkg's status file: the versions of the installed packages.
    Dpkg,
    /// One record of dpkg's `status.d` (distroless): the same.
    DpkgRecord,
    /// apk's installed database: the same.
    Apk,
}

/// What a scanner found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scanned {
    Glibc(Option<(u32, u32)>),
    Packages(Packages),
}

impl Scanned {
    pub(super) fn glibc(&self) -> Option<(u32, u32)> {
        match self {
            Scanned::Glibc(v) => *v,
            Scanned::Packages(_) => None,
        }
    }

    pub(super) fn into_packages(self) -> Packages {
        match self {
            Scanned::Packages(p) => p,
            Scanned::Glibc(_) => Packages::new(),
        }
    }
}

impl ScanKind {
    pub(super) fn scanner(self) -> Scanner {
        match self {
            ScanKind::Glibc => Scanner::Glibc(GlibcScan::default()),
            ScanKind::Dpkg => Scanner::Db(DbScan::new(DbFormat::Dpkg)),
            ScanKind::DpkgRecord => Scanner::Db(DbScan::new(DbFormat::DpkgRecord)),
            ScanKind::Apk => Scanner::Db(DbScan::new(DbFormat::Apk)),
        }
    }

    /// Scans content already read whole.
    pub(super) fn scan(self, bytes: &[u8]) -> Scanned {
        let mut scanner = self.scanner();
        scanner.feed(bytes);
        scanner.finish()
    }
}

/// A scanner fed a file's content in chunks of any size.
pub(super) enum Scanner {
    Glibc(GlibcScan),
    Db(DbScan),
}

impl Scanner {
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        match self {
            Scanner::Glibc(s) => s.feed(chunk),
            Scanner::Db(s) => s.feed(chunk),
        }
    }

    pub(super) fn finish(self) -> Scanned {
        match self {
            Scanner::Glibc(s) => Scanned::Glibc(s.finish()),
            Scanner::Db(s) => Scanned::Packages(s.finish()),
        }
    }
}
