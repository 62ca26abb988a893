//! `extends:`: a service built on another one, as compose-go resolves it.
//!
//! `extends: base` or `extends: {service: base}` takes `base` from the same
//! file; `extends: {service: base, file: other.yml}` loads `other.yml`
//! (resolved against the extending file's folder), interpolates it with the
//! same environment and makes its build contexts relative to its own
//! folder, as compose does. The base is resolved first (it may extend in
//! turn), then the service is merged onto it with the same rules as an
//! override file ([`super::merge`], at path `services.<name>`), its own
//! `!reset` / `!override` applying to what it inherits. A service reached
//! twice along one chain (same file, same name) is a cycle, and an error.
//!
//! It runs per file, after interpolation and before the files are merged,
//! as in compose-go: an override file's service extends with what that
//! file (or the file it names) says, not with the merged result.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::{self, Budget, Files};
use super::tree::{self, Node, Value};
use super::{interpolate, merge, Error};

/// How long a chain of `extends` may be.
const MAX_CHAIN: usize = 32;

pub struct Ctx<'a> {
    pub env: &'a BTreeMap<String, String>,
    pub files: &'a dyn Files,
    pub warnings: &'a mut Vec<String>,
    pub budget: &'a mut Budget,
}

/// Resolves every `extends` among `doc`'s services; `file` is where `doc`
/// was read from.
pub fn apply(doc: &mut Node, file: &Path, ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let Some(services) = doc.get("services") else {
        return Ok(());
    };
    // In the file's order, so that the first error is always the same one.
    let (order, index): (Vec<String>, Services) = match &services.value {
        Value::Map(entries) => (
            entries.iter().map(|(k, _)| k.clone()).collect(),
            entries.iter().cloned().collect(),
        ),
        Value::Null => return Ok(()),
        _ => {
            return Err(Error::at(
                services,
                &tree::Path::of(&["services"]),
                format!("`services` must be a mapping, not {}", services.kind()),
            ))
        }
    };
    let mut resolved: HashMap<String, Node> = HashMap::new();
    for name in &order {
        if index.get(name).and_then(|n| n.get("extends")).is_some() {
            let mut chain = Vec::new();
            resolved.insert(name.clone(), resolve(&index, name, file, ctx, &mut chain)?);
        }
    }
    if let Some(Node {
        value: Value::Map(entries),
        ..
    }) = doc.get_mut("services")
    {
        for (name, node) in entries.iter_mut() {
            if let Some(r) = resolved.remove(name) {
                *node = r;
            }
        }
    }
    Ok(())
}

/// A file's services by name.
type Services = HashMap<String, Node>;

fn resolve(
    services: &Services,
    name: &str,
    file: &Path,
    ctx: &mut Ctx<'_>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Node, Error> {
    let path = tree::Path::of(&["services", name]);
    let Some(service) = services.get(name) else {
        return Err(Error::Project(format!(
            "{}: no service {name:?} to extend",
            file.display()
        )));
    };
    let Some(ext) = service.get("extends") else {
        return Ok(service.clone());
    };
    let ext_path = path.child("extends");
    let here = (file.to_path_buf(), name.to_string());
    if chain.contains(&here) || chain.len() >= MAX_CHAIN {
        let mut names: Vec<String> = chain
            .iter()
            .map(|(f, s)| format!("{s} ({})", f.display()))
            .collect();
        names.push(format!("{name} ({})", file.display()));
        return Err(Error::at(
            ext,
            &ext_path,
            format!(
                "`extends` goes round in a circle: {}; make one of them stand alone",
                names.join(" -> ")
            ),
        ));
    }
    let text = |n: &Node, key: &str| -> Result<Option<String>, Error> {
        match n.get(key) {
            None => Ok(None),
            Some(Node {
                value: Value::Str(s),
                ..
            }) if !s.is_empty() => Ok(Some(s.clone())),
            Some(v) => Err(Error::at(
                v,
                &ext_path.child(key),
                format!("expected a non-empty string, found {}", v.kind()),
            )),
        }
    };
    let (base_name, other) = match &ext.value {
        Value::Str(s) => (s.clone(), None),
        Value::Map(_) => {
            let Some(s) = text(ext, "service")? else {
                return Err(Error::at(
                    ext,
                    &ext_path,
                    "`extends` needs `service: NAME` (and `file:` for another file)",
                ));
            };
            (s, text(ext, "file")?)
        }
        _ => {
            return Err(Error::at(
                ext,
                &ext_path,
                format!(
                    "`extends` is a service name or {{service: NAME, file: FILE}}, not {}",
                    ext.kind()
                ),
            ))
        }
    };
    chain.push(here);
    let base = match other {
        None => {
            if !services.contains_key(&base_name) {
                return Err(Error::at(
                    ext,
                    &ext_path,
                    format!(
                        "cannot extend service {name:?}: no service {base_name:?} in {}",
                        file.display()
                    ),
                ));
            }
            resolve(services, &base_name, file, ctx, chain)?
        }
        Some(f) => {
            let other = file.parent().unwrap_or(Path::new("")).join(&f);
            let other_services = load_other(&other, ctx)?;
            if !other_services.contains_key(&base_name) {
                return Err(Error::at(
                    ext,
                    &ext_path,
                    format!(
                        "cannot extend service {name:?}: no service {base_name:?} in {}",
                        other.display()
                    ),
                ));
            }
            resolve(&other_services, &base_name, &other, ctx, chain)?
        }
    };
    chain.pop();
    let mut base = base;
    let mut service = service.clone();
    service.remove("extends");
    merge::apply_resets(&mut base, &service);
    merge::strip_resets(&mut service);
    merge::merge(base, service, &path)
}

/// The `services` of another file, read as the files given are, its build
/// contexts made relative to its folder.
fn load_other(other: &Path, ctx: &mut Ctx<'_>) -> Result<Services, Error> {
    let bytes = ctx.files.read(other).map_err(|e| Error::Read {
        path: other.display().to_string(),
        source: e,
    })?;
    let file: Arc<str> = other.display().to_string().into();
    let mut merged: Option<Node> = None;
    for mut doc in load::parse_yaml(&bytes, &file, ctx.budget)? {
        if !matches!(doc.value, Value::Map(_)) {
            continue;
        }
        interpolate::tree(&mut doc, ctx.env, ctx.warnings)?;
        load::resolve_paths(&mut doc, other.parent().unwrap_or(Path::new("")));
        merged = Some(match merged {
            None => {
                merge::strip_resets(&mut doc);
                doc
            }
            Some(mut m) => {
                merge::apply_resets(&mut m, &doc);
                merge::strip_resets(&mut doc);
                merge::merge(m, doc, &tree::Path::root())?
            }
        });
    }
    match merged.and_then(|mut m| m.remove("services")) {
        Some(Node {
            value: Value::Map(entries),
            ..
        }) => Ok(entries.into_iter().collect()),
        _ => Err(Error::Project(format!(
            "{}: no `services` mapping to extend from",
            other.display()
        ))),
    }
}
