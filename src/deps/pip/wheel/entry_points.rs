//! `entry_points.txt` and the launcher scripts made from it.
//!
//! The entry points spec (PyPA, "Entry points specification") makes the
//! file INI-like: `[group]` lines, then `name = module:attr [extras]`
//! lines; `#` and `;` start comments. An installer turns every entry of
//! the `console_scripts` and `gui_scripts` groups into a small script in
//! the scheme's scripts folder that imports `attr` from `module` and
//! exits with what it returns. On Linux a GUI script is the same as a
//! console script.
//!
//! The launchers are byte for byte the ones pip writes (its vendored
//! distlib's template), so that an image built by hoist holds the same
//! files as one built by `pip install`. Two of pip's quirks are kept for
//! the same reason: an entry without `:attr` is refused (pip raises
//! "A callable suffix is required"), and pip's and setuptools' own
//! versioned commands (`pip3.11` baked into the wheel by whatever Python
//! built it) are replaced by the ones for the image's Python
//! ([`scripts_to_make`]).
//!
//! Names become file names, so a name that is not a plain file name
//! (a `/`, white space, `..`) is refused here, where pip would write
//! outside its scripts folder or fail later.

/// Why `entry_points.txt` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryPointError {
    #[error("entry_points.txt is not UTF-8 text")]
    NotUtf8,
    #[error("entry_points.txt line {line}: `{text}` is not `name = module:attr`")]
    NotAnEntry { line: usize, text: String },
    #[error("entry_points.txt line {line}: script name `{name}` is not a plain file name")]
    BadName { line: usize, name: String },
    #[error("entry_points.txt line {line}: `{value}` is not `module:attr [extras]`; a script needs the `:attr` part (pip refuses it too)")]
    BadValue { line: usize, value: String },
}

/// One script to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// The script's file name.
    pub name: String,
    /// The dotted module to import from.
    pub module: String,
    /// The dotted attribute of the module to call.
    pub attr: String,
}

/// The `console_scripts` and `gui_scripts` entries, in file order. Other
/// groups (plugins of other tools) are skipped unread, as only their
/// owners know their form.
pub fn parse(bytes: &[u8]) -> Result<Vec<EntryPoint>, EntryPointError> {
    let text = std::str::from_utf8(bytes).map_err(|_| EntryPointError::NotUtf8)?;
    let mut out = Vec::new();
    let mut in_scripts = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with(['#', ';']) {
            continue;
        }
        if let Some(group) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            in_scripts = matches!(group.trim(), "console_scripts" | "gui_scripts");
            continue;
        }
        if !in_scripts {
            continue;
        }
        let Some((name, value)) = text.split_once('=') else {
            return Err(EntryPointError::NotAnEntry {
                line,
                text: text.to_owned(),
            });
        };
        let name = name.trim();
        if !plain_name(name) {
            return Err(EntryPointError::BadName {
                line,
                name: name.to_owned(),
            });
        }
        let value = value.trim();
        let (module, attr) = parse_value(value).ok_or_else(|| EntryPointError::BadValue {
            line,
            value: value.to_owned(),
        })?;
        out.push(EntryPoint {
            name: name.to_owned(),
            module,
            attr,
        });
    }
    Ok(out)
}

/// Whether `name` can be a script's file name.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
}

/// A dotted Python name: identifiers joined by dots.
fn dotted(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c == '_' || c.is_alphanumeric()))
}

/// `module:attr [extras]`, with spaces allowed around `:` and before the
/// extras, as the spec's pattern has it. Extras are ignored: pip does not
/// check that they are installed either.
fn parse_value(value: &str) -> Option<(String, String)> {
    let without_extras = match value.find('[') {
        Some(i) => {
            let extras = value[i..].trim_end();
            if !extras.ends_with(']') || extras[1..extras.len() - 1].contains(['[', ']']) {
                return None;
            }
            &value[..i]
        }
        None => value,
    };
    let (module, attr) = without_extras.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    (dotted(module) && dotted(attr)).then(|| (module.to_owned(), attr.to_owned()))
}

