//! The network underneath everything that downloads: one HTTP client setup
//! ([`client`](mod@client)), one retry policy ([`retry`]) and one way to run downloads
//! side by side ([`parallel`]).
//!
//! The registry client, npm's tarball fetcher and pip's index and wheel
//! downloads each speak their own protocol, but they meet the same
//! networks: corporate CAs and proxies, servers that shed load with 429
//! and 503, connections that drop mid-transfer. Those answers are given
//! once, here, so a fix to one (a proxy variable, a status worth retrying,
//! the `Retry-After` cap) reaches all three and a user sees one behaviour.
//!
//! The client is reqwest's blocking one with rustls: downloads are I/O
//! bound and independent, so a handful of plain threads over one client
//! ([`parallel::try_map`]) is all the concurrency they need, without an
//! async runtime.
//!
//! This module sits at the bottom with `store` and `transport`: it knows
//! nothing of registries or package managers, and imports none of them.

pub mod client;
pub mod parallel;
pub mod retry;

pub use client::{builder, client, USER_AGENT};
pub use retry::{Attempt, RetryPolicy};
