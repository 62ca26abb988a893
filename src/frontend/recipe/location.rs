//! Where in a hoist.toml something is: `FILE:LINE:COL`, and which key.
//!
//! The TOML parser reports byte spans; people read lines and columns, and
//! want the key named even when the parser's message (serde's) does not
//! name it. Both are worked out here from the file's text, so every
//! recipe error reads `hoist.toml:7:9: [image] key `uid`: ...`.

use std::fmt;
use std::ops::Range;

/// A position in a recipe file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl Location {
    /// The line and column of byte `offset` in `src` (columns count
    /// characters, as editors do).
    pub fn at(file: &str, src: &str, offset: usize) -> Location {
        let offset = floor_char_boundary(src, offset.min(src.len()));
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: file.to_owned(),
            line,
            col: before[line_start..].chars().count() + 1,
        }
    }

    /// The start of a file, for what has no better place.
    pub fn file_start(file: &str) -> Location {
        Location {
            file: file.to_owned(),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The table header (`[image]`, `[images.web.deps]`) that holds byte
/// `offset`, or `None` at the top level.
pub fn table_at(src: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    // The nearest header above; an array of tables (`[[app.copy]]`)
    // counts as its table.
    let header = src[..offset]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let name = header.trim_start_matches('[');
    Some(format!("[{}]", name[..name.find(']')?].trim()))
}

/// The key whose value spans `span`: the bare or quoted key before the
/// nearest `=` to the left of the value, skipping array and inline-table
/// punctuation (`expose = [3000, "x"]` names `expose`).
pub fn key_of_value(src: &str, span: &Range<usize>) -> Option<String> {
    let start = floor_char_boundary(src, span.start.min(src.len()));
    let before = &src[..start];
    let eq = before.rfind('=')?;
    let key = before[..eq].trim_end();
    let key_start = key.rfind(['{', ',', '\n', '[']).map_or(0, |i| i + 1);
    let key = key[key_start..].trim().trim_matches('"').trim_matches('\'');
    (!key.is_empty()).then(|| key.rsplit('.').next().unwrap_or(key).to_owned())
}

/// The text `span` covers, when it is a key (for "unknown field" errors,
/// whose span is the key).
pub fn text_of(src: &str, span: &Range<usize>) -> Option<String> {
    let s = src.get(span.clone())?.trim();
    (!s.is_empty() && !s.contains('\n')).then(|| s.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_tables_and_keys() {
        let src = "recipe = \"node\"\n[image]\nbase = 'x'\nuser = { name = \"é\", uid = \"a\" }\nexpose = [3000, \"x\"]\n";
        let at = |needle: &str| src.find(needle).unwrap();
        assert_eq!(Location::at("f", src, 0).to_string(), "f:1:1");
        assert_eq!(Location::at("f", src, at("base")).to_string(), "f:3:1");
        let uid = at("\"a\"");
        assert_eq!(Location::at("f", src, uid).to_string(), "f:4:28");
        assert_eq!(table_at(src, 3), None);
        assert_eq!(table_at(src, uid).as_deref(), Some("[image]"));
        assert_eq!(key_of_value(src, &(uid..uid + 3)).as_deref(), Some("uid"));
        let x = at("\"x\"");
        assert_eq!(key_of_value(src, &(x..x + 3)).as_deref(), Some("expose"));
        assert_eq!(
            table_at("[[app.copy]]\nfrom = 1\n", 15).as_deref(),
            Some("[app.copy]")
        );
        assert_eq!(
            table_at("[image]\nx = 1\n[[run]]\nuser = 1\n", 30).as_deref(),
            Some("[run]"),
            "the nearest header wins, an array of tables too"
        );
    }
}
