//! Version ranges: PEP 440 specifiers as pubgrub ranges, and back.
//!
//! pubgrub decides over sets of versions; pip users write specifiers. The
//! two meet here, both ways: a specifier becomes a [`Range`] that holds
//! exactly the versions packaging's `contains` would (local labels and
//! post-releases included, where pep440_rs's own conversion differs), and
//! a range is shown as pip users write specifiers, for the reports. What a
//! specifier says beside its range (a pin, a pre-release named) is read
//! here too, since the provider notes both as it reads requirements.

use std::ops::Bound;

use pep440_rs::{LocalSegment, Operator, Version, VersionSpecifier, VersionSpecifiers};
use pubgrub::Ranges;

pub(super) type Range = Ranges<Version>;

/// The greatest local version of `v` (`v+<u64::MAX>`): no real label sorts
/// above it, so `[v, local_max(v)]` holds `v` and all its local versions.
fn local_max(v: &Version) -> Version {
    v.clone().with_local(vec![LocalSegment::Number(u64::MAX)])
}

/// A specifier as a range of versions.
///
/// PEP 440: when the specifier names a public version, candidates' local
/// labels are ignored, so `==1.0` matches `1.0+cpu` and `<=1.0` does too.
/// pep440_rs's conversion gives `==1.0` the single version `1.0`; the
/// operators where a local label changes the answer are converted here,
/// and `<` of a post-release, which pep440_rs gets wrong.
fn specifier_range(spec: &VersionSpecifier) -> Range {
    let v = spec.version();
    if !v.local().is_empty() {
        return Range::from(spec.clone());
    }
    match spec.operator() {
        Operator::Equal => Range::from_range_bounds(v.clone()..=local_max(v)),
        Operator::NotEqual => Range::from_range_bounds(v.clone()..=local_max(v)).complement(),
        Operator::LessThanEqual => Range::lower_than(local_max(v)),
        // `<V` leaves out V's pre-releases; V's base release is below a
        // post-release V, and pep440_rs's floor for it is not.
        Operator::LessThan if v.is_post() && !v.any_prerelease() => {
            let base = v.clone().with_post(None);
            Range::strictly_lower_than(base.clone().with_min(Some(0)))
                .union(&Range::from_range_bounds(base..v.clone()))
        }
        _ => Range::from(spec.clone()),
    }
}

pub(super) fn specifiers_range(specs: &VersionSpecifiers) -> Range {
    specs.iter().fold(Range::full(), |acc, s| {
        acc.intersection(&specifier_range(s))
    })
}

/// pip's `is_pinned`: `===`, or `==` without a wildcard.
pub(super) fn pins(spec: &VersionSpecifier) -> bool {
    matches!(spec.operator(), Operator::Equal | Operator::ExactEqual)
}

/// packaging's `Specifier.prereleases`: a specifier that names a
/// pre-release (other than by `!=`) lets pre-releases in.
pub(super) fn names_prerelease(spec: &VersionSpecifier) -> bool {
    !matches!(spec.operator(), Operator::NotEqual | Operator::NotEqualStar)
        && spec.version().any_prerelease()
}

/// Whether the range is one version (with its local versions).
pub(super) fn is_pin(range: &Range) -> bool {
    let mut segments = range.iter();
    match (segments.next(), segments.next()) {
        (Some((Bound::Included(a), Bound::Included(b))), None) => a == b || *b == local_max(a),
        _ => false,
    }
}

/// A version for people: without the helper parts ranges use.
fn show_version(v: &Version) -> String {
    let mut v = v.clone();
    if v.local() == [LocalSegment::Number(u64::MAX)] {
        v = v.without_local();
    }
    if Version::max(&v).is_some() {
        v = v.with_max(None);
    }
    if Version::min(&v).is_some() {
        v = v.with_min(None);
    }
    v.to_string()
}

/// The version a gap between two segments leaves out, when it is one.
fn point_gap<'a>(upper: &'a Bound<Version>, lower: &Bound<Version>) -> Option<&'a Version> {
    match (upper, lower) {
        (Bound::Excluded(x), Bound::Excluded(y)) if x == y || *y == local_max(x) => Some(x),
        _ => None,
    }
}

fn lower_clause(bound: &Bound<Version>) -> Option<String> {
    match bound {
        Bound::Included(v) => Some(format!(">={}", show_version(v))),
        Bound::Excluded(v) => Some(format!(">{}", show_version(v))),
        Bound::Unbounded => None,
    }
}

fn upper_clause(bound: &Bound<Version>) -> Option<String> {
    match bound {
        Bound::Included(v) => Some(format!("<={}", show_version(v))),
        Bound::Excluded(v) => Some(format!("<{}", show_version(v))),
        Bound::Unbounded => None,
    }
}

