//! One image of a project, for one target: the layers of settings (stock
//! recipe, file, image, target, command line) laid in order into one
//! [`Spec`], with the image's name and context.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::file::{RecipeFile, Section};
use super::spec::Spec;
use super::{stock, Location, RecipeError};

/// The target built when none is named.
pub const DEFAULT_TARGET: &str = "prod";

/// An image ready to be turned into a build.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The image's name: its `[images.NAME]`, else its context folder's.
    pub name: String,
    pub target: String,
    pub context: PathBuf,
    /// The stock recipe it started from.
    pub recipe: Option<String>,
    pub spec: Spec,
    /// Where the image is defined, and the table a base would go in, for
    /// errors about what is missing.
    pub at: Location,
    pub table: String,
}

/// A project: a hoist.toml, or just a folder and command-line flags.
#[derive(Debug, Clone)]
pub struct Project {
    pub file: Option<RecipeFile>,
    /// The single image's context when there is no file.
    pub context: PathBuf,
}

/// What the command line adds: a stock recipe by name, and flags.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub recipe: Option<String>,
    pub target: Option<String>,
    pub spec: Spec,
}

/// The file a project is read from when none is named.
pub const FILE_NAME: &str = "hoist.toml";

/// Reads a hoist.toml; relative paths in it are relative to its folder.
pub fn load(path: &Path) -> Result<RecipeFile, RecipeError> {
    let bytes = fs_err::read(path).map_err(|e| RecipeError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    super::file::parse(&bytes, &path.display().to_string(), &dir)
}

/// Which project, and which of its images (`None`: the only one), a
/// command line means: `file` from `--file`, `what` the names or the
/// folder given, `here` the current folder.
pub fn discover(
    file: Option<&Path>,
    what: &[String],
    here: &Path,
) -> Result<(Project, Vec<Option<String>>), RecipeError> {
    let all = |p: &Project| -> Vec<Option<String>> {
        match p.has_images() {
            true => p.image_names().into_iter().map(Some).collect(),
            false => vec![None],
        }
    };
    let from_file = |f: RecipeFile| Project {
        context: f.dir.clone(),
        file: Some(f),
    };
    if let Some(f) = file {
        let p = from_file(load(f)?);
        let names = match what.is_empty() {
            true => all(&p),
            false => what.iter().cloned().map(Some).collect(),
        };
        return Ok((p, names));
    }
    let local = here.join(FILE_NAME);
    let local = match local.is_file() {
        true => Some(from_file(load(&local)?)),
        false => None,
    };
    if what.is_empty() {
        return Ok(match local {
            Some(p) => {
                let names = all(&p);
                (p, names)
            }
            None => (
                Project {
                    file: None,
                    context: match here.as_os_str().is_empty() {
                        true => PathBuf::from("."),
                        false => here.to_owned(),
                    },
                },
                vec![None],
            ),
        });
    }
    if let Some(p) = &local {
        let names = p.image_names();
        if p.has_images() && what.iter().all(|w| names.contains(w)) {
            return Ok((p.clone(), what.iter().cloned().map(Some).collect()));
        }
    }
    let dir = Path::new(&what[0]);
    if what.len() == 1 && here.join(dir).is_dir() {
        let dir = here.join(dir);
        let inner = dir.join(FILE_NAME);
        if inner.is_file() {
            let p = from_file(load(&inner)?);
            let names = all(&p);
            return Ok((p, names));
        }
        return Ok((
            Project {
                file: None,
                context: dir,
            },
            vec![None],
        ));
    }
    Err(RecipeError::NotImageOrFolder {
        what: what.join(" "),
        file: local
            .as_ref()
            .and_then(|p| p.file.as_ref())
            .map_or_else(|| "./hoist.toml (there is none)".into(), |f| f.name.clone()),
        known: local.map_or_else(|| "none".into(), |p| p.image_names().join(", ")),
    })
}

impl Project {
    /// The names of the images in the project, in the order they build.
    pub fn image_names(&self) -> Vec<String> {
        match &self.file {
            Some(f) if !f.images.is_empty() => f.images.iter().map(|i| i.name.clone()).collect(),
            _ => vec![folder_name(self.single_context())],
        }
    }

    /// Whether the project has several `[images.*]`.
    pub fn has_images(&self) -> bool {
        self.file.as_ref().is_some_and(|f| !f.images.is_empty())
    }

    fn single_context(&self) -> &Path {
        self.file.as_ref().map_or(&self.context, |f| &f.dir)
    }

    /// Lays the settings for image `name` (the only one when `None`) and
    /// the target the overrides name (`prod` by default).
    pub fn resolve(&self, name: Option<&str>, o: &Overrides) -> Result<Resolved, RecipeError> {
        let target = o.target.as_deref().unwrap_or(DEFAULT_TARGET).to_owned();
        let file_name = self.file.as_ref().map(|f| f.name.clone());
        let start = Location::file_start(file_name.as_deref().unwrap_or("hoist.toml"));
        // The file's sections that apply, outermost first.
        let mut sections: Vec<&Section> = Vec::new();
        let (image_name, context, at, table) = match &self.file {
            Some(f) if !f.images.is_empty() => {
                let entry = match name {
                    Some(n) => f.images.iter().find(|i| i.name == n),
                    None if f.images.len() == 1 => f.images.first(),
                    None => None,
                };
                let entry = entry.ok_or_else(|| RecipeError::NoSuchImage {
                    at: start.clone(),
                    image: name.unwrap_or("").to_owned(),
                    known: self.image_names().join(", "),
                })?;
                sections.push(&f.top);
                sections.push(&entry.section);
                (
                    entry.name.clone(),
                    entry.context.clone(),
                    entry.section.at.clone(),
                    format!("[images.{}.image]", entry.name),
                )
            }
            Some(f) => {
                sections.push(&f.top);
                (
                    folder_name(&f.dir),
                    f.dir.clone(),
                    f.top.at.clone(),
                    "[image]".to_owned(),
                )
            }
            None => (
                folder_name(&self.context),
                self.context.clone(),
                start.clone(),
                "[image]".to_owned(),
            ),
        };
        let recipe_name = match &o.recipe {
            Some(r) if stock::text(r).is_none() => {
                return Err(RecipeError::UnknownStock {
                    name: r.clone(),
                    known: stock::names(),
                })
            }
            Some(r) => Some((r.clone(), Location::file_start("--recipe"))),
            None => sections.iter().rev().find_map(|s| s.recipe.clone()),
        };
        let recipe = recipe_name
            .as_ref()
            .map(|(n, at)| stock::load(n, at))
            .transpose()?;

        let mut known: BTreeSet<String> = [DEFAULT_TARGET, "dev"].map(str::to_owned).into();
        let mut layers: Vec<&Spec> = Vec::new();
        let dev = dev_layer();
        // The node recipe builds a project with a build script in a stage
        // (the dev target runs the whole project as it is).
        let node_build = match (&recipe_name, target.as_str()) {
            (Some((n, _)), DEFAULT_TARGET) if n == "node" => {
                let workdir = recipe
                    .as_ref()
                    .and_then(|r| r.top.spec.image.workdir.clone())
                    .unwrap_or_else(|| "/app".into());
                super::node_build::layer(&context, &workdir)
            }
            _ => None,
        };
        if let Some(r) = &recipe {
            layers.push(&r.top.spec);
            layers.extend(node_build.as_ref());
            if target == "dev" {
                layers.push(&dev);
            }
            known.extend(r.top.targets.keys().cloned());
            layers.extend(r.top.targets.get(&target).map(|t| &t.spec));
        } else if target == "dev" {
            layers.push(&dev);
        }
        for s in &sections {
            layers.push(&s.spec);
            known.extend(s.targets.keys().cloned());
            layers.extend(s.targets.get(&target).map(|t| &t.spec));
        }
        if !known.contains(&target) {
            let first = sections
                .iter()
                .flat_map(|s| s.targets.values())
                .map(|t| t.at.clone())
                .min_by_key(|a| a.line);
            return Err(RecipeError::NoSuchTarget {
                at: first.unwrap_or(start),
                target,
                file: file_name.unwrap_or_else(|| "the project".into()),
                known: known.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        layers.push(&o.spec);
        let mut spec = Spec::default();
        for l in layers {
            spec.merge(l);
        }
        Ok(Resolved {
            name: image_name,
            target,
            context,
            recipe: recipe_name.map(|r| r.0),
            spec,
            at,
            table,
        })
    }
}

/// What the `dev` target means before any recipe says more.
fn dev_layer() -> Spec {
    let mut s = Spec::default();
    s.deps.dev = Some(true);
    s
}

/// A folder's name, for an image named after its context.
fn folder_name(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    abs.components()
        .rev()
        .find_map(|c| match c {
            std::path::Component::Normal(n) => n.to_str().map(str::to_owned),
            _ => None,
        })
        .map(|n| n.to_ascii_lowercase())
        .unwrap_or_else(|| "app".to_owned())
}

impl Resolved {
    /// An example base for the error when there is none.
    pub fn example_base(&self) -> &'static str {
        match self.spec.deps.kind {
            Some(crate::graph::spec::DepsKind::Pip) => "docker.io/library/python:3.12-slim",
            _ => "docker.io/library/node:22-alpine",
        }
    }
}

impl Resolved {
    /// The base, or the error saying where to set one.
    pub fn base(&self) -> Result<&crate::reference::transport::Transport, RecipeError> {
        self.spec
            .image
            .base
            .as_ref()
            .ok_or_else(|| RecipeError::MissingBase {
                at: self.at.clone(),
                image: self.name.clone(),
                table: self.table.clone(),
                example: self.example_base(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::recipe::file::parse;

    fn project(src: &str) -> Project {
        Project {
            file: Some(parse(src.as_bytes(), "hoist.toml", Path::new("/p/app")).unwrap()),
            context: PathBuf::from("/p/app"),
        }
    }

    fn target(t: &str) -> Overrides {
        Overrides {
            target: Some(t.into()),
            ..Overrides::default()
        }
    }

    /// Errors about what the file lacks, exactly as users read them.
    #[test]
    fn error_snapshots() {
        let cases: &[(&str, Option<&str>, Overrides, &str)] = &[
            (
                "[deps]\nkind = \"npm\"\n",
                None,
                Overrides::default(),
                "hoist.toml:1:1: image `app` has no base: set key `base` in [image] (e.g. base = \"docker.io/library/node:22-alpine\"), name a stock recipe with `recipe = \"node\"`, or pass --base",
            ),
            (
                "[images.web]\n[images.agent]\ncontext = \"agent\"\n[images.agent.deps]\nkind = \"pip\"\n",
                Some("agent"),
                Overrides::default(),
                "hoist.toml:2:9: image `agent` has no base: set key `base` in [images.agent.image] (e.g. base = \"docker.io/library/python:3.12-slim\"), name a stock recipe with `recipe = \"node\"`, or pass --base",
            ),
            (
                "recipe = \"node\"\n[target.staging]\nimage.env = { A = \"1\" }\n",
                None,
                target("stage"),
                "hoist.toml:2:9: target `stage` does not exist: hoist.toml has no [target.stage]; its targets are dev, prod, staging",
            ),
            (
                "[image]\nbase = \"alpine\"\n",
                None,
                target("qa"),
                "hoist.toml:1:1: target `qa` does not exist: hoist.toml has no [target.qa]; its targets are dev, prod",
            ),
            (
                "recipe = \"rails\"\n",
                None,
                Overrides::default(),
                "hoist.toml:1:10: key `recipe`: there is no stock recipe `rails`; use one of node, nextjs-standalone, python, static",
            ),
            (
                "[images.web]\n",
                Some("api"),
                Overrides::default(),
                "hoist.toml:1:1: there is no image `api`; its images are web",
            ),
        ];
        for (src, image, o, want) in cases {
            let p = project(src);
            let got = p.resolve(*image, o).and_then(|r| r.base().map(|_| ()));
            assert_eq!(got.unwrap_err().to_string(), *want, "for:\n{src}");
        }
    }

    #[test]
    fn layers_in_order() {
        let p = project(
            r#"
recipe = "node"
[image]
env = { LOG = "info" }
[target.dev]
image.env = { LOG = "debug" }
[images.web]
context = "web"
[images.web.image]
cmd = ["node", "web.js"]
[images.web.target.dev]
image.cmd = ["node", "--watch", "web.js"]
"#,
        );
        let prod = p.resolve(Some("web"), &Overrides::default()).unwrap();
        let env = |r: &Resolved, k: &str| {
            r.spec
                .image
                .env
                .iter()
                .find(|e| e.0 == k)
                .map(|e| e.1.clone())
        };
        assert_eq!(prod.context, Path::new("/p/app/web"));
        assert_eq!(prod.recipe.as_deref(), Some("node"));
        assert_eq!(env(&prod, "NODE_ENV").as_deref(), Some("production"));
        assert_eq!(env(&prod, "LOG").as_deref(), Some("info"));
        assert_eq!(prod.spec.image.cmd.as_ref().unwrap(), &["node", "web.js"]);
        assert_eq!(prod.spec.deps.dev, None);
        let dev = p.resolve(Some("web"), &target("dev")).unwrap();
        assert_eq!(env(&dev, "NODE_ENV").as_deref(), Some("development"));
        assert_eq!(env(&dev, "LOG").as_deref(), Some("debug"));
        assert_eq!(
            dev.spec.image.cmd.as_ref().unwrap(),
            &["node", "--watch", "web.js"]
        );
        assert_eq!(dev.spec.deps.dev, Some(true));
        // The command line wins over everything, and --recipe over the file's.
        let mut o = target("dev");
        o.recipe = Some("python".into());
        o.spec.image.cmd = Some(vec!["python3".into(), "x.py".into()]);
        let cli = p.resolve(Some("web"), &o).unwrap();
        assert_eq!(cli.recipe.as_deref(), Some("python"));
        assert_eq!(cli.spec.image.cmd.as_ref().unwrap(), &["python3", "x.py"]);
        assert_eq!(env(&cli, "PYTHONUNBUFFERED").as_deref(), Some("1"));
        // No file at all: a folder and a recipe.
        let bare = Project {
            file: None,
            context: PathBuf::from("/srv/agent"),
        };
        let r = bare
            .resolve(
                None,
                &Overrides {
                    recipe: Some("python".into()),
                    ..Overrides::default()
                },
            )
            .unwrap();
        assert_eq!(r.name, "agent");
        assert!(r.base().is_ok());
    }
}
