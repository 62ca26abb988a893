//! The Dockerfile language as data, in BuildKit's three rungs
//! (moby/buildkit `frontend/dockerfile`):
//!
//! - [`parser`]: bytes -> a syntax tree, one [`parser::Node`] per
//!   instruction with its line range: parser directives, comments, line
//!   continuations, heredocs, JSON or shell form, flags. No meaning yet.
//! - [`instructions`]: nodes -> typed instructions grouped into stages,
//!   meta ARGs before the first FROM, every flag checked against the
//!   instruction that takes it; [`mount`] is `RUN --mount`'s own grammar.
//! - [`shell`]: docker's word and variable expansion (the lexer), and
//!   [`expand`], which applies it where docker does, with docker's ARG
//!   scoping, before anything else reads a value.
//!
//! The expansion is a file of its own (BuildKit spreads it over the
//! instructions' `Expand` methods and its dispatcher) so that which values
//! expand and how ARGs are scoped read in one place.
//!
//! Lowering comes next: turning expanded stages into a
//! [`crate::graph::Graph`] (resolving `COPY --from`, users, the native
//! installs) and wiring `hoist build -f Dockerfile` are not here yet.
//! Nothing here reads a file or runs anything: each rung takes the one
//! before it as data, so each is tested table-driven on its own.

pub mod accounts;
pub mod expand;
pub mod instructions;
pub mod lower;
pub mod mount;
pub mod native;
pub mod parser;
pub mod shell;

/// A Dockerfile that cannot be read, with where and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct DockerfileError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}