/// The scripts to make, by name (a later entry of the same name replaces
/// an earlier one, as pip's later file overwrites the earlier).
///
/// As pip does for its own and setuptools' wheels: an entry named `pip`
/// is made as `pip`, `pipX` and `pipX.Y` for the image's Python X.Y, and
/// every other `pipN`/`pipN.M` entry is dropped; likewise `easy_install`
/// becomes `easy_install` and `easy_install-X.Y`.
pub fn scripts_to_make(entries: &[EntryPoint], python: (u32, u32)) -> Vec<EntryPoint> {
    let (major, minor) = python;
    let renamed = |e: &EntryPoint, name: String| EntryPoint { name, ..e.clone() };
    let pip = entries.iter().rev().find(|e| e.name == "pip");
    let easy = entries.iter().rev().find(|e| e.name == "easy_install");
    let mut out: Vec<EntryPoint> = entries
        .iter()
        .filter(|e| !(pip.is_some() && versioned(&e.name, "pip", "")))
        .filter(|e| !(easy.is_some() && versioned(&e.name, "easy_install", "-")))
        .cloned()
        .collect();
    if let Some(p) = pip {
        out.push(renamed(p, "pip".to_owned()));
        out.push(renamed(p, format!("pip{major}")));
        out.push(renamed(p, format!("pip{major}.{minor}")));
    }
    if let Some(e) = easy {
        out.push(renamed(e, "easy_install".to_owned()));
        out.push(renamed(e, format!("easy_install-{major}.{minor}")));
    }
    let mut by_name: std::collections::BTreeMap<String, EntryPoint> = Default::default();
    for e in out {
        by_name.insert(e.name.clone(), e);
    }
    by_name.into_values().collect()
}

/// Whether `name` is `base`, or `base` + `sep` + a version (`pip3`,
/// `pip3.11`, `easy_install-3.11`; for pip, `sep` is empty and the minor
/// part optional).
fn versioned(name: &str, base: &str, sep: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(version) = rest.strip_prefix(sep) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match version.split_once('.') {
        Some((a, b)) => digits(a) && digits(b),
        // easy_install's versions always have a minor part.
        None => sep.is_empty() && digits(version),
    }
}

/// The shebang line of a launcher for `interpreter` (an absolute path),
/// as distlib builds it on Linux: `#!<interpreter>` when the line is at
/// most 127 bytes and has no space, else a `/bin/sh` line that re-executes
/// the script with the quoted interpreter.
pub fn launcher_shebang(interpreter: &str) -> String {
    let exe = if interpreter.contains(' ') {
        format!("\"{interpreter}\"")
    } else {
        interpreter.to_owned()
    };
    // `#!` and the newline.
    if !exe.contains(' ') && exe.len() + 3 <= 127 {
        format!("#!{exe}\n")
    } else {
        format!("#!/bin/sh\n'''exec' {exe} \"$0\" \"$@\"\n' '''\n")
    }
}

/// The launcher script for `entry`, run by `interpreter`.
pub fn launcher(entry: &EntryPoint, interpreter: &str) -> Vec<u8> {
    let first = entry.attr.split('.').next().unwrap_or(&entry.attr);
    format!(
        "{shebang}# -*- coding: utf-8 -*-\n\
         import re\n\
         import sys\n\
         from {module} import {first}\n\
         if __name__ == '__main__':\n    \
         sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
         sys.exit({attr}())\n",
        shebang = launcher_shebang(interpreter),
        module = entry.module,
        attr = entry.attr,
    )
    .into_bytes()
}

