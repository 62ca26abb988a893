//! hoist.toml: reading the file into checked [`Spec`]s.
//!
//! Two steps. serde reads the text into `Raw*` structs that mirror the
//! file (`deny_unknown_fields`, so a typo is an error, not a silently
//! ignored key) and keep the byte span of every value that is checked
//! later. Then each value is checked and turned into its type (a
//! transport, a user, a port), and a bad one is reported at its span.
//! Both steps' errors say `FILE:LINE:COL: [table] key `x`: what is wrong`.
//!
//! The parser takes the file's bytes and a name for messages; it does no
//! I/O, so every error message is tested from a string.
//!
//! The file's shape:
//!
//! ```toml
//! recipe = "node"              # a stock recipe to start from (optional)
//! [image]                      # base, platforms, user, entrypoint, cmd, env, ...
//! [deps]                       # kind = "npm" | "pip" | "none" | "auto", dev, ...
//! [app]                        # include, exclude, ignore-file, destination, ...
//! [build]                      # run = ["npm", "run", "build"], inputs, outputs
//! [stages.build]               # base, deps, copy, exclude, run, workdir, env, user
//! [target.dev]                 # the same four sections, laid over the others
//! [images.web]                 # several images: context, recipe, and the sections
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::location::{key_of_value, table_at, text_of, Location};
use super::spec::{
    rebase_transport, AppSpec, BuildStepSpec, CopyRule, DepsSpec, ImageSpec, Mtime, RunSpec, Spec,
    StageBase, StageCopy, StageDeps, StageSpec,
};
use super::RecipeError;
use crate::graph::config;
use crate::graph::spec::DepsKind;
use crate::graph::spec::UserSpec;
use crate::image::Platform;
use crate::layer::Compression;
use crate::reference::transport::Transport;

/// A parsed hoist.toml (or stock recipe).
#[derive(Debug, Clone)]
pub struct RecipeFile {
    /// The name errors use (`hoist.toml`, `testdata/project/hoist.toml`).
    pub name: String,
    /// The folder relative paths in the file are relative to.
    pub dir: PathBuf,
    /// The top level: a single image, or defaults for every `[images.*]`.
    pub top: Section,
    /// `[images.NAME]`, in name order.
    pub images: Vec<ImageEntry>,
}

/// The settings at one level of the file, with the targets given there.
#[derive(Debug, Clone)]
pub struct Section {
    /// `recipe = "NAME"` and where it was written.
    pub recipe: Option<(String, Location)>,
    pub spec: Spec,
    /// Where the section starts (its `[image]` table, or its header).
    pub at: Location,
    pub targets: BTreeMap<String, Target>,
}

/// A `[target.NAME]` table.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: Spec,
    pub at: Location,
}

/// One `[images.NAME]` entry.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    pub name: String,
    /// Its build context (`context = "web"`, relative to the file's folder;
    /// default: a folder named like the image).
    pub context: PathBuf,
    pub section: Section,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    recipe: Option<Spanned<String>>,
    image: Option<Spanned<RawImage>>,
    deps: Option<RawDeps>,
    app: Option<RawApp>,
    build: Option<RawBuild>,
    run: Option<Vec<RawRun>>,
    #[serde(default)]
    stages: BTreeMap<Spanned<String>, RawStage>,
    #[serde(default)]
    target: BTreeMap<Spanned<String>, RawTarget>,
    #[serde(default)]
    images: BTreeMap<Spanned<String>, RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEntry {
    context: Option<String>,
    recipe: Option<Spanned<String>>,
    image: Option<Spanned<RawImage>>,
    deps: Option<RawDeps>,
    app: Option<RawApp>,
    build: Option<RawBuild>,
    run: Option<Vec<RawRun>>,
    #[serde(default)]
    stages: BTreeMap<Spanned<String>, RawStage>,
    #[serde(default)]
    target: BTreeMap<Spanned<String>, RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    image: Option<Spanned<RawImage>>,
    deps: Option<RawDeps>,
    app: Option<RawApp>,
    build: Option<RawBuild>,
    run: Option<Vec<RawRun>>,
    #[serde(default)]
    stages: BTreeMap<Spanned<String>, RawStage>,
}

