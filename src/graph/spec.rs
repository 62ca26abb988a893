//! The settings every frontend fills in: what a step is made of, as data.
//!
//! hoist.toml and the stock recipes fill these in today; a Dockerfile or a
//! compose file will fill in the same ones. Nothing here runs anything or
//! reads a file: the executor ([`crate::exec`]) gives them meaning.

use crate::reference::transport::Transport;

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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSpec {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `NAME` or `UID`, optionally `:GROUP` or `:GID`, inside the image.
    pub user: Option<String>,
    /// How long the step may run before it is killed.
    pub timeout: Option<std::time::Duration>,
    /// A Dockerfile line hoist may do natively (only account tools, or
    /// only mkdir/chown/chmod); the executor runs it in the sandbox when
    /// the native result would not be exactly the command's.
    pub native: Option<crate::graph::native::NativeRun>,
    /// Why a line hoist knows runs in the sandbox all the same (for
    /// `--dry-run`): `--native=never`, a form it does not write natively.
    pub note: Option<String>,
    /// `RUN --mount=...`: what is mounted while the step runs (never part
    /// of its layer).
    pub mounts: Vec<RunMount>,
}

/// What a [`RunMount`] mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMountKind {
    /// A folder or file of the context, a stage or an image.
    Bind,
    /// A folder kept in the store between builds, by `id`.
    Cache,
    /// An empty in-memory folder.
    Tmpfs,
    /// A secret given to the build (`--secret id=...`), as a file or an
    /// environment variable.
    Secret,
}

/// How steps share a cache mount (BuildKit's `sharing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Any number of steps at once.
    #[default]
    Shared,
    /// A step that finds it in use gets a new, empty folder.
    Private,
    /// One step at a time; the others wait.
    Locked,
}

/// One `RUN --mount`, as data: where it lands and what fills it. Target
/// paths are absolute (made so against the workdir by the frontend).
#[derive(Debug, Clone, PartialEq)]
pub struct RunMount {
    pub kind: RunMountKind,
    /// Absolute in the step's root; `None` for a secret given only as an
    /// environment variable.
    pub target: Option<String>,
    /// A bind's path in its source (relative to the context or absolute
    /// in the stage or image; `None`: its root), or a cache's path in its
    /// `from`.
    pub source: Option<String>,
    /// A bind's source: another stage or an image; `None`: the context.
    pub from: Option<PlaceFrom>,
    /// A cache's or a secret's id (a cache's defaults to its target).
    pub id: Option<String>,
    pub sharing: CacheSharing,
    pub readonly: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    /// A secret that must be given (`required=true`).
    pub required: bool,
    /// A secret's environment variable in the step.
    pub env: Option<String>,
    /// A tmpfs's size limit in bytes.
    pub size: Option<u64>,
}

impl RunMount {
    /// A mount of `kind` at `target` with every other setting unset.
    pub fn new(kind: RunMountKind, target: Option<String>) -> RunMount {
        RunMount {
            kind,
            target,
            source: None,
            from: None,
            id: None,
            sharing: CacheSharing::Shared,
            readonly: false,
            uid: None,
            gid: None,
            mode: None,
            required: false,
            env: None,
            size: None,
        }
    }
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StageBase {
    /// An image (a registry reference or a local transport).
    Image(Transport),
    /// The filesystem another stage ended with.
    Stage(String),
    /// Nothing: no layers, a config from nothing (`FROM scratch`).
    Scratch,
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

/// Where a Dockerfile COPY or ADD reads its sources.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaceFrom {
    /// The build context, after the ignore file.
    Context,
    /// Another stage's filesystem as it ends.
    Stage(String),
    /// An image's filesystem (`COPY --from=alpine:3.20`).
    Image(Transport),
}

/// An ADD source BuildKit clones: a git address (`git@`, `git://`), or a
/// URL whose path ends in `.git` (before a `#ref:subdir` fragment).
pub fn is_git_source(s: &str) -> bool {
    let base = s.split('#').next().unwrap_or(s);
    s.starts_with("git@") || s.starts_with("git://") || base.ends_with(".git")
}

/// A Dockerfile COPY or ADD: paths of the context, a stage or an image,
/// and inline (heredoc) files, placed by docker's rules: a folder's
/// contents land in the destination, a file lands at the destination or
/// in it when it is a folder (written with a trailing `/`, or already
/// one in the stage).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceSpec {
    pub from: PlaceFrom,
    /// Relative to the context's root, or absolute in the stage or image;
    /// may hold `*`, `?` and `[...]` globs.
    pub sources: Vec<String>,
    /// Heredoc files: (name, content).
    pub inline: Vec<(String, String)>,
    /// Absolute; ends with `/` when written so.
    pub dest: String,
    /// `--chown` as written: `UID[:GID]` or names the stage defines.
    pub owner: Option<String>,
    /// `--chmod`: every file's and folder's mode, octal or symbolic.
    pub mode: Option<super::chmod::Chmod>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD: local tar archives are extracted at the destination.
    pub extract: bool,
    /// ADD --unpack=true: a downloaded archive is extracted too.
    pub unpack_urls: bool,
    /// COPY --parents: sources keep their folders (after a `/./` pivot),
    /// globs may hold `**`.
    pub parents: bool,
    /// ADD --checksum=sha256:...: what a URL's content must hash to.
    pub checksum: Option<crate::digest::Digest>,
    /// ADD --checksum=HEX of a git source: what its commit starts with.
    pub commit: Option<String>,
    /// ADD --keep-git-dir=true: a cloned repository keeps its `.git`.
    pub keep_git_dir: bool,
    /// Where it is written (`Dockerfile:12`), for errors.
    pub at: String,
}

