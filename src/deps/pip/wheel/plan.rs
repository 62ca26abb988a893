//! Where every file of every wheel goes, checked before a byte is written.
//!
//! Planning reads each wheel's central directory and metadata files only
//! (and the `.data/scripts` files, which are small, to know their
//! rewritten shebang's hash), and lists every layer entry with where its
//! bytes come from: a zip entry (wheel, index), or bytes made here
//! (launchers, `INSTALLER`, `REQUESTED`, the rewritten `RECORD`). The
//! entries sit in a map sorted by path, the order the layer writer needs;
//! [`super::write`] then streams them.
//!
//! The steps follow the wheel spec's "Installing a wheel" and pip's
//! `_install_wheel`:
//! 1. The `.dist-info` folder is the one folder named for the wheel's
//!    project and version ([`super::dist_info`]). `WHEEL` must be version
//!    1.x; `Root-Is-Purelib` picks purelib or platlib for the root.
//! 2. RECORD must list every file of the zip with its hash (and size,
//!    when stated, the zip's), except RECORD itself and its signatures;
//!    every file RECORD lists with a hash must be in the zip. The hashes
//!    themselves are checked as the bytes stream.
//! 3. Root files go to the root's folder; `{name}-{ver}.data/KEY/...` to
//!    the scheme's KEY folder (`headers` to `<headers>/<project>`, as
//!    pip's scheme names it). A `.data/scripts` file whose first line
//!    starts with `#!python` gets `#!<interpreter>` as its first line
//!    instead (pip's rule, which also covers `#!pythonw` and
//!    `#!python3.11`); scripts are 0755. setuptools' own wrappers for the
//!    entry points are skipped, as pip skips them.
//! 4. `console_scripts` and `gui_scripts` become launchers in the scripts
//!    folder ([`super::entry_points`]).
//! 5. `INSTALLER` says who installed; `REQUESTED` is written for the
//!    wheels the user asked for, as pip does for top-level requirements;
//!    `direct_url.json` is not written (hoist installs from indexes).
//!    RECORD is rewritten: installed paths relative to the root's folder,
//!    new hashes for changed and made files, its own row empty.
//!
//! Paths are checked on the way in: a zip name with an empty, `.` or `..`
//! component, a leading `/`, a backslash or a NUL is refused, so nothing
//! can leave the folder it is mapped to (and that is checked again after
//! mapping). Two files at one path are refused too, naming both, even
//! from two wheels where pip would let the last one win, unless their
//! bytes and modes are the same (old-style namespace packages ship the
//! same `__init__.py` in many wheels). A file where another entry needs a
//! folder is refused. Every folder above an entry gets its own entry,
//! 0755, from the image's root down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};


use super::archive::{self, Kind, Zip};
use super::dist_info::{names_release, parse_wheel_file};
use super::entry_points::{self, EntryPoint};
use super::record::{self, HashAlgo, RecordHash, RecordRow};
use super::{WheelError, WheelInput};
use crate::deps::pip::env::PythonEnv;
use crate::deps::pip::tags::WheelFilename;
use crate::layer::ImagePath;
use crate::store::Store;

const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;

/// The scheme keys a `.data` folder may hold, as pip lists them.
const SCHEME_KEYS: &str = "data, headers, platlib, purelib, scripts";

/// Where a layer entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    Dir,
    /// A file of a wheel.
    Zip {
        /// Index into [`Plan::wheels`].
        wheel: usize,
        entry: archive::Entry,
        /// What RECORD says the entry hashes to (`None` for RECORD's
        /// signatures only).
        hash: Option<RecordHash>,
        /// A new first line replacing the entry's own (a script's
        /// `#!python`).
        shebang: Option<Vec<u8>>,
        /// The size written: the entry's, or with the new first line.
        size: u64,
    },
    /// Bytes made by the installer.
    Bytes(Vec<u8>),
}