/// One `[stages.NAME]` table: a build stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStage {
    base: Option<Spanned<String>>,
    deps: Option<RawStageDeps>,
    copy: Option<Vec<RawCopy>>,
    exclude: Option<Vec<String>>,
    run: Option<Vec<RawRun>>,
    workdir: Option<Spanned<String>>,
    env: Option<BTreeMap<String, String>>,
    user: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStageDeps {
    kind: Spanned<String>,
    dev: Option<bool>,
}

/// One `[[run]]` table: a command run in the sandbox on the image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRun {
    command: Spanned<RawCommand>,
    env: Option<BTreeMap<String, String>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    base: Option<Spanned<String>>,
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<RawUser>>,
    entrypoint: Option<Spanned<RawCommand>>,
    cmd: Option<Spanned<RawCommand>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    labels: Option<BTreeMap<String, String>>,
    expose: Option<Vec<Spanned<RawPort>>>,
    healthcheck: Option<Spanned<RawHealthcheck>>,
    stop_signal: Option<Spanned<String>>,
    tags: Option<Vec<Spanned<String>>>,
    outputs: Option<Vec<Spanned<String>>>,
    compression: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawUser {
    name: String,
    uid: Option<u32>,
    gid: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a command: an array of strings like [\"node\", \"server.js\"], or a command line"
)]
enum RawCommand {
    Exec(Vec<String>),
    Line(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "expected a port like 3000 or \"3000/tcp\"")]
