//! The distributions' databases of installed packages: dpkg's (Debian,
//! Ubuntu) and apk's (Alpine, Wolfi).
//!
//! They are where a base says the versions of its C library and of a
//! distribution's CPython when the files themselves do not (musl carries
//! its version untagged; a Python's full version is not in its path).
//! Both are stanzas of fields and can be megabytes long, so [`DbScan`]
//! streams them and keeps only each installed package's name and
//! version (the SBOM lists them all); the version helpers below turn the
//! database's spelling (`2.36-9+deb12u7`, `1.2.5-r0`) into the upstream
//! `major.minor` the facts hold.
//!
//! Distroless bases have no `/var/lib/dpkg/status`: their packages are
//! extracted, never installed, and each leaves one record in
//! `/var/lib/dpkg/status.d/<package>` (its control fields, usually no
//! `Status:`), beside a `<package>.md5sums` file list that says no
//! version and is skipped. [`dpkg_packages`] merges both sources.

use std::collections::BTreeMap;

use super::merged::{Outcome, Scan};
use super::scanners::{ScanKind, Scanned};
use super::FactsError;

/// dpkg's database of installed packages (Debian, Ubuntu).
pub(super) const DPKG_STATUS: &str = "var/lib/dpkg/status";

/// One record per package, for bases whose packages were extracted
/// rather than installed (distroless).
pub(super) const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";

/// apk's database of installed packages (Alpine, Wolfi), and where it is
/// once `/lib` is a link to `/usr/lib`.
pub(super) const APK_INSTALLED: &[&str] = &["lib/apk/db/installed", "usr/lib/apk/db/installed"];

/// Installed packages of interest, by name, with their versions as the
/// database spells them (`2.36-9+deb12u7`, `1.2.5-r0`).
pub(super) type Packages = BTreeMap<String, String>;

/// apk's database, where it is.
pub(super) fn apk(scan: &Scan) -> Result<Outcome<Option<Scanned>>, FactsError> {
    for path in APK_INSTALLED {
        match scan.scanned(path, ScanKind::Apk)? {
            Outcome::Ready(None) => {}
            decided => return Ok(decided),
        }
    }
    Ok(Outcome::Ready(None))
}

/// dpkg's packages: `/var/lib/dpkg/status` and every record in
/// `/var/lib/dpkg/status.d` (not the `.md5sums` lists), the status file's
/// version first when both name a package.
pub(super) fn dpkg_packages(scan: &Scan) -> Result<Outcome<Packages>, FactsError> {
    let status = scan.scanned(DPKG_STATUS, ScanKind::Dpkg)?;
    let records = match scan.is_dir(DPKG_STATUS_D)? {
        Outcome::Ready(true) => scan.children_scanned(DPKG_STATUS_D, ScanKind::DpkgRecord),
        Outcome::Ready(false) => Outcome::Ready(Default::default()),
        Outcome::Need(n) => Outcome::Need(n),
    };
    let (status, records) = match (status, records) {
        (Outcome::Ready(s), Outcome::Ready(r)) => (s, r),
        (s, r) => {
            let mut needs = Vec::new();
            for o in [s.map(|_| ()), r.map(|_| ())] {
                if let Outcome::Need(n) = o {
                    needs.extend(n);
                }
            }
            return Ok(Outcome::Need(needs));
        }
    };
    let mut packages = status.map(Scanned::into_packages).unwrap_or_default();
    for (name, found) in records {
        if name.ends_with(".md5sums") {
            continue;
        }
        for (package, version) in found.into_packages() {
            packages.entry(package).or_insert(version);
        }
    }
    Ok(Outcome::Ready(packages))
}

/// The package databases hoist reads. Both are stanzas of fields, one
/// per line, separated by blank lines: dpkg's status file is deb822
/// (`Package: libc6`, continuation lines start with a space), apk's
/// installed database has one-letter keys (`P:musl`, `V:1.2.5-r0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DbFormat {
    Dpkg,
    /// A `status.d` record: dpkg's fields, and a record without `Status:`
    /// is of an (extracted) installed package.
    DpkgRecord,
    Apk,
}

/// Lines longer than this are no field hoist reads (descriptions, file
/// lists); their bytes are dropped as they stream by.
const MAX_DB_LINE: usize = 4096;

