//! Merging compose files in order (`-f a.yml -f b.yml`), by compose-go's
//! override rules: a table of rules keyed by path ([`RULES`]), a default
//! for everything else (mappings merge key by key, sequences append,
//! scalars are replaced), and after each file a second table ([`UNIQUE`])
//! that removes the entries of a sequence written again under the same key
//! (the later one takes the earlier one's place).
//!
//! The rules, as compose-go has them:
//! - `environment`, `labels`, `build.args`, `build.labels`, `annotations`,
//!   `sysctls`, `tmpfs`, `dns*`, `env_file`... are turned into `KEY=VALUE`
//!   sequences (a mapping sorted by key) and appended; [`UNIQUE`] then
//!   keeps one entry per key, the later value in the earlier place. So a
//!   map in one file and a list in the other merge.
//! - `command`, `entrypoint`, `healthcheck.test`, `ulimits.*` are replaced.
//! - `build` as a string is `{context: ...}` before merging.
//! - `depends_on`, `networks`, `models`: lists become mappings, then merge.
//! - `extra_hosts`: appended without the entries already there.
//! - `logging`: merged when both name the same driver (or one none), else
//!   replaced.
//! - `ports` (by `host:published:target/protocol`), `expose`, `volumes` /
//!   `devices` (by target), `secrets` / `configs` (by target), `profiles`,
//!   `cap_add`/`cap_drop`, `build.tags`, `build.platforms`: appended, then
//!   one per key.
//!
//! `!reset` (drop what the earlier files set) and `!override` (replace it,
//! do not merge) are honoured on mapping values, in the files given and in
//! a service that `extends` another; not on single sequence entries.
//! `networks.*.ipam.config` keeps the default (append) rule: networks are
//! not built. One deliberate difference: compose-go's table names
//! `build.platform` (no such key), so it keeps a platform written twice;
//! here `build.platforms` is de-duplicated, so it is not built twice.

use std::collections::HashMap;

use super::tree::{Node, Path, Tag, Value};
use super::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Both sides as `KEY=VALUE` sequences, appended.
    ToSequence,
    /// The later value, whatever it is.
    Override,
    /// `build: dir` as `{context: dir}`, then merged as mappings.
    Build,
    /// Lists as mappings, then merged (`depends_on` gets compose's defaults).
    ToMapping,
    /// Appended, minus the entries already there.
    ExtraHosts,
    /// Merged when the drivers agree, else replaced.
    Logging,
}

/// compose's merge rules, keyed by path.
pub const RULES: &[(&str, Rule)] = &[
    ("networks.*.labels", Rule::ToSequence),
    ("volumes.*.labels", Rule::ToSequence),
    ("services.*.annotations", Rule::ToSequence),
    ("services.*.build", Rule::Build),
    ("services.*.build.args", Rule::ToSequence),
    ("services.*.build.additional_contexts", Rule::ToSequence),
    ("services.*.build.extra_hosts", Rule::ExtraHosts),
    ("services.*.build.labels", Rule::ToSequence),
    ("services.*.command", Rule::Override),
    ("services.*.depends_on", Rule::ToMapping),
    ("services.*.deploy.labels", Rule::ToSequence),
    ("services.*.dns", Rule::ToSequence),
    ("services.*.dns_opt", Rule::ToSequence),
    ("services.*.dns_search", Rule::ToSequence),
    ("services.*.entrypoint", Rule::Override),
    ("services.*.env_file", Rule::ToSequence),
    ("services.*.label_file", Rule::ToSequence),
    ("services.*.environment", Rule::ToSequence),
    ("services.*.extra_hosts", Rule::ExtraHosts),
    ("services.*.healthcheck.test", Rule::Override),
    ("services.*.labels", Rule::ToSequence),
    ("services.*.volumes.*.volume.labels", Rule::ToSequence),
    ("services.*.logging", Rule::Logging),
    ("services.*.models", Rule::ToMapping),
    ("services.*.networks", Rule::ToMapping),
    ("services.*.sysctls", Rule::ToSequence),
    ("services.*.tmpfs", Rule::ToSequence),
    ("services.*.ulimits.*", Rule::Override),
];

