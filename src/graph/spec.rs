//! The settings every frontend fills in: what a step is made of, as data.
//!
//! hoist.toml and the stock recipes fill these in today; a Dockerfile or a
//! compose file will fill in the same ones. Nothing here runs anything or
//! reads a file: the executor ([`crate::exec`]) gives them meaning.

use crate::transport::Transport;

/// `--deps`: which installer makes the deps layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DepsKind {
    /// Decide from the files in the project folder.
    #[default]
    Auto,
    Npm,
    Pip,
    None,
}

impl DepsKind {
    pub fn parse(s: &str) -> Result<DepsKind, String> {
        match s {
            "auto" => Ok(DepsKind::Auto),
            "npm" => Ok(DepsKind::Npm),
            "pip" => Ok(DepsKind::Pip),
            "none" => Ok(DepsKind::None),
            other => Err(format!(
                "unknown --deps `{other}`: use auto (default), npm, pip or none"
            )),
        }
    }
}

/// One `[[app.copy]]` rule: the context's `from` folder (or file) lands
/// at `to`, relative to the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRule {
    /// Relative to the context, `/`-separated, no `..`; `""` is the root.
    pub from: String,
    /// Relative to the destination; `""` is the destination itself.
    pub to: String,
}

/// A `[[run]]` step: a command run in the sandbox on top of the base,
/// whose changes become a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `NAME` or `UID`, optionally `:GROUP` or `:GID`, inside the image.
    pub user: Option<String>,
    /// How long the step may run before it is killed.
    pub timeout: Option<std::time::Duration>,
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StageBase {
    /// An image (a registry reference or a local transport).
    Image(Transport),
    /// The filesystem another stage ended with.
    Stage(String),
}

/// A stage's native dependencies: installed by hoist (no npm or pip runs),
/// at the stage's workdir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageDeps {
    pub kind: DepsKind,
    /// With development dependencies (a build stage usually wants them).
    pub dev: bool,
}

/// A `[stages.NAME]` table: a base, native deps, files of the context, and
/// commands run in the sandbox over them. Its filesystem is what other
/// stages and images copy from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageSpec {
    /// `None`: the image's own base.
    pub base: Option<StageBase>,
    pub deps: Option<StageDeps>,
    /// Which files of the context land at the workdir (after the ignore
    /// file); `None`: the whole context.
    pub copy: Option<Vec<CopyRule>>,
    /// Patterns (`.dockerignore` syntax) dropped on top of the ignore file.
    pub exclude: Vec<String>,
    /// Sandbox steps, in order, over base + deps + copied files.
    pub run: Vec<RunSpec>,
    /// Where the files and deps go and the steps run (default /app).
    pub workdir: Option<String>,
    /// Set for every run step (a step's own env wins).
    pub env: Vec<(String, String)>,
    /// Who the steps run as unless a step says (default root).
    pub user: Option<String>,
    /// Where the stage is written (`hoist.toml:12:1`), for errors.
    pub at: String,
}

/// A copy from a stage's filesystem into an image (or another stage):
/// exactly the path `from`, landing at `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCopy {
    pub stage: String,
    /// Absolute, inside the stage (`/app/.next/standalone`).
    pub from: String,
    /// Relative to the image's workdir (`""` is the workdir), or absolute.
    pub to: String,
    /// `UID:GID` or a user name the image defines; root when unset.
    pub owner: Option<String>,
    /// The files' mode (folders keep theirs); as the stage left them when
    /// unset.
    pub mode: Option<u32>,
    /// Where the copy is written (`hoist.toml:20:3`), for errors.
    pub at: String,
}
