//! Integration tests: hoist against real bases made by third-party tools,
//! its output checked by real readers (skopeo, umoci, oci-image-tool,
//! podman, docker). One test binary, shared helpers in `support`.

mod bad_input;
mod base_paths;
mod base_verify;
mod build;
mod bundle;
mod cache;
mod chunked;
mod distroless;
mod dockerfile;
mod dockerfile_add;
mod engine;
mod fake_registry;
mod fault_proxy;
mod faults;
mod formats;
mod layout;
mod native_vs_sandbox;
mod npm;
mod pip;
mod progress;
mod rcache;
mod recipe;
mod registry;
mod registry_trust;
mod run_as_root;
mod sandbox;
mod sbom;
mod segments;
mod stages;
mod support;
