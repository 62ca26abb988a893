//! How long a kept page may be used without asking the index again: the
//! response's `Cache-Control: max-age`, less its `Age`.
//!
//! PyPI sends `Cache-Control: max-age=600, public` with its simple pages,
//! and pip and uv both use a page that young without a request (their
//! `--no-cache-dir` / `--refresh` ask again). hoist does the same: a
//! dependency change made minutes after the last build asks the index only
//! for the projects it has not seen. `--refresh` revalidates every page
//! whatever its age. A response that gives no `max-age`, or says
//! `no-cache` or `no-store`, is never fresh: it is asked again next time,
//! conditionally when it gave validators. `s-maxage` is for shared caches and is not read; neither is
//! `Expires`, which PyPI does not send alongside `max-age`.
//!
//! Header values are bytes in, a number of seconds out; anything that does
//! not parse is "not fresh", the safe reading.

/// Seconds a response may be used without revalidation, from its
/// `Cache-Control` and `Age` header values; `None` when it may not be.
pub(super) fn fresh_for(cache_control: &[u8], age: Option<&[u8]>) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(|&b| b == b',') {
        let directive = directive.trim_ascii();
        let (name, value) = match directive.iter().position(|&b| b == b'=') {
            Some(i) => (directive[..i].trim_ascii(), Some(&directive[i + 1..])),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case(b"no-cache") || name.eq_ignore_ascii_case(b"no-store") {
            return None;
        }
        if name.eq_ignore_ascii_case(b"max-age") {
            // Two max-age directives: the response is invalid (RFC 9111
            // §4.2.1 says treat it as stale).
            if max_age.is_some() {
                return None;
            }
            max_age = Some(seconds(value?)?);
        }
    }
    let age = match age {
        Some(a) => seconds(a)?,
        None => 0,
    };
    max_age?.checked_sub(age).filter(|&left| left > 0)
}

/// A delta-seconds value (RFC 9111 §1.2.2), optionally quoted as some
/// servers send it.
fn seconds(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    let v = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A value too large for a u64 is "a very long time" (RFC 9111 says
    // cap it at 2^31), not an error.
    Some(
        std::str::from_utf8(v)
            .ok()?
            .parse::<u64>()
            .unwrap_or(1 << 31),
    )
}

/// Now, in seconds since the epoch (0 if the clock is before it).
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_for_table() {
        let cases: &[(&str, Option<&str>, Option<u64>)] = &[
            // PyPI's simple pages.
            ("max-age=600, public", None, Some(600)),
            ("public, max-age=600", Some("120"), Some(480)),
            ("MAX-AGE=60", None, Some(60)),
            (" max-age = 60 ", None, Some(60)),
            ("max-age=\"30\"", None, Some(30)),
            ("max-age=99999999999999999999999", None, Some(1 << 31)),
            // Used up, or nothing to use.
            ("max-age=600", Some("600"), None),
            ("max-age=600", Some("9000"), None),
            ("max-age=0", None, None),
            ("", None, None),
            ("public", None, None),
            ("s-maxage=600", None, None),
            // Forbidden, or unreadable: not fresh.
            ("max-age=600, no-cache", None, None),
            ("no-store, max-age=600", None, None),
            ("max-age=600, max-age=60", None, None),
            ("max-age", None, None),
            ("max-age=", None, None),
            ("max-age=-5", None, None),
            ("max-age=1e3", None, None),
            ("max-age=600", Some("soon"), None),
            // Unknown directives are ignored.
            ("stale-while-revalidate=60, max-age=10", None, Some(10)),
            ("must-revalidate, max-age=10", None, Some(10)),
        ];
        for (cc, age, want) in cases {
            assert_eq!(
                fresh_for(cc.as_bytes(), age.map(str::as_bytes)),
                *want,
                "Cache-Control: {cc}, Age: {age:?}"
            );
        }
    }
}
