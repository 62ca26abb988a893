//! The typed project, read from the merged tree: only now, so that the
//! merge rules saw compose's untyped data. It keeps what building needs
//! (image, build, environment, labels, ports, user, healthcheck...) and
//! ignores what only running needs (networks, volumes, deploy...). Of the
//! top level it keeps `secrets` (a build secret names one). A `build`
//! mapping also keeps every key written and where ([`BuildKey`]), so that
//! [`super::services`] can refuse by file and line a key hoist cannot
//! honour, rather than drop it.
//!
//! Both spellings compose accepts are read: `build: ./dir` or a mapping;
//! `environment` / `labels` / `args` as a list of `KEY=VALUE` or a mapping
//! (a key without a value takes the environment's, as compose resolves
//! it); `command` / `entrypoint` as a string (split as a shell would) or a
//! list; healthcheck `test` as a string (`CMD-SHELL`) or a list.
//!
//! Profiles: a service without `profiles` is always on; one with profiles
//! is on when one of them is enabled (`--profile`, else
//! `COMPOSE_PROFILES`, comma-separated; `*` enables all) or when it is
//! named on the command line. An enabled service with neither `build`
//! nor `image` is an error naming its file and line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::tree::{self, Node, Pos, Value};
use super::{Error, Options};

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    /// The enabled services, by name.
    pub services: BTreeMap<String, Service>,
    /// Services left out by their profiles.
    pub disabled: Vec<String>,
    /// The top-level `secrets`, by name (what `build.secrets` refer to).
    pub secrets: BTreeMap<String, Secret>,
    /// `DOCKER_DEFAULT_PLATFORM` from the environment (or `.env`): compose
    /// builds it first, before the service's own platforms.
    pub default_platform: Option<String>,
}

/// A top-level secret: where its value comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// `file:`, resolved against the project folder.
    pub file: Option<String>,
    /// `environment:`, the name of a variable.
    pub environment: Option<String>,
    /// `external: true`: kept by a swarm or platform, not by the files.
    pub external: bool,
    pub pos: Pos,
}

/// One entry of `build.secrets`: the short form (a name) or the long form
/// (`source`, and `target`, the id the Dockerfile mounts it by).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    pub source: String,
    pub target: Option<String>,
    pub pos: Pos,
}

/// A key written in a `build` mapping, kept so that a later step can
/// refuse, by file and line, one it cannot honour.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildKey {
    pub name: String,
    /// Where its value was written (the file that set it last).
    pub pos: Pos,
    /// The value's text when it is a scalar.
    pub text: Option<String>,
    /// Null, `false`, `""`, `[]` or `{}`: the key asks for nothing.
    pub empty: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub profiles: Vec<String>,
    pub environment: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<String>,
    pub expose: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    pub platform: Option<String>,
    /// Where the service was written (the first file that named it).
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Build {
    /// The folder (or URL), resolved against the project folder.
    pub context: String,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub target: Option<String>,
    pub args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    pub tags: Vec<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub ssh: Vec<String>,
    pub secrets: Vec<SecretRef>,
    pub additional_contexts: BTreeMap<String, String>,
    pub network: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Every key written, the ones above and any other.
    pub keys: Vec<BuildKey>,
    /// Where the `build` value was written.
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<u64>,
    pub disable: bool,
}

impl Service {
    /// The image name compose gives a built service: `image:`, else
    /// `<project>-<service>`.
    pub fn image_name(&self, project: &str, service: &str) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{project}-{service}"))
    }
}

