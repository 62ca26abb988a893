//! `hoist init`: a hoist.toml written from the stock recipe that fits,
//! with its comments, so that it builds as it is and reads as
//! documentation of every setting.
//!
//! The stock recipe's text is copied line for line; only the lines a
//! project decides are replaced: the base (when `--base` names one) and
//! the command found in package.json or beside requirements.txt. The
//! result is parsed again before it is returned, so `init` never writes
//! a file `build` would refuse.

use std::path::Path;

use super::detect::Detected;
use super::{file, stock, RecipeError};

/// The text of a hoist.toml for a folder where `detected` was found.
/// `base` replaces the recipe's default base (already spelled as the
/// file must say it).
pub fn render(detected: &Detected, base: Option<&str>) -> Result<String, RecipeError> {
    let text = stock::text(detected.recipe).unwrap_or_default();
    let mut out = format!(
        "# hoist.toml, written by `hoist init` from the stock recipe `{}`\n# (found: {}).\n# Build it with `hoist build`; `hoist build --target dev` for the dev target;\n# `hoist build --dry-run` shows what would be built and why.\n#\n",
        detected.recipe, detected.because
    );
    let mut in_image = false;
    let mut cmd_done = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_image = t.starts_with("[image]");
        }
        let key = t.split('=').next().unwrap_or("").trim();
        if in_image && key == "base" {
            if let Some(b) = base {
                out.push_str(&format!("base = {}\n", quote(b)));
                continue;
            }
        }
        if in_image && !cmd_done && (key == "cmd" || key == "entrypoint") {
            if let Some(cmd) = &detected.command {
                let words: Vec<String> = cmd.iter().map(|w| quote(w)).collect();
                out.push_str(&format!("{key} = [{}]\n", words.join(", ")));
                cmd_done = true;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    file::parse(out.as_bytes(), "hoist.toml", Path::new("."))?;
    Ok(out)
}

/// What `hoist init` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: std::path::PathBuf,
    pub recipe: &'static str,
    pub because: String,
}

/// Detects the folder's kind (or takes `recipe`), renders, and writes
/// `DIR/hoist.toml`, refusing to replace one unless `force`. A local
/// `base` with a relative path is written absolute, so the file means the
/// same from its own folder.
pub fn write(
    dir: &Path,
    base: Option<&str>,
    recipe: Option<&str>,
    force: bool,
) -> Result<Written, RecipeError> {
    let path = dir.join(super::project::FILE_NAME);
    if path.exists() && !force {
        return Err(RecipeError::Exists {
            path: path.display().to_string(),
        });
    }
    let mut detected = super::detect::detect(dir).map_err(|e| RecipeError::Read {
        path: dir.display().to_string(),
        why: e.to_string(),
    })?;
    if let Some(name) = recipe {
        let stock =
            stock::STOCK
                .iter()
                .find(|s| s.0 == name)
                .ok_or_else(|| RecipeError::UnknownStock {
                    name: name.to_owned(),
                    known: stock::names(),
                })?;
        if stock.0 != detected.recipe {
            detected.command = None;
        }
        detected.recipe = stock.0;
        detected.because = "--recipe".into();
    }
    let base = base
        .map(|b| {
            crate::reference::transport::Transport::parse(b)
                .map(|t| absolute_transport(b, &t))
                .map_err(|e| RecipeError::BadBase {
                    base: b.to_owned(),
                    why: e.to_string(),
                })
        })
        .transpose()?;
    let text = render(&detected, base.as_deref())?;
    fs_err::write(&path, text).map_err(|e| RecipeError::Write {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    Ok(Written {
        path,
        recipe: detected.recipe,
        because: detected.because,
    })
}

/// `oci-archive:rel/x.tar` spelled with an absolute path.
fn absolute_transport(spelled: &str, t: &crate::reference::transport::Transport) -> String {
    use crate::reference::transport::Transport;
    let (prefix, path, tag) = match t {
        Transport::Oci { dir, tag } => ("oci", dir, tag),
        Transport::OciArchive { file, tag } => ("oci-archive", file, tag),
        Transport::DockerArchive { file, tag } => ("docker-archive", file, tag),
        Transport::Registry(_) | Transport::Engine { .. } => return spelled.to_owned(),
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    match tag {
        Some(t) => format!("{prefix}:{}:{t}", abs.display()),
        None => format!("{prefix}:{}", abs.display()),
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::transport::Transport;

    #[test]
    fn render_keeps_comments_and_sets_base_and_command() {
        let d = Detected {
            recipe: "node",
            because: "package.json".into(),
            command: Some(vec!["node".into(), "index.js".into()]),
        };
        let text = render(&d, Some("oci-archive:/bases/node.oci.tar")).unwrap();
        assert!(text.contains("# Any base with node in it."), "{text}");
        let f = file::parse(text.as_bytes(), "hoist.toml", Path::new("/p")).unwrap();
        let s = &f.top.spec;
        assert_eq!(
            s.image.base,
            Some(Transport::OciArchive {
                file: "/bases/node.oci.tar".into(),
                tag: None
            })
        );
        assert_eq!(
            s.image.cmd.as_deref(),
            Some(&["node".to_owned(), "index.js".to_owned()][..])
        );
        // the dev target's cmd is the recipe's own
        assert!(f.top.targets["dev"].spec.image.cmd.is_some());
        for (name, _, _) in stock::STOCK {
            let d = Detected {
                recipe: name,
                because: "x".into(),
                command: None,
            };
            render(&d, None).unwrap();
        }
    }
}
