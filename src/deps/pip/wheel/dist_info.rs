//! The wheel's `.dist-info` folder: finding it, and its `WHEEL` file.
//!
//! A wheel holds exactly one `{name}-{version}.dist-info` folder at its
//! root, and may hold one `{name}-{version}.data` folder beside it; both
//! must name the project and version the wheel's filename names. Names
//! are compared normalised (PEP 503 for the name, PEP 440 for the
//! version), because builders spell them differently
//! (`MarkupSafe-2.1.5.dist-info` in `markupsafe-2.1.5-….whl`). pip checks
//! the name only; hoist checks the version too, so that a renamed file
//! cannot pass for another release.
//!
//! `WHEEL` is in email-header form (`Key: value`, continuation lines
//! indented). Of it an installer needs `Wheel-Version`, whose major
//! version it must understand (1; pip refuses above 1 and so does hoist),
//! and `Root-Is-Purelib`, which says whether the wheel's root goes to
//! purelib or platlib.

use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::PackageName;

/// Why a `WHEEL` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WheelFileError {
    #[error("WHEEL is not UTF-8 text")]
    NotUtf8,
    #[error("WHEEL has no Wheel-Version")]
    NoVersion,
    #[error("WHEEL's Wheel-Version `{0}` is not a version like 1.0")]
    BadVersion(String),
    #[error("WHEEL says Wheel-Version {0}; hoist installs wheels of version 1.x only: pin an older release of the package, or use a newer hoist")]
    Unsupported(String),
}

/// What an installer needs from `WHEEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFile {
    /// `Wheel-Version`, its parts as numbers (`1.0` is `[1, 0]`).
    pub version: Vec<u32>,
    /// `Root-Is-Purelib: true` (any case); otherwise the root is platlib.
    pub root_is_purelib: bool,
}

/// Reads `WHEEL`; refuses a Wheel-Version whose major part is above 1.
pub fn parse_wheel_file(bytes: &[u8]) -> Result<WheelFile, WheelFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WheelFileError::NotUtf8)?;
    let headers = headers(text);
    let get = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    };
    let raw = get("Wheel-Version").ok_or(WheelFileError::NoVersion)?;
    let version = raw
        .split('.')
        .map(|p| p.parse::<u32>())
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| WheelFileError::BadVersion(raw.to_owned()))?;
    if version.first().is_some_and(|&major| major > 1) {
        return Err(WheelFileError::Unsupported(raw.to_owned()));
    }
    Ok(WheelFile {
        version,
        root_is_purelib: get("Root-Is-Purelib").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

/// The header fields of an email-style text, in order, up to the first
/// blank line; an indented line continues the previous field's value.
fn headers(text: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            out.push((key.trim(), value.to_owned()));
        }
    }
    out
}

/// Whether `stem` (a folder name without `.dist-info` or `.data`) names
/// this project and version.
pub fn names_release(stem: &str, name: &PackageName, version: &Version) -> bool {
    let Some((n, v)) = stem.rsplit_once('-') else {
        return false;
    };
    PackageName::from_str(n).is_ok_and(|n| &n == name)
        && Version::from_str(v).is_ok_and(|v| &v == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_file_table() {
        let ok = |version: &[u32], purelib| {
            Ok(WheelFile {
                version: version.to_vec(),
                root_is_purelib: purelib,
            })
        };
        let cases: &[(&str, Result<WheelFile, WheelFileError>)] = &[
            (
                "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.40.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                ok(&[1, 0], true),
            ),
            (
                "Wheel-Version: 1.0\r\nRoot-Is-Purelib: false\r\nTag: cp311-cp311-linux_x86_64\r\n",
                ok(&[1, 0], false),
            ),
            ("wheel-version:1.9\nroot-is-purelib: TRUE\n", ok(&[1, 9], true)),
            ("Wheel-Version: 1.0\n", ok(&[1, 0], false)),
            ("Wheel-Version: 0.1\nRoot-Is-Purelib: yes\n", ok(&[0, 1], false)),
            // A continued value is not `true`, as in pip.
            (
                "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n  more\n",
                ok(&[1, 0], false),
            ),
            // Only the header part counts.
            (
                "Wheel-Version: 1.0\n\nRoot-Is-Purelib: true\n",
                ok(&[1, 0], false),
            ),
            // The first of repeated fields wins.
            (
                "Wheel-Version: 1.0\nWheel-Version: 2.0\n",
                ok(&[1, 0], false),
            ),
            (
                "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
                Err(WheelFileError::Unsupported("2.0".into())),
            ),
            ("Root-Is-Purelib: true\n", Err(WheelFileError::NoVersion)),
            (
                "Wheel-Version: one\n",
                Err(WheelFileError::BadVersion("one".into())),
            ),
            (
                "Wheel-Version: 1.\n",
                Err(WheelFileError::BadVersion("1.".into())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_wheel_file(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(parse_wheel_file(b"\xff"), Err(WheelFileError::NotUtf8));
    }

    #[test]
    fn names_release_table() {
        let name = PackageName::from_str("markupsafe").unwrap();
        let version = Version::from_str("2.1.5").unwrap();
        let cases = [
            ("MarkupSafe-2.1.5", true),
            ("markupsafe-2.1.5", true),
            ("Markup_Safe-2.1.5", false),
            ("markupsafe-2.1.5.0", true),
            ("markupsafe-2.1.6", false),
            ("markupsafe", false),
            ("other-2.1.5", false),
            ("markupsafe-two", false),
        ];
        for (stem, want) in cases {
            assert_eq!(names_release(stem, &name, &version), want, "{stem}");
        }
        let dashed = PackageName::from_str("foo-bar").unwrap();
        let one = Version::from_str("1.0").unwrap();
        assert!(names_release("foo_bar-1.0", &dashed, &one));
        assert!(names_release("Foo.Bar-1.0", &dashed, &one));
    }
}
