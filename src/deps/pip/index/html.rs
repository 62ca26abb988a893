//! PEP 503 HTML project pages (and find-links pages): bytes in, links out.
//!
//! Many private indexes and every find-links page serve only HTML, so it
//! is read as pip reads it: leniently, with a small tag reader of its own
//! rather than an HTML parser, since only `<a>` and `<base>` matter. What
//! is not a link is ignored, and a page never fails to parse. Hashes come
//! from the `#sha256=` fragment; `data-*` attributes carry
//! `Requires-Python`, yanking and PEP 658/714 metadata.

use reqwest::Url;

use super::super::dist::Location;
use super::RawFile;

/// PEP 503 HTML: every `<a href>`, honouring `<base href>`; comments are
/// skipped. HTML is read leniently, as pip reads it: what is not a link is
/// ignored, and a page never fails to parse.
pub(crate) fn parse_html_page(bytes: &[u8], page_url: &Url) -> Vec<RawFile> {
    let text = String::from_utf8_lossy(bytes);
    let mut base = page_url.clone();
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let (tag, attrs, after) = read_tag(&rest[1..]);
        rest = after;
        let href = attrs
            .iter()
            .find(|(k, _)| k == "href")
            .map(|(_, v)| v.as_str());
        if tag.eq_ignore_ascii_case("base") {
            if let Some(b) = href.and_then(|h| page_url.join(h).ok()) {
                base = b;
            }
            continue;
        }
        if !tag.eq_ignore_ascii_case("a") {
            continue;
        }
        let Some(mut url) = href.and_then(|h| base.join(h).ok()) else {
            continue;
        };
        let sha256 = url.fragment().and_then(|f| {
            f.split('&')
                .find_map(|kv| kv.strip_prefix("sha256=").map(str::to_owned))
        });
        url.set_fragment(None);
        let Some(filename) = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let attr = |name: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let metadata = attr("data-core-metadata")
            .or_else(|| attr("data-dist-info-metadata"))
            .and_then(|v| match v.trim() {
                "true" => Some(None),
                other => other
                    .split_once('=')
                    .map(|(alg, hex)| (alg == "sha256").then(|| hex.to_owned())),
            });
        out.push(RawFile {
            filename,
            location: Location::Url(url.to_string()),
            sha256,
            requires_python: attr("data-requires-python"),
            yanked: attr("data-yanked").is_some(),
            metadata,
            size: None,
        });
    }
    out
}

/// Reads a tag after its `<`: its name, its attributes (names lower case,
/// values with character references decoded) and what follows its `>`.
fn read_tag(s: &str) -> (&str, Vec<(String, String)>, &str) {
    let name_end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(s.len());
    let name = &s[..name_end];
    let mut rest = &s[name_end..];
    let mut attrs = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return (name, attrs, rest);
        }
        if let Some(after) = rest.strip_prefix('>') {
            return (name, attrs, after);
        }
        let key_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after_eq) = rest.strip_prefix('=') {
            let v = after_eq.trim_start();
            let (raw, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => match v[1..].find(q) {
                    Some(end) => (&v[1..1 + end], &v[end + 2..]),
                    None => (&v[1..], ""),
                },
                _ => {
                    let end = v
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(v.len());
                    (&v[..end], &v[end..])
                }
            };
            value = decode_entities(raw);
            rest = after;
        }
        if key.is_empty() {
            // A stray character: skip it so the loop moves on.
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            rest = &rest[skip..];
            continue;
        }
        attrs.push((key, value));
    }
}

