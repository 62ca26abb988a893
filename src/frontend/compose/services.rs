//! From a loaded project to the builds `docker compose build [SERVICE...]`
//! would run: one [`ServiceBuild`] per selected service with a `build:`
//! section, a [`Skipped`] line for each one that only names an `image:`.
//!
//! What compose does, and so what this does (read from compose's
//! `build.go` and compose-go's normaliser):
//! - the image is `image:` when set, else `<project>-<service>`; the
//!   `build.tags` are extra names for the same image;
//! - the context is resolved against the project folder (the first `-f`
//!   file's folder, or `--project-directory`), the Dockerfile against the
//!   context (an absolute one stays), default `Dockerfile`; paths are
//!   cleaned lexically as Go's `filepath.Join` cleans them;
//! - `args` written as `KEY` (list) or `KEY:` (mapping) take the project
//!   environment's value (the process environment over `.env`), and are
//!   dropped when it has none; `KEY=` is an empty value, kept;
//! - `platforms`: `DOCKER_DEFAULT_PLATFORM` (environment or `.env`), the
//!   service's `platform`, then `build.platforms`, without repeats; either
//!   of the first two outside a non-empty `build.platforms` is an error,
//!   as in compose;
//! - build secrets come from a top-level secret with `file:` or
//!   `environment:` (anything else is compose's error too); the id the
//!   Dockerfile mounts is the long form's `target`, else the name;
//! - `depends_on` does not order builds (compose builds them in parallel);
//!   the list is sorted by service name, so output is deterministic.
//!
//! Every key a `build:` mapping may hold is either carried here as data or
//! refused with the file, line, key and the way out ([`KEYS`]): hoist never
//! drops one silently. Whether the context folder exists is the caller's
//! to check, when it reads it (this module reads no files beyond the
//! compose files and `.env`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load;
use super::model::{no_such_service, Build, BuildKey, Project, Service};
use super::{load_project, Error, Files, Options, Source};

/// One service's build, as `docker compose build` would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBuild {
    pub service: String,
    /// `image:`, else `<project>-<service>`.
    pub image: String,
    /// The context folder, resolved against the project folder. Not
    /// checked to exist.
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    pub target: Option<String>,
    /// Sorted by name; keys with no value anywhere are left out.
    pub args: Vec<(String, String)>,
    /// `build.labels`: labels of the image (the service's own `labels`
    /// are the container's, not the image's).
    pub labels: BTreeMap<String, String>,
    /// Empty: the caller's default platform.
    pub platforms: Vec<String>,
    /// More names for the image, as written.
    pub tags: Vec<String>,
    /// As written: `type=registry,ref=...` or a bare reference.
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub secrets: Vec<BuildSecret>,
    /// `build.network`, for the RUN steps: `None` when not written.
    pub network: Option<Network>,
    pub no_cache: bool,
    pub pull: bool,
    /// `file:line` where the service was written, for errors.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// Resolved against the context.
    Path(PathBuf),
    /// `dockerfile_inline`.
    Inline(String),
}

/// A secret a Dockerfile mounts with `RUN --mount=type=secret,id=ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The top-level secret's `file:`, resolved against the project folder.
    File(PathBuf),
    /// The top-level secret's `environment:`: the name of a variable of the
    /// process environment, read when building.
    Env(String),
}

/// The network modes a build's RUN steps can have in hoist's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

/// A selected service that has nothing to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub service: String,
    pub why: String,
}

/// What one `build:` key becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// Read into [`ServiceBuild`].
    Carried,
    /// Refused when it asks for something (not null, `false`, `""`, `[]`,
    /// `{}`): why, and what to do instead.
    Refused(&'static str),
}