/// One layer entry.
#[derive(Debug, Clone)]
pub struct Planned {
    pub mode: u32,
    pub content: Content,
    /// What it is, for messages: "`x.py` of six-1.16.0-py2.py3-none-any.whl".
    pub origin: String,
    /// A script in the scheme's scripts folder.
    pub script: bool,
}

/// A wheel as the writer reopens it.
#[derive(Debug, Clone)]
pub struct PlannedWheel {
    pub filename: String,
    pub blob: crate::digest::Digest,
}

/// Every entry of the layer, sorted by path.
#[derive(Debug, Default)]
pub struct Plan {
    pub entries: BTreeMap<ImagePath, Planned>,
    pub wheels: Vec<PlannedWheel>,
}

impl Plan {
    /// Plans every wheel; the folders above the entries come last.
    pub fn new(
        store: &Store,
        wheels: &[WheelInput],
        env: &PythonEnv,
        installer: &str,
    ) -> Result<Plan, WheelError> {
        let mut plan = Plan::default();
        for input in wheels {
            plan.wheel(store, input, env, installer)?;
        }
        plan.add_folders()?;
        Ok(plan)
    }

    /// Files (not folders) in the layer.
    pub fn files(&self) -> usize {
        self.entries
            .values()
            .filter(|p| !matches!(p.content, Content::Dir))
            .count()
    }

    /// Scripts in the layer: launchers and `.data/scripts` files.
    pub fn scripts(&self) -> usize {
        self.entries.values().filter(|p| p.script).count()
    }

    fn insert(&mut self, path: ImagePath, planned: Planned) -> Result<(), WheelError> {
        if let Some(prev) = self.entries.get(&path) {
            if prev.mode == planned.mode && same_bytes(&prev.content, &planned.content) {
                return Ok(());
            }
            return Err(WheelError::Conflict {
                path: path.to_string(),
                first: prev.origin.clone(),
                second: planned.origin,
            });
        }
        self.entries.insert(path, planned);
        Ok(())
    }

    fn add_folders(&mut self) -> Result<(), WheelError> {
        let mut dirs: BTreeSet<ImagePath> = BTreeSet::new();
        for path in self.entries.keys() {
            for dir in path.ancestors() {
                dirs.insert(dir);
            }
        }
        for dir in dirs {
            if let Some(prev) = self.entries.get(&dir) {
                return Err(WheelError::Conflict {
                    path: dir.to_string(),
                    first: prev.origin.clone(),
                    second: "a folder holding other files".to_owned(),
                });
            }
            self.entries.insert(
                dir,
                Planned {
                    mode: DIR_MODE,
                    content: Content::Dir,
                    origin: "a folder".to_owned(),
                    script: false,
                },
            );
        }
        Ok(())
    }

    fn wheel(
        &mut self,
        store: &Store,
        input: &WheelInput,
        env: &PythonEnv,
        installer: &str,
    ) -> Result<(), WheelError> {
        let wheel = input.filename.as_str();
        let index = self.wheels.len();
        self.wheels.push(PlannedWheel {
            filename: input.filename.clone(),
            blob: input.blob.clone(),
        });
        let err_path = |file: &str, why: &'static str| WheelError::BadPath {
            wheel: wheel.to_owned(),
            file: file.to_owned(),
            why,
        };
        let parsed = WheelFilename::parse(wheel).map_err(|source| WheelError::Filename {
            filename: wheel.to_owned(),
            source,
        })?;
        let mut zip = archive::open(store, wheel, &input.blob, true)?;
        let entries = archive::list(&mut zip, wheel)?;
        for e in &entries {
            check_zip_path(&e.name).map_err(|why| err_path(&e.name, why))?;
        }