/// What makes two entries of a sequence the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `KEY` of `KEY=VALUE` (or the whole entry).
    KeyValue,
    /// A mount's target (`src:target[:mode]`, or `target:` in the long form).
    Volume,
    /// A device's container path.
    Device,
    /// The port as written.
    Expose,
    /// `host_ip:published:target/protocol` in the long form, else as written.
    Port,
    /// The target, default `prefix/source`.
    Mount(&'static str),
    /// The path.
    EnvFile,
}

/// compose's de-duplication of sequences, keyed by path.
pub const UNIQUE: &[(&str, Index)] = &[
    ("networks.*.labels", Index::KeyValue),
    ("networks.*.ipam.options", Index::KeyValue),
    ("services.*.annotations", Index::KeyValue),
    ("services.*.build.args", Index::KeyValue),
    ("services.*.build.additional_contexts", Index::KeyValue),
    ("services.*.build.platforms", Index::KeyValue),
    ("services.*.build.tags", Index::KeyValue),
    ("services.*.build.labels", Index::KeyValue),
    ("services.*.cap_add", Index::KeyValue),
    ("services.*.cap_drop", Index::KeyValue),
    ("services.*.configs", Index::Mount("")),
    ("services.*.deploy.labels", Index::KeyValue),
    ("services.*.dns", Index::KeyValue),
    ("services.*.dns_opt", Index::KeyValue),
    ("services.*.dns_search", Index::KeyValue),
    ("services.*.environment", Index::KeyValue),
    ("services.*.env_file", Index::EnvFile),
    ("services.*.expose", Index::Expose),
    ("services.*.labels", Index::KeyValue),
    ("services.*.links", Index::KeyValue),
    ("services.*.networks.*.aliases", Index::KeyValue),
    ("services.*.networks.*.link_local_ips", Index::KeyValue),
    ("services.*.ports", Index::Port),
    ("services.*.profiles", Index::KeyValue),
    ("services.*.secrets", Index::Mount("/run/secrets")),
    ("services.*.sysctls", Index::KeyValue),
    ("services.*.tmpfs", Index::KeyValue),
    ("services.*.volumes", Index::Volume),
    ("services.*.devices", Index::Device),
];

pub fn rule_for(path: &Path) -> Option<Rule> {
    RULES.iter().find(|(p, _)| path.matches(p)).map(|(_, r)| *r)
}

/// Merges `over` onto `base` at `path`.
pub fn merge(base: Node, over: Node, path: &Path) -> Result<Node, Error> {
    if let Some(rule) = rule_for(path) {
        return special(rule, base, over, path);
    }
    if matches!(over.value, Value::Null) {
        return Ok(base);
    }
    let mismatch = |what: &str| Error::At {
        pos: over.pos.clone(),
        path: path.to_string(),
        message: format!("cannot override {what} with {}", over.kind()),
    };
    match (&base.value, &over.value) {
        (Value::Map(_), Value::Map(_)) | (Value::Seq(_), Value::Seq(_)) => {}
        (Value::Map(_), _) => return Err(mismatch("a mapping")),
        (Value::Seq(_), _) => return Err(mismatch("a sequence")),
        _ => return Ok(over),
    }
    let value = match (base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => Value::Map(merge_maps(b, o, path)?),
        (Value::Seq(mut b), Value::Seq(o)) => {
            b.extend(o);
            Value::Seq(b)
        }
        (_, value) => value,
    };
    Ok(Node {
        value,
        pos: base.pos,
        tag: over.tag,
    })
}

fn merge_maps(
    mut base: Vec<(String, Node)>,
    over: Vec<(String, Node)>,
    path: &Path,
) -> Result<Vec<(String, Node)>, Error> {
    let mut at: HashMap<String, usize> = base
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    for (k, v) in over {
        match at.get(&k).copied() {
            None => {
                at.insert(k.clone(), base.len());
                base.push((k, v));
            }
            Some(i) => {
                let p = path.child(&k);
                let placeholder = Node::new(Value::Null, v.pos.clone());
                let old = std::mem::replace(&mut base[i].1, placeholder);
                base[i].1 = merge(old, v, &p)?;
            }
        }
    }
    Ok(base)
}

