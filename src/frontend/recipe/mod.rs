//! Recipes: what an image is made of, written down (hoist.toml, or a stock
//! recipe built into hoist), and how the pieces are laid over each other.
//!
//! A recipe is data. This module reads it ([`file`](mod@file)), keeps the stock ones
//! ([`stock`]), works out what one image of a project is for one target
//! ([`project`]), guesses which stock recipe fits a folder ([`detect`]) and
//! writes a commented hoist.toml for `hoist init` ([`init`]). Turning the
//! result into a build is `build`'s job.
//!
//! Settings are layers ([`spec::Spec`]), each saying only what it changes,
//! laid in this order, the later winning:
//!
//! 1. the stock recipe (`--recipe`, or `recipe = "..."` in the file), then
//!    its `[target.NAME]`;
//! 2. the file's top level, then its `[target.NAME]`;
//! 3. the image's `[images.NAME]` sections, then its `[target.NAME]`;
//! 4. the command line's flags.
//!
//! The `dev` target always exists and keeps development dependencies;
//! `prod` is the default and changes nothing.

pub mod detect;
pub mod file;
pub mod init;
pub mod location;
pub mod lower;
pub mod node_build;
pub mod project;
pub mod spec;
pub mod stock;

pub use file::{parse, RecipeFile};
pub use location::Location;
pub use project::{Project, Resolved};
pub use spec::Spec;

/// Why a recipe cannot be used. Every variant says where (file, line,
/// column), which key, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("{at}: {why}")]
    Syntax { at: Location, why: String },
    #[error("{at}: {table} unknown key `{key}`; {hint}")]
    UnknownKey {
        at: Location,
        table: String,
        key: String,
        hint: String,
    },
    #[error("{at}: {table} key `{key}`: {why}")]
    WrongType {
        at: Location,
        table: String,
        key: String,
        why: String,
    },
    #[error("{at}: {table} key `{key}`: {why}")]
    BadValue {
        at: Location,
        table: String,
        key: String,
        why: String,
    },
    #[error("{at}: key `recipe`: there is no stock recipe `{name}`; use one of {known}")]
    UnknownRecipe {
        at: Location,
        name: String,
        known: String,
    },
    #[error("{at}: image `{image}` has no base: set key `base` in {table} (e.g. base = \"{example}\"), name a stock recipe with `recipe = \"node\"`, or pass --base")]
    MissingBase {
        at: Location,
        image: String,
        table: String,
        example: &'static str,
    },
    #[error("{at}: target `{target}` does not exist: {file} has no [target.{target}]; its targets are {known}")]
    NoSuchTarget {
        at: Location,
        target: String,
        file: String,
        known: String,
    },
    #[error("reading {path}: {why}")]
    Read { path: String, why: String },
    #[error("writing {path}: {why}")]
    Write { path: String, why: String },
    #[error("{path} exists; pass --force to replace it")]
    Exists { path: String },
    #[error("--base `{base}`: {why}")]
    BadBase { base: String, why: String },
    #[error("--recipe `{name}`: there is no stock recipe `{name}`; use one of {known}")]
    UnknownStock { name: String, known: String },
    #[error("`{what}` is neither an image of {file} (its images are {known}) nor an app folder")]
    NotImageOrFolder {
        what: String,
        file: String,
        known: String,
    },
    #[error("{at}: there is no image `{image}`; its images are {known}")]
    NoSuchImage {
        at: Location,
        image: String,
        known: String,
    },
}