/// Whether a file of `.data/scripts` named `file_name` is a wrapper that
/// setuptools made for one of the entry points (`EP`, `EP.exe`,
/// `EP-script.py`, `EP.pya`): pip skips those, as it makes its own.
pub fn is_wrapper(file_name: &str, entries: &[EntryPoint]) -> bool {
    let bytes = file_name.as_bytes();
    let stem = [".exe", "-script.py", ".pya"]
        .iter()
        .find(|suffix| {
            bytes.len() > suffix.len()
                && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
        })
        .map_or(bytes, |suffix| &bytes[..bytes.len() - suffix.len()]);
    entries.iter().any(|e| e.name.as_bytes() == stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, module: &str, attr: &str) -> EntryPoint {
        EntryPoint {
            name: name.into(),
            module: module.into(),
            attr: attr.into(),
        }
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Result<Vec<EntryPoint>, &str>)> = vec![
            (
                "[console_scripts]\npyflakes = pyflakes.api:main\n",
                Ok(vec![ep("pyflakes", "pyflakes.api", "main")]),
            ),
            (
                // Comments, blank lines, other groups, gui scripts, CRLF,
                // spaces around `:` and extras.
                "# c\n[other.plugins]\nx = not a : valid [[ value\n\r\n[gui_scripts]\r\n  g=m:f\r\n[console_scripts]\n; c\nt = a.b : c.d [ext1, ext2]\nu=m:f[x]\n",
                Ok(vec![
                    ep("g", "m", "f"),
                    ep("t", "a.b", "c.d"),
                    ep("u", "m", "f"),
                ]),
            ),
            ("", Ok(vec![])),
            ("[console_scripts]\nname-with.dots+1 = m:f\n", Ok(vec![ep("name-with.dots+1", "m", "f")])),
            ("[console_scripts]\ntool = m\n", Err("`:attr`")),
            ("[console_scripts]\ntool = m:\n", Err("`:attr`")),
            ("[console_scripts]\ntool = m:f [x\n", Err("`:attr`")),
            ("[console_scripts]\ntool = m:f x\n", Err("`:attr`")),
            ("[console_scripts]\ntool = a..b:f\n", Err("`:attr`")),
            ("[console_scripts]\ntool = a-b:f\n", Err("`:attr`")),
            ("[console_scripts]\njust a line\n", Err("line 2")),
            ("[console_scripts]\n../evil = m:f\n", Err("plain file name")),
            ("[console_scripts]\na/b = m:f\n", Err("plain file name")),
            ("[console_scripts]\nmy tool = m:f\n", Err("plain file name")),
            ("[console_scripts]\n.. = m:f\n", Err("plain file name")),
            ("[console_scripts]\n = m:f\n", Err("plain file name")),
        ];
        for (input, want) in cases {
            let got = parse(input.as_bytes());
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{input:?}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{input:?}: {e}"),
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(parse(b"\xff"), Err(EntryPointError::NotUtf8));
    }

    #[test]
    fn pip_and_easy_install_get_the_image_versions() {
        let entries = vec![
            ep("pip", "pip._internal.cli.main", "main"),
            ep("pip3", "pip._internal.cli.main", "main"),
            ep("pip3.11", "pip._internal.cli.main", "main"),
            ep("pipx", "pipx.main", "cli"),
            ep("easy_install", "setuptools.command.easy_install", "main"),
            ep(
                "easy_install-3.8",
                "setuptools.command.easy_install",
                "main",
            ),
            ep("other", "o", "main"),
        ];
        let names: Vec<String> = scripts_to_make(&entries, (3, 12))
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            [
                "easy_install",
                "easy_install-3.12",
                "other",
                "pip",
                "pip3",
                "pip3.12",
                "pipx"
            ]
        );
        // Without a `pip` entry, `pip3` is an ordinary script.
        let only = vec![ep("pip3", "m", "f")];
        assert_eq!(scripts_to_make(&only, (3, 12)), only);
        // A later entry of the same name wins.
        let twice = vec![ep("t", "a", "f"), ep("t", "b", "g")];
        assert_eq!(scripts_to_make(&twice, (3, 12)), vec![ep("t", "b", "g")]);
    }

    #[test]
    fn launcher_is_pips() {
        let text = launcher(
            &ep("pyflakes", "pyflakes.api", "main"),
            "/usr/local/bin/python3.11",
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "#!/usr/local/bin/python3.11\n\
             # -*- coding: utf-8 -*-\n\
             import re\n\
             import sys\n\
             from pyflakes.api import main\n\
             if __name__ == '__main__':\n    \
             sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
             sys.exit(main())\n"
        );
        let dotted = String::from_utf8(launcher(&ep("t", "m", "cli.main"), "/p")).unwrap();
        assert!(dotted.contains("from m import cli\n"), "{dotted}");
        assert!(dotted.contains("sys.exit(cli.main())\n"), "{dotted}");
    }

    #[test]
    fn long_or_spaced_interpreters_go_through_sh() {
        assert_eq!(launcher_shebang("/usr/bin/python3"), "#!/usr/bin/python3\n");
        let long = format!("/{}", "p".repeat(123));
        assert_eq!(launcher_shebang(&long), format!("#!{long}\n"));
        let longer = format!("/{}", "p".repeat(124));
        assert_eq!(
            launcher_shebang(&longer),
            format!("#!/bin/sh\n'''exec' {longer} \"$0\" \"$@\"\n' '''\n")
        );
        assert_eq!(
            launcher_shebang("/opt/my python/bin/python"),
            "#!/bin/sh\n'''exec' \"/opt/my python/bin/python\" \"$0\" \"$@\"\n' '''\n"
        );
    }

    #[test]
    fn wrappers_table() {
        let entries = vec![ep("tool", "m", "f")];
        for (name, want) in [
            ("tool", true),
            ("tool.exe", true),
            ("tool.EXE", true),
            ("tool-script.py", true),
            ("tool.pya", true),
            ("tool.py", false),
            ("tools", false),
            ("other", false),
        ] {
            assert_eq!(is_wrapper(name, &entries), want, "{name}");
        }
    }
}