fn special(rule: Rule, base: Node, over: Node, path: &Path) -> Result<Node, Error> {
    let pos = base.pos.clone();
    let node = |value| Node::new(value, pos.clone());
    match rule {
        Rule::Override => Ok(over),
        Rule::ToSequence => {
            let mut seq = to_sequence(base, path)?;
            seq.extend(to_sequence(over, path)?);
            Ok(node(Value::Seq(seq)))
        }
        Rule::ExtraHosts => {
            let mut seq = to_sequence(base, path)?;
            for entry in to_sequence(over, path)? {
                if !seq.iter().any(|e| e.value == entry.value) {
                    seq.push(entry);
                }
            }
            Ok(node(Value::Seq(seq)))
        }
        Rule::Build => {
            let b = build_map(base, path)?;
            let o = build_map(over, path)?;
            Ok(node(Value::Map(merge_maps(b, o, path)?)))
        }
        Rule::ToMapping => {
            let depends_on = path.matches("services.*.depends_on");
            let b = to_mapping(base, depends_on, path)?;
            let o = to_mapping(over, depends_on, path)?;
            Ok(node(Value::Map(merge_maps(b, o, path)?)))
        }
        Rule::Logging => {
            let driver = |n: &Node| n.get("driver").and_then(Node::scalar_text);
            match (driver(&base), driver(&over)) {
                (Some(a), Some(b)) if a != b => Ok(over),
                _ => match (base.value, over.value) {
                    (Value::Map(b), Value::Map(o)) => Ok(node(Value::Map(merge_maps(b, o, path)?))),
                    (_, value) => Ok(Node { value, ..over }),
                },
            }
        }
    }
}

fn build_map(n: Node, path: &Path) -> Result<Vec<(String, Node)>, Error> {
    match n.value {
        Value::Map(m) => Ok(m),
        Value::Str(_) => Ok(vec![("context".to_string(), n)]),
        Value::Null => Ok(Vec::new()),
        _ => Err(Error::at(
            &n,
            path,
            format!(
                "`build` is a folder or a mapping (context, dockerfile...), not {}",
                n.kind()
            ),
        )),
    }
}