/// Every key of compose's build specification, and what hoist does with it.
/// Any other key (except `x-*` extensions) is refused as unknown.
pub const KEYS: &[(&str, KeyRule)] = &[
    ("context", KeyRule::Carried),
    ("dockerfile", KeyRule::Carried),
    ("dockerfile_inline", KeyRule::Carried),
    ("target", KeyRule::Carried),
    ("args", KeyRule::Carried),
    ("labels", KeyRule::Carried),
    ("platforms", KeyRule::Carried),
    ("tags", KeyRule::Carried),
    ("cache_from", KeyRule::Carried),
    ("cache_to", KeyRule::Carried),
    ("secrets", KeyRule::Carried),
    ("network", KeyRule::Carried),
    ("no_cache", KeyRule::Carried),
    ("pull", KeyRule::Carried),
    (
        "ssh",
        KeyRule::Refused(
            "hoist forwards no SSH agent into a build: give the key as a build secret \
             (top-level `secrets:` with `file:`) and mount it with RUN --mount=type=secret",
        ),
    ),
    (
        "additional_contexts",
        KeyRule::Refused(
            "hoist has no named build contexts: use a stage of the same Dockerfile, or \
             COPY --from=IMAGE for an image",
        ),
    ),
    (
        "extra_hosts",
        KeyRule::Refused(
            "hoist's build sandbox adds no /etc/hosts entries: remove it and reach the \
             host by its address",
        ),
    ),
    (
        "privileged",
        KeyRule::Refused("hoist runs RUN steps rootless and unprivileged: remove it"),
    ),
    (
        "entitlements",
        KeyRule::Refused("hoist runs RUN steps rootless and unprivileged: remove it"),
    ),
    (
        "isolation",
        KeyRule::Refused("an isolation mode for Windows containers: remove it"),
    ),
    (
        "shm_size",
        KeyRule::Refused("hoist's build sandbox has no settable /dev/shm size: remove it"),
    ),
    (
        "ulimits",
        KeyRule::Refused("hoist's build sandbox sets no ulimits: remove it"),
    ),
    (
        "provenance",
        KeyRule::Refused("hoist writes no provenance attestation: remove it or set it to false"),
    ),
    (
        "sbom",
        KeyRule::Refused(
            "hoist attaches no BuildKit SBOM attestation (use `hoist build --sbom spdx|cyclonedx`): \
             remove it or set it to false",
        ),
    ),
];

/// What [`load_builds`] found.
#[derive(Debug)]
pub struct Planned {
    pub project: String,
    pub builds: Vec<ServiceBuild>,
    pub skipped: Vec<Skipped>,
    /// What compose would print (an unset variable, an obsolete `version`).
    pub warnings: Vec<String>,
}

/// Loads `sources` in order (profiles from `opts.profiles`, else
/// `COMPOSE_PROFILES`; the services named in `opts.services` enabled
/// whatever their profiles, as compose enables them) and returns the
/// builds of `opts.services`, or of every enabled service when it is empty.
pub fn load_builds(
    sources: &[Source],
    opts: &Options,
    files: &dyn Files,
) -> Result<Planned, Error> {
    let loaded = load_project(sources, opts, files)?;
    let (builds, skipped) = builds(&loaded.project, &opts.services)?;
    Ok(Planned {
        project: loaded.project.name,
        builds,
        skipped,
        warnings: loaded.warnings,
    })
}