/// Reads the merged tree.
pub fn project(
    merged: &Node,
    name: String,
    dir: &Path,
    env: &BTreeMap<String, String>,
    opts: &Options,
) -> Result<Project, Error> {
    let mut profiles: Vec<String> = opts.profiles.clone();
    if profiles.is_empty() {
        if let Some(p) = env.get("COMPOSE_PROFILES") {
            profiles = p
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
    }
    let all = profiles.iter().any(|p| p == "*");
    let mut services = BTreeMap::new();
    let mut disabled = Vec::new();
    let root = tree::Path::of(&["services"]);
    match merged.get("services") {
        None => {}
        Some(Node {
            value: Value::Null, ..
        }) => {}
        Some(Node {
            value: Value::Map(entries),
            ..
        }) => {
            for (sname, node) in entries {
                let path = root.child(sname);
                let service = service(node, &path, env)?;
                let on = service.profiles.is_empty()
                    || all
                    || service.profiles.iter().any(|p| profiles.contains(p))
                    || opts.services.contains(sname);
                if !on {
                    disabled.push(sname.clone());
                    continue;
                }
                if service.image.is_none() && service.build.is_none() {
                    return Err(Error::at(
                        node,
                        &path,
                        format!(
                            "service {sname:?} has neither `image` nor `build`: add `build: ./folder` \
                             (a folder with a Dockerfile) or `image: name:tag`"
                        ),
                    ));
                }
                services.insert(sname.clone(), service);
            }
        }
        Some(other) => {
            return Err(Error::at(
                other,
                &root,
                format!("`services` must be a mapping, not {}", other.kind()),
            ))
        }
    }
    let secrets = top_secrets(merged)?;
    for wanted in &opts.services {
        if !services.contains_key(wanted) {
            let known = services.keys().chain(disabled.iter());
            return Err(no_such_service(wanted, known.map(String::as_str)));
        }
    }
    Ok(Project {
        name,
        dir: dir.to_path_buf(),
        services,
        disabled,
        secrets,
        default_platform: env
            .get("DOCKER_DEFAULT_PLATFORM")
            .filter(|p| !p.is_empty())
            .cloned(),
    })
}

/// A service named on the command line that the files do not define:
/// the error lists the ones they do, sorted.
pub fn no_such_service<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Error {
    let mut known: Vec<&str> = known.collect();
    known.sort_unstable();
    known.dedup();
    Error::Project(format!(
        "no such service: {name:?} (the files define: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

fn top_secrets(merged: &Node) -> Result<BTreeMap<String, Secret>, Error> {
    let root = tree::Path::of(&["secrets"]);
    let mut out = BTreeMap::new();
    let entries = match merged.get("secrets").map(|n| (n, &n.value)) {
        None | Some((_, Value::Null)) => return Ok(out),
        Some((_, Value::Map(entries))) => entries,
        Some((n, _)) => {
            return Err(Error::at(
                n,
                &root,
                format!("`secrets` must be a mapping, not {}", n.kind()),
            ))
        }
    };
    for (name, node) in entries {
        let path = root.child(name);
        if !matches!(node.value, Value::Map(_) | Value::Null) {
            return Err(Error::at(
                node,
                &path,
                format!(
                    "a secret is a mapping (file: or environment:), not {}",
                    node.kind()
                ),
            ));
        }
        let field = |k: &str| node.get(k).filter(|n| !matches!(n.value, Value::Null));
        let opt = |k: &str| field(k).map(|n| string(n, &path.child(k))).transpose();
        out.insert(
            name.clone(),
            Secret {
                file: opt("file")?,
                environment: opt("environment")?,
                external: matches!(
                    field("external").map(|n| &n.value),
                    Some(Value::Bool(true) | Value::Map(_))
                ),
                pos: node.pos.clone(),
            },
        );
    }
    Ok(out)
}

fn service(
    node: &Node,
    path: &tree::Path,
    env: &BTreeMap<String, String>,
) -> Result<Service, Error> {
    if !matches!(node.value, Value::Map(_) | Value::Null) {
        return Err(Error::at(
            node,
            path,
            format!("a service is a mapping, not {}", node.kind()),
        ));
    }
    let field = |k: &str| node.get(k).filter(|n| !matches!(n.value, Value::Null));
    let p = |k: &str| path.child(k);
    let mut s = Service {
        pos: Some(node.pos.clone()),
        ..Service::default()
    };
    if let Some(n) = field("image") {
        s.image = Some(string(n, &p("image"))?);
    }
    if let Some(n) = field("build") {
        s.build = Some(build(n, &p("build"), env)?);
    }
    if let Some(n) = field("profiles") {
        s.profiles = strings(n, &p("profiles"))?;
    }
    if let Some(n) = field("environment") {
        s.environment = key_values(n, &p("environment"), Some(env))?;
    }
    if let Some(n) = field("labels") {
        s.labels = labels(n, &p("labels"))?;
    }
    if let Some(n) = field("ports") {
        s.ports = ports(n, &p("ports"))?;
    }
    if let Some(n) = field("expose") {
        s.expose = strings(n, &p("expose"))?;
    }
    if let Some(n) = field("user") {
        s.user = Some(string(n, &p("user"))?);
    }
    if let Some(n) = field("working_dir") {
        s.working_dir = Some(string(n, &p("working_dir"))?);
    }
    if let Some(n) = field("platform") {
        s.platform = Some(string(n, &p("platform"))?);
    }
    if let Some(n) = field("command") {
        s.command = Some(command(n, &p("command"))?);
    }
    if let Some(n) = field("entrypoint") {
        s.entrypoint = Some(command(n, &p("entrypoint"))?);
    }
    if let Some(n) = field("healthcheck") {
        s.healthcheck = Some(healthcheck(n, &p("healthcheck"))?);
    }
    Ok(s)
}

fn build(node: &Node, path: &tree::Path, env: &BTreeMap<String, String>) -> Result<Build, Error> {
    if let Value::Str(ctx) = &node.value {
        return Ok(Build {
            context: ctx.clone(),
            keys: vec![BuildKey {
                name: "context".into(),
                pos: node.pos.clone(),
                text: Some(ctx.clone()),
                empty: ctx.is_empty(),
            }],
            pos: Some(node.pos.clone()),
            ..Build::default()
        });
    }
    if !matches!(node.value, Value::Map(_)) {
        return Err(Error::at(
            node,
            path,
            format!(
                "`build` is a folder or a mapping (context, dockerfile...), not {}",
                node.kind()
            ),
        ));
    }
    let field = |k: &str| node.get(k).filter(|n| !matches!(n.value, Value::Null));
    let p = |k: &str| path.child(k);
    let opt = |k: &str| field(k).map(|n| string(n, &p(k))).transpose();
    let list = |k: &str| field(k).map(|n| strings(n, &p(k))).transpose();
    let flag = |k: &str| -> Result<bool, Error> {
        match field(k) {
            None => Ok(false),
            Some(Node {
                value: Value::Bool(b),
                ..
            }) => Ok(*b),
            Some(n) => Err(Error::at(
                n,
                &p(k),
                format!("expected true or false, found {}", n.kind()),
            )),
        }
    };
    let b = Build {
        context: opt("context")?.unwrap_or_else(|| ".".into()),
        dockerfile: opt("dockerfile")?,
        dockerfile_inline: opt("dockerfile_inline")?,
        target: opt("target")?,
        args: field("args")
            .map(|n| key_values(n, &p("args"), Some(env)))
            .transpose()?
            .unwrap_or_default(),
        labels: field("labels")
            .map(|n| labels(n, &p("labels")))
            .transpose()?
            .unwrap_or_default(),
        platforms: list("platforms")?.unwrap_or_default(),
        tags: list("tags")?.unwrap_or_default(),
        cache_from: list("cache_from")?.unwrap_or_default(),
        cache_to: list("cache_to")?.unwrap_or_default(),
        ssh: field("ssh")
            .map(|n| pairs(n, &p("ssh")))
            .transpose()?
            .unwrap_or_default(),
        secrets: field("secrets")
            .map(|n| secrets(n, &p("secrets")))
            .transpose()?
            .unwrap_or_default(),
        additional_contexts: field("additional_contexts")
            .map(|n| labels(n, &p("additional_contexts")))
            .transpose()?
            .unwrap_or_default(),
        network: opt("network")?,
        no_cache: flag("no_cache")?,
        pull: flag("pull")?,
        keys: match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| BuildKey {
                    name: k.clone(),
                    pos: v.pos.clone(),
                    text: v.scalar_text(),
                    empty: match &v.value {
                        Value::Null | Value::Bool(false) => true,
                        Value::Str(s) => s.is_empty(),
                        Value::Seq(items) => items.is_empty(),
                        Value::Map(entries) => entries.is_empty(),
                        Value::Bool(true) | Value::Number(_) => false,
                    },
                })
                .collect(),
            _ => Vec::new(),
        },
        pos: Some(node.pos.clone()),
    };
    if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
        return Err(Error::at(
            node,
            path,
            "`dockerfile` and `dockerfile_inline` both set: keep one",
        ));
    }
    Ok(b)
}

fn string(n: &Node, path: &tree::Path) -> Result<String, Error> {
    match &n.value {
        Value::Map(_) | Value::Seq(_) | Value::Null => Err(Error::at(
            n,
            path,
            format!("expected a string, found {}", n.kind()),
        )),
        _ => Ok(n.scalar_text().unwrap_or_default()),
    }
}

/// A list of plain values (a single string counts as a list of one).
fn strings(n: &Node, path: &tree::Path) -> Result<Vec<String>, Error> {
    match &n.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(item, &path.child(&format!("[{i}]"))))
            .collect(),
        Value::Str(_) | Value::Number(_) => Ok(vec![string(n, path)?]),
        _ => Err(Error::at(
            n,
            path,
            format!("expected a list, found {}", n.kind()),
        )),
    }
}