        // 1. The .dist-info and .data folders, WHEEL.
        let dist_info = release_folder(wheel, &entries, ".dist-info", &parsed)?.ok_or_else(|| {
            WheelError::DistInfo {
                wheel: wheel.to_owned(),
                found: "none".to_owned(),
            }
        })?;
        let data = release_folder(wheel, &entries, ".data", &parsed)?;
        let by_name: HashMap<&str, &archive::Entry> = entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File { .. }))
            .map(|e| (e.name.as_str(), e))
            .collect();
        let mut metadata = |file: &str| -> Result<Option<Vec<u8>>, WheelError> {
            let name = format!("{dist_info}/{file}");
            match by_name.get(name.as_str()) {
                Some(e) => archive::read_small(&mut zip, wheel, e).map(Some),
                None => Ok(None),
            }
        };
        let missing = |file: &str| WheelError::Missing {
            wheel: wheel.to_owned(),
            file: format!("{dist_info}/{file}"),
        };
        let wheel_file = parse_wheel_file(&metadata("WHEEL")?.ok_or_else(|| missing("WHEEL"))?)
            .map_err(|source| WheelError::WheelFile {
                wheel: wheel.to_owned(),
                source,
            })?;
        let rows = record::parse(&metadata("RECORD")?.ok_or_else(|| missing("RECORD"))?)
            .map_err(|source| WheelError::Record {
                wheel: wheel.to_owned(),
                source,
            })?;
        let entry_points = match metadata("entry_points.txt")? {
            Some(bytes) => {
                entry_points::parse(&bytes).map_err(|source| WheelError::EntryPoints {
                    wheel: wheel.to_owned(),
                    source,
                })?
            }
            None => Vec::new(),
        };

        // 2. RECORD against the zip.
        let unhashed: [String; 3] = ["RECORD", "RECORD.jws", "RECORD.p7s"]
            .map(|f| format!("{dist_info}/{f}"));
        let mut listed: HashMap<&str, &RecordRow> = HashMap::new();
        for row in &rows {
            if let Some(prev) = listed.insert(row.path.as_str(), row) {
                if prev != row {
                    return Err(WheelError::RecordTwice {
                        wheel: wheel.to_owned(),
                        file: row.path.clone(),
                    });
                }
            }
        }
        for e in by_name.values() {
            if unhashed.contains(&e.name) {
                continue;
            }
            let row = listed.get(e.name.as_str()).ok_or_else(|| WheelError::NotInRecord {
                wheel: wheel.to_owned(),
                file: e.name.clone(),
            })?;
            if row.hash.is_none() {
                return Err(WheelError::NoHash {
                    wheel: wheel.to_owned(),
                    file: e.name.clone(),
                });
            }
            if let Some(size) = row.size.filter(|&s| s != e.size) {
                return Err(WheelError::SizeMismatch {
                    wheel: wheel.to_owned(),
                    file: e.name.clone(),
                    expected: size,
                    actual: e.size,
                });
            }
        }
        for row in &rows {
            if row.hash.is_some() && !by_name.contains_key(row.path.as_str()) {
                return Err(WheelError::NotInWheel {
                    wheel: wheel.to_owned(),
                    file: row.path.clone(),
                });
            }
        }

        // 3. Each file to its folder.
        let scheme = &env.scheme;
        let lib = if wheel_file.root_is_purelib {
            &scheme.purelib
        } else {
            &scheme.platlib
        };
        let info_dir = lib
            .join(&dist_info)
            .map_err(|e| err_path(&dist_info, e.why))?;
        let headers = scheme
            .headers
            .join(parsed.name.as_ref())
            .map_err(|e| err_path(parsed.name.as_ref(), e.why))?;
        let interpreter = env.interpreter.absolute();
        let generated = [unhashed[0].clone(), format!("{dist_info}/INSTALLER"), format!("{dist_info}/REQUESTED")];
        // Zip name -> installed path, and the new hash and size of a
        // changed file.
        let mut installed: HashMap<&str, (ImagePath, Option<(RecordHash, u64)>)> = HashMap::new();
        let mut files: Vec<&archive::Entry> = by_name.values().copied().collect();
        files.sort_by_key(|e| e.index);
        for e in files {
            if generated.contains(&e.name) {
                continue;
            }
            let (root, rel, is_script) = match data
                .as_ref()
                .and_then(|d| e.name.strip_prefix(d.as_str()))
                .and_then(|rest| rest.strip_prefix('/'))
            {
                Some(inside) => {
                    let bad_key = || WheelError::DataKey {
                        wheel: wheel.to_owned(),
                        file: e.name.clone(),
                        keys: SCHEME_KEYS,
                    };
                    let (key, rel) = inside.split_once('/').ok_or_else(bad_key)?;
                    let root = match key {
                        "purelib" => &scheme.purelib,
                        "platlib" => &scheme.platlib,
                        "scripts" => &scheme.scripts,
                        "headers" => &headers,
                        "data" => &scheme.data,
                        _ => return Err(bad_key()),
                    };
                    (root, rel, key == "scripts")
                }
                None => (lib, e.name.as_str(), false),
            };
            let dest = root.join(rel).map_err(|err| err_path(&e.name, err.why))?;
            if !dest.starts_with(root) || dest == *root {
                return Err(err_path(&e.name, "lands outside its scheme folder"));
            }
            if is_script && entry_points::is_wrapper(dest.file_name(), &entry_points) {
                continue;
            }
            let hash = listed.get(e.name.as_str()).and_then(|r| r.hash.clone());
            let executable = matches!(e.kind, Kind::File { executable: true });
            let mut content = Content::Zip {
                wheel: index,
                entry: e.clone(),
                hash: hash.clone(),
                shebang: None,
                size: e.size,
            };
            let mut changed = None;
            if is_script {
                let scanned = match &hash {
                    Some(hash) => scan_script(&mut zip, wheel, e, hash, &interpreter)?,
                    None => None,
                };
                if let (Some(hash), Some(new)) = (&hash, scanned) {
                    changed = Some((new.hash, new.size));
                    content = Content::Zip {
                        wheel: index,
                        entry: e.clone(),
                        hash: Some(hash.clone()),
                        shebang: Some(new.first_line),
                        size: new.size,
                    };
                }
            }
            self.insert(
                dest.clone(),
                Planned {
                    mode: if is_script || executable {
                        EXEC_MODE
                    } else {
                        FILE_MODE
                    },
                    content,
                    origin: format!("`{}` of {wheel}", e.name),
                    script: is_script,
                },
            )?;
            installed.insert(e.name.as_str(), (dest, changed));
        }

        // 4. Launchers; 5. INSTALLER, REQUESTED.
        let mut made: Vec<(ImagePath, Vec<u8>, String, bool)> = Vec::new();
        for ep in entry_points::scripts_to_make(&entry_points, env.version) {
            let dest = scheme
                .scripts
                .join(&ep.name)
                .map_err(|e| err_path(&ep.name, e.why))?;
            let bytes = entry_points::launcher(&ep, &interpreter);
            made.push((dest, bytes, describe_launcher(&ep, wheel), true));
        }
        let meta_file = |file: &str, bytes: Vec<u8>| -> Result<_, WheelError> {
            let dest = info_dir.join(file).map_err(|e| err_path(file, e.why))?;
            Ok((dest, bytes, format!("the {file} file hoist writes for {wheel}"), false))
        };
        made.push(meta_file("INSTALLER", format!("{installer}\n").into_bytes())?);
        if input.requested {
            made.push(meta_file("REQUESTED", Vec::new())?);
        }

        // RECORD, rewritten.
        let record_path = info_dir.join("RECORD").map_err(|e| err_path("RECORD", e.why))?;
        let mut out_rows: BTreeMap<String, RecordRow> = BTreeMap::new();
        for row in &rows {
            if generated.contains(&row.path) {
                continue;
            }
            let new = match installed.remove(row.path.as_str()) {
                Some((dest, Some((hash, size)))) => RecordRow {
                    path: relative(lib, &dest),
                    hash: Some(hash),
                    size: Some(size),
                },
                Some((dest, None)) => RecordRow {
                    path: relative(lib, &dest),
                    ..row.clone()
                },
                // A file RECORD lists without a hash and the zip lacks
                // stays listed as it was, as pip keeps it; a skipped
                // wrapper script is not installed, so its row goes.
                None if by_name.contains_key(row.path.as_str()) => continue,
                None => row.clone(),
            };
            out_rows.insert(new.path.clone(), new);
        }
        // Installed files RECORD did not list (its signatures).
        for (dest, _) in installed.into_values() {
            let path = relative(lib, &dest);
            out_rows.insert(
                path.clone(),
                RecordRow {
                    path,
                    hash: None,
                    size: None,
                },
            );
        }
        for (dest, bytes, _, _) in &made {
            let path = relative(lib, dest);
            out_rows.insert(
                path.clone(),
                RecordRow {
                    path,
                    hash: Some(RecordHash::sha256_of(bytes)),
                    size: Some(bytes.len() as u64),
                },
            );
        }
        let own = relative(lib, &record_path);
        out_rows.insert(
            own.clone(),
            RecordRow {
                path: own,
                hash: None,
                size: None,
            },
        );
        let rows: Vec<RecordRow> = out_rows.into_values().collect();
        made.push((
            record_path,
            record::write(&rows),
            format!("the RECORD file hoist writes for {wheel}"),
            false,
        ));

        for (dest, bytes, origin, script) in made {
            self.insert(
                dest,
                Planned {
                    mode: if script { EXEC_MODE } else { FILE_MODE },
                    content: Content::Bytes(bytes),
                    origin,
                    script,
                },
            )?;
        }
        Ok(())
    }
}

