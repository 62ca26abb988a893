//! Per-registry TLS files in `certs.d` folders, as Docker and podman keep
//! them: `ROOT/HOST[:PORT]/` holds `*.crt` (extra CA certificates) and
//! `NAME.cert` + `NAME.key` (a client certificate and its key).
//!
//! The roots are searched in order and the first that has a folder for the
//! registry is used (containers/image does the same): by default
//! `~/.config/containers/certs.d`, `/etc/containers/certs.d`,
//! `/etc/docker/certs.d`. A key without its certificate, or a certificate
//! without its key, is an error rather than a silent plain connection.

use std::path::{Path, PathBuf};

/// The TLS files found for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The folder they were found in.
    pub dir: PathBuf,
    /// CA certificates (`*.crt`), sorted by name.
    pub cas: Vec<PathBuf>,
    /// The client certificate and key (`NAME.cert`, `NAME.key`); the first
    /// pair by name when there are several.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// What is wrong with a certs.d folder.
#[derive(Debug, thiserror::Error)]
#[error("{dir}: {why}")]
pub struct CertsError {
    pub dir: String,
    pub why: String,
}

/// The default roots (see the module docs).
pub fn default_roots() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        out.push(PathBuf::from(home).join(".config/containers/certs.d"));
    }
    out.push(PathBuf::from("/etc/containers/certs.d"));
    out.push(PathBuf::from("/etc/docker/certs.d"));
    out
}

/// Finds the TLS files for `registry` (`host[:port]`) under the first root
/// that has a folder for it.
pub fn discover(roots: &[PathBuf], registry: &str) -> Result<Option<TlsFiles>, CertsError> {
    for root in roots {
        let dir = root.join(registry);
        if dir.is_dir() {
            return read_dir(&dir).map(Some);
        }
    }
    Ok(None)
}

fn read_dir(dir: &Path) -> Result<TlsFiles, CertsError> {
    let err = |why: String| CertsError {
        dir: dir.display().to_string(),
        why,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut cas = Vec::new();
    let mut client = None;
    for name in &names {
        if name.ends_with(".crt") {
            cas.push(dir.join(name));
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(err(format!(
                    "client certificate {name} has no key {key} beside it"
                )));
            }
            if client.is_none() {
                client = Some((dir.join(name), dir.join(key)));
            }
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !names.contains(&cert) {
                return Err(err(format!(
                    "key {name} has no client certificate {cert} beside it"
                )));
            }
        }
    }
    Ok(TlsFiles {
        dir: dir.to_owned(),
        cas,
        client,
    })
}

/// Adds the files' CAs and client identity to a client builder.
pub fn apply(
    mut builder: reqwest::blocking::ClientBuilder,
    files: &TlsFiles,
) -> Result<reqwest::blocking::ClientBuilder, CertsError> {
    let err = |path: &Path, why: String| CertsError {
        dir: path.display().to_string(),
        why,
    };
    let mut certs = Vec::new();
    for ca in &files.cas {
        let pem = std::fs::read(ca).map_err(|e| err(ca, e.to_string()))?;
        let found = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(ca, format!("not a PEM certificate: {e}")))?;
        if found.is_empty() {
            return Err(err(ca, "holds no PEM certificate".into()));
        }
        certs.extend(found);
    }
    if !certs.is_empty() {
        builder = builder.tls_certs_merge(certs);
    }
    if let Some((cert, key)) = &files.client {
        let mut pem = std::fs::read(cert).map_err(|e| err(cert, e.to_string()))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).map_err(|e| err(key, e.to_string()))?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            err(
                cert,
                format!(
                    "with {} is not a usable client certificate and key: {e}",
                    key.display()
                ),
            )
        })?;
        builder = builder.identity(id);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_table() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let mk = |dir: &Path, files: &[&str]| {
            std::fs::create_dir_all(dir).unwrap();
            for f in files {
                std::fs::write(dir.join(f), "x").unwrap();
            }
        };
        mk(
            &a.join("reg.example:5000"),
            &["ca.crt", "z.crt", "client.cert", "client.key", "README"],
        );
        mk(&b.join("reg.example:5000"), &["other.crt"]);
        mk(&b.join("only-b.example"), &["b.crt"]);
        mk(&a.join("lonely-key.example"), &["c.key"]);
        mk(&a.join("lonely-cert.example"), &["c.cert"]);
        mk(&a.join("empty.example"), &[]);
        let roots = vec![a.clone(), b.clone()];

        let got = discover(&roots, "reg.example:5000").unwrap().unwrap();
        assert_eq!(got.dir, a.join("reg.example:5000"));
        assert_eq!(
            got.cas,
            vec![
                a.join("reg.example:5000/ca.crt"),
                a.join("reg.example:5000/z.crt")
            ]
        );
        assert_eq!(
            got.client,
            Some((
                a.join("reg.example:5000/client.cert"),
                a.join("reg.example:5000/client.key")
            ))
        );
        let got = discover(&roots, "only-b.example").unwrap().unwrap();
        assert_eq!(got.cas, vec![b.join("only-b.example/b.crt")]);
        assert_eq!(got.client, None);
        let got = discover(&roots, "empty.example").unwrap().unwrap();
        assert!(got.cas.is_empty() && got.client.is_none());
        assert_eq!(discover(&roots, "reg.example").unwrap(), None);
        for bad in ["lonely-key.example", "lonely-cert.example"] {
            let e = discover(&roots, bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        // A bad PEM is reported with its path.
        let files = discover(&roots, "only-b.example").unwrap().unwrap();
        let e = apply(crate::net::builder(), &files)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("b.crt"), "{e}");
    }
}