/// A mapping as `KEY=VALUE` entries sorted by key (`KEY` alone for null,
/// one entry per item for a list value); a sequence as it is; a string as
/// one entry.
pub fn to_sequence(n: Node, path: &Path) -> Result<Vec<Node>, Error> {
    let pos = n.pos.clone();
    match n.value {
        Value::Seq(s) => Ok(s),
        Value::Null => Ok(Vec::new()),
        Value::Map(m) => {
            let mut out: Vec<(String, Node)> = Vec::new();
            for (k, v) in m {
                let vpos = v.pos.clone();
                let mut push = |text: String| {
                    out.push((text.clone(), Node::new(Value::Str(text), vpos.clone())));
                };
                match &v.value {
                    Value::Null => push(k.clone()),
                    Value::Seq(items) => {
                        for item in items {
                            let t = item.scalar_text().ok_or_else(|| {
                                Error::at(item, &path.child(&k), "expected a plain value")
                            })?;
                            push(format!("{k}={t}"));
                        }
                    }
                    Value::Map(_) => {
                        return Err(Error::at(
                            &v,
                            &path.child(&k),
                            "expected a plain value, not a mapping",
                        ))
                    }
                    _ => push(format!("{k}={}", v.scalar_text().unwrap_or_default())),
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out.into_iter().map(|(_, n)| n).collect())
        }
        _ => Ok(vec![Node::new(n.value, pos)]),
    }
}

fn to_mapping(n: Node, depends_on: bool, path: &Path) -> Result<Vec<(String, Node)>, Error> {
    match n.value {
        Value::Map(m) => Ok(m),
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => {
            let mut out = Vec::new();
            for item in items {
                let key = item
                    .scalar_text()
                    .ok_or_else(|| Error::at(&item, path, "expected a name"))?;
                let value = if depends_on {
                    let p = item.pos.clone();
                    Node::new(
                        Value::Map(vec![
                            (
                                "condition".into(),
                                Node::new(Value::Str("service_started".into()), p.clone()),
                            ),
                            ("required".into(), Node::new(Value::Bool(true), p.clone())),
                        ]),
                        p,
                    )
                } else {
                    Node::new(Value::Null, item.pos.clone())
                };
                out.push((key, value));
            }
            Ok(out)
        }
        _ => Err(Error::at(
            &n,
            path,
            format!("expected a list or a mapping, not {}", n.kind()),
        )),
    }
}

fn index_of(index: Index, n: &Node, path: &Path) -> Result<String, Error> {
    let text = n.scalar_text();
    let key = match (index, &n.value) {
        (Index::KeyValue, _) => text.map(|t| t.split('=').next().unwrap_or_default().to_string()),
        (Index::Volume, Value::Map(_)) | (Index::Device, Value::Map(_)) => {
            n.get("target").and_then(Node::scalar_text)
        }
        (Index::Volume, _) | (Index::Device, _) => text.map(|t| {
            let parts: Vec<&str> = t.split(':').collect();
            parts.get(1).unwrap_or(&parts[0]).to_string()
        }),
        (Index::Expose, _) => text,
        (Index::Port, Value::Map(_)) => {
            let get = |k: &str| n.get(k).and_then(Node::scalar_text);
            let target = get("target")
                .ok_or_else(|| Error::at(n, path, "a port in the long form needs `target`"))?;
            Some(format!(
                "{}:{}:{}/{}",
                get("host_ip").unwrap_or_else(|| "0.0.0.0".into()),
                get("published").unwrap_or_default(),
                target,
                get("protocol").unwrap_or_else(|| "tcp".into())
            ))
        }
        (Index::Port, _) => text,
        (Index::Mount(prefix), Value::Map(_)) => {
            n.get("target").and_then(Node::scalar_text).or_else(|| {
                n.get("source")
                    .and_then(Node::scalar_text)
                    .map(|s| format!("{prefix}/{s}"))
            })
        }
        (Index::Mount(prefix), _) => text.map(|t| format!("{prefix}/{t}")),
        (Index::EnvFile, Value::Map(_)) => n.get("path").and_then(Node::scalar_text),
        (Index::EnvFile, _) => text,
    };
    key.ok_or_else(|| Error::at(n, path, format!("unexpected {} here", n.kind())))
}

/// Keeps one entry per key in the sequences [`UNIQUE`] names: a later
/// entry replaces the earlier one in its place.
pub fn enforce_unicity(node: &mut Node, path: &Path) -> Result<(), Error> {
    match &mut node.value {
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                enforce_unicity(v, &path.child(k))?;
            }
        }
        Value::Seq(items) => {
            if let Some((_, index)) = UNIQUE.iter().find(|(p, _)| path.matches(p)) {
                let mut out: Vec<Node> = Vec::with_capacity(items.len());
                let mut keys: HashMap<String, usize> = HashMap::with_capacity(items.len());
                for item in items.drain(..) {
                    let key = index_of(*index, &item, path)?;
                    match keys.get(&key) {
                        Some(&i) => out[i] = item,
                        None => {
                            keys.insert(key, out.len());
                            out.push(item);
                        }
                    }
                }
                *items = out;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes from `target` every path that `source` tags `!reset` or
/// `!override`, so that merging `source` sets it afresh.
pub fn apply_resets(target: &mut Node, source: &Node) {
    let (Value::Map(t), Value::Map(s)) = (&mut target.value, &source.value) else {
        return;
    };
    for (k, v) in s {
        if v.tag != Tag::None {
            t.retain(|(tk, _)| tk != k);
        } else if let Some((_, tv)) = t.iter_mut().find(|(tk, _)| tk == k) {
            apply_resets(tv, v);
        }
    }
}

/// Drops the `!reset` values themselves and clears the tags.
pub fn strip_resets(node: &mut Node) {
    node.tag = Tag::None;
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|(_, v)| v.tag != Tag::Reset);
            for (_, v) in m.iter_mut() {
                strip_resets(v);
            }
        }
        Value::Seq(items) => {
            items.retain(|v| v.tag != Tag::Reset);
            for v in items.iter_mut() {
                strip_resets(v);
            }
        }
        _ => {}
    }
}
