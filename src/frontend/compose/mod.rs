//! The compose frontend: `docker-compose.yml` (and its overrides) read as
//! `docker compose` reads them, up to a typed [`model::Project`].
//!
//! The order is compose-go's loader, and each step is a file:
//!
//! 1. [`load`]: YAML bytes to the untyped [`tree`] (every node keeps its file
//!    and line; `!reset` / `!override` tags kept), the project's `.env`, the
//!    project name.
//! 2. [`interpolate`]: `${VAR}` and friends in every string value of each
//!    file, from the process environment over `.env`.
//! 3. [`extends`]: `extends:` in the same file or another one.
//! 4. [`merge`]: the files in order (`-f a -f b`), by compose's override
//!    rules, a table keyed by path; then compose's de-duplication of
//!    sequences (ports, volumes, environment...) by their key.
//! 5. [`model`]: typed only now, after merging, so the rules above see the
//!    same untyped data compose's do; profiles select the services.
//! 6. [`services`]: the builds `docker compose build [SERVICE...]` would
//!    run (image name, context, Dockerfile, args...), each `build:` key
//!    either carried or refused by file and line.
//!
//! [`tree`] is one file more than the layout names: the untyped tree and
//! its key paths, which every step above shares.
//!
//! Lowering each build's Dockerfile onto [`crate::graph::Graph`] is the
//! Dockerfile frontend's, and running the builds is the CLI's (`hoist build
//! -f docker-compose.yml`): this module runs nothing and reads files only
//! through [`Files`].
//!
//! Not covered yet: `include:` (an error saying to use `-f`), the contents
//! of `env_file` (a run-time matter), compose's JSON-schema validation
//! (outside `build:`, keys the build does not read are ignored, not
//! checked), relative paths
//! other than the build context in an `extends` target, `depends_on` on a
//! service its profiles disable, `!reset` on single sequence entries.

pub mod extends;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod services;
pub mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use load::{Files, RealFiles};
pub use model::{Build, Healthcheck, Project, Service};
pub use services::{
    builds, load_builds, BuildSecret, DockerfileSource, Network, Planned, SecretSource,
    ServiceBuild, Skipped,
};

/// A problem in the compose files or the `.env`, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `col` is 0 where the parser gave none.
    #[error("{file}:{line}{}: {message}", if *.col > 0 { format!(":{col}") } else { String::new() })]
    Yaml {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A problem at a node: its file and line, its key path.
    #[error("{pos}: {path}: {message}")]
    At {
        pos: tree::Pos,
        path: String,
        message: String,
    },
    #[error("{file}:{line}: {message}")]
    Dotenv {
        file: String,
        line: usize,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Project(String),
}

impl Error {
    pub(crate) fn at(node: &tree::Node, path: &tree::Path, message: impl Into<String>) -> Error {
        Error::At {
            pos: node.pos.clone(),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// One compose file as given with `-f`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path it was read from (errors name it; `extends: {file: ...}`
    /// is resolved against its folder).
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// What `docker compose`'s own flags and environment say.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--project-directory`; else the first file's folder.
    pub project_dir: Option<PathBuf>,
    /// `-p`: must already be a valid name (not normalised).
    pub project_name: Option<String>,
    /// `--profile`; when empty, `COMPOSE_PROFILES` from the environment.
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
    /// The process environment (it wins over `.env`).
    pub env: BTreeMap<String, String>,
}

/// A loaded project and the warnings compose would print.
#[derive(Debug)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// Reads `sources` in order into one project.
pub fn load_project(
    sources: &[Source],
    opts: &Options,
    files: &dyn Files,
) -> Result<Loaded, Error> {
    let first = sources
        .first()
        .ok_or_else(|| Error::Project("no compose file given".into()))?;
    let project_dir = match &opts.project_dir {
        Some(d) => d.clone(),
        None => first
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    // Cleaned as compose cleans it (`-f ../other/compose.yml` names the
    // folder `other`, and the contexts under it read as such).
    let project_dir = if project_dir.as_os_str().is_empty() {
        project_dir
    } else {
        PathBuf::from(load::join(&project_dir, "."))
    };
    let env = load::project_env(&project_dir, &opts.env, files)?;
    let mut warnings = Vec::new();
    let mut budget = load::Budget::default();
    let mut merged: Option<tree::Node> = None;
    for source in sources {
        let file: Arc<str> = source.path.display().to_string().into();
        for mut doc in load::parse_yaml(&source.bytes, &file, &mut budget)? {
            if matches!(doc.value, tree::Value::Null) {
                continue;
            }
            if !matches!(doc.value, tree::Value::Map(_)) {
                return Err(Error::at(
                    &doc,
                    &tree::Path::root(),
                    format!(
                        "the top level must be a mapping (services: ...), not {}",
                        doc.kind()
                    ),
                ));
            }
            if let Some(include) = doc.get("include") {
                return Err(Error::at(
                    include,
                    &tree::Path::of(&["include"]),
                    "`include` is not supported yet: pass those files with -f instead \
                     (their services are merged in order)",
                ));
            }
            if doc.get("version").is_some() {
                warnings.push(format!(
                    "{}: `version` is obsolete and ignored; remove it",
                    source.path.display()
                ));
            }
            interpolate::tree(&mut doc, &env, &mut warnings)?;
            load::resolve_paths(&mut doc, &project_dir);
            let mut ctx = extends::Ctx {
                env: &env,
                files,
                warnings: &mut warnings,
                budget: &mut budget,
            };
            extends::apply(&mut doc, &source.path, &mut ctx)?;
            let mut dict = merged
                .take()
                .unwrap_or_else(|| tree::Node::new(tree::Value::Map(Vec::new()), doc.pos.clone()));
            merge::apply_resets(&mut dict, &doc);
            merge::strip_resets(&mut doc);
            let mut dict = merge::merge(dict, doc, &tree::Path::root())?;
            merge::enforce_unicity(&mut dict, &tree::Path::root())?;
            merged = Some(dict);
        }
    }
    let merged = merged.unwrap_or_else(|| {
        tree::Node::new(
            tree::Value::Map(Vec::new()),
            tree::Pos {
                file: first.path.display().to_string().into(),
                line: 1,
            },
        )
    });
    let name = load::project_name(opts, &env, &merged, &project_dir)?;
    let project = model::project(&merged, name, &project_dir, &env, opts)?;
    Ok(Loaded { project, warnings })
}