/// Streams a package database, keeping the name and version of every
/// installed package.
#[derive(Debug)]
pub(super) struct DbScan {
    format: DbFormat,
    line: Vec<u8>,
    /// The current line is longer than [`MAX_DB_LINE`].
    overlong: bool,
    name: Option<String>,
    version: Option<String>,
    /// dpkg keeps removed packages whose configuration files remain:
    /// only `Status: <want> <flag> installed` is installed. `None`: no
    /// `Status:` field.
    installed: Option<bool>,
    found: Packages,
}

impl DbScan {
    pub(super) fn new(format: DbFormat) -> DbScan {
        DbScan {
            format,
            line: Vec::new(),
            overlong: false,
            name: None,
            version: None,
            installed: None,
            found: Packages::new(),
        }
    }

    pub(super) fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.push(&chunk[..end]);
            self.end_line();
            chunk = &chunk[end + 1..];
        }
        self.push(chunk);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + bytes.len() > MAX_DB_LINE {
            self.overlong = true;
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.overlong) {
            // Not blank, so the stanza goes on.
            return;
        }
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.end_stanza();
        } else {
            self.field(&line);
        }
        // Keep the allocation for the next line.
        self.line = line;
        self.line.clear();
    }

    fn field(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let (key, value) = match self.format {
            // A continuation line belongs to a field hoist does not read.
            DbFormat::Dpkg | DbFormat::DpkgRecord if text.starts_with([' ', '\t']) => return,
            DbFormat::Dpkg | DbFormat::DpkgRecord | DbFormat::Apk => match text.split_once(':') {
                Some((k, v)) => (k, v.trim()),
                None => return,
            },
        };
        let dpkg = matches!(self.format, DbFormat::Dpkg | DbFormat::DpkgRecord);
        match (self.format, key) {
            (_, k) if dpkg && k.eq_ignore_ascii_case("Package") => {
                self.name = Some(value.to_owned())
            }
            (_, k) if dpkg && k.eq_ignore_ascii_case("Version") => {
                self.version = Some(value.to_owned())
            }
            (_, k) if dpkg && k.eq_ignore_ascii_case("Status") => {
                self.installed = Some(value.split_ascii_whitespace().nth(2) == Some("installed"))
            }
            (DbFormat::Apk, "P") => self.name = Some(value.to_owned()),
            (DbFormat::Apk, "V") => self.version = Some(value.to_owned()),
            _ => {}
        }
    }

    fn end_stanza(&mut self) {
        let installed = match (self.format, self.installed.take()) {
            (DbFormat::Apk, _) => true,
            (DbFormat::DpkgRecord, None) => true,
            (_, status) => status == Some(true),
        };
        if let (Some(name), Some(version)) = (self.name.take(), self.version.take()) {
            // A second architecture's copy (libc6:i386) has the same
            // version, dpkg insists: the first one stays.
            if installed {
                self.found.entry(name).or_insert(version);
            }
        }
    }

    pub(super) fn finish(mut self) -> Packages {
        if !self.line.is_empty() || self.overlong {
            self.end_line();
        }
        self.end_stanza();
        self.found
    }
}

/// The upstream part of a Debian version, `[epoch:]upstream[-revision]`
/// (deb-version(7)): `3.11.2` of `3.11.2-6+deb12u2`.
pub(super) fn dpkg_upstream(version: &str) -> &str {
    let version = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => version,
    };
    version
        .rsplit_once('-')
        .map_or(version, |(upstream, _)| upstream)
}

/// The upstream part of an apk version, without the package release:
/// `1.2.5` of `1.2.5-r0`.
pub(super) fn apk_upstream(version: &str) -> &str {
    match version.rsplit_once("-r") {
        Some((upstream, release))
            if !release.is_empty() && release.bytes().all(|b| b.is_ascii_digit()) =>
        {
            upstream
        }
        _ => version,
    }
}

