//! What one build is asked to do: the executor's input, filled in by
//! `ops` from a frontend's spec (or from flags), never by the executor.

use std::path::PathBuf;

use crate::deps::DepsOptions;
use crate::exec::steps::context::Filter;
use crate::exec::steps::host::HostStep;
use crate::exec::LayerSummary;
use crate::graph::config::ConfigSettings;
use crate::graph::spec::CopyRule;
use crate::graph::spec::UserSpec;
use crate::image::Platform;
use crate::layer::Compression;
use crate::reference::Reference;
use crate::registry;
use crate::transport::Transport;

/// Everything one build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub ignore_file: String,
    pub base: Transport,
    pub platform: Platform,
    pub user: Option<UserSpec>,
    pub workdir: String,
    pub settings: ConfigSettings,
    pub tags: Vec<String>,
    pub outputs: Vec<Transport>,
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: mtimes of new files and `created` times.
    pub epoch: u64,
    /// Registry references to push the image to (`--push` with `--tag`s);
    /// references in one repository are pushed once, with every tag.
    pub push: Vec<Reference>,
    /// How registries are reached (insecure hosts, offline, certs, auth).
    pub registry: registry::Options,
    /// The deps layer: which installer, which dependencies.
    pub deps: DepsOptions,
    /// How the app layer is laid out.
    pub app: AppOptions,
    /// A command run on the host before anything else (`npm run build`).
    pub step: Option<HostStep>,
    /// `--sbom`: write (and attach) a bill of materials.
    pub sbom: Option<crate::sbom::SbomOptions>,
    /// The registry cache for deps layers (`--cache-from`, `--cache-to`).
    pub cache: crate::cache::CacheOptions,
    /// `[[run]]` steps, run in the sandbox on the base, in order.
    pub run: Vec<crate::sandbox::Step>,
    /// The build graph: the stages the image copies from, then the
    /// image's own stage.
    pub graph: crate::graph::Graph,
    /// The layers copied from stages, made by [`crate::exec::prepare`];
    /// they go on top of the app layer.
    pub stage_layers: Vec<LayerSummary>,
    /// Context files the frontend reads itself (hoist.toml): no stage
    /// sees them, so editing the recipe reruns nothing.
    pub frontend_files: Vec<String>,
    /// `--secret id=ID,src=FILE|env=VAR`: what `RUN --mount=type=secret`
    /// reads, by id.
    pub secrets: Vec<(String, SecretSource)>,
}

/// Where a build secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host (`src=PATH`).
    File(PathBuf),
    /// An environment variable of hoist's (`env=VAR`).
    Env(String),
}

impl SecretSource {
    /// Parses a `--secret` value: `id=ID` with `src=PATH` (also `source=`)
    /// or `env=VAR`; `type=file|env` is accepted. With neither, the
    /// variable named like the id, as buildx reads it.
    pub fn parse(s: &str) -> Result<(String, SecretSource), String> {
        let (mut id, mut src, mut env) = (None, None, None);
        for field in s.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                format!("--secret {s}: `{field}` is not KEY=VALUE; write id=ID,src=FILE or id=ID,env=VARIABLE")
            })?;
            match k.trim() {
                "id" => id = Some(v.to_owned()),
                "src" | "source" => src = Some(v.to_owned()),
                "env" => env = Some(v.to_owned()),
                "type" if v == "file" || v == "env" => {}
                other => {
                    return Err(format!(
                        "--secret {s}: unknown key `{other}`; use id, src (or source) or env"
                    ))
                }
            }
        }
        let id = id.filter(|i| !i.is_empty()).ok_or_else(|| {
            format!("--secret {s}: it needs an id: write id=ID,src=FILE or id=ID,env=VARIABLE")
        })?;
        let source = match (src, env) {
            (Some(_), Some(_)) => return Err(format!("--secret {s}: give src or env, not both")),
            (Some(p), None) => SecretSource::File(PathBuf::from(p)),
            (None, Some(v)) => SecretSource::Env(v),
            (None, None) => SecretSource::Env(id.clone()),
        };
        Ok((id, source))
    }
}

/// What a build needs beyond its recipe: the command line's settings that
/// are not about the image.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub epoch: u64,
    pub registry: registry::Options,
    pub no_cache: bool,
    pub refresh: bool,
    pub push: bool,
    /// Write each image as `DIR/NAME.tar` (oci-archive).
    pub output_dir: Option<PathBuf>,
    /// Tag images without tags `NAME:latest` (`NAME:TARGET` for other
    /// targets), as a project file's images need names to be loaded.
    pub default_tags: bool,
    /// `--sbom`: write (and attach) a bill of materials.
    pub sbom: Option<crate::sbom::SbomOptions>,
    /// The registry cache for deps layers (`--cache-from`, `--cache-to`).
    pub cache: crate::cache::CacheOptions,
}

/// How the app layer is laid out: a recipe's `[app]` section.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Patterns on top of the ignore file.
    pub filter: Filter,
    /// Where the files go (default: the workdir).
    pub destination: Option<String>,
    /// Paths under the destination the app user owns.
    pub writable: Vec<String>,
    /// Folders of the context and where they land (default: all of it at
    /// the destination).
    pub copy: Vec<CopyRule>,
    /// Files get the last git commit's time rather than
    /// `SOURCE_DATE_EPOCH`.
    pub mtime_commit: bool,
    /// No app layer from the context: the recipe's copies all come from
    /// stages.
    pub none_from_context: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (flag, the id and source, or the error)
    type Case<'a> = (&'a str, Result<(&'a str, SecretSource), &'a str>);

    #[test]
    fn secret_flags() {
        let file = |p: &str| SecretSource::File(PathBuf::from(p));
        let env = |v: &str| SecretSource::Env(v.to_owned());
        let cases: &[Case] = &[
            ("id=tok,src=/run/tok", Ok(("tok", file("/run/tok")))),
            ("id=tok,source=t.txt", Ok(("tok", file("t.txt")))),
            ("type=env,id=tok,env=GH_TOKEN", Ok(("tok", env("GH_TOKEN")))),
            ("id=GH_TOKEN", Ok(("GH_TOKEN", env("GH_TOKEN")))),
            ("src=/x", Err("it needs an id")),
            ("id=a,src=/x,env=Y", Err("give src or env, not both")),
            ("id=a,path=/x", Err("unknown key `path`")),
            ("tok", Err("`tok` is not KEY=VALUE")),
        ];
        for (s, want) in cases {
            match (SecretSource::parse(s), want) {
                (Ok((id, src)), Ok((wid, wsrc))) => {
                    assert_eq!((id.as_str(), &src), (*wid, wsrc), "{s}")
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{s}: {e}"),
                (got, _) => panic!("{s}: {got:?}"),
            }
        }
    }
}
