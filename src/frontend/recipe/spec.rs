//! One layer of settings for an image, checked: what a stock recipe, a
//! hoist.toml section, a target or the command line says.
//!
//! Every field is optional, because each source says only what it wants
//! to change; [`Spec::merge`] lays one over another. Values are already
//! validated (a [`Transport`], a [`UserSpec`], ports as `PORT/proto`), so
//! merging and building never meet a bad string: errors were reported
//! where the value was written, with its file and line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::graph::spec::UserSpec;
pub use crate::graph::spec::{
    CopyRule, DepsKind, RunSpec, StageBase, StageCopy, StageDeps, StageSpec,
};
use crate::image::{Healthcheck, Platform};
use crate::layer::Compression;
use crate::reference::transport::Transport;

/// The `[image]` section: the base and the image's config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageSpec {
    pub base: Option<Transport>,
    pub platforms: Option<Vec<Platform>>,
    pub workdir: Option<String>,
    pub user: Option<UserSpec>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Merged by name: a later layer replaces a variable, adds others.
    pub env: Vec<(String, String)>,
    /// Merged by name.
    pub labels: BTreeMap<String, String>,
    /// `PORT/proto`.
    pub expose: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_signal: Option<String>,
    /// Image names (`web:1.4`, `registry.example.com/team/web:1.4`).
    pub tags: Option<Vec<String>>,
    pub outputs: Option<Vec<Transport>>,
    pub compression: Option<Compression>,
}

/// The `[deps]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepsSpec {
    pub kind: Option<DepsKind>,
    /// Keep development dependencies (the dev target sets it).
    pub dev: Option<bool>,
    pub strict_scripts: Option<bool>,
    pub locked: Option<bool>,
    /// npm: run the packages' install scripts in the sandbox
    /// (`scripts = "sandbox"`).
    pub scripts_in_sandbox: Option<bool>,
    /// pip: build sdists into wheels in the sandbox (`sdists = "sandbox"`).
    pub sdists_in_sandbox: Option<bool>,
}

/// Where the app layer's files get their mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtime {
    /// `SOURCE_DATE_EPOCH` (0 when unset), like every other layer.
    Fixed,
    /// The time of the context's last git commit: web servers that send
    /// `Last-Modified` then change it only when the code changes.
    Commit,
}

/// The `[app]` section: which files of the context make the app layer,
/// and where they go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppSpec {
    /// Patterns (`.dockerignore` syntax) of what to keep; everything when
    /// unset.
    pub include: Option<Vec<String>>,
    /// Patterns dropped on top of the ignore file's.
    pub exclude: Option<Vec<String>>,
    pub ignore_file: Option<String>,
    /// Where the files go (default: the workdir).
    pub destination: Option<String>,
    /// Paths (relative to the destination) the app user owns and may
    /// write; everything else is root's and read-only to it.
    pub writable: Option<Vec<String>>,
    pub mtime: Option<Mtime>,
    /// How folders of the context map into the destination (default: the
    /// whole context at the destination).
    pub copy: Option<Vec<CopyRule>>,
    /// Copies from stages (`copy = [{ stage = "build", from = ... }]`),
    /// set together with `copy`: a source that lists copies replaces both.
    pub stage_copy: Option<Vec<StageCopy>>,
}

/// The `[build]` section: a command run on the host before the image is
/// assembled (`npm run build`), as ko runs `go build`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildStepSpec {
    pub run: Option<Vec<String>>,
    /// Patterns (relative to the context) whose contents decide whether
    /// the step must run again.
    pub inputs: Option<Vec<String>>,
    /// What the step makes (relative to the context); they must exist
    /// after it ran, and they are kept in the app layer even when the
    /// ignore file drops them.
    pub outputs: Option<Vec<String>>,
}

/// Everything one source says about one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub image: ImageSpec,
    pub deps: DepsSpec,
    pub app: AppSpec,
    pub build: BuildStepSpec,
    /// `[[run]]` steps, in order; a source that lists some replaces the
    /// list below it.
    pub run: Option<Vec<RunSpec>>,
    /// `[stages.NAME]`, merged by name: a source that defines a stage
    /// replaces it whole.
    pub stages: BTreeMap<String, StageSpec>,
}

