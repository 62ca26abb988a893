//! SPDX 2.3 JSON (spdx.github.io/spdx-spec/v2.3), as its JSON schema
//! (`schemas/spdx-schema.json` of the spec) reads it.
//!
//! One package per thing in the image: the image itself (purpose
//! CONTAINER), its base (CONTAINER) and the base's operating system
//! (OPERATING_SYSTEM, from os-release), and each npm package or wheel
//! (LIBRARY). Relationships: the document DESCRIBES the image; the image
//! is a DESCENDANT_OF its base and CONTAINS each package; the base
//! CONTAINS its operating system. Licences are NOASSERTION: hoist reads
//! lockfiles and pins, not licence texts.
//!
//! The namespace is `https://spdx.org/spdxdocs/NAME-UUID` as the spec
//! suggests for writers without a domain of their own, the UUID derived
//! from the image digest.

use serde_json::{json, Value};

use super::{purl, uuid, Inventory};
use crate::deps::{Ecosystem, HashAlgorithm, Package};

const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-Image";
const BASE_ID: &str = "SPDXRef-Base";
const OS_ID: &str = "SPDXRef-OperatingSystem";

/// The document for `inv`, created at `created` (RFC 3339).
pub fn document(inv: &Inventory, created: &str) -> Value {
    let img = &inv.image;
    let base = &inv.base;
    let mut packages = vec![json!({
        "name": img.name,
        "SPDXID": IMAGE_ID,
        "versionInfo": img.manifest.digest.as_str(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": img.manifest.digest.hex()}],
        "externalRefs": [purl_ref(purl::oci(
            &img.name,
            &img.manifest.digest,
            Some(&img.platform.architecture),
            Some(&img.platform.os),
            img.repository.as_deref(),
            img.tag.as_deref(),
        ))],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    })];
    packages.push(json!({
        "name": base.name,
        "SPDXID": BASE_ID,
        "versionInfo": base.manifest_digest.as_str(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": base.manifest_digest.hex()}],
        "externalRefs": [purl_ref(purl::oci(
            &base.name,
            &base.manifest_digest,
            Some(&base.platform.architecture),
            Some(&base.platform.os),
            base.repository.as_deref(),
            base.tag.as_deref(),
        ))],
        "sourceInfo": format!("the base image, read from {}", base.source),
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    }));
    let mut relationships = vec![
        relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID),
        relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID),
    ];
    if let Some(os) = &base.os {
        let mut p = json!({
            "name": os.id,
            "SPDXID": OS_ID,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
        });
        if let Some(v) = &os.version_id {
            p["versionInfo"] = json!(v);
        }
        if let Some(d) = &os.pretty_name {
            p["description"] = json!(d);
        }
        packages.push(p);
        relationships.push(relationship(BASE_ID, "CONTAINS", OS_ID));
    }
    let mut ids: Vec<String> = Vec::new();
    for p in &inv.packages {
        let id = unique_id(p, &ids);
        packages.push(package(p, &id, inv.base.os.as_ref().map(|o| o.id.as_str())));
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
        ids.push(id);
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", img.repository.as_deref().unwrap_or(&img.name), img.manifest.digest),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/{}-{}",
            img.name,
            uuid(&format!("hoist spdx {}", img.manifest.digest))
        ),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

fn package(p: &Package, id: &str, distro: Option<&str>) -> Value {
    let mut v = json!({
        "name": p.name,
        "SPDXID": id,
        "versionInfo": p.version,
        "downloadLocation": p.download.as_deref().map_or(NOASSERTION.to_owned(), strip_credentials),
        "filesAnalyzed": false,
        "primaryPackagePurpose": "LIBRARY",
    });
    if let Some(f) = &p.file {
        v["packageFileName"] = json!(f);
    }
    if !p.hashes.is_empty() {
        v["checksums"] = p
            .hashes
            .iter()
            .map(|h| {
                json!({
                    "algorithm": match h.algorithm {
                        HashAlgorithm::Sha1 => "SHA1",
                        HashAlgorithm::Sha256 => "SHA256",
                        HashAlgorithm::Sha384 => "SHA384",
                        HashAlgorithm::Sha512 => "SHA512",
                    },
                    "checksumValue": h.hex,
                })
            })
            .collect();
    }
    v["externalRefs"] = json!([purl_ref(purl::package(p, distro))]);
    v["licenseConcluded"] = json!(NOASSERTION);
    v["licenseDeclared"] = json!(NOASSERTION);
    v["copyrightText"] = json!(NOASSERTION);
    v
}

/// `SPDXRef-npm-NAME-VERSION` with every character SPDX ids may not hold
/// (`[A-Za-z0-9.-]` only) written `-`; a clash gets a counter.
fn unique_id(p: &Package, taken: &[String]) -> String {
    let eco = match p.ecosystem {
        Ecosystem::Npm => "npm",
        Ecosystem::Pypi => "pypi",
        Ecosystem::Deb => "deb",
        Ecosystem::Apk => "apk",
    };
    let clean: String = format!("{}-{}", p.name.trim_start_matches('@'), p.version)
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '-',
            },
        )
        .collect();
    let first = format!("SPDXRef-{eco}-{clean}");
    let mut id = first.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{first}-{n}");
        n += 1;
    }
    id
}

fn purl_ref(locator: String) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

/// A URL without `user:password@`: an SBOM is published, credentials
/// must not be.
pub(crate) fn strip_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_spdx_safe_and_unique() {
        let p = |name: &str, version: &str| Package {
            ecosystem: Ecosystem::Npm,
            name: name.into(),
            version: version.into(),
            download: None,
            file: None,
            path: None,
            hashes: Vec::new(),
        };
        let mut taken = Vec::new();
        for (name, version, want) in [
            ("@babel/core", "7.26.0", "SPDXRef-npm-babel-core-7.26.0"),
            ("a_b", "1.0.0+x", "SPDXRef-npm-a-b-1.0.0-x"),
            ("a-b", "1.0.0-x", "SPDXRef-npm-a-b-1.0.0-x-2"),
            ("a-b", "1.0.0-x", "SPDXRef-npm-a-b-1.0.0-x-3"),
        ] {
            let id = unique_id(&p(name, version), &taken);
            assert_eq!(id, want);
            taken.push(id);
        }
    }

    #[test]
    fn credentials_are_left_out() {
        for (url, want) in [
            (
                "https://u:p@npm.example.com/a/-/a-1.tgz",
                "https://npm.example.com/a/-/a-1.tgz",
            ),
            (
                "https://files.pythonhosted.org/x.whl",
                "https://files.pythonhosted.org/x.whl",
            ),
            ("not a url", "not a url"),
        ] {
            assert_eq!(strip_credentials(url), want);
        }
    }
}