enum RawPort {
    Number(u32),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHealthcheck {
    cmd: Spanned<RawCommand>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    start_period: Option<Spanned<String>>,
    retries: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDeps {
    kind: Option<Spanned<String>>,
    dev: Option<bool>,
    strict_scripts: Option<bool>,
    locked: Option<bool>,
    scripts: Option<Spanned<String>>,
    sdists: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApp {
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    ignore_file: Option<Spanned<String>>,
    destination: Option<Spanned<String>>,
    writable: Option<Vec<Spanned<String>>>,
    mtime: Option<Spanned<String>>,
    copy: Option<Vec<RawCopy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCopy {
    from: Spanned<String>,
    to: Option<Spanned<String>>,
    /// Copy from this stage's filesystem rather than the context.
    stage: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBuild {
    run: Option<Spanned<RawCommand>>,
    inputs: Option<Vec<Spanned<String>>>,
    outputs: Option<Vec<Spanned<String>>>,
}

/// Reads a hoist.toml. `name` is what errors call the file; `dir` is the
/// folder its relative paths are relative to.
pub fn parse(bytes: &[u8], name: &str, dir: &Path) -> Result<RecipeFile, RecipeError> {
    let src = std::str::from_utf8(bytes).map_err(|e| RecipeError::Syntax {
        at: Location::at(name, "", 0),
        why: format!("the file is not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    // Syntax first, so that what serde reports next is always about a
    // key or a value.
    src.parse::<toml::Table>().map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        RecipeError::Syntax {
            at: Location::at(name, src, offset),
            why: e.message().trim().to_owned(),
        }
    })?;
    let raw: RawFile = toml::from_str(src).map_err(|e| serde_error(name, src, &e))?;
    let cx = Cx { name, src, dir };
    let top = cx.section(
        raw.recipe,
        (raw.image, raw.deps, raw.app, raw.build, raw.run, raw.stages),
        raw.target,
        None,
    )?;
    let mut images = Vec::new();
    for (key, entry) in raw.images {
        let at = cx.at(key.span().start);
        let image_name = key.into_inner();
        check_name(&image_name).map_err(|why| RecipeError::BadValue {
            at: at.clone(),
            table: "[images]".into(),
            key: image_name.clone(),
            why,
        })?;
        let context = dir.join(entry.context.as_deref().unwrap_or(&image_name));
        let section = cx.section(
            entry.recipe,
            (
                entry.image,
                entry.deps,
                entry.app,
                entry.build,
                entry.run,
                entry.stages,
            ),
            entry.target,
            Some(at),
        )?;
        images.push(ImageEntry {
            name: image_name,
            context,
            section,
        });
    }
    Ok(RecipeFile {
        name: name.to_owned(),
        dir: dir.to_owned(),
        top,
        images,
    })
}

/// Image and target names: what a tag or a folder name can hold.
fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "`{s}` is not a name: use lower-case letters, digits, `-` and `_`, starting with a letter or digit"
        )),
    }
}

/// Turns serde's error into one that names the file, line, table and key.
fn serde_error(name: &str, src: &str, e: &toml::de::Error) -> RecipeError {
    let span = e.span().unwrap_or(0..0);
    let at = Location::at(name, src, span.start);
    let table = table_at(src, span.start).unwrap_or_else(|| "top level".into());
    let msg = e.message().trim().to_owned();
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        // "unknown field `bse`, expected one of `base`, `platforms`"
        let (key, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let key = key.trim_matches('`').to_owned();
        let names: Vec<String> = expected
            .trim_start_matches("one of ")
            .split(", ")
            .map(|s| s.trim_matches('`').to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        return RecipeError::UnknownKey {
            at,
            table,
            hint: hint(&key, &names),
            key,
        };
    }
    let key = if msg.starts_with("missing field") {
        None
    } else {
        key_of_value(src, &span).or_else(|| text_of(src, &span))
    };
    match key {
        Some(key) => RecipeError::WrongType {
            at,
            table,
            key,
            why: msg,
        },
        _ => RecipeError::Syntax {
            at,
            why: format!("{table}: {msg}"),
        },
    }
}

/// "did you mean `base`?" for a key one or two edits from a known one,
/// else the list of known keys.
fn hint(key: &str, known: &[String]) -> String {
    let close = known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match close {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => "remove it".into(),
        None => format!("known keys: {}", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The sections one level of the file (or a target) may hold.
type RawParts = (
    Option<Spanned<RawImage>>,
    Option<RawDeps>,
    Option<RawApp>,
    Option<RawBuild>,
    Option<Vec<RawRun>>,
    BTreeMap<Spanned<String>, RawStage>,
);

/// What checking values needs: the file's name, text and folder.
struct Cx<'a> {
    name: &'a str,
    src: &'a str,
    dir: &'a Path,
}

impl Cx<'_> {
    fn at(&self, offset: usize) -> Location {
        Location::at(self.name, self.src, offset)
    }

    /// A value that failed its check, reported at its span.
    fn bad<T>(&self, v: &Spanned<T>, key: &str, why: impl ToString) -> RecipeError {
        RecipeError::BadValue {
            at: self.at(v.span().start),
            table: table_at(self.src, v.span().start).unwrap_or_else(|| "top level".into()),
            key: key.to_owned(),
            why: why.to_string(),
        }
    }

    fn section(
        &self,
        recipe: Option<Spanned<String>>,
        parts: RawParts,
        targets: BTreeMap<Spanned<String>, RawTarget>,
        header: Option<Location>,
    ) -> Result<Section, RecipeError> {
        let image = &parts.0;
        // An image's header (`[images.web]`) says where it is; at the top
        // level, its `[image]` table does.
        let at = match (header, &image) {
            (Some(h), _) => h,
            (None, Some(i)) => self.at(i.span().start),
            (None, None) => Location::file_start(self.name),
        };
        let recipe = recipe.map(|r| (self.at(r.span().start), r.into_inner()));
        let recipe = recipe.map(|(at, r)| (r, at));
        let spec = self.spec(parts)?;
        let mut out = BTreeMap::new();
        for (key, t) in targets {
            let at = self.at(key.span().start);
            check_name(key.get_ref()).map_err(|why| RecipeError::BadValue {
                at: at.clone(),
                table: "[target]".into(),
                key: key.get_ref().clone(),
                why,
            })?;
            let spec = self.spec((t.image, t.deps, t.app, t.build, t.run, t.stages))?;
            out.insert(key.into_inner(), Target { spec, at });
        }
        Ok(Section {
            recipe,
            spec,
            at,
            targets: out,
        })
    }

    fn spec(&self, parts: RawParts) -> Result<Spec, RecipeError> {
        let (image, deps, app, build, run, stages) = parts;
        let names: Vec<String> = stages.keys().map(|k| k.get_ref().clone()).collect();
        let stages = stages
            .into_iter()
            .map(|(k, st)| {
                check_name(k.get_ref()).map_err(|why| RecipeError::BadValue {
                    at: self.at(k.span().start),
                    table: "[stages]".into(),
                    key: k.get_ref().clone(),
                    why,
                })?;
                let at = self.at(k.span().start).to_string();
                Ok((k.into_inner(), self.stage(st, at, &names)?))
            })
            .collect::<Result<_, RecipeError>>()?;
        Ok(Spec {
            stages,
            run: run
                .map(|steps| steps.into_iter().map(|r| self.run(r)).collect())
                .transpose()?,
            image: self.image(image.map(Spanned::into_inner).unwrap_or_default())?,
            deps: self.deps(deps.unwrap_or_default())?,
            app: self.app(app.unwrap_or_default())?,
            build: self.build(build.unwrap_or_default())?,
        })
    }

    fn transport(&self, v: &Spanned<String>, key: &str) -> Result<Transport, RecipeError> {
        let t = Transport::parse(v.get_ref()).map_err(|e| self.bad(v, key, e))?;
        Ok(rebase_transport(t, self.dir))
    }

    fn command(&self, v: Spanned<RawCommand>, key: &str) -> Result<Vec<String>, RecipeError> {
        match v.get_ref() {
            RawCommand::Exec(words) if words.is_empty() => {
                Err(self.bad(&v, key, "the command is empty"))
            }
            RawCommand::Exec(words) => Ok(words.clone()),
            RawCommand::Line(line) => config::parse_command(line).map_err(|e| self.bad(&v, key, e)),
        }
    }

    fn duration(&self, v: Option<Spanned<String>>, key: &str) -> Result<Option<u64>, RecipeError> {
        v.map(|d| config::parse_duration(d.get_ref()).map_err(|e| self.bad(&d, key, e)))
            .transpose()
    }

    fn image(&self, r: RawImage) -> Result<ImageSpec, RecipeError> {
        let mut s = ImageSpec {
            base: r.base.map(|b| self.transport(&b, "base")).transpose()?,
            ..ImageSpec::default()
        };
        if let Some(ps) = r.platforms {
            if ps.get_ref().is_empty() {
                return Err(self.bad(
                    &ps,
                    "platforms",
                    "the list is empty: name at least one, like [\"linux/amd64\"], or drop the key to build for this machine's platform",
                ));
            }
            let mut out: Vec<Platform> = Vec::new();
            for p in ps.into_inner() {
                let parsed =
                    Platform::parse(p.get_ref()).map_err(|e| self.bad(&p, "platforms", e))?;
                if !out.contains(&parsed) {
                    out.push(parsed);
                }
            }
            s.platforms = Some(out);
        }
        if let Some(w) = r.workdir {
            s.workdir = Some(self.absolute(&w, "workdir", true)?);
        }
        if let Some(u) = r.user {
            let spec = UserSpec::parse(&u.get_ref().name).map_err(|e| self.bad(&u, "user", e))?;
            s.user = Some(UserSpec {
                uid: u.get_ref().uid,
                gid: u.get_ref().gid,
                ..spec
            });
        }
        s.entrypoint = r
            .entrypoint
            .map(|c| self.command(c, "entrypoint"))
            .transpose()?;
        s.cmd = r.cmd.map(|c| self.command(c, "cmd")).transpose()?;
        for (k, v) in r.env.unwrap_or_default() {
            if k.is_empty() || k.contains('=') {
                return Err(self.bad(
                    &v,
                    &k,
                    "an environment variable's name cannot be empty or hold `=`",
                ));
            }
            s.env.push((k, v.into_inner()));
        }
        s.labels = r.labels.unwrap_or_default();
        if let Some(ports) = r.expose {
            let mut out = Vec::new();
            for p in ports {
                let text = match p.get_ref() {
                    RawPort::Number(n) => n.to_string(),
                    RawPort::Text(t) => t.clone(),
                };
                out.push(config::parse_port(&text).map_err(|e| self.bad(&p, "expose", e))?);
            }
            s.expose = Some(out);
        }
        if let Some(h) = r.healthcheck {
            let h = h.into_inner();
            let cmd = self.command(h.cmd, "cmd")?;
            let mut test = vec!["CMD".to_owned()];
            test.extend(cmd);
            s.healthcheck = Some(crate::image::Healthcheck {
                test: Some(test),
                interval: self.duration(h.interval, "interval")?,
                timeout: self.duration(h.timeout, "timeout")?,
                start_period: self.duration(h.start_period, "start-period")?,
                retries: h.retries,
            });
        }
        s.stop_signal = r
            .stop_signal
            .map(|v| config::parse_signal(v.get_ref()).map_err(|e| self.bad(&v, "stop-signal", e)))
            .transpose()?;
        if let Some(tags) = r.tags {
            let mut out = Vec::new();
            for t in tags {
                out.push(
                    crate::reference::name::normalize_name(t.get_ref())
                        .map_err(|e| self.bad(&t, "tags", e))?,
                );
            }
            s.tags = Some(out);
        }
        s.outputs = r
            .outputs
            .map(|os| os.iter().map(|o| self.transport(o, "outputs")).collect())
            .transpose()?;
        s.compression = r
            .compression
            .map(|c| Compression::parse(c.get_ref()).map_err(|e| self.bad(&c, "compression", e)))
            .transpose()?;
        Ok(s)
    }

    /// An absolute path in the image; `app`: the folder the app goes to.
    fn absolute(&self, v: &Spanned<String>, key: &str, app: bool) -> Result<String, RecipeError> {
        let p = v.get_ref();
        if !p.starts_with('/') || crate::layer::ImagePath::new(p).is_err() {
            let why = match app {
                true => config::workdir_problem(p),
                false => format!("`{p}` must be an absolute path inside the image, like /app"),
            };
            return Err(self.bad(v, key, why));
        }
        Ok(p.clone())
    }

    fn relative(&self, v: &Spanned<String>, key: &str) -> Result<String, RecipeError> {
        let p = v.get_ref().trim_start_matches("./").trim_end_matches('/');
        if p == "." || p.is_empty() {
            return Ok(String::new());
        }
        if p.starts_with('/') || p.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(self.bad(
                v,
                key,
                format!(
                    "`{}` must be a relative path that stays inside, like dist or .next/static",
                    v.get_ref()
                ),
            ));
        }
        Ok(p.to_owned())
    }

    fn deps(&self, r: RawDeps) -> Result<DepsSpec, RecipeError> {
        let kind = r
            .kind
            .map(|k| match k.get_ref().as_str() {
                "auto" | "npm" | "pip" | "none" => {
                    Ok(DepsKind::parse(k.get_ref()).unwrap_or_default())
                }
                other => Err(self.bad(
                    &k,
                    "kind",
                    format!("unknown deps kind `{other}`: use npm, pip, none or auto"),
                )),
            })
            .transpose()?;
        let scripts = r
            .scripts
            .map(|v| {
                crate::graph::spec::parse_scripts(v.get_ref())
                    .map_err(|e| self.bad(&v, "scripts", e))
            })
            .transpose()?;
        let sdists = r
            .sdists
            .map(|v| {
                crate::graph::spec::parse_sdists(v.get_ref()).map_err(|e| self.bad(&v, "sdists", e))
            })
            .transpose()?;
        Ok(DepsSpec {
            kind,
            dev: r.dev,
            strict_scripts: r.strict_scripts,
            locked: r.locked,
            scripts_in_sandbox: scripts,
            sdists_in_sandbox: sdists,
        })
    }

    fn app(&self, r: RawApp) -> Result<AppSpec, RecipeError> {
        let mtime = r
            .mtime
            .map(|m| match m.get_ref().as_str() {
                "fixed" => Ok(Mtime::Fixed),
                "commit" => Ok(Mtime::Commit),
                other => Err(self.bad(&m, "mtime", format!("unknown mtime policy `{other}`: use fixed (SOURCE_DATE_EPOCH) or commit (the last git commit's time)"))),
            })
            .transpose()?;
        let (copy, stage_copy) = match r.copy {
            None => (None, None),
            Some(rules) => {
                let (mut ctx, mut stage) = (Vec::new(), Vec::new());
                for c in &rules {
                    match self.copy(c)? {
                        Ok(s) => stage.push(s),
                        Err(rule) => ctx.push(rule),
                    }
                }
                (Some(ctx), Some(stage))
            }
        };
        Ok(AppSpec {
            include: r.include,
            exclude: r.exclude,
            ignore_file: r
                .ignore_file
                .map(|f| self.relative(&f, "ignore-file"))
                .transpose()?,
            destination: r
                .destination
                .map(|d| self.absolute(&d, "destination", true))
                .transpose()?,
            writable: r
                .writable
                .map(|ws| ws.iter().map(|w| self.relative(w, "writable")).collect())
                .transpose()?,
            mtime,
            copy,
            stage_copy,
        })
    }

    /// One `copy` entry: from a stage (`Ok`) or from the context (`Err`).
    fn copy(&self, c: &RawCopy) -> Result<Result<StageCopy, CopyRule>, RecipeError> {
        let Some(stage) = &c.stage else {
            for (v, key) in [(&c.owner, "owner"), (&c.mode, "mode")] {
                if let Some(v) = v {
                    return Err(self.bad(
                        v,
                        key,
                        "only a copy from a stage sets owner or mode (add stage = \"NAME\")",
                    ));
                }
            }
            return Ok(Err(CopyRule {
                from: self.relative(&c.from, "from")?,
                to: c
                    .to
                    .as_ref()
                    .map(|t| self.relative(t, "to"))
                    .transpose()?
                    .unwrap_or_default(),
            }));
        };
        let to = match &c.to {
            Some(t) if t.get_ref().starts_with('/') => self.absolute(t, "to", false)?,
            Some(t) => self.relative(t, "to")?,
            None => String::new(),
        };
        let owner = c
            .owner
            .as_ref()
            .map(|o| {
                let ok = !o.get_ref().is_empty()
                    && o.get_ref().split(':').count() <= 2
                    && o.get_ref()
                        .split(':')
                        .all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
                match ok {
                    true => Ok(o.get_ref().clone()),
                    false => Err(self.bad(
                        o,
                        "owner",
                        "owner is UID:GID (like 1001:1001) or the image user's name",
                    )),
                }
            })
            .transpose()?;
        let mode = c
            .mode
            .as_ref()
            .map(|m| {
                u32::from_str_radix(m.get_ref(), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| self.bad(m, "mode", "mode is octal, like \"0644\" or \"755\""))
            })
            .transpose()?;
        Ok(Ok(StageCopy {
            stage: stage.get_ref().clone(),
            from: self.absolute(&c.from, "from", false)?,
            to,
            owner,
            mode,
            at: self.at(stage.span().start).to_string(),
        }))
    }

    /// One `[stages.NAME]` table; `names` are the stages beside it, which
    /// `base` may name.
    fn stage(&self, r: RawStage, at: String, names: &[String]) -> Result<StageSpec, RecipeError> {
        let base = r
            .base
            .map(|b| match names.contains(b.get_ref()) {
                true => Ok(StageBase::Stage(b.get_ref().clone())),
                false => self.transport(&b, "base").map(StageBase::Image),
            })
            .transpose()?;
        let deps = r
            .deps
            .map(|d| match d.kind.get_ref().as_str() {
                "npm" => Ok(StageDeps {
                    kind: DepsKind::Npm,
                    dev: d.dev.unwrap_or(true),
                }),
                "pip" => Ok(StageDeps {
                    kind: DepsKind::Pip,
                    dev: d.dev.unwrap_or(true),
                }),
                other => Err(self.bad(
                    &d.kind,
                    "kind",
                    format!("a stage's deps kind is npm or pip, not `{other}`"),
                )),
            })
            .transpose()?;
        let copy = r
            .copy
            .map(|rules| {
                rules
                    .iter()
                    .map(|c| match self.copy(c)? {
                        Err(rule) => Ok(rule),
                        Ok(_) => Err(self.bad(
                            &c.from,
                            "copy",
                            "a stage copies from the context only; copy from another stage by basing this one on it (base = \"NAME\")",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(StageSpec {
            base,
            deps,
            copy,
            exclude: r.exclude.unwrap_or_default(),
            run: r
                .run
                .unwrap_or_default()
                .into_iter()
                .map(|x| self.run(x))
                .collect::<Result<_, _>>()?,
            workdir: r
                .workdir
                .map(|w| self.absolute(&w, "workdir", true))
                .transpose()?,
            env: r.env.unwrap_or_default().into_iter().collect(),
            user: r.user.map(|u| u.into_inner()),
            at,
        })
    }

    fn run(&self, r: RawRun) -> Result<RunSpec, RecipeError> {
        let workdir = r
            .workdir
            .map(|w| self.absolute(&w, "workdir", false))
            .transpose()?;
        let user = r
            .user
            .map(|u| {
                // Names are looked up in the image when the step runs.
                let ok = u
                    .get_ref()
                    .split(':')
                    .all(|p| !p.is_empty() && !p.contains(char::is_whitespace))
                    && u.get_ref().split(':').count() <= 2;
                match ok {
                    true => Ok(u.get_ref().clone()),
                    false => Err(self.bad(&u, "user", "a step's user is NAME or UID, optionally :GROUP or :GID (like agent, 1000 or 1000:1000)")),
                }
            })
            .transpose()?;
        let timeout = self
            .duration(r.timeout, "timeout")?
            .map(std::time::Duration::from_nanos);
        Ok(RunSpec {
            command: self.command(r.command, "command")?,
            env: r.env.unwrap_or_default().into_iter().collect(),
            workdir,
            user,
            timeout,
            native: None,
            note: None,
            mounts: Vec::new(),
        })
    }

    fn build(&self, r: RawBuild) -> Result<BuildStepSpec, RecipeError> {
        let rel_list = |v: Option<Vec<Spanned<String>>>, key: &str| {
            v.map(|vs| {
                vs.iter()
                    .map(|x| self.relative(x, key))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
        };
        Ok(BuildStepSpec {
            // `run = []` turns off a step a recipe or the file's top level set.
            run: r
                .run
                .map(|c| match c.get_ref() {
                    RawCommand::Exec(w) if w.is_empty() => Ok(Vec::new()),
                    _ => self.command(c, "run"),
                })
                .transpose()?,
            inputs: rel_list(r.inputs, "inputs")?,
            outputs: rel_list(r.outputs, "outputs")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src.as_bytes(), "hoist.toml", Path::new("/p"))
            .unwrap_err()
            .to_string()
    }

    /// What users read when their file is wrong, exactly.
    #[test]
    fn error_snapshots() {
        let cases: &[(&str, &str)] = &[
            (
                "[image]\nbse = \"node:22\"\n",
                "hoist.toml:2:1: [image] unknown key `bse`; did you mean `base`?",
            ),
            (
                "recipe = \"node\"\ncolour = 1\n",
                "hoist.toml:2:1: top level unknown key `colour`; known keys: recipe, image, deps, app, build, run, stages, target, images",
            ),
            (
                "[image]\nuser = { name = \"app\", uid = \"1001\" }\n",
                "hoist.toml:2:30: [image] key `uid`: invalid type: string \"1001\", expected u32",
            ),
            (
                "[image]\nexpose = [3000, true]\n",
                "hoist.toml:2:10: [image] key `expose`: expected a port like 3000 or \"3000/tcp\"",
            ),
            (
                "[image]\nexpose = [\"99999\"]\n",
                "hoist.toml:2:11: [image] key `expose`: --expose `99999` is not PORT[/tcp|udp|sctp] with PORT from 1 to 65535",
            ),
            (
                "[deps]\nkind = \"yarn\"\n",
                "hoist.toml:2:8: [deps] key `kind`: unknown deps kind `yarn`: use npm, pip, none or auto",
            ),
            (
                "[deps]\nkind = 3\n",
                "hoist.toml:2:8: [deps] key `kind`: invalid type: integer `3`, expected a string",
            ),
            (
                "[images.web]\ncontext = \"web\"\n[images.web.deps]\ndev = \"yes\"\n",
                "hoist.toml:4:7: [images.web.deps] key `dev`: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "[images.web.image]\nbase = \"oci:\"\n",
                "hoist.toml:2:8: [images.web.image] key `base`: `oci:` has an empty path",
            ),
            (
                "[target.dev]\nimage.cmd = []\n",
                "hoist.toml:2:13: [target.dev] key `cmd`: the command is empty",
            ),
            (
                "[target.Dev]\n",
                "hoist.toml:1:9: [target] key `Dev`: `Dev` is not a name: use lower-case letters, digits, `-` and `_`, starting with a letter or digit",
            ),
            (
                "[image]\nworkdir = \"app\"\n",
                "hoist.toml:2:11: [image] key `workdir`: `app` must be an absolute path inside the image, like /app",
            ),
            (
                "[app]\ncopy = [{ from = \"../x\" }]\n",
                "hoist.toml:2:18: [app] key `from`: `../x` must be a relative path that stays inside, like dist or .next/static",
            ),
            (
                "[image]\nhealthcheck = { cmd = [\"true\"], interval = \"30\" }\n",
                "hoist.toml:2:44: [image] key `interval`: duration `30` is not like 30s, 1m30s, 500ms or 1h",
            ),
            (
                "[image\n",
                "hoist.toml:1:7: unclosed table, expected `]`",
            ),
            (
                "[image]\nworkdir = \"/\"\n",
                "hoist.toml:2:11: [image] key `workdir`: `/` is the image's root: the app is copied into the working folder, so give it a folder of its own, like /app",
            ),
            (
                "[image]\nplatforms = []\n",
                "hoist.toml:2:13: [image] key `platforms`: the list is empty: name at least one, like [\"linux/amd64\"], or drop the key to build for this machine's platform",
            ),
            (
                "[target.arm]\nimage.platforms = []\n",
                "hoist.toml:2:19: [target.arm] key `platforms`: the list is empty: name at least one, like [\"linux/amd64\"], or drop the key to build for this machine's platform",
            ),
            (
                "[image]\nhealthcheck = { cmd = [\"true\"], interval = \"5000000h\" }\n",
                "hoist.toml:2:44: [image] key `interval`: duration `5000000h` is longer than 2562047h47m16s, the most an image config can hold (Go's time.Duration): give a shorter one",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&err(src), want, "for:\n{src}");
        }
    }

    #[test]
    fn a_full_file() {
        let src = r#"
recipe = "node"
[image]
base = "oci-archive:bases/node.tar"
platforms = ["linux/amd64", "linux/arm64"]
user = { name = "web", uid = 1002 }
cmd = "node server.js"
env = { PORT = "3000" }
expose = [3000, "53/udp"]
healthcheck = { cmd = ["node", "check.js"], interval = "30s", retries = 2 }
tags = ["web:1"]
outputs = ["oci-archive:out/web.tar"]
[deps]
kind = "npm"
[app]
exclude = ["tests"]
mtime = "commit"
[build]
run = ["npm", "run", "build"]
inputs = ["src", "package.json"]
outputs = ["dist/"]
[target.dev]
deps.dev = true
build.run = []
[images.api]
context = "services/api"
[images.api.image]
cmd = ["node", "api.js"]
"#;
        let f = parse(src.as_bytes(), "hoist.toml", Path::new("/p")).unwrap();
        let s = &f.top.spec;
        assert_eq!(
            s.image.base,
            Some(Transport::OciArchive {
                file: "/p/bases/node.tar".into(),
                tag: None
            })
        );
        assert_eq!(s.image.platforms.as_ref().map(Vec::len), Some(2));
        let u = s.image.user.as_ref().unwrap();
        assert_eq!((u.name.as_str(), u.uid, u.gid), ("web", Some(1002), None));
        assert_eq!(s.image.cmd.as_ref().unwrap(), &["node", "server.js"]);
        assert_eq!(s.image.expose.as_ref().unwrap(), &["3000/tcp", "53/udp"]);
        let h = s.image.healthcheck.as_ref().unwrap();
        assert_eq!(h.test.as_ref().unwrap(), &["CMD", "node", "check.js"]);
        assert_eq!(h.interval, Some(30_000_000_000));
        assert_eq!(s.image.tags.as_ref().unwrap(), &["localhost/web:1"]);
        assert_eq!(s.deps.kind, Some(DepsKind::Npm));
        assert_eq!(s.app.mtime, Some(Mtime::Commit));
        assert_eq!(s.build.outputs.as_ref().unwrap(), &["dist"]);
        let dev = &f.top.targets["dev"];
        assert_eq!(dev.spec.deps.dev, Some(true));
        assert_eq!(dev.spec.build.run.as_deref(), Some(&[][..]));
        assert_eq!(dev.at.to_string(), "hoist.toml:22:9");
        assert_eq!(f.images[0].name, "api");
        assert_eq!(f.images[0].context, Path::new("/p/services/api"));
        assert_eq!(f.images[0].section.at.to_string(), "hoist.toml:25:9");
    }

    #[test]
    fn run_steps() {
        let src = r#"
[[run]]
command = ["apt-get", "update"]
[[run]]
command = "echo $HOME"
env = { A = "1" }
workdir = "/src"
user = "1000:1000"
"#;
        let f = parse(src.as_bytes(), "hoist.toml", Path::new("/p")).unwrap();
        let run = f.top.spec.run.unwrap();
        assert_eq!(run.len(), 2);
        assert_eq!(run[0].command, ["apt-get", "update"]);
        assert_eq!(run[1].env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(run[1].workdir.as_deref(), Some("/src"));
        assert_eq!(run[1].user.as_deref(), Some("1000:1000"));
        for (src, want) in [
            (
                "[[run]]\ncommand = []\n",
                "key `command`: the command is empty",
            ),
            (
                "[[run]]\ncommand = \"true\"\nuser = \"a:b:c\"\n",
                "[run] key `user`: a step's user is NAME or UID",
            ),
            (
                "[[run]]\ncommand = \"true\"\nworkdir = \"src\"\n",
                "key `workdir`",
            ),
            ("[[run]]\ncmd = \"true\"\n", "unknown key `cmd`"),
            (
                "[[run]]\ncommand = \"true\"\ntimeout = \"soon\"\n",
                "[run] key `timeout`",
            ),
        ] {
            let e = err(src);
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