fn describe_launcher(ep: &EntryPoint, wheel: &str) -> String {
    format!("the `{}` script of {wheel}'s entry points", ep.name)
}

/// Whether two entries hold the same bytes.
fn same_bytes(a: &Content, b: &Content) -> bool {
    match (a, b) {
        (
            Content::Zip {
                hash: Some(h1),
                shebang: None,
                size: s1,
                ..
            },
            Content::Zip {
                hash: Some(h2),
                shebang: None,
                size: s2,
                ..
            },
        ) => h1 == h2 && s1 == s2,
        (Content::Bytes(x), Content::Bytes(y)) => x == y,
        _ => false,
    }
}

/// Refuses a zip entry name that is not a plain relative path.
fn check_zip_path(name: &str) -> Result<(), &'static str> {
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    if name.contains('\\') {
        return Err("contains a backslash (zip paths use `/`)");
    }
    if name.starts_with('/') {
        return Err("is an absolute path");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for part in trimmed.split('/') {
        match part {
            "" => return Err("has an empty path component"),
            "." | ".." => return Err("has a `.` or `..` path component"),
            _ => {}
        }
    }
    Ok(())
}

/// The one top-level folder ending in `suffix`, checked to name the
/// wheel's project and version; `None` when there is none.
fn release_folder(
    wheel: &str,
    entries: &[archive::Entry],
    suffix: &str,
    parsed: &WheelFilename,
) -> Result<Option<String>, WheelError> {
    let found: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(suffix))
        .collect();
    let folder = match found.len() {
        0 => return Ok(None),
        1 => found.into_iter().next().unwrap_or_default(),
        _ => {
            let found = found
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let wheel = wheel.to_owned();
            return Err(if suffix == ".data" {
                WheelError::DataFolders { wheel, found }
            } else {
                WheelError::DistInfo { wheel, found }
            });
        }
    };
    let stem = folder.strip_suffix(suffix).unwrap_or(folder);
    if !names_release(stem, &parsed.name, &parsed.version) {
        return Err(WheelError::FolderName {
            wheel: wheel.to_owned(),
            folder: folder.to_owned(),
            name: parsed.name.to_string(),
            version: parsed.version.to_string(),
        });
    }
    Ok(Some(folder.to_owned()))
}

