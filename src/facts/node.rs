//! The image's `node`, as its filesystem shows it.
//!
//! The node images put it on `PATH` (`/usr/local/bin/node`), Debian's
//! package in `/usr/bin`; distroless's nodejs images keep the nodejs.org
//! build in `/nodejs/bin/node`, off `PATH`, and start it by their
//! `Entrypoint`. Install scripts and health checks need the program
//! itself, so the first found, in that order, is the image's node.

use super::merged::{kind_only, Outcome, RecKind, Resolved, Scan};
use super::FactsError;
use crate::layer::ImagePath;

/// Where a node binary may be: the `PATH` the images set, in its order,
/// then distroless's folder.
pub(super) const NODE_PATHS: &[&str] = &[
    "usr/local/sbin/node",
    "usr/local/bin/node",
    "usr/sbin/node",
    "usr/bin/node",
    "sbin/node",
    "bin/node",
    "nodejs/bin/node",
];

/// The first of [`NODE_PATHS`] that resolves to something other than a
/// folder, as the path it was found at.
pub(super) fn node(scan: &Scan) -> Result<Outcome<Option<ImagePath>>, FactsError> {
    let mut needs = Vec::new();
    let mut first = None;
    for path in NODE_PATHS {
        match scan.resolve(path)? {
            Outcome::Need(n) => needs.extend(kind_only(n)),
            Outcome::Ready(Resolved::Found { rec, .. }) if !matches!(rec.kind, RecKind::Dir) => {
                if needs.is_empty() && first.is_none() {
                    first = ImagePath::new(path).ok();
                }
            }
            Outcome::Ready(_) => {}
        }
    }
    Ok(if first.is_some() || needs.is_empty() {
        Outcome::Ready(first)
    } else {
        Outcome::Need(needs)
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::read_facts;
    use crate::layer::reader::tests::RawTar;

    #[test]
    fn node_paths_table() {
        type Case = (&'static str, Vec<Vec<u8>>, Option<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "none",
                vec![RawTar::new().file("etc/passwd", b"").finish()],
                None,
            ),
            (
                "debian's",
                vec![RawTar::new().file("usr/bin/node", b"\x7fELF").finish()],
                Some("usr/bin/node"),
            ),
            (
                "distroless's",
                vec![RawTar::new().file("nodejs/bin/node", b"\x7fELF").finish()],
                Some("nodejs/bin/node"),
            ),
            (
                "PATH first",
                vec![
                    RawTar::new().file("nodejs/bin/node", b"\x7fELF").finish(),
                    RawTar::new()
                        .symlink("usr/local/bin/node", "../../../nodejs/bin/node")
                        .finish(),
                ],
                Some("usr/local/bin/node"),
            ),
            (
                "a dangling link is none",
                vec![RawTar::new().symlink("usr/bin/node", "nodejs").finish()],
                None,
            ),
        ];
        for (name, tars, want) in cases {
            let (_d, s) = store();
            let layers: Vec<_> = tars.iter().map(|t| raw_layer(&s, t)).collect();
            let facts = read_facts(&s, &layers).unwrap();
            assert_eq!(facts.node.as_ref().map(|p| p.as_str()), want, "{name}");
        }
    }
}
