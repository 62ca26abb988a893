//! CycloneDX 1.5 JSON (cyclonedx.org/docs/1.5/json), as its JSON schema
//! (`bom-1.5.schema.json`) reads it.
//!
//! The image is the BOM's `metadata.component` (type `container`); the
//! components are its base (`container`), the base's operating system
//! (`operating-system`, from os-release) and each npm package or wheel
//! (`library`, with its purl, hashes and where it was downloaded from).
//! `dependencies` say what is built on what: the image on its base and
//! its packages, the base on its operating system. An npm scope is the
//! component's `group`, as CycloneDX's own npm tools write it.
//!
//! The serial number is a UUID derived from the image digest, so that it
//! is unique to the image and the same for every build of it.

use serde_json::{json, Value};

use super::{purl, spdx::strip_credentials, uuid, Inventory};
use crate::deps::{Ecosystem, HashAlgorithm, Package};

const IMAGE_REF: &str = "image";
const BASE_REF: &str = "base";
const OS_REF: &str = "operating-system";

/// The BOM for `inv`, made at `created` (RFC 3339).
pub fn document(inv: &Inventory, created: &str) -> Value {
    let img = &inv.image;
    let base = &inv.base;
    let image = json!({
        "type": "container",
        "bom-ref": IMAGE_REF,
        "name": img.repository.as_deref().unwrap_or(&img.name),
        "version": img.manifest.digest.as_str(),
        "hashes": [{"alg": "SHA-256", "content": img.manifest.digest.hex()}],
        "purl": purl::oci(
            &img.name,
            &img.manifest.digest,
            Some(&img.platform.architecture),
            Some(&img.platform.os),
            img.repository.as_deref(),
            img.tag.as_deref(),
        ),
    });
    let mut components = vec![json!({
        "type": "container",
        "bom-ref": BASE_REF,
        "name": base.repository.as_deref().unwrap_or(&base.name),
        "version": base.manifest_digest.as_str(),
        "description": format!("the base image, read from {}", base.source),
        "hashes": [{"alg": "SHA-256", "content": base.manifest_digest.hex()}],
        "purl": purl::oci(
            &base.name,
            &base.manifest_digest,
            Some(&base.platform.architecture),
            Some(&base.platform.os),
            base.repository.as_deref(),
            base.tag.as_deref(),
        ),
    })];
    let mut dependencies = Vec::new();
    if let Some(os) = &base.os {
        let mut c = json!({
            "type": "operating-system",
            "bom-ref": OS_REF,
            "name": os.id,
        });
        if let Some(v) = &os.version_id {
            c["version"] = json!(v);
        }
        if let Some(d) = &os.pretty_name {
            c["description"] = json!(d);
        }
        components.push(c);
        dependencies.push(json!({"ref": BASE_REF, "dependsOn": [OS_REF]}));
    }
    let mut refs = vec![json!(BASE_REF)];
    for p in &inv.packages {
        let c = component(p, base.os.as_ref().map(|o| o.id.as_str()));
        refs.push(c["bom-ref"].clone());
        components.push(c);
    }
    dependencies.insert(0, json!({"ref": IMAGE_REF, "dependsOn": refs}));
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid(&format!("hoist cyclonedx {}", img.manifest.digest))),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{
                "type": "application",
                "name": "hoist",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": image,
        },
        "components": components,
        "dependencies": dependencies,
    })
}

fn component(p: &Package, distro: Option<&str>) -> Value {
    let purl = purl::package(p, distro);
    let mut c = json!({"type": "library", "bom-ref": purl});
    match (
        p.ecosystem,
        p.name.strip_prefix('@').and_then(|s| s.split_once('/')),
    ) {
        (Ecosystem::Npm, Some((scope, name))) => {
            c["group"] = json!(format!("@{scope}"));
            c["name"] = json!(name);
        }
        _ => c["name"] = json!(p.name),
    }
    c["version"] = json!(p.version);
    if !p.hashes.is_empty() {
        c["hashes"] = p
            .hashes
            .iter()
            .map(|h| {
                json!({
                    "alg": match h.algorithm {
                        HashAlgorithm::Sha1 => "SHA-1",
                        HashAlgorithm::Sha256 => "SHA-256",
                        HashAlgorithm::Sha384 => "SHA-384",
                        HashAlgorithm::Sha512 => "SHA-512",
                    },
                    "content": h.hex,
                })
            })
            .collect();
    }
    c["purl"] = json!(purl);
    if let Some(url) = &p.download {
        c["externalReferences"] = json!([{
            "type": "distribution",
            "url": strip_credentials(url),
        }]);
    }
    c
}