/// `to` relative to the folder `from`, with `..` where it leaves it
/// (`../../../bin/tool` from site-packages), as pip writes RECORD paths.
pub fn relative(from: &ImagePath, to: &ImagePath) -> String {
    let from: Vec<&str> = from.as_str().split('/').collect();
    let to: Vec<&str> = to.as_str().split('/').collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// A script whose first line is replaced.
struct Rewritten {
    first_line: Vec<u8>,
    hash: RecordHash,
    size: u64,
}

/// Reads a `.data/scripts` file: when its first line starts with
/// `#!python`, the new first line and the new file's hash and size.
fn scan_script(
    zip: &mut Zip,
    wheel: &str,
    entry: &archive::Entry,
    expected: &RecordHash,
    interpreter: &str,
) -> Result<Option<Rewritten>, WheelError> {
    let reader = archive::open_entry(zip, wheel, entry, Some(expected))?;
    let mut br = BufReader::new(reader);
    let (first_len, rewrite) = match skip_first_line(&mut br, entry.size) {
        Ok(r) => r,
        Err(e) => return Err(br.into_inner().read_error(e)),
    };
    if !rewrite {
        return Ok(None);
    }
    let first_line = format!("#!{interpreter}\n").into_bytes();
    let mut new = HashAlgo::Sha256.hasher();
    new.update(&first_line);
    let mut buf = vec![0u8; 64 * 1024];
    let mut rest = (&mut br).take(entry.size.saturating_sub(first_len) + 1);
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => new.update(&buf[..n]),
            Err(e) => return Err(br.into_inner().read_error(e)),
        }
    }
    // The whole file was read: check it now, so the new hash is that of
    // the right bytes.
    br.into_inner().finish(entry.size)?;
    Ok(Some(Rewritten {
        size: first_line.len() as u64 + entry.size - first_len,
        first_line,
        hash: new.finish(),
    }))
}