/// HTML character references: the named ones an index writes, and
/// numeric ones. Others are left as they are.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.get(1..).and_then(|r| {
            let end = r.find(';').filter(|&e| e <= 10)?;
            let name = &r[..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{raw, url, SIX_WHL};
    use super::*;

    #[test]
    fn html_pages_table() {
        let page = url("https://idx.example/simple/six/");
        let cases: Vec<(&str, &str, Vec<RawFile>)> = vec![
            (
                "PyPI's shape: hash fragment, escaped requires-python",
                r#"<!DOCTYPE html><html><body><h1>Links for six</h1>
<a href="https://files.example/p/six-1.16.0-py2.py3-none-any.whl#sha256=8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254" data-requires-python="&gt;=2.7, !=3.0.*">six-1.16.0-py2.py3-none-any.whl</a><br/>
</body></html>"#,
                vec![RawFile {
                    sha256: Some(SIX_WHL.to_owned()),
                    requires_python: Some(">=2.7, !=3.0.*".to_owned()),
                    ..raw(
                        "six-1.16.0-py2.py3-none-any.whl",
                        "https://files.example/p/six-1.16.0-py2.py3-none-any.whl",
                    )
                }],
            ),
            (
                "relative links, data attributes, odd quoting and case, comments",
                r#"<html><!-- <a href="hidden-1.tar.gz">x</a> -->
<A HREF='../../f/a-1.tar.gz#md5=00&amp;sha256=ABCD' data-yanked="">a</A>
<a data-core-metadata="true" href=a-2.tar.gz>a</a>
<a href="a-3.tar.gz" data-dist-info-metadata="sha256=ef" data-requires-python="&lt;4&#44;&#x3e;=3">a</a>
<a href="a-4.tar.gz" data-core-metadata="sha512=00" data-yanked="reason &amp; more">a</a>
<a href="torch-2.0.0%2Bcpu-cp311-cp311-linux_x86_64.whl">t</a>
<a name="no-href">x</a><a href="">empty</a>
</html>"#,
                vec![
                    RawFile {
                        sha256: Some("ABCD".to_owned()),
                        yanked: true,
                        ..raw("a-1.tar.gz", "https://idx.example/f/a-1.tar.gz")
                    },
                    RawFile {
                        metadata: Some(None),
                        ..raw("a-2.tar.gz", "https://idx.example/simple/six/a-2.tar.gz")
                    },
                    RawFile {
                        metadata: Some(Some("ef".to_owned())),
                        requires_python: Some("<4,>=3".to_owned()),
                        ..raw("a-3.tar.gz", "https://idx.example/simple/six/a-3.tar.gz")
                    },
                    RawFile {
                        metadata: Some(None),
                        yanked: true,
                        ..raw("a-4.tar.gz", "https://idx.example/simple/six/a-4.tar.gz")
                    },
                    raw(
                        "torch-2.0.0+cpu-cp311-cp311-linux_x86_64.whl",
                        "https://idx.example/simple/six/torch-2.0.0%2Bcpu-cp311-cp311-linux_x86_64.whl",
                    ),
                ],
            ),
            (
                "a base element moves relative links",
                r#"<html><head><base href="https://mirror.example/pkgs/"></head>
<a href="b-1.zip">b</a></html>"#,
                vec![raw("b-1.zip", "https://mirror.example/pkgs/b-1.zip")],
            ),
            ("not HTML at all", "{\"files\": []}", vec![]),
            ("a truncated tag", "<a href=\"x-1.tar.gz", vec![raw("x-1.tar.gz", "https://idx.example/simple/six/x-1.tar.gz")]),
        ];
        for (what, html, want) in cases {
            assert_eq!(parse_html_page(html.as_bytes(), &page), want, "{what}");
        }
    }

    #[test]
    fn entities_table() {
        for (input, want) in [
            ("&gt;=3.8", ">=3.8"),
            ("a&amp;b&lt;c&quot;d&apos;e", "a&b<c\"d'e"),
            ("&#62;&#x3E;&#X3e;", ">>>"),
            (
                "&unknown; & &#xZZ; &#1114112;",
                "&unknown; & &#xZZ; &#1114112;",
            ),
            ("&amp", "&amp"),
            ("é&gt;", "é>"),
        ] {
            assert_eq!(decode_entities(input), want, "{input}");
        }
    }
}
