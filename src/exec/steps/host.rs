//! The host build step (`[build] run = ["npm", "run", "build"]`): a
//! command run in the context on the host before the image is
//! assembled, as ko runs `go build`, whose declared outputs feed the app
//! layer.
//!
//! It is skipped when its declared inputs are byte for byte what they were
//! when it last succeeded and its outputs are still there: the inputs'
//! hashes are kept in the store (`keys/host-step/`), keyed by the
//! context's path and the command, so nothing is written into the
//! project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::digest::Digest;
use crate::exec::steps::context::{Context, ContextError, EntryKind, Filter};
use crate::store::{Store, StoreError};

/// A step to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStep {
    pub run: Vec<String>,
    /// Patterns (`.dockerignore` syntax) of the files it reads.
    pub inputs: Vec<String>,
    /// Paths it makes, relative to the context.
    pub outputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("[build] run: cannot start `{cmd}` in {dir}: {source}")]
    Start {
        cmd: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[build] run: `{cmd}` failed ({status}) in {dir}; fix the build, or run it yourself to see why")]
    Failed {
        cmd: String,
        dir: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("[build] run: `{cmd}` finished but `{output}` (declared in [build] outputs) is not in {dir}")]
    MissingOutput {
        cmd: String,
        dir: PathBuf,
        output: String,
    },
    #[error("[build] inputs: {0}")]
    Inputs(#[from] ContextError),
    #[error("[build] inputs: reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether the step must run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Inputs unchanged since it last succeeded, outputs present.
    Skip,
    Run(String),
}

/// What the step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub command: String,
    pub ran: bool,
    /// Why it ran, or "inputs unchanged".
    pub why: String,
}

impl HostStep {
    fn command_line(&self) -> String {
        shell_words::join(&self.run)
    }

    fn stamp_name(&self, root: &Path) -> String {
        let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        Digest::of(format!("{}\n{}", abs.display(), self.command_line()).as_bytes())
            .hex()
            .to_owned()
    }

    /// Each input file's sha256, by path relative to the context.
    fn input_hashes(&self, root: &Path) -> Result<BTreeMap<String, String>, StepError> {
        let mut out = BTreeMap::new();
        if self.inputs.is_empty() {
            return Ok(out);
        }
        let filter = Filter {
            include: self.inputs.clone(),
            ..Filter::default()
        };
        // No ignore file: inputs are what the step reads, whatever the
        // image keeps.
        let ctx = Context::scan_filtered(root, ".hoist-inputs-have-no-ignore-file", &filter)?;
        for e in &ctx.entries {
            if let EntryKind::File { .. } | EntryKind::Hardlink { .. } = e.kind {
                let p = ctx.host_path(e);
                let bytes = fs_err::read(&p).map_err(|source| StepError::Read {
                    path: p.clone(),
                    source,
                })?;
                out.insert(e.rel.clone(), Digest::of(&bytes).hex().to_owned());
            }
        }
        Ok(out)
    }

    /// Decides without running anything or writing anything.
    pub fn verdict(&self, root: &Path, store: &Store) -> Result<Verdict, StepError> {
        if self.inputs.is_empty() {
            return Ok(Verdict::Run(
                "it declares no inputs, so it always runs".into(),
            ));
        }
        let now = self.input_hashes(root)?;
        let before: Option<BTreeMap<String, String>> = store
            .get_key("host-step", &self.stamp_name(root))?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(before) = before else {
            return Ok(Verdict::Run("it has not run before".into()));
        };
        if let Some(missing) = self.outputs.iter().find(|o| !root.join(o).exists()) {
            return Ok(Verdict::Run(format!("its output {missing} is missing")));
        }
        let changed = changed_files(&before, &now);
        Ok(match changed.is_empty() {
            true => Verdict::Skip,
            false => Verdict::Run(format!("changed: {}", changed.join(", "))),
        })
    }

    /// Runs the step unless its inputs are unchanged. The command's
    /// output goes to stderr, so stdout stays the image digest.
    pub fn run_if_needed(&self, root: &Path, store: &Store) -> Result<StepOutcome, StepError> {
        let command = self.command_line();
        let why = match self.verdict(root, store)? {
            Verdict::Skip => {
                return Ok(StepOutcome {
                    command,
                    ran: false,
                    why: "inputs unchanged".into(),
                })
            }
            Verdict::Run(why) => why,
        };
        let (program, args) = self.run.split_first().ok_or_else(|| StepError::Start {
            cmd: command.clone(),
            dir: root.to_owned(),
            source: std::io::Error::other("the command is empty"),
        })?;
        let status = Command::new(program)
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|source| StepError::Start {
                cmd: command.clone(),
                dir: root.to_owned(),
                source,
            })?;
        if !status.success() {
            return Err(StepError::Failed {
                cmd: command,
                dir: root.to_owned(),
                status,
            });
        }
        if let Some(missing) = self.outputs.iter().find(|o| !root.join(o).exists()) {
            return Err(StepError::MissingOutput {
                cmd: command,
                dir: root.to_owned(),
                output: missing.clone(),
            });
        }
        if !self.inputs.is_empty() {
            let now = self.input_hashes(root)?;
            let json = serde_json::to_vec(&now).unwrap_or_default();
            store.put_key("host-step", &self.stamp_name(root), &json)?;
        }
        Ok(StepOutcome {
            command,
            ran: true,
            why,
        })
    }
}

/// The paths whose hashes differ between two listings (added, removed or
/// changed), in order.
pub fn changed_files(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| match before.contains_key(k) {
            true => k.clone(),
            false => format!("{k} (new)"),
        })
        .collect();
    out.extend(
        before
            .keys()
            .filter(|k| !now.contains_key(*k))
            .map(|k| format!("{k} (removed)")),
    );
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_once_then_skips_until_an_input_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        fs_err::create_dir_all(root.join("src")).unwrap();
        fs_err::write(root.join("src/a.js"), "a").unwrap();
        fs_err::write(root.join("notes.txt"), "n").unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let step = HostStep {
            run: vec![
                "sh".into(),
                "-c".into(),
                "mkdir -p dist && cat src/a.js >> dist/out && echo ran".into(),
            ],
            inputs: vec!["src".into()],
            outputs: vec!["dist".into()],
        };
        let first = step.run_if_needed(&root, &store).unwrap();
        assert!(
            first.ran && first.why == "it has not run before",
            "{first:?}"
        );
        let second = step.run_if_needed(&root, &store).unwrap();
        assert!(!second.ran, "{second:?}");
        fs_err::write(root.join("notes.txt"), "not an input").unwrap();
        assert_eq!(step.verdict(&root, &store).unwrap(), Verdict::Skip);
        fs_err::write(root.join("src/a.js"), "b").unwrap();
        assert_eq!(
            step.verdict(&root, &store).unwrap(),
            Verdict::Run("changed: src/a.js".into())
        );
        step.run_if_needed(&root, &store).unwrap();
        fs_err::remove_dir_all(root.join("dist")).unwrap();
        assert_eq!(
            step.verdict(&root, &store).unwrap(),
            Verdict::Run("its output dist is missing".into())
        );
        let bad = HostStep {
            outputs: vec!["build".into()],
            ..step.clone()
        };
        let err = bad.run_if_needed(&root, &store).unwrap_err().to_string();
        assert!(
            err.contains("`build` (declared in [build] outputs) is not in"),
            "{err}"
        );
        let failing = HostStep {
            run: vec!["false".into()],
            inputs: vec![],
            outputs: vec![],
        };
        let err = failing
            .run_if_needed(&root, &store)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[build] run: `false` failed (exit status: 1)"),
            "{err}"
        );
    }
}