/// Consumes the first line (through its `\n`, or all when there is
/// none); returns its length and whether it starts with `#!python`.
/// Stops past `limit` bytes, for data that inflates beyond its size.
pub fn skip_first_line(br: &mut impl BufRead, limit: u64) -> std::io::Result<(u64, bool)> {
    let mut head: Vec<u8> = Vec::with_capacity(8);
    let mut len = 0u64;
    loop {
        let buf = br.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let want = 8 - head.len().min(8);
        head.extend_from_slice(&buf[..take.min(want)]);
        br.consume(take);
        len += take as u64;
        if done || len > limit {
            break;
        }
    }
    Ok((len, head.starts_with(b"#!python")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_paths() {
        for (name, ok) in [
            ("a/b.py", true),
            ("pkg/", true),
            ("x-1.0.data/scripts/tool", true),
            ("../evil", false),
            ("a/../../evil", false),
            ("a/./b", false),
            ("/etc/passwd", false),
            ("a//b", false),
            ("a\\..\\..\\b", false),
            ("a\0b", false),
            ("", false),
        ] {
            assert_eq!(check_zip_path(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn relative_paths() {
        let p = |s: &str| ImagePath::new(s).unwrap();
        let lib = p("usr/local/lib/python3.12/site-packages");
        for (to, want) in [
            ("usr/local/lib/python3.12/site-packages/a/b.py", "a/b.py"),
            ("usr/local/bin/tool", "../../../bin/tool"),
            ("usr/local/include/python3.12/x/y.h", "../../../include/python3.12/x/y.h"),
            ("opt/x", "../../../../../opt/x"),
        ] {
            assert_eq!(relative(&lib, &p(to)), want);
        }
    }

    #[test]
    fn first_lines() {
        for (text, len, rewrite) in [
            (&b"#!python\nrest"[..], 9, true),
            (b"#!pythonw -E\r\nrest", 14, true),
            (b"#!python", 8, true),
            (b"#!/usr/bin/python\n", 18, false),
            (b"#!pytho\n", 8, false),
            (b"", 0, false),
            (b"\n#!python\n", 1, false),
        ] {
            let mut br = BufReader::with_capacity(3, text);
            assert_eq!(
                skip_first_line(&mut br, 100).unwrap(),
                (len, rewrite),
                "{text:?}"
            );
        }
    }
}