/// The leading `major.minor` of a version: (2, 36) of `2.36`, (1, 2) of
/// `1.2.5`, (3, 14) of `3.14.0~rc1`.
pub(super) fn major_minor(version: &str) -> Option<(u32, u32)> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (major, rest) = version.split_once('.')?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((number(major)?, number(&rest[..end])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::fixtures::{ALPINE_APK_DB, DEBIAN_DPKG_STATUS};

    #[test]
    fn package_db_table() {
        let long = format!(
            "Package: python3.12-minimal\nStatus: install ok installed\nDescription: {}\nVersion: 3.12.1-1\n\n",
            "x".repeat(MAX_DB_LINE * 2)
        );
        type Case<'a> = (ScanKind, &'a [u8], &'static [(&'static str, &'static str)]);
        let cases: Vec<Case> = vec![
            (
                ScanKind::Dpkg,
                DEBIAN_DPKG_STATUS,
                &[
                    ("libc6", "2.36-9+deb12u7"),
                    ("libpython3.11-minimal", "3.11.2-6+deb12u2"),
                    ("python3-minimal", "3.11.2-1+b1"),
                    ("python3.11-minimal", "3.11.2-6+deb12u2"),
                ],
            ),
            (
                ScanKind::Dpkg,
                // Any case of key, no final newline, a second architecture.
                b"package: libc6\nstatus: install ok installed\nversion: 2.36-9\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.35-1",
                &[("libc6", "2.36-9")],
            ),
            (
                ScanKind::Dpkg,
                long.as_bytes(),
                &[("python3.12-minimal", "3.12.1-1")],
            ),
            (
                ScanKind::Dpkg,
                // Half-installed, no status, a version in a continuation.
                b"Package: libc6\nStatus: install reinstreq half-installed\nVersion: 2.36-9\n\nPackage: python3.11-minimal\nVersion: 3.11.2-6\n\nPackage: libpython3.12-minimal\nStatus: install ok installed\nDescription: x\n Version: 3.12.0-1\n",
                &[],
            ),
            (
                ScanKind::Apk,
                ALPINE_APK_DB,
                &[
                    ("busybox", "1.36.1-r29"),
                    ("musl", "1.2.5-r0"),
                    ("python3", "3.12.3-r1"),
                ],
            ),
            (
                ScanKind::Apk,
                b"P:glibc\nV:2.40-r3\n\n\n\nP:nameless-version\n\nV:1.0\n",
                &[("glibc", "2.40-r3")],
            ),
            (ScanKind::Apk, b"", &[]),
            (
                // A status.d record: control fields, no Status.
                ScanKind::DpkgRecord,
                b"Package: python3.11-minimal\nSource: python3.11\nVersion: 3.11.2-6+deb12u6\nArchitecture: amd64\nDescription: Minimal subset\n of the Python language\n",
                &[("python3.11-minimal", "3.11.2-6+deb12u6")],
            ),
            (
                // A record that says it is not installed is not.
                ScanKind::DpkgRecord,
                b"Package: libc6\nStatus: deinstall ok config-files\nVersion: 2.36-9\n",
                &[],
            ),
            (
                // An md5sums list has no fields: nothing.
                ScanKind::DpkgRecord,
                b"0123456789abcdef0123456789abcdef  usr/bin/python3.11\n",
                &[],
            ),
            (
                // The status file still needs a Status.
                ScanKind::Dpkg,
                b"Package: libc6\nVersion: 2.36-9\n",
                &[],
            ),
        ];
        for (kind, bytes, want) in cases {
            let want: Packages = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
            assert_eq!(kind.scan(bytes), Scanned::Packages(want.clone()), "{shown}");
            for size in [1, 5, 4096] {
                let mut scanner = kind.scanner();
                bytes.chunks(size).for_each(|c| scanner.feed(c));
                let got = scanner.finish();
                assert_eq!(got, Scanned::Packages(want.clone()), "{shown} by {size}");
            }
        }
    }

    /// dpkg's packages of a whole base: the status file and status.d
    /// records, merged across layers, `.md5sums` skipped, whiteouts
    /// honoured.
    #[test]
    fn status_d_table() {
        use crate::facts::fixtures::{raw_layer, store};
        use crate::facts::read_facts;
        use crate::layer::reader::tests::RawTar;
        let record = |name: &str, version: &str| {
            format!("Package: {name}\nVersion: {version}\nArchitecture: amd64\n").into_bytes()
        };
        type Case = (
            &'static str,
            Vec<Vec<u8>>,
            &'static [(&'static str, &'static str)],
        );
        let cases: Vec<Case> = vec![
            (
                "records in two layers, md5sums skipped",
                vec![
                    RawTar::new()
                        .file(
                            "var/lib/dpkg/status.d/libc6",
                            &record("libc6", "2.36-9+deb12u9"),
                        )
                        .file("var/lib/dpkg/status.d/libc6.md5sums", b"00  lib/x\n")
                        .finish(),
                    RawTar::new()
                        .file(
                            "var/lib/dpkg/status.d/python3.11-minimal",
                            &record("python3.11-minimal", "3.11.2-6+deb12u6"),
                        )
                        .finish(),
                ],
                &[
                    ("libc6", "2.36-9+deb12u9"),
                    ("python3.11-minimal", "3.11.2-6+deb12u6"),
                ],
            ),
            (
                "a higher layer's record wins; a whiteout removes",
                vec![
                    RawTar::new()
                        .file("var/lib/dpkg/status.d/libc6", &record("libc6", "2.36-9"))
                        .file(
                            "var/lib/dpkg/status.d/zlib1g",
                            &record("zlib1g", "1:1.2.13"),
                        )
                        .finish(),
                    RawTar::new()
                        .file(
                            "var/lib/dpkg/status.d/libc6",
                            &record("libc6", "2.36-9+deb12u9"),
                        )
                        .file("var/lib/dpkg/status.d/.wh.zlib1g", b"")
                        .finish(),
                ],
                &[("libc6", "2.36-9+deb12u9")],
            ),
            (
                "an opaque folder hides lower records",
                vec![
                    RawTar::new()
                        .file(
                            "var/lib/dpkg/status.d/zlib1g",
                            &record("zlib1g", "1:1.2.13"),
                        )
                        .finish(),
                    RawTar::new()
                        .file("var/lib/dpkg/status.d/.wh..wh..opq", b"")
                        .file("var/lib/dpkg/status.d/libc6", &record("libc6", "2.36-9"))
                        .finish(),
                ],
                &[("libc6", "2.36-9")],
            ),
            (
                "status file and records together",
                vec![RawTar::new()
                    .file(
                        "var/lib/dpkg/status",
                        b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n",
                    )
                    .file(
                        "var/lib/dpkg/status.d/tzdata",
                        &record("tzdata", "2024a-0+deb12u1"),
                    )
                    .finish()],
                &[("libc6", "2.36-9"), ("tzdata", "2024a-0+deb12u1")],
            ),
            (
                "no database",
                vec![RawTar::new().dir("var/lib/dpkg/").finish()],
                &[],
            ),
        ];
        for (name, tars, want) in cases {
            let (_d, s) = store();
            let layers: Vec<_> = tars.iter().map(|t| raw_layer(&s, t)).collect();
            let facts = read_facts(&s, &layers).unwrap();
            let got: Vec<(&str, &str)> = facts
                .packages
                .iter()
                .map(|p| (p.name.as_str(), p.version.as_str()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn version_parts_table() {
        let cases = [
            ("2.36-9+deb12u7", "2.36", Some((2, 36))),
            ("1:2.39-0ubuntu8.3", "2.39", Some((2, 39))),
            ("3.11.2-6+deb12u2", "3.11.2", Some((3, 11))),
            ("3.14.0~rc1-1", "3.14.0~rc1", Some((3, 14))),
            ("2.36", "2.36", Some((2, 36))),
            ("a:1.2-3-4", "a:1.2-3", None),
            ("1.2", "1.2", Some((1, 2))),
            ("12", "12", None),
            ("+1.2", "+1.2", None),
        ];
        for (version, upstream, parts) in cases {
            assert_eq!(dpkg_upstream(version), upstream, "{version}");
            assert_eq!(major_minor(upstream), parts, "{version}");
        }
        let apk = [
            ("1.2.5-r0", "1.2.5"),
            ("3.12.3-r12", "3.12.3"),
            ("2.40", "2.40"),
            ("1.0-rc1", "1.0-rc1"),
            ("1.0-r", "1.0-r"),
        ];
        for (version, upstream) in apk {
            assert_eq!(apk_upstream(version), upstream, "{version}");
        }
    }
}