fn show_segment(lower: &Bound<Version>, upper: &Bound<Version>) -> String {
    if let (Bound::Included(a), Bound::Included(b)) = (lower, upper) {
        if a == b || *b == local_max(a) {
            return format!("=={}", show_version(a));
        }
    }
    let clauses: Vec<String> = [lower_clause(lower), upper_clause(upper)]
        .into_iter()
        .flatten()
        .collect();
    clauses.join(",")
}

/// A range as pip users write specifiers: `>=1,!=1.5,<2`, `==2.0`, or
/// alternatives joined by `or`; empty for every version.
pub(super) fn show_range(range: &Range) -> String {
    let segments: Vec<(&Bound<Version>, &Bound<Version>)> = range.iter().collect();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return "(no version)".to_owned();
    };
    if segments.len() == 1 {
        return show_segment(first.0, first.1);
    }
    let gaps: Option<Vec<&Version>> = segments
        .windows(2)
        .map(|w| point_gap(w[0].1, w[1].0))
        .collect();
    match gaps {
        Some(gaps) => {
            let mut clauses: Vec<String> = lower_clause(first.0).into_iter().collect();
            clauses.extend(gaps.iter().map(|v| format!("!={}", show_version(v))));
            clauses.extend(upper_clause(last.1));
            clauses.join(",")
        }
        None => segments
            .iter()
            .map(|(l, u)| show_segment(l, u))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::super::package::Pkg;
    use super::super::tests::{name, version};
    use super::*;

    #[test]
    fn ranges_match_specifiers() {
        let specs = [
            "==1.0",
            "!=1.0",
            "<=1.0",
            ">1.0",
            "<1.0",
            ">=1.0",
            "~=1.0",
            "==1.*",
            "!=1.*",
            "==1.0+cpu",
            "!=1.0+cpu",
            ">1.0.post1",
            "<1.0.post1",
            "<=1.0.post1",
            "<2.0rc1",
            ">=2.0b1",
            "==2.0b1",
            ">2.0b1",
            "~=1.0.1",
            "==1.0.0",
            "<2",
            ">=1,<2,!=1.5",
        ];
        let versions = [
            "0.9",
            "1.0a1",
            "1.0",
            "1.0.0",
            "1.0+cpu",
            "1.0.post1",
            "1.0.post1+cu118",
            "1.0.post2",
            "1.0.1",
            "1.1",
            "1.5",
            "1.5+x",
            "2.0.dev0",
            "2.0b1",
            "2.0rc1",
            "2.0",
            "2.0+cpu",
            "3.0",
        ];
        // Where pep440_rs's `contains` is stricter than packaging (pip):
        // packaging lets `<V` take V's pre-releases when V is one itself.
        let packaging = [("<2.0rc1", "2.0.dev0", true), ("<2.0rc1", "2.0b1", true)];
        for spec in specs {
            let specs = VersionSpecifiers::from_str(spec).unwrap();
            let range = specifiers_range(&specs);
            for v in versions {
                let want = packaging
                    .iter()
                    .find(|(s, x, _)| *s == spec && *x == v)
                    .map_or_else(|| specs.contains(&version(v)), |(_, _, w)| *w);
                assert_eq!(range.contains(&version(v)), want, "{v} in {spec} ({range})");
            }
        }
    }

    #[test]
    fn ranges_read_as_specifiers() {
        let cases = [
            ("==1.0", "==1.0"),
            ("!=1.5", "!=1.5"),
            (">=1,<2", ">=1,<2"),
            (">=1,<2,!=1.5", ">=1,!=1.5,<2"),
            ("<=1.0", "<=1.0"),
            (">1.0", ">1.0"),
            ("<1.0", "<1.0"),
            ("~=1.4", ">=1.4,<2.dev0"),
            ("", ""),
        ];
        for (spec, want) in cases {
            let range = specifiers_range(&VersionSpecifiers::from_str(spec).unwrap());
            assert_eq!(show_range(&range), want, "{spec}");
        }
        let either = specifiers_range(&VersionSpecifiers::from_str("<1").unwrap()).union(
            &specifiers_range(&VersionSpecifiers::from_str(">=2").unwrap()),
        );
        assert_eq!(Pkg::Project(name("a")).with_range(&either), "a (<1 or >=2)");
        assert_eq!(show_range(&Range::empty()), "(no version)");
        assert!(is_pin(&specifiers_range(
            &VersionSpecifiers::from_str("==1.0").unwrap()
        )));
        assert!(is_pin(&Range::singleton(version("1.0"))));
        assert!(!is_pin(&specifiers_range(
            &VersionSpecifiers::from_str("<=1.0").unwrap()
        )));
    }
}
