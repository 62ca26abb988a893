//! Which stock recipe fits a folder, for `hoist init`: decided from the
//! files a project of each kind always has, in order of how specific
//! they are (a Next.js app is also a Node app).

use std::path::Path;

/// What `hoist init` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The stock recipe's name.
    pub recipe: &'static str,
    /// The file that decided it, for the message and the file's header.
    pub because: String,
    /// The command the app starts with, when the folder says.
    pub command: Option<Vec<String>>,
}

/// Reads the folder's top level and decides. `files` is the folder's
/// file names with, for `package.json`, its bytes.
pub fn detect(root: &Path) -> std::io::Result<Detected> {
    let mut names: Vec<(String, bool)> = Vec::new();
    for e in fs_err::read_dir(root)? {
        let e = e?;
        let meta = e.metadata()?;
        use std::os::unix::fs::PermissionsExt;
        if let Ok(n) = e.file_name().into_string() {
            names.push((n, meta.is_file() && meta.permissions().mode() & 0o111 != 0));
        }
    }
    names.sort();
    let package_json = match fs_err::read(root.join("package.json")) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(decide(&names, package_json.as_deref()))
}

/// The decision, from the top-level names (with whether each is an
/// executable file) and package.json's bytes.
pub fn decide(names: &[(String, bool)], package_json: Option<&[u8]>) -> Detected {
    let has = |n: &str| names.iter().any(|(x, _)| x == n);
    let pkg: Option<serde_json::Value> = package_json.and_then(|b| serde_json::from_slice(b).ok());
    let next_dep = pkg.as_ref().is_some_and(|p| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|d| p[d].get("next").is_some())
    });
    if let Some(cfg) = ["next.config.js", "next.config.mjs", "next.config.ts"]
        .into_iter()
        .find(|n| has(n))
    {
        return found("nextjs-standalone", cfg, None);
    }
    if next_dep {
        return found(
            "nextjs-standalone",
            "package.json (it depends on next)",
            None,
        );
    }
    if let Some(p) = &pkg {
        return found("node", "package.json", node_command(p));
    }
    if has("package-lock.json") {
        return found("node", "package-lock.json", None);
    }
    for f in ["requirements.txt", "pyproject.toml", "Pipfile"] {
        if has(f) {
            let main = ["app.py", "main.py", "server.py"]
                .into_iter()
                .find(|m| has(m));
            let cmd = main.map(|m| vec!["python3".to_owned(), m.to_owned()]);
            return found("python", f, cmd);
        }
    }
    let exe = names.iter().find(|(n, x)| *x && !n.starts_with('.'));
    match exe {
        Some((n, _)) => found(
            "static",
            &format!("{n} (an executable, and no package.json or requirements.txt)"),
            Some(vec![format!("/app/{n}")]),
        ),
        None => found(
            "static",
            "no package.json, requirements.txt or pyproject.toml",
            None,
        ),
    }
}

fn found(recipe: &'static str, because: &str, command: Option<Vec<String>>) -> Detected {
    Detected {
        recipe,
        because: because.to_owned(),
        command,
    }
}

/// `scripts.start` when it is `node ...`, else `node MAIN`.
fn node_command(p: &serde_json::Value) -> Option<Vec<String>> {
    if let Some(start) = p["scripts"]["start"].as_str() {
        if let Ok(words) = crate::graph::config::parse_command(start) {
            if words.first().is_some_and(|w| w == "node") {
                return Some(words);
            }
        }
    }
    p["main"]
        .as_str()
        .map(|m| vec!["node".to_owned(), m.to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_table() {
        let n = |v: &[&str]| -> Vec<(String, bool)> {
            v.iter().map(|s| (s.to_string(), *s == "server")).collect()
        };
        type Case<'a> = (
            &'a [&'a str],
            Option<&'a str>,
            &'a str,
            Option<&'a [&'a str]>,
        );
        let cases: &[Case] = &[
            (
                &["package.json", "next.config.mjs"],
                Some("{}"),
                "nextjs-standalone",
                None,
            ),
            (
                &["package.json"],
                Some(r#"{"dependencies":{"next":"15"}}"#),
                "nextjs-standalone",
                None,
            ),
            (
                &["package.json"],
                Some(r#"{"scripts":{"start":"node server.js"}}"#),
                "node",
                Some(&["node", "server.js"]),
            ),
            (
                &["package.json"],
                Some(r#"{"scripts":{"start":"nodemon x"},"main":"index.js"}"#),
                "node",
                Some(&["node", "index.js"]),
            ),
            (&["package.json"], Some("{}"), "node", None),
            (
                &["requirements.txt", "app.py"],
                None,
                "python",
                Some(&["python3", "app.py"]),
            ),
            (
                &["pyproject.toml", "main.py"],
                None,
                "python",
                Some(&["python3", "main.py"]),
            ),
            (&["server", "www"], None, "static", Some(&["/app/server"])),
            (&["index.html"], None, "static", None),
        ];
        for (names, pkg, recipe, cmd) in cases {
            let d = decide(&n(names), pkg.map(str::as_bytes));
            assert_eq!(d.recipe, *recipe, "{names:?}");
            assert_eq!(
                d.command,
                cmd.map(|c| c.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                "{names:?}"
            );
        }
    }
}