/// A folder made with its parents, as WORKDIR makes it: owned by `owner`
/// (the stage's USER then) when it is made, left as it is when it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkdirSpec {
    pub path: String,
    pub owner: Option<String>,
}

/// Dependencies installed natively in place of the command a Dockerfile
/// runs (`RUN npm ci`, `RUN pip install -r requirements.txt`): the
/// manifests come from the context folder `project`, the result lands as
/// the command would leave it (node_modules in `workdir`, the image's
/// site-packages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    pub kind: DepsKind,
    pub dev: bool,
    /// The context folder the manifests were copied from (`""`: its root).
    pub project: String,
    /// Where the command ran.
    pub workdir: String,
    /// What the command would also run: npm's install scripts (no
    /// `--ignore-scripts`), pip's sdist builds; done in the sandbox.
    pub scripts: bool,
    /// The line as written, for reports.
    pub command: String,
    pub at: String,
    /// `pip install --user`: the home of the user it runs as (the
    /// packages go to its `.local`).
    pub user_home: Option<String>,
}

/// The longest user or group name `useradd` takes.
pub const USER_NAME_MAX: usize = 32;

/// Why a `NAME[:UID[:GID]]` is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserSpecError {
    #[error("user name `{name}` {why}: use lower-case letters, digits, `_` and `-`, starting with a letter or `_`, at most {USER_NAME_MAX} characters")]
    BadName { name: String, why: &'static str },
    #[error("`{spec}` is not NAME[:UID[:GID]]")]
    BadSpec { spec: String },
    #[error("in `{spec}`, the {what} `{value}` is not a number from 0 to 4294967294")]
    BadId {
        spec: String,
        what: &'static str,
        value: String,
    },
}

/// The app user as asked for: `NAME[:UID[:GID]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl UserSpec {
    /// Parses `NAME[:UID[:GID]]`. The name must match `useradd`'s default
    /// `NAME_REGEX`, `[a-z_][a-z0-9_-]*[$]?`, at most 32 characters; ids
    /// are decimal, below 4294967295 (which means "no id" to the kernel).
    pub fn parse(s: &str) -> Result<UserSpec, UserSpecError> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        Self::check_name(name)?;
        let mut id = |what| {
            parts
                .next()
                .map(|v| parse_id(v).ok_or_else(|| bad_id(s, what, v)))
                .transpose()
        };
        let uid = id("uid")?;
        let gid = id("gid")?;
        if parts.next().is_some() {
            return Err(UserSpecError::BadSpec { spec: s.to_owned() });
        }
        Ok(UserSpec {
            name: name.to_owned(),
            uid,
            gid,
        })
    }

    /// Checks a user or group name against `useradd`'s default
    /// `NAME_REGEX`, `[a-z_][a-z0-9_-]*[$]?`, at most 32 characters.
    pub fn check_name(name: &str) -> Result<(), UserSpecError> {
        let err = |why| {
            Err(UserSpecError::BadName {
                name: name.to_owned(),
                why,
            })
        };
        if name.is_empty() {
            return err("is empty");
        }
        if name.len() > USER_NAME_MAX {
            return err("is too long");
        }
        let body = name.strip_suffix('$').unwrap_or(name);
        let mut chars = body.chars();
        if !chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        {
            return err("does not start with a lower-case letter or `_`");
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
            return err("has a character useradd refuses");
        }
        Ok(())
    }
}

pub(crate) fn bad_id(spec: &str, what: &'static str, value: &str) -> UserSpecError {
    UserSpecError::BadId {
        spec: spec.to_owned(),
        what,
        value: value.to_owned(),
    }
}

/// A decimal id, not `u32::MAX`.
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|id| *id != u32::MAX)
}

/// `scripts = "ignore" | "sandbox"` (`--scripts`): whether npm install
/// scripts run in the sandbox.
pub fn parse_scripts(s: &str) -> Result<bool, String> {
    match s {
        "ignore" => Ok(false),
        "sandbox" => Ok(true),
        other => Err(format!(
            "unknown scripts setting `{other}`: use ignore (the default) or sandbox"
        )),
    }
}

/// `sdists = "refuse" | "sandbox"` (`--sdists`): whether sdist-only
/// packages are built into wheels in the sandbox.
pub fn parse_sdists(s: &str) -> Result<bool, String> {
    match s {
        "refuse" => Ok(false),
        "sandbox" => Ok(true),
        other => Err(format!(
            "unknown sdists setting `{other}`: use refuse (the default) or sandbox"
        )),
    }
}