/// `a = b` when `b` says something.
fn over<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
    if b.is_some() {
        a.clone_from(b);
    }
}

impl Spec {
    /// Lays `top` over `self`: what `top` sets wins; env and labels are
    /// merged by name; lists are replaced whole.
    pub fn merge(&mut self, top: &Spec) {
        let (a, b) = (&mut self.image, &top.image);
        over(&mut a.base, &b.base);
        over(&mut a.platforms, &b.platforms);
        over(&mut a.workdir, &b.workdir);
        over(&mut a.user, &b.user);
        if b.entrypoint.is_some() {
            // As in a Dockerfile, a new entrypoint drops an inherited cmd
            // unless the same layer gives one.
            a.cmd = None;
        }
        over(&mut a.entrypoint, &b.entrypoint);
        over(&mut a.cmd, &b.cmd);
        for (k, v) in &b.env {
            match a.env.iter_mut().find(|(ak, _)| ak == k) {
                Some(e) => e.1.clone_from(v),
                None => a.env.push((k.clone(), v.clone())),
            }
        }
        a.labels
            .extend(b.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        over(&mut a.expose, &b.expose);
        over(&mut a.healthcheck, &b.healthcheck);
        over(&mut a.stop_signal, &b.stop_signal);
        over(&mut a.tags, &b.tags);
        over(&mut a.outputs, &b.outputs);
        over(&mut a.compression, &b.compression);
        let (a, b) = (&mut self.deps, &top.deps);
        over(&mut a.kind, &b.kind);
        over(&mut a.dev, &b.dev);
        over(&mut a.strict_scripts, &b.strict_scripts);
        over(&mut a.locked, &b.locked);
        over(&mut a.scripts_in_sandbox, &b.scripts_in_sandbox);
        over(&mut a.sdists_in_sandbox, &b.sdists_in_sandbox);
        let (a, b) = (&mut self.app, &top.app);
        over(&mut a.include, &b.include);
        over(&mut a.exclude, &b.exclude);
        over(&mut a.ignore_file, &b.ignore_file);
        over(&mut a.destination, &b.destination);
        over(&mut a.writable, &b.writable);
        over(&mut a.mtime, &b.mtime);
        if b.copy.is_some() {
            a.stage_copy.clone_from(&b.stage_copy);
        }
        over(&mut a.copy, &b.copy);
        let (a, b) = (&mut self.build, &top.build);
        over(&mut a.run, &b.run);
        over(&mut a.inputs, &b.inputs);
        over(&mut a.outputs, &b.outputs);
        over(&mut self.run, &top.run);
        self.stages
            .extend(top.stages.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Makes a relative path in a local transport relative to `dir` (the
/// folder of the hoist.toml that names it), as compose files do.
pub fn rebase_transport(t: Transport, dir: &std::path::Path) -> Transport {
    let rebase = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    match t {
        Transport::Oci { dir: d, tag } => Transport::Oci {
            dir: rebase(d),
            tag,
        },
        Transport::OciArchive { file, tag } => Transport::OciArchive {
            file: rebase(file),
            tag,
        },
        Transport::DockerArchive { file, tag } => Transport::DockerArchive {
            file: rebase(file),
            tag,
        },
        r @ (Transport::Registry(_) | Transport::Engine { .. }) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_rules() {
        let mut a = Spec::default();
        a.image.env = vec![("A".into(), "1".into()), ("B".into(), "1".into())];
        a.image.cmd = Some(vec!["sh".into()]);
        a.image.workdir = Some("/app".into());
        a.deps.dev = Some(false);
        let mut b = Spec::default();
        b.image.env = vec![("B".into(), "2".into()), ("C".into(), "3".into())];
        b.image.entrypoint = Some(vec!["node".into()]);
        b.deps.dev = Some(true);
        a.merge(&b);
        assert_eq!(
            a.image.env,
            [("A", "1"), ("B", "2"), ("C", "3")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            a.image.cmd, None,
            "a new entrypoint drops the inherited cmd"
        );
        assert_eq!(a.image.workdir.as_deref(), Some("/app"), "unset keeps");
        assert_eq!(a.deps.dev, Some(true));
    }
}