/// The builds of the `selected` services (every enabled one when empty),
/// sorted by name. Profiles were applied when the project was loaded: a
/// selected service left out by them must be named in
/// [`Options::services`] when loading, as [`load_builds`] does.
pub fn builds(
    project: &Project,
    selected: &[String],
) -> Result<(Vec<ServiceBuild>, Vec<Skipped>), Error> {
    for name in selected {
        if project.services.contains_key(name) {
            continue;
        }
        if project.disabled.contains(name) {
            return Err(Error::Project(format!(
                "service {name:?} is left out by its profiles: enable one of them with \
                 --profile, or name the service when loading the project"
            )));
        }
        let known = project.services.keys().chain(project.disabled.iter());
        return Err(no_such_service(name, known.map(String::as_str)));
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (name, service) in &project.services {
        if !selected.is_empty() && !selected.contains(name) {
            continue;
        }
        match (&service.build, &service.image) {
            (Some(b), _) => out.push(one(project, name, service, b)?),
            (None, Some(image)) => skipped.push(Skipped {
                service: name.clone(),
                why: format!("uses image {image}, nothing to build"),
            }),
            // The loader refuses such a service; a project made otherwise
            // gets the same error.
            (None, None) => {
                let at = service
                    .pos
                    .as_ref()
                    .map_or_else(|| format!("service {name}"), ToString::to_string);
                return Err(Error::Project(format!(
                    "{at}: services.{name}: service {name:?} has neither `image` nor `build`: \
                     add `build: ./folder` (a folder with a Dockerfile) or `image: name:tag`"
                )));
            }
        }
    }
    Ok((out, skipped))
}

fn at_key(name: &str, key: &BuildKey, message: String) -> Error {
    Error::At {
        pos: key.pos.clone(),
        path: format!("services.{name}.build.{}", key.name),
        message,
    }
}

/// Refuses the keys hoist cannot honour, and unknown ones.
fn check_keys(name: &str, b: &Build) -> Result<(), Error> {
    for key in &b.keys {
        if key.name.starts_with("x-") {
            continue;
        }
        match KEYS.iter().find(|(k, _)| *k == key.name).map(|(_, r)| *r) {
            Some(KeyRule::Carried) => {}
            Some(KeyRule::Refused(why)) => {
                let asks_nothing = key.empty
                    || (key.name == "isolation" && key.text.as_deref() == Some("default"));
                if !asks_nothing {
                    return Err(at_key(name, key, format!("not supported: {why}")));
                }
            }
            None => {
                let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(at_key(
                    name,
                    key,
                    format!(
                        "`{}` is not a build key compose knows; check its spelling (the keys are: {})",
                        key.name,
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn key<'a>(b: &'a Build, name: &str) -> Option<&'a BuildKey> {
    b.keys.iter().find(|k| k.name == name)
}

fn one(project: &Project, name: &str, s: &Service, b: &Build) -> Result<ServiceBuild, Error> {
    check_keys(name, b)?;
    let at = s
        .pos
        .as_ref()
        .or(b.pos.as_ref())
        .map(ToString::to_string)
        .unwrap_or_else(|| format!("service {name}"));
    let here = |k: &str, message: String| -> Error {
        match key(b, k).or_else(|| key(b, "context")) {
            Some(bk) => Error::At {
                pos: bk.pos.clone(),
                path: format!("services.{name}.build.{k}"),
                message,
            },
            None => Error::Project(format!("{at}: services.{name}.build.{k}: {message}")),
        }
    };
    if load::is_remote(&b.context) {
        return Err(here(
            "context",
            format!(
                "the context {:?} is a URL; hoist builds from a local folder: clone it and \
                 set `context` to the folder",
                b.context
            ),
        ));
    }
    let context = PathBuf::from(&b.context);
    let dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(inline), _) => DockerfileSource::Inline(inline.clone()),
        (None, Some(f)) => DockerfileSource::Path(PathBuf::from(load::join(&context, f))),
        (None, None) => DockerfileSource::Path(PathBuf::from(load::join(&context, "Dockerfile"))),
    };
    // compose's order: DOCKER_DEFAULT_PLATFORM, the service's `platform`,
    // then `build.platforms`; the first two must be among the last when
    // it names any.
    let mut platforms: Vec<String> = Vec::new();
    for (what, p) in [
        ("DOCKER_DEFAULT_PLATFORM", &project.default_platform),
        ("the service's platform", &s.platform),
    ] {
        let Some(p) = p else { continue };
        if !b.platforms.is_empty() && !b.platforms.contains(p) {
            return Err(here(
                "platforms",
                format!(
                    "{what} {p:?} is not one of its build.platforms ({}); add it to \
                     build.platforms or change it",
                    b.platforms.join(", ")
                ),
            ));
        }
        if !platforms.contains(p) {
            platforms.push(p.clone());
        }
    }
    for p in &b.platforms {
        if !platforms.contains(p) {
            platforms.push(p.clone());
        }
    }
    let mut secrets = Vec::new();
    for r in &b.secrets {
        let refused = |message: String| Error::At {
            pos: r.pos.clone(),
            path: format!("services.{name}.build.secrets"),
            message,
        };
        let def = project.secrets.get(&r.source).ok_or_else(|| {
            refused(format!(
                "no secret {0:?} under the top-level `secrets:`; define it there, e.g. \
                 `secrets: {{{0}: {{file: ./{0}.txt}}}}`",
                r.source
            ))
        })?;
        let source = match (&def.file, &def.environment) {
            (Some(f), _) => SecretSource::File(PathBuf::from(f)),
            (None, Some(e)) => SecretSource::Env(e.clone()),
            (None, None) => {
                return Err(refused(format!(
                    "secret {:?} (defined at {}) has neither `file` nor `environment`; a build \
                     secret must come from one of them{}",
                    r.source,
                    def.pos,
                    if def.external {
                        " (an external secret exists only at run time)"
                    } else {
                        ""
                    }
                )))
            }
        };
        secrets.push(BuildSecret {
            id: r.target.clone().unwrap_or_else(|| r.source.clone()),
            source,
        });
    }
    let network = match b.network.as_deref() {
        None => None,
        Some("default") => Some(Network::Default),
        Some("none") => Some(Network::None),
        Some("host") => Some(Network::Host),
        Some(other) => {
            return Err(here(
                "network",
                format!(
                    "network {other:?} is not one hoist's build sandbox has: use default, none \
                     or host"
                ),
            ))
        }
    };
    Ok(ServiceBuild {
        service: name.to_string(),
        image: s.image_name(&project.name, name),
        context,
        dockerfile,
        target: b.target.clone(),
        args: b
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect(),
        labels: b.labels.clone(),
        platforms,
        tags: b.tags.clone(),
        cache_from: b.cache_from.clone(),
        cache_to: b.cache_to.clone(),
        secrets,
        network,
        no_cache: b.no_cache,
        pull: b.pull,
        at,
    })
}

/// A stable text form, for golden tests: one line per set value, paths
/// relative to `base`.
pub fn dump(builds: &[ServiceBuild], skipped: &[Skipped], base: &Path) -> String {
    let rel = |p: &Path| -> String {
        match p.strip_prefix(base) {
            Ok(r) if r.as_os_str().is_empty() => ".".into(),
            Ok(r) => r.display().to_string(),
            Err(_) => p.display().to_string(),
        }
    };
    let mut out = String::new();
    for b in builds {
        let _ = writeln!(out, "build {} ({})", b.service, rel(Path::new(&b.at)));
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(out, "  {k} {v}");
        };
        line("image", &b.image);
        line("context", &rel(&b.context));
        match &b.dockerfile {
            DockerfileSource::Path(p) => line("dockerfile", &rel(p)),
            DockerfileSource::Inline(s) => line("dockerfile_inline", &format!("{s:?}")),
        }
        if let Some(t) = &b.target {
            line("target", t);
        }
        for (k, v) in &b.args {
            line("arg", &format!("{k}={v}"));
        }
        for (k, v) in &b.labels {
            line("label", &format!("{k}={v}"));
        }
        for (k, list) in [
            ("platform", &b.platforms),
            ("tag", &b.tags),
            ("cache_from", &b.cache_from),
            ("cache_to", &b.cache_to),
        ] {
            for v in list {
                line(k, v);
            }
        }
        for s in &b.secrets {
            match &s.source {
                SecretSource::File(f) => line("secret", &format!("{} file={}", s.id, rel(f))),
                SecretSource::Env(e) => line("secret", &format!("{} env={e}", s.id)),
            }
        }
        if let Some(n) = b.network {
            line("network", &format!("{n:?}").to_lowercase());
        }
        if b.no_cache {
            line("no_cache", "true");
        }
        if b.pull {
            line("pull", "true");
        }
    }
    for s in skipped {
        let _ = writeln!(out, "skip {}: {}", s.service, s.why);
    }
    out
}

#[cfg(test)]
mod tests;