/// `KEY=VALUE` list or mapping; a key without value takes `env`'s, when
/// given and set.
fn key_values(
    n: &Node,
    path: &tree::Path,
    env: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, Option<String>>, Error> {
    let mut out = BTreeMap::new();
    match &n.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let value = match &v.value {
                    Value::Null => None,
                    _ => Some(string(v, &path.child(k))?),
                };
                out.insert(k.clone(), value);
            }
        }
        Value::Seq(_) | Value::Str(_) => {
            for entry in strings(n, path)? {
                match entry.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(entry, None),
                };
            }
        }
        _ => {
            return Err(Error::at(
                n,
                path,
                format!(
                    "expected a list of KEY=VALUE or a mapping, found {}",
                    n.kind()
                ),
            ))
        }
    }
    if let Some(env) = env {
        for (k, v) in out.iter_mut() {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
        }
    }
    Ok(out)
}

fn labels(n: &Node, path: &tree::Path) -> Result<BTreeMap<String, String>, Error> {
    Ok(key_values(n, path, None)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `ssh`: `default`, `id=path` (list) or `{id: path}` (mapping).
fn pairs(n: &Node, path: &tree::Path) -> Result<Vec<String>, Error> {
    match &n.value {
        Value::Map(_) => Ok(key_values(n, path, None)?
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect()),
        _ => strings(n, path),
    }
}

/// Build secrets: the short form's name, or the long form's `source` and
/// `target`.
fn secrets(n: &Node, path: &tree::Path) -> Result<Vec<SecretRef>, Error> {
    let Value::Seq(items) = &n.value else {
        return Err(Error::at(
            n,
            path,
            format!("expected a list, found {}", n.kind()),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = path.child(&format!("[{i}]"));
            if !matches!(item.value, Value::Map(_)) {
                return Ok(SecretRef {
                    source: string(item, &p)?,
                    target: None,
                    pos: item.pos.clone(),
                });
            }
            let source = item
                .get("source")
                .ok_or_else(|| Error::at(item, &p, "a secret in the long form needs `source`"))?;
            Ok(SecretRef {
                source: string(source, &p.child("source"))?,
                target: item
                    .get("target")
                    .filter(|t| !matches!(t.value, Value::Null))
                    .map(|t| string(t, &p.child("target")))
                    .transpose()?,
                pos: item.pos.clone(),
            })
        })
        .collect()
}

/// Ports as written, the long form as `[host_ip:][published:]target/protocol`.
fn ports(n: &Node, path: &tree::Path) -> Result<Vec<String>, Error> {
    let Value::Seq(items) = &n.value else {
        return Err(Error::at(
            n,
            path,
            format!("expected a list, found {}", n.kind()),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.child(&format!("[{i}]"));
        if let Value::Map(_) = item.value {
            let get = |k: &str| item.get(k).and_then(Node::scalar_text);
            let target = get("target")
                .ok_or_else(|| Error::at(item, &p, "a port in the long form needs `target`"))?;
            let mut s = String::new();
            if let Some(h) = get("host_ip") {
                let _ = write!(s, "{h}:");
            }
            if let Some(pb) = get("published") {
                let _ = write!(s, "{pb}:");
            }
            let _ = write!(
                s,
                "{target}/{}",
                get("protocol").unwrap_or_else(|| "tcp".into())
            );
            out.push(s);
        } else {
            out.push(string(item, &p)?);
        }
    }
    Ok(out)
}

fn command(n: &Node, path: &tree::Path) -> Result<Vec<String>, Error> {
    match &n.value {
        Value::Str(s) => shell_words::split(s)
            .map_err(|e| Error::at(n, path, format!("cannot split {s:?} as a shell would: {e}"))),
        _ => strings(n, path),
    }
}

fn healthcheck(n: &Node, path: &tree::Path) -> Result<Healthcheck, Error> {
    if !matches!(n.value, Value::Map(_)) {
        return Err(Error::at(
            n,
            path,
            format!("expected a mapping, found {}", n.kind()),
        ));
    }
    let field = |k: &str| n.get(k).filter(|v| !matches!(v.value, Value::Null));
    let p = |k: &str| path.child(k);
    let opt = |k: &str| field(k).map(|v| string(v, &p(k))).transpose();
    let test = match field("test") {
        None => Vec::new(),
        Some(Node {
            value: Value::Str(s),
            ..
        }) => vec!["CMD-SHELL".to_string(), s.clone()],
        Some(t) => strings(t, &p("test"))?,
    };
    let retries = match field("retries") {
        None => None,
        Some(r) => Some(
            string(r, &p("retries"))?
                .parse::<u64>()
                .map_err(|_| Error::at(r, &p("retries"), "expected a whole number"))?,
        ),
    };
    let disable = matches!(
        field("disable"),
        Some(Node {
            value: Value::Bool(true),
            ..
        })
    ) || test.first().is_some_and(|t| t == "NONE");
    Ok(Healthcheck {
        test,
        interval: opt("interval")?,
        timeout: opt("timeout")?,
        start_period: opt("start_period")?,
        start_interval: opt("start_interval")?,
        retries,
        disable,
    })
}

/// A stable text form of the project, for golden tests: one line per set
/// value, build contexts relative to the project folder.
pub fn dump(p: &Project) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "project {}", p.name);
    let dir = p.dir.display().to_string();
    for (name, s) in &p.services {
        let _ = writeln!(out, "service {name}");
        let _ = writeln!(out, "  image-name {}", s.image_name(&p.name, name));
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(out, "  {k} {v}");
        };
        if let Some(i) = &s.image {
            line("image", i);
        }
        if !s.profiles.is_empty() {
            line("profiles", &s.profiles.join(","));
        }
        for (k, v) in &s.environment {
            line("environment", &kv(k, v.as_deref()));
        }
        for (k, v) in &s.labels {
            line("label", &format!("{k}={v}"));
        }
        for v in &s.ports {
            line("port", v);
        }
        for v in &s.expose {
            line("expose", v);
        }
        for (k, v) in [
            ("user", &s.user),
            ("working_dir", &s.working_dir),
            ("platform", &s.platform),
        ] {
            if let Some(v) = v {
                line(k, v);
            }
        }
        for (k, v) in [("command", &s.command), ("entrypoint", &s.entrypoint)] {
            if let Some(v) = v {
                line(k, &format!("{v:?}"));
            }
        }
        if let Some(h) = &s.healthcheck {
            line("healthcheck.test", &format!("{:?}", h.test));
            for (k, v) in [
                ("interval", &h.interval),
                ("timeout", &h.timeout),
                ("start_period", &h.start_period),
                ("start_interval", &h.start_interval),
            ] {
                if let Some(v) = v {
                    line(&format!("healthcheck.{k}"), v);
                }
            }
            if let Some(r) = h.retries {
                line("healthcheck.retries", &r.to_string());
            }
            if h.disable {
                line("healthcheck.disable", "true");
            }
        }
        if let Some(b) = &s.build {
            let ctx = b
                .context
                .strip_prefix(&dir)
                .map(|r| r.trim_start_matches('/'))
                .map(|r| if r.is_empty() { "." } else { r })
                .unwrap_or(&b.context);
            line("build.context", ctx);
            for (k, v) in [
                ("dockerfile", &b.dockerfile),
                ("dockerfile_inline", &b.dockerfile_inline),
                ("target", &b.target),
                ("network", &b.network),
            ] {
                if let Some(v) = v {
                    line(&format!("build.{k}"), v);
                }
            }
            for (k, v) in &b.args {
                line("build.arg", &kv(k, v.as_deref()));
            }
            for (k, v) in &b.labels {
                line("build.label", &format!("{k}={v}"));
            }
            for (k, v) in &b.additional_contexts {
                line("build.additional_context", &format!("{k}={v}"));
            }
            for (k, list) in [
                ("platform", &b.platforms),
                ("tag", &b.tags),
                ("cache_from", &b.cache_from),
                ("cache_to", &b.cache_to),
                ("ssh", &b.ssh),
            ] {
                for v in list {
                    line(&format!("build.{k}"), v);
                }
            }
            for r in &b.secrets {
                match &r.target {
                    Some(t) => line("build.secret", &format!("{} target={t}", r.source)),
                    None => line("build.secret", &r.source),
                }
            }
            if b.no_cache {
                line("build.no_cache", "true");
            }
            if b.pull {
                line("build.pull", "true");
            }
        }
    }
    for d in &p.disabled {
        let _ = writeln!(out, "disabled {d}");
    }
    for (name, s) in &p.secrets {
        let _ = write!(out, "secret {name}");
        if let Some(f) = &s.file {
            let f = f
                .strip_prefix(&dir)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(f);
            let _ = write!(out, " file={f}");
        }
        if let Some(e) = &s.environment {
            let _ = write!(out, " environment={e}");
        }
        if s.external {
            let _ = write!(out, " external");
        }
        let _ = writeln!(out);
    }
    out
}

fn kv(k: &str, v: Option<&str>) -> String {
    match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_string(),
    }
}
