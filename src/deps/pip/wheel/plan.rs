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
//!    `#!python3.11`; see [`super::scripts`]); scripts are 0755.
//!    setuptools' own wrappers for the entry points are skipped, as pip
//!    skips them.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pep508_rs::PackageName;

use super::archive::{self, Kind, Zip};
use super::dist_info::{names_release, parse_wheel_file};
use super::entry_points::{self, EntryPoint};
use super::record::{self, RecordHash, RecordRow};
use super::scripts::scan_script;
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
    /// The wheel (index into [`Plan::wheels`]) whose segment of the layer
    /// holds the entry; `None` for folders and for files several wheels
    /// ship alike, which go into the layer's skeleton (see
    /// [`super::write`]).
    pub owner: Option<usize>,
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
        plan.add_folders(env.scheme.home.as_ref())?;
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
        if let Some(prev) = self.entries.get_mut(&path) {
            if prev.mode == planned.mode && same_bytes(&prev.content, &planned.content) {
                if prev.owner != planned.owner {
                    prev.owner = None;
                }
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

    /// The folders above the entries, but `home` and those above it
    /// (`--user`: the image has them, with their own modes).
    fn add_folders(&mut self, home: Option<&ImagePath>) -> Result<(), WheelError> {
        let mut dirs: BTreeSet<ImagePath> = BTreeSet::new();
        let kept = |d: &ImagePath| home.is_some_and(|h| h == d || h.ancestors().contains(d));
        for path in self.entries.keys() {
            for dir in path.ancestors() {
                if !kept(&dir) {
                    dirs.insert(dir);
                }
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
                    owner: None,
                },
            );
        }
        Ok(())
    }

    /// Plans one wheel: steps 1 to 5 of the module docs.
    fn wheel(
        &mut self,
        store: &Store,
        input: &WheelInput,
        env: &PythonEnv,
        installer: &str,
    ) -> Result<(), WheelError> {
        let index = self.wheels.len();
        self.wheels.push(PlannedWheel {
            filename: input.filename.clone(),
            blob: input.blob.clone(),
        });
        let mut w = Checked::open(store, input)?;
        w.check_record()?;
        let lib = if w.root_is_purelib {
            &env.scheme.purelib
        } else {
            &env.scheme.platlib
        };
        let installed = self.place_files(&mut w, index, env, lib)?;
        let mut made = w.made_files(env, installer, lib)?;
        made.push(w.rewrite_record(lib, installed, &made)?);
        for m in made {
            self.insert(
                m.dest,
                Planned {
                    mode: if m.script { EXEC_MODE } else { FILE_MODE },
                    content: Content::Bytes(m.bytes),
                    origin: m.origin,
                    script: m.script,
                    owner: Some(index),
                },
            )?;
        }
        Ok(())
    }

    /// Step 3: plans every file of the zip at its installed path; returns
    /// where each went, by zip name.
    fn place_files(
        &mut self,
        w: &mut Checked,
        index: usize,
        env: &PythonEnv,
        lib: &ImagePath,
    ) -> Result<HashMap<String, Installed>, WheelError> {
        let scheme = &env.scheme;
        let headers = scheme
            .headers
            .join(w.project.as_ref())
            .map_err(|e| w.bad_path(w.project.as_ref(), e.why))?;
        let interpreter = env.interpreter.absolute();
        let mut installed = HashMap::new();
        let files = std::mem::take(&mut w.files);
        for e in &files {
            if w.generated(&e.name) {
                continue;
            }
            let in_data = w
                .data
                .as_ref()
                .and_then(|d| e.name.strip_prefix(d.as_str()))
                .and_then(|rest| rest.strip_prefix('/'));
            let (root, rel, is_script) = match in_data {
                Some(inside) => {
                    let bad_key = || WheelError::DataKey {
                        wheel: w.wheel.clone(),
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
            let dest = root.join(rel).map_err(|err| w.bad_path(&e.name, err.why))?;
            if !dest.starts_with(root) || dest == *root {
                return Err(w.bad_path(&e.name, "lands outside its scheme folder"));
            }
            if is_script && entry_points::is_wrapper(dest.file_name(), &w.entry_points) {
                continue;
            }
            // Every file but RECORD's signatures has a hash (step 2).
            let hash = w.hash_of(&e.name);
            let mut shebang = None;
            let mut size = e.size;
            let mut changed = None;
            if let (true, Some(expected)) = (is_script, &hash) {
                if let Some(new) = scan_script(&mut w.zip, &w.wheel, e, expected, &interpreter)? {
                    size = new.size;
                    changed = Some((new.hash, new.size));
                    shebang = Some(new.first_line);
                }
            }
            let executable = is_script || matches!(e.kind, Kind::File { executable: true });
            self.insert(
                dest.clone(),
                Planned {
                    mode: if executable { EXEC_MODE } else { FILE_MODE },
                    content: Content::Zip {
                        wheel: index,
                        entry: e.clone(),
                        hash,
                        shebang,
                        size,
                    },
                    origin: format!("`{}` of {}", e.name, w.wheel),
                    script: is_script,
                    owner: Some(index),
                },
            )?;
            installed.insert(e.name.clone(), Installed { dest, changed });
        }
        w.files = files;
        Ok(installed)
    }
}

/// Where a file of the zip was installed; the new hash and size of a
/// file that was changed on the way.
struct Installed {
    dest: ImagePath,
    changed: Option<(RecordHash, u64)>,
}

/// A file the installer makes.
struct Made {
    dest: ImagePath,
    bytes: Vec<u8>,
    origin: String,
    script: bool,
}

/// One wheel, opened, its metadata read and checked against its zip
/// (steps 1 and 2).
struct Checked {
    wheel: String,
    zip: Zip,
    project: PackageName,
    /// The zip's files (not folders), in zip order.
    files: Vec<archive::Entry>,
    dist_info: String,
    data: Option<String>,
    root_is_purelib: bool,
    rows: Vec<RecordRow>,
    /// RECORD's hashes by path.
    hashes: HashMap<String, RecordHash>,
    entry_points: Vec<EntryPoint>,
    requested: bool,
}

impl Checked {
    /// Step 1: the folders, WHEEL, RECORD and entry_points.txt.
    fn open(store: &Store, input: &WheelInput) -> Result<Checked, WheelError> {
        let wheel = input.filename.as_str();
        let parsed = WheelFilename::parse(wheel).map_err(|source| WheelError::Filename {
            filename: wheel.to_owned(),
            source,
        })?;
        let mut zip = archive::open(store, wheel, &input.blob, true)?;
        let entries = archive::list(&mut zip, wheel)?;
        for e in &entries {
            check_zip_path(&e.name).map_err(|why| WheelError::BadPath {
                wheel: wheel.to_owned(),
                file: e.name.clone(),
                why,
            })?;
        }
        let dist_info =
            release_folder(wheel, &entries, ".dist-info", &parsed)?.ok_or_else(|| {
                WheelError::DistInfo {
                    wheel: wheel.to_owned(),
                    found: "none".to_owned(),
                }
            })?;
        let data = release_folder(wheel, &entries, ".data", &parsed)?;
        let files: Vec<archive::Entry> = entries
            .into_iter()
            .filter(|e| matches!(e.kind, Kind::File { .. }))
            .collect();
        let mut metadata = |file: &str| -> Result<Option<Vec<u8>>, WheelError> {
            let name = format!("{dist_info}/{file}");
            match files.iter().find(|e| e.name == name) {
                Some(e) => archive::read_small(&mut zip, wheel, e).map(Some),
                None => Ok(None),
            }
        };
        let missing = |file: &str| WheelError::Missing {
            wheel: wheel.to_owned(),
            file: format!("{dist_info}/{file}"),
        };
        let wheel_file = metadata("WHEEL")?.ok_or_else(|| missing("WHEEL"))?;
        let wheel_file = parse_wheel_file(&wheel_file).map_err(|source| WheelError::WheelFile {
            wheel: wheel.to_owned(),
            source,
        })?;
        let rows = metadata("RECORD")?.ok_or_else(|| missing("RECORD"))?;
        let rows = record::parse(&rows).map_err(|source| WheelError::Record {
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
        let hashes = rows
            .iter()
            .filter_map(|r| Some((r.path.clone(), r.hash.clone()?)))
            .collect();
        Ok(Checked {
            wheel: wheel.to_owned(),
            zip,
            project: parsed.name,
            files,
            dist_info,
            data,
            root_is_purelib: wheel_file.root_is_purelib,
            rows,
            hashes,
            entry_points,
            requested: input.requested,
        })
    }

    fn bad_path(&self, file: &str, why: &'static str) -> WheelError {
        WheelError::BadPath {
            wheel: self.wheel.clone(),
            file: file.to_owned(),
            why,
        }
    }

    /// RECORD and its signatures, listed without hashes.
    fn unhashed(&self, name: &str) -> bool {
        name.strip_prefix(self.dist_info.as_str())
            .is_some_and(|f| matches!(f, "/RECORD" | "/RECORD.jws" | "/RECORD.p7s"))
    }

    /// The files of the `.dist-info` the installer writes itself.
    fn generated(&self, name: &str) -> bool {
        name.strip_prefix(self.dist_info.as_str())
            .is_some_and(|f| matches!(f, "/RECORD" | "/INSTALLER" | "/REQUESTED"))
    }

    fn hash_of(&self, name: &str) -> Option<RecordHash> {
        self.hashes.get(name).cloned()
    }

    /// Step 2: RECORD lists every file of the zip, with its size, and
    /// only files of the zip. (Hashes are checked as the bytes stream.)
    fn check_record(&self) -> Result<(), WheelError> {
        let wheel = || self.wheel.clone();
        let mut listed: HashMap<&str, &RecordRow> = HashMap::new();
        for row in &self.rows {
            if let Some(prev) = listed.insert(row.path.as_str(), row) {
                if prev != row {
                    return Err(WheelError::RecordTwice {
                        wheel: wheel(),
                        file: row.path.clone(),
                    });
                }
            }
        }
        for e in &self.files {
            if self.unhashed(&e.name) {
                continue;
            }
            let row = listed
                .get(e.name.as_str())
                .ok_or_else(|| WheelError::NotInRecord {
                    wheel: wheel(),
                    file: e.name.clone(),
                })?;
            if row.hash.is_none() {
                return Err(WheelError::NoHash {
                    wheel: wheel(),
                    file: e.name.clone(),
                });
            }
            if let Some(size) = row.size.filter(|&s| s != e.size) {
                return Err(WheelError::SizeMismatch {
                    wheel: wheel(),
                    file: e.name.clone(),
                    expected: size,
                    actual: e.size,
                });
            }
        }
        let in_zip: HashSet<&str> = self.files.iter().map(|e| e.name.as_str()).collect();
        for row in &self.rows {
            if row.hash.is_some() && !in_zip.contains(row.path.as_str()) {
                return Err(WheelError::NotInWheel {
                    wheel: wheel(),
                    file: row.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Steps 4 and 5: the launchers, INSTALLER and REQUESTED.
    fn made_files(
        &self,
        env: &PythonEnv,
        installer: &str,
        lib: &ImagePath,
    ) -> Result<Vec<Made>, WheelError> {
        let mut made = Vec::new();
        let interpreter = env.interpreter.absolute();
        for ep in entry_points::scripts_to_make(&self.entry_points, env.version) {
            made.push(Made {
                dest: env
                    .scheme
                    .scripts
                    .join(&ep.name)
                    .map_err(|e| self.bad_path(&ep.name, e.why))?,
                bytes: entry_points::launcher(&ep, &interpreter),
                origin: format!("the `{}` script of {}'s entry points", ep.name, self.wheel),
                script: true,
            });
        }
        made.push(self.dist_info_file(lib, "INSTALLER", format!("{installer}\n").into_bytes())?);
        if self.requested {
            made.push(self.dist_info_file(lib, "REQUESTED", Vec::new())?);
        }
        Ok(made)
    }

    fn dist_info_file(
        &self,
        lib: &ImagePath,
        file: &str,
        bytes: Vec<u8>,
    ) -> Result<Made, WheelError> {
        let name = format!("{}/{file}", self.dist_info);
        Ok(Made {
            dest: lib.join(&name).map_err(|e| self.bad_path(&name, e.why))?,
            bytes,
            origin: format!("the {file} file hoist writes for {}", self.wheel),
            script: false,
        })
    }

    /// Step 5: RECORD with installed paths relative to `lib`, new hashes
    /// for changed and made files, and its own row empty.
    fn rewrite_record(
        &self,
        lib: &ImagePath,
        mut installed: HashMap<String, Installed>,
        made: &[Made],
    ) -> Result<Made, WheelError> {
        let mut rows: BTreeMap<String, RecordRow> = BTreeMap::new();
        let mut add = |row: RecordRow| {
            rows.insert(row.path.clone(), row);
        };
        let in_zip: HashSet<&str> = self.files.iter().map(|e| e.name.as_str()).collect();
        for row in &self.rows {
            if self.generated(&row.path) {
                continue;
            }
            match installed.remove(&row.path) {
                Some(Installed {
                    dest,
                    changed: Some((hash, size)),
                }) => add(RecordRow {
                    path: relative(lib, &dest),
                    hash: Some(hash),
                    size: Some(size),
                }),
                Some(Installed {
                    dest,
                    changed: None,
                }) => add(RecordRow {
                    path: relative(lib, &dest),
                    ..row.clone()
                }),
                // A skipped wrapper script is not installed: its row goes.
                None if in_zip.contains(row.path.as_str()) => {}
                // A row without a hash for a file the zip lacks stays as
                // it was, as pip keeps it.
                None => add(row.clone()),
            }
        }
        // Installed files RECORD did not list (its signatures).
        for Installed { dest, .. } in installed.into_values() {
            add(RecordRow {
                path: relative(lib, &dest),
                hash: None,
                size: None,
            });
        }
        for m in made {
            add(RecordRow {
                path: relative(lib, &m.dest),
                hash: Some(RecordHash::sha256_of(&m.bytes)),
                size: Some(m.bytes.len() as u64),
            });
        }
        let mut record = self.dist_info_file(lib, "RECORD", Vec::new())?;
        add(RecordRow {
            path: relative(lib, &record.dest),
            hash: None,
            size: None,
        });
        let rows: Vec<RecordRow> = rows.into_values().collect();
        record.bytes = record::write(&rows);
        Ok(record)
    }
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
            (
                "usr/local/include/python3.12/x/y.h",
                "../../../include/python3.12/x/y.h",
            ),
            ("opt/x", "../../../../../opt/x"),
        ] {
            assert_eq!(relative(&lib, &p(to)), want);
        }
    }
}
