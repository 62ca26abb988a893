//! What the last successful build of an image used (its base, its deps
//! inputs, its app layer's entries), kept in the store so that the next
//! `--dry-run` can say which input changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::BuildOptions;
use crate::digest::Digest;
use crate::exec::steps::app::AppFiles;
use crate::store::{Store, StoreError};

/// The files whose bytes decide a deps layer, besides the options.
pub const DEPS_INPUTS: &[&str] = &[
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    ".npmrc",
    "requirements.txt",
    "pylock.toml",
];

/// What the last successful build of an image used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub base: String,
    pub deps_options: String,
    pub deps: BTreeMap<String, String>,
    pub app: BTreeMap<String, String>,
}

/// The record's name: the image's identity across builds.
pub fn record_name(opts: &BuildOptions) -> String {
    let abs = std::path::absolute(&opts.context).unwrap_or_else(|_| opts.context.clone());
    Digest::of(
        format!(
            "{}\n{}\ndev={}\n{}",
            abs.display(),
            opts.platform,
            opts.deps.dev,
            opts.workdir
        )
        .as_bytes(),
    )
    .hex()
    .to_owned()
}

pub fn deps_inputs(opts: &BuildOptions) -> BTreeMap<String, String> {
    deps_inputs_in(&opts.context)
}

/// The files of `dir` that decide its deps, each with its content hash.
pub fn deps_inputs_in(dir: &std::path::Path) -> BTreeMap<String, String> {
    DEPS_INPUTS
        .iter()
        .filter_map(|f| {
            let bytes = fs_err::read(dir.join(f)).ok()?;
            Some(((*f).to_owned(), Digest::of(&bytes).hex().to_owned()))
        })
        .collect()
}

/// [`deps_inputs_in`] as key text: a line per file, `NAME HASH`.
pub fn inputs_text(dir: &std::path::Path) -> String {
    deps_inputs_in(dir)
        .iter()
        .map(|(f, h)| format!("{f} {h}\n"))
        .collect()
}

pub fn deps_options(opts: &BuildOptions, base: &Digest) -> String {
    format!(
        "{:?} dev={} base={} {} {:?} epoch={}",
        opts.deps.kind, opts.deps.dev, base, opts.platform, opts.compression, opts.epoch
    )
}

/// Remembers what a successful build used, for the next dry run.
pub fn save_record(
    opts: &BuildOptions,
    store: &Store,
    base: &Digest,
    files: &AppFiles,
) -> Result<(), StoreError> {
    let r = Record {
        base: base.to_string(),
        deps_options: deps_options(opts, base),
        deps: deps_inputs(opts),
        app: files.manifest(),
    };
    let json = serde_json::to_vec(&r).unwrap_or_default();
    // Only `--dry-run` reads it, and a missing or unreadable record only
    // makes its report say less: a hint, not worth two fsyncs per build.
    store.put_hint("last-build", &record_name(opts), &json)
}
