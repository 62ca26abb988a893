//! `.dockerignore` rules, matched exactly the way Docker matches them.
//!
//! The ignore file decides which files of the build context exist for the
//! build at all. If hoist and Docker disagree on a single path, the same
//! context gives a different image (a different digest) or, worse, a file the
//! user meant to hide (`.env`, a key) ends up in a layer. So this module
//! follows Docker's code (`github.com/moby/patternmatcher`), not its prose,
//! step by step:
//!
//! 1. `ignorefile.ReadAll` turns the file into pattern strings: strip a UTF-8
//!    BOM from the first line, split lines (`\r\n` too), skip lines whose
//!    *first byte* is `#` (so `  # x` is a pattern, not a comment), trim
//!    whitespace, take off a leading `!`, clean the rest with Go's
//!    `filepath.Clean`, drop one leading `/`, put the `!` back.
//! 2. `patternmatcher.New` trims and cleans each string *again*, this time
//!    with the `!` still attached (so `!../../x` cleans to the plain,
//!    non-exception pattern `x`), then strips the `!` and rejects what Go's
//!    `filepath.Match` calls malformed (`[` unclosed, `[]`, trailing `\`).
//! 3. Patterns are then *not* matched with `filepath.Match`. Docker translates
//!    each one into a Go regular expression (or, for simple shapes, into an
//!    exact, prefix or suffix string test), and the translation has its own
//!    behaviour: a pattern starting with `**` and otherwise literal is a plain
//!    suffix test (`**file` excludes `myfile`), a bare `^` becomes an anchor,
//!    `|` and `{2}` keep their regex meaning (Docker's escaping misses them),
//!    inside `[...]` a `*` or `?` is expanded before the regex engine sees the
//!    bracket, and `\d` means a digit. We reproduce the translation, check its
//!    output with Go's regexp parser rules and rewrite it for the `regex`
//!    crate (`go_regex`), whose matching is the same as Go's but whose syntax
//!    is not quite.
//! 4. `MatchesOrParentMatches` decides: walking the patterns in file order, a
//!    pattern that matches the path *or any of its parent directories* sets
//!    "excluded" to "not an exception". The last such pattern wins.
//!
//! Docker finds broken patterns lazily, when a path first reaches one; we
//! report them when parsing, with the line number. A build fails either way.
//!
//! Directory walking is left to the caller, helped by
//! [`IgnoreRules::may_include_under`]: an excluded directory can only be
//! skipped whole when no exception pattern could re-include something beneath
//! it.

use std::io;
use std::path::{Path, PathBuf};

mod go_regex;

/// The rules of one `.dockerignore` file, in file order.
///
/// `Default` is the empty rule set, which excludes nothing.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern Docker would refuse, or that hoist cannot match like Docker.
    #[error("{}line {line}: invalid pattern `{pattern}`: {kind}", file_prefix(.file))]
    Pattern {
        /// The ignore file, when the rules came from one.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// The line as written, without surrounding whitespace.
        pattern: String,
        kind: PatternErrorKind,
    },
    /// A line that is not UTF-8. Paths are matched as UTF-8 text, so such a
    /// pattern could never mean what Docker makes of it.
    #[error("{}line {line}: pattern is not valid UTF-8", file_prefix(.file))]
    NotUtf8 { file: Option<PathBuf>, line: usize },
    /// Reading the file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternErrorKind {
    /// A line that is just `!` (Docker: `illegal exclusion pattern: "!"`).
    #[error("`!` must be followed by a pattern")]
    LoneBang,
    /// Rejected by Go's `filepath.Match` syntax check, as Docker does.
    #[error("{0}")]
    Malformed(&'static str),
    /// Passes the syntax check, but the regular expression Docker builds from
    /// it does not compile, so Docker fails when matching (e.g. `[z-a]`).
    #[error("Docker's translation of it is an invalid regular expression ({0})")]
    InvalidRegex(String),
    /// Go compiles Docker's translation, but the `regex` crate's compiled
    /// form exceeds hoist's limits: Go counts a class like `\pL` as one
    /// instruction, the `regex` crate as hundreds of states, so
    /// `\pL{1000}\pL{1000}` is fine for Go and not for hoist.
    #[error("Docker's translation of it is a regular expression too large for hoist ({0})")]
    Unsupported(String),
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => format!("{}: ", path.display()),
        None => String::new(),
    }
}

impl IgnoreError {
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        match &mut self {
            IgnoreError::Pattern { file, .. } | IgnoreError::NotUtf8 { file, .. } => {
                *file = Some(path.to_path_buf());
            }
            IgnoreError::Io(_) => {}
        }
        self
    }
}

impl IgnoreRules {
    /// Parses the contents of an ignore file.
    pub fn parse(bytes: &[u8]) -> Result<Self, IgnoreError> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let mut patterns = Vec::new();
        // Go's bufio.ScanLines: split on `\n`, drop one trailing `\r`.
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let raw = if index == 0 {
                raw.strip_prefix(BOM).unwrap_or(raw)
            } else {
                raw
            };
            // The comment test comes before trimming and before any decoding.
            if raw.starts_with(b"#") {
                continue;
            }
            let text =
                std::str::from_utf8(raw).map_err(|_| IgnoreError::NotUtf8 { file: None, line })?;
            let Some(entry) = read_all_entry(text) else {
                continue;
            };
            let pattern = Pattern::new(&entry).map_err(|kind| IgnoreError::Pattern {
                file: None,
                line,
                pattern: text.trim().to_owned(),
                kind,
            })?;
            patterns.extend(pattern);
        }
        Ok(IgnoreRules { patterns })
    }

    /// Reads and parses the ignore file at `path`; a missing file is an error.
    pub fn from_file(path: &Path) -> Result<Self, IgnoreError> {
        let bytes = fs_err::read(path)?;
        Self::parse(&bytes).map_err(|e| e.in_file(path))
    }

    /// Reads `context_dir/name` (usually `.dockerignore`), or `None` when
    /// there is no such file.
    pub fn load(context_dir: &Path, name: &str) -> Result<Option<Self>, IgnoreError> {
        let path = context_dir.join(name);
        match fs_err::read(&path) {
            Ok(bytes) => Self::parse(&bytes).map(Some).map_err(|e| e.in_file(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IgnoreError::Io(e)),
        }
    }

    /// Whether any line is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether the rules leave `rel_path` out of the build context.
    ///
    /// `rel_path` is relative to the context root, `/`-separated, clean, and
    /// without a leading `./` (`src/main.rs`, not `./src/main.rs`). The root
    /// itself (`""` or `"."`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if rel_path.is_empty() || rel_path == "." {
            return false;
        }
        let parent = go_dir(rel_path);
        let mut excluded = false;
        for pattern in &self.patterns {
            // A match only changes the verdict when the pattern's kind
            // differs from it, so skip the others (as Docker does).
            if pattern.exception != excluded {
                continue;
            }
            let hit = pattern.matches(rel_path)
                || (parent != "." && ancestors(&parent).any(|dir| pattern.matches(dir)));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether some exception pattern could match a path strictly inside the
    /// directory `dir` (same form as for [`is_excluded`](Self::is_excluded)).
    ///
    /// A walker that finds `dir` excluded may skip its whole subtree only when
    /// this is false; otherwise it must descend and test each entry. The
    /// answer errs towards true: it compares `dir` with the literal text each
    /// exception pattern must start with, so `!foo/*.txt` keeps `foo/sub`
    /// open, and a pattern starting with a wildcard keeps everything open.
    pub fn may_include_under(&self, dir: &str) -> bool {
        if dir.is_empty() || dir == "." {
            return self.has_exceptions();
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| p.may_match_under(&dir_slash))
    }
}

/// One line after ReadAll's processing, or `None` for a line it drops.
fn read_all_entry(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, rest) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut pattern = String::new();
    if !rest.is_empty() {
        pattern = go_clean(rest);
        if pattern.len() > 1 && pattern.starts_with('/') {
            pattern.remove(0);
        }
    }
    Some(if invert {
        format!("!{pattern}")
    } else {
        pattern
    })
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The pattern after both cleanings, without its `!`.
    text: String,
    exception: bool,
    matcher: Matcher,
}

/// The four ways Docker's translation can end up testing a path.
#[derive(Debug, Clone)]
enum Matcher {
    /// `path == text`: nothing but literal characters.
    Exact,
    /// `path` starts with this: literal text followed by a final `**`.
    Prefix(String),
    /// `path` ends with these bytes, or (if they start with `/`) equals the
    /// rest: a leading `**` followed by literal text. Bytes, because Docker
    /// cuts two bytes off the pattern, which may split a character (a BOM).
    Suffix(Vec<u8>),
    Regex(regex::Regex),
}

/// What Docker's translation decided, before building the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

impl Pattern {
    /// patternmatcher.New for one entry; `None` for an entry it drops.
    fn new(entry: &str) -> Result<Option<Pattern>, PatternErrorKind> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Ok(None);
        }
        let cleaned = go_clean(entry);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(PatternErrorKind::LoneBang),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        check_glob_syntax(text)?;
        let (kind, regex) = translate(text);
        let matcher = match kind {
            Kind::Exact => Matcher::Exact,
            // Docker slices off the final `**` (or the leading one) by length.
            Kind::Prefix => Matcher::Prefix(text[..text.len() - 2].to_owned()),
            Kind::Suffix => Matcher::Suffix(text.as_bytes()[2..].to_vec()),
            Kind::Regex => Matcher::Regex(go_regex::compile(&regex)?),
        };
        Ok(Some(Pattern {
            text: text.to_owned(),
            exception,
            matcher,
        }))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                let path = path.as_bytes();
                path.ends_with(suffix) || suffix.strip_prefix(b"/") == Some(path)
            }
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }

    /// Whether this pattern could match (directly or through a parent) some
    /// path starting with `dir_slash`. Every path the pattern matches starts
    /// with a literal prefix; a path under the directory exists iff that
    /// prefix and `dir_slash` agree as far as the shorter one goes.
    fn may_match_under(&self, dir_slash: &str) -> bool {
        let prefix = match &self.matcher {
            // `path == text` or a parent equals it: `path/` starts with `text/`.
            Matcher::Exact => format!("{}/", self.text),
            Matcher::Prefix(prefix) => prefix.clone(),
            Matcher::Suffix(_) => return true,
            // With `|` the `^` only anchors the first alternative.
            Matcher::Regex(_) if self.text.contains('|') => return true,
            // Otherwise the expression is `^` and then these characters
            // literally. `^` in the text is an anchor, not a character, and a
            // `{` may repeat the character before it zero times.
            Matcher::Regex(_) => {
                let mut prefix: String = self
                    .text
                    .chars()
                    .take_while(|c| !matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '{'))
                    .collect();
                if self.text[prefix.len()..].starts_with('{') {
                    prefix.pop();
                }
                prefix
            }
        };
        prefix.starts_with(dir_slash) || dir_slash.starts_with(prefix.as_str())
    }
}

/// Rejects what Go's `filepath.Match` reports as `ErrBadPattern`.
///
/// Go checks the whole pattern whatever the name, so this is a pure syntax
/// check: `\` must be followed by something; a class is `[`, an optional `^`,
/// then one or more items up to `]`, where an item is a character or `lo-hi`
/// and a character that is `-` or `]` must be escaped. Note that Go has no
/// `[!...]` negation: `!` there is an ordinary character.
fn check_glob_syntax(pattern: &str) -> Result<(), PatternErrorKind> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 == chars.len() {
                    return Err(PatternErrorKind::Malformed("pattern ends with `\\`"));
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut items = 0;
                loop {
                    if chars.get(i) == Some(&']') && items > 0 {
                        i += 1;
                        break;
                    }
                    i = class_endpoint(&chars, i)?;
                    if chars.get(i) == Some(&'-') {
                        i = class_endpoint(&chars, i + 1)?;
                    }
                    items += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one class character at `i`; returns the index after it.
fn class_endpoint(chars: &[char], mut i: usize) -> Result<usize, PatternErrorKind> {
    const UNCLOSED: PatternErrorKind = PatternErrorKind::Malformed("unclosed `[`");
    match chars.get(i) {
        None => return Err(UNCLOSED),
        Some('-' | ']') => {
            return Err(PatternErrorKind::Malformed(
                "empty `[]` or unescaped `-`/`]` in a character class",
            ))
        }
        Some('\\') => i += 1,
        Some(_) => {}
    }
    i += 1;
    // The class must still be closed after this character.
    if i >= chars.len() {
        return Err(UNCLOSED);
    }
    Ok(i)
}

/// Docker's translation of a cleaned pattern (Pattern.compile), which decides
/// how the pattern is tested and, for [`Kind::Regex`], builds the expression.
///
/// Per character: `**` (eating one following `/`) becomes `(.*/)?`, or `.*`
/// at the end; a pattern that is literal up to a final `**` is a prefix test,
/// and one that starts with `**` and is literal after it a suffix test. `*` is
/// `[^/]*`, `?` is `[^/]`; `.+()$` are escaped; `\c` is passed on as `\c`;
/// everything else, `[`, `]`, `^`, `|`, `{` and `}` included, is copied as is.
fn translate(pattern: &str) -> (Kind, String) {
    let mut regex = String::from("^");
    let mut kind = Kind::Exact;
    // Docker reads the pattern with Go's text/scanner, which drops a BOM at
    // the very start. (Only here: the other kinds use the text as is.)
    let mut chars = pattern
        .strip_prefix('\u{FEFF}')
        .unwrap_or(pattern)
        .chars()
        .peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        let first = std::mem::replace(&mut at_start, false);
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_some() {
                    regex.push_str("(.*/)?");
                    kind = Kind::Regex;
                } else if kind == Kind::Exact {
                    kind = Kind::Prefix;
                } else {
                    regex.push_str(".*");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                regex.push_str("[^/]");
                kind = Kind::Regex;
            }
            // Docker means to escape `.+()|{}$`, but its bitmap sets bit
            // `b / 8` of a byte, which overflows for `|`, `{` and `}` (all
            // >= 64): they reach the engine as alternation and repetition.
            '.' | '+' | '(' | ')' | '$' => {
                regex.push('\\');
                regex.push(c);
            }
            '\\' => {
                regex.push('\\');
                if let Some(next) = chars.next() {
                    regex.push(next);
                    kind = Kind::Regex;
                }
            }
            '[' | ']' => {
                regex.push(c);
                kind = Kind::Regex;
            }
            c => regex.push(c),
        }
    }
    if kind == Kind::Regex {
        regex.push('$');
    }
    (kind, regex)
}

/// Go's `path/filepath.Clean` on Unix: collapse `//`, drop `.`, resolve `..`
/// lexically (never above a leading `/`), `.` for an empty result.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => go_clean(&path[..=i]),
        None => ".".to_owned(),
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`: what Docker tries as parent matches.
fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(move |(i, _)| &dir[..i])
        .chain(std::iter::once(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        match IgnoreRules::parse(text.as_bytes()) {
            Ok(rules) => rules,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    /// The patterns as Docker holds them after ReadAll and New.
    fn held(rules: &IgnoreRules) -> Vec<String> {
        rules
            .patterns
            .iter()
            .map(|p| format!("{}{}", if p.exception { "!" } else { "" }, p.text))
            .collect()
    }

    #[test]
    fn reads_lines_like_docker() {
        let cases: &[(&str, &[&str])] = &[
            // patternmatcher's ignorefile test, minus its lone `!` lines.
            (
                "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n",
                &["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path"],
            ),
            ("", &[]),
            ("\n\n   \n\t\n", &[]),
            ("foo\r\nbar\r\n", &["foo", "bar"]),
            ("foo\r\nbar", &["foo", "bar"]),
            ("\u{FEFF}foo\nbar", &["foo", "bar"]),
            // Only the first line may carry the BOM.
            ("foo\n\u{FEFF}bar", &["foo", "\u{FEFF}bar"]),
            ("\u{FEFF}# comment\nfoo", &["foo"]),
            ("# comment\nfoo\n#bar", &["foo"]),
            // `#` counts only as the very first byte.
            ("  # not a comment", &["# not a comment"]),
            ("foo   \n\tbar\t\n  baz  ", &["foo", "bar", "baz"]),
            ("/foo", &["foo"]),
            ("//foo//bar/", &["foo/bar"]),
            ("/", &["/"]),
            ("foo/../bar", &["bar"]),
            ("./foo/", &["foo"]),
            ("../foo", &["../foo"]),
            ("/../foo", &["foo"]),
            ("!foo", &["!foo"]),
            ("! foo", &["!foo"]),
            ("!/foo/./bar", &["!foo/bar"]),
            ("!!foo", &["!!foo"]),
            // New cleans again with the `!` attached: `!..` is a name that
            // the next `..` removes, and the exception is gone.
            ("!../../x", &["x"]),
            // Cleaning can expose whitespace, which New trims.
            ("a/../ b", &["b"]),
            ("a/../ /b/..", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(held(&rules(text)), *want, "input {text:?}");
        }
    }

    #[test]
    fn translates_like_docker() {
        // patternmatcher's TestCompile, Unix column.
        let cases: &[(&str, Kind, &str)] = &[
            ("*", Kind::Regex, "^[^/]*$"),
            ("file*", Kind::Regex, "^file[^/]*$"),
            ("*file", Kind::Regex, "^[^/]*file$"),
            ("a*/b", Kind::Regex, "^a[^/]*/b$"),
            ("**", Kind::Suffix, ""),
            ("**/**", Kind::Regex, "^(.*/)?.*$"),
            ("dir/**", Kind::Prefix, ""),
            ("**/dir", Kind::Suffix, ""),
            ("**/dir2/*", Kind::Regex, "^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", Kind::Regex, "^(.*/)?dir2/.*$"),
            ("**file", Kind::Suffix, ""),
            ("**/file*txt", Kind::Regex, "^(.*/)?file[^/]*txt$"),
            ("**/**/*.txt", Kind::Regex, r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ("a[b-d]e", Kind::Regex, "^a[b-d]e$"),
            (".*", Kind::Regex, r"^\.[^/]*$"),
            ("abc.def", Kind::Exact, ""),
            ("abc?def", Kind::Regex, "^abc[^/]def$"),
            ("**/foo/bar", Kind::Suffix, ""),
            ("a(b)c/def", Kind::Exact, ""),
            ("a.|)$(}+{bc", Kind::Exact, ""),
            ("a\\*b", Kind::Regex, r"^a\*b$"),
            // Docker's escape table loses `|`, `{` and `}`.
            ("a|b*", Kind::Regex, "^a|b[^/]*$"),
            ("*.{js,ts}", Kind::Regex, r"^[^/]*\.{js,ts}$"),
            ("x{2}", Kind::Exact, ""),
            // text/scanner skips a leading BOM.
            ("\u{FEFF}a*", Kind::Regex, "^a[^/]*$"),
        ];
        for (pattern, kind, regex) in cases {
            let (got_kind, got_regex) = translate(pattern);
            assert_eq!(got_kind, *kind, "pattern {pattern:?}");
            if *kind == Kind::Regex {
                assert_eq!(got_regex, *regex, "pattern {pattern:?}");
            }
        }
    }

    #[test]
    fn matches_like_docker() {
        // (ignore file lines, path, excluded?)
        let cases: &[(&[&str], &str, bool)] = &[
            // --- patternmatcher's TestMatches ---
            (&["**"], "file", true),
            (&["**"], "file/", true),
            (&["**/"], "file", true),
            (&["**/"], "file/", true),
            (&["**"], "/", true),
            (&["**/"], "/", true),
            (&["**"], "dir/file", true),
            (&["**/"], "dir/file", true),
            (&["**"], "dir/file/", true),
            (&["**/"], "dir/file/", true),
            (&["**/**"], "dir/file", true),
            (&["**/**"], "dir/file/", true),
            (&["dir/**"], "dir/file", true),
            (&["dir/**"], "dir/file/", true),
            (&["dir/**"], "dir/dir2/file", true),
            (&["dir/**"], "dir/dir2/file/", true),
            (&["**/dir"], "dir", true),
            (&["**/dir"], "dir/file", true),
            (&["**/dir2/*"], "dir/dir2/file", true),
            (&["**/dir2/*"], "dir/dir2/file/", true),
            (&["**/dir2/**"], "dir/dir2/dir3/file", true),
            (&["**/dir2/**"], "dir/dir2/dir3/file/", true),
            (&["**file"], "file", true),
            (&["**file"], "dir/file", true),
            (&["**/file"], "dir/file", true),
            (&["**file"], "dir/dir/file", true),
            (&["**/file"], "dir/dir/file", true),
            (&["**/file*"], "dir/dir/file", true),
            (&["**/file*"], "dir/dir/file.txt", true),
            (&["**/file*txt"], "dir/dir/file.txt", true),
            (&["**/file*.txt"], "dir/dir/file.txt", true),
            (&["**/file*.txt*"], "dir/dir/file.txt", true),
            (&["**/**/*.txt"], "dir/dir/file.txt", true),
            (&["**/**/*.txt2"], "dir/dir/file.txt", false),
            (&["**/*.txt"], "file.txt", true),
            (&["**/**/*.txt"], "file.txt", true),
            (&["a**/*.txt"], "a/file.txt", true),
            (&["a**/*.txt"], "a/dir/file.txt", true),
            (&["a**/*.txt"], "a/dir/dir/file.txt", true),
            (&["a/*.txt"], "a/dir/file.txt", false),
            (&["a/*.txt"], "a/file.txt", true),
            (&["a/*.txt**"], "a/file.txt", true),
            (&["a[b-d]e"], "ae", false),
            (&["a[b-d]e"], "ace", true),
            (&["a[b-d]e"], "aae", false),
            (&["a[^b-d]e"], "aze", true),
            (&[".*"], ".foo", true),
            (&[".*"], "foo", false),
            (&["abc.def"], "abcdef", false),
            (&["abc.def"], "abc.def", true),
            (&["abc.def"], "abcZdef", false),
            (&["abc?def"], "abcZdef", true),
            (&["abc?def"], "abcdef", false),
            (&["a\\\\"], "a\\", true),
            (&["**/foo/bar"], "foo/bar", true),
            (&["**/foo/bar"], "dir/foo/bar", true),
            (&["**/foo/bar"], "dir/dir2/foo/bar", true),
            (&["abc/**"], "abc", false),
            (&["abc/**"], "abc/def", true),
            (&["abc/**"], "abc/def/ghi", true),
            (&["**/.foo"], ".foo", true),
            (&["**/.foo"], "bar.foo", false),
            (&["a(b)c/def"], "a(b)c/def", true),
            (&["a(b)c/def"], "a(b)c/xyz", false),
            (&["a.|)$(}+{bc"], "a.|)$(}+{bc", true),
            (
                &["dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (&["a\\*b"], "a*b", true),
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            // --- Go's filepath.Match tests, as patternmatcher runs them ---
            (&["abc"], "abc", true),
            (&["*"], "abc", true),
            (&["*c"], "abc", true),
            (&["a*"], "a", true),
            (&["a*"], "abc", true),
            (&["a*"], "ab/c", true), // through the parent `ab`
            (&["a*/b"], "abc/b", true),
            (&["a*/b"], "a/c/b", false),
            (&["a*b*c*d*e*/f"], "axbxcxdxe/f", true),
            (&["a*b*c*d*e*/f"], "axbxcxdxexxx/f", true),
            (&["a*b*c*d*e*/f"], "axbxcxdxe/xxx/f", false),
            (&["a*b*c*d*e*/f"], "axbxcxdxexxx/fff", false),
            (&["a*b?c*x"], "abxbbxdbxebxczzx", true),
            (&["a*b?c*x"], "abxbbxdbxebxczzy", false),
            (&["ab[c]"], "abc", true),
            (&["ab[b-d]"], "abc", true),
            (&["ab[e-g]"], "abc", false),
            (&["ab[^c]"], "abc", false),
            (&["ab[^b-d]"], "abc", false),
            (&["ab[^e-g]"], "abc", true),
            (&["a\\*b"], "ab", false),
            (&["a?b"], "a☺b", true),
            (&["a[^a]b"], "a☺b", true),
            (&["a???b"], "a☺b", false),
            (&["a[^a][^a][^a]b"], "a☺b", false),
            (&["[a-ζ]*"], "α", true),
            (&["*[a-ζ]"], "A", false),
            (&["a?b"], "a/b", false),
            (&["a*b"], "a/b", false),
            (&["[\\]a]"], "]", true),
            (&["[\\-]"], "-", true),
            (&["[x\\-]"], "x", true),
            (&["[x\\-]"], "-", true),
            (&["[x\\-]"], "z", false),
            (&["[\\-x]"], "x", true),
            (&["[\\-x]"], "-", true),
            (&["[\\-x]"], "a", false),
            (&["*x"], "xxx", true),
            // --- Docker's documentation ---
            (&["*/temp*"], "somedir/temporary.txt", true),
            (&["*/temp*"], "somedir/temp", true),
            (&["*/temp*"], "temp.txt", false),
            (&["*/temp*"], "a/b/temp.txt", false),
            (&["*/*/temp*"], "somedir/subdir/temporary.txt", true),
            (&["*/*/temp*"], "somedir/temporary.txt", false),
            (&["temp?"], "tempa", true),
            (&["temp?"], "temp", false),
            (&["temp?"], "tempab", false),
            (&["temp?"], "tempa/inner.txt", true),
            (&["*.md", "!README.md"], "CHANGES.md", true),
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "docs/guide.md", false),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-secret.md",
                true,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-public.md",
                false,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "other.md",
                true,
            ),
            (
                &["*.md", "README-secret.md", "!README*.md"],
                "README-secret.md",
                false,
            ),
            (&["**/*.go"], "main.go", true),
            (&["**/*.go"], "cmd/tool/main.go", true),
            (&["**/*.go"], "cmd/main.gox", false),
            // --- parent directories ---
            (&["docs"], "docs", true),
            (&["docs"], "docs/a/b.txt", true),
            (&["docs"], "documents/a.txt", false),
            (&["docs"], "src/docs", false),
            (&["docs/"], "docs/a", true),
            (&[".git"], ".git/HEAD", true),
            (&[".git"], ".git/refs/heads/main", true),
            (&[".git"], ".gitignore", false),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs", "!docs/README.md"], "docs/other.md", true),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["a/*/c"], "a/b/c/d/e", true),
            // --- cleaning and leading slashes ---
            (&["/foo"], "foo", true),
            (&["/foo"], "bar/foo", false),
            (&["foo/../bar"], "bar", true),
            (&["foo/../bar"], "foo/bar", false),
            (&["./build/"], "build/out.o", true),
            (&["!../../secret"], "secret", true),
            // --- order: the last matching line wins ---
            (&["*.log", "!keep.log"], "keep.log", false),
            (&["!keep.log", "*.log"], "keep.log", true),
            (&["*.log", "!keep.log", "keep.log"], "keep.log", true),
            (&["data", "!data", "data/tmp"], "data/x", false),
            (&["data", "!data", "data/tmp"], "data/tmp/x", true),
            (&["!docs"], "docs/a", false),
            // --- comments and whitespace ---
            (&["# *.md", "x"], "a.md", false),
            (&["  *.md  "], "a.md", true),
            (&["\t!a.md ", "*.md"], "a.md", true),
            // --- `**` in the middle ---
            (&["a/**/b"], "a/b", true),
            (&["a/**/b"], "a/x/b", true),
            (&["a/**/b"], "a/x/y/b", true),
            (&["a/**/b"], "a/x/b/c", true),
            (&["a/**/b"], "a/xb", false),
            (&["a/**/b"], "ab", false),
            (&["a/**/b"], "c/a/b", false),
            // --- `*`, `?` and classes stay inside one name ---
            (&["*.txt"], "dir/file.txt", false),
            (&["a*b"], "a/b", false),
            (&["a?b"], "a/b", false),
            (&["a[/]b"], "a/b", true),
            (&["[a-c]"], "b", true),
            (&["[a-c]"], "d", false),
            (&["[a-c]x"], "cx", true),
            (&["[^a]"], "b", true),
            (&["[^a]"], "a", false),
            // Go has no `[!...]`: `!` is a member.
            (&["[!a]"], "!", true),
            (&["[!a]"], "a", true),
            (&["[!a]"], "b", false),
            (&["file\\?"], "file?", true),
            (&["file\\?"], "filex", false),
            (&["\\[x\\]"], "[x]", true),
            (&["a\\.b"], "a.b", true),
            (&["a\\.b"], "axb", false),
            // --- Docker's translation, faithfully odd ---
            // A leading `**` plus literal text is a bare suffix test.
            (&["**file"], "dir/myfile", true),
            (&["**/file"], "dir/myfile", false),
            // `^` is literal in an exact test, an anchor in an expression.
            (&["a^b"], "a^b", true),
            (&["a^b*"], "a^bc", false),
            (&["^*"], "anything", true),
            // `[a*]` becomes `^[a[^/]*]$`: a run of `a`, `[`, `^`, `/`, then `]`.
            (&["[a*]"], "*", false),
            (&["[a*]"], "a", false),
            (&["[a*]"], "]", true),
            (&["[a*]"], "a[^]", true),
            // A backslash escape reaches the regex engine as is.
            (&["file\\d"], "file7", true),
            (&["file\\d"], "filed", false),
            (&["a\\b"], "a", true),
            (&["a\\b"], "ab", false),
            (&["[[:digit:]]x"], "5x", true),
            (&["[[:digit:]]x"], "ax", false),
            (&["[[:^digit:]]x"], "ax", true),
            (&["a\\x41"], "aA", true),
            // `\Q` quotes the rest of Docker's expression, its final `$` too.
            (&["\\Q*\\E"], "\\Q*\\E", false),
            (&["\\Q*\\E"], "[^/]*", true),
            (&["\\Qa"], "a", false),
            (&["\\Qa"], "a$", true),
            (&["\\Qa"], "a$b", true),
            // `|` and `{}` are live regex syntax (Docker's escaping misses
            // them), so `a|b*` is "starts with a" or "has a name starting
            // with b at the end".
            (&["a|b*"], "abc/def", true),
            (&["a|b*"], "zzz/bq", true),
            (&["a|b*"], "zzz", false),
            (&["x{2}*"], "xxa", true),
            (&["x{2}*"], "x{2}a", false),
            (&["x{2}"], "x{2}", true),
            (&["*.{js,ts}"], "a.js", false),
            (&["*.{js,ts}"], "a.{js,ts}", true),
            // The rest of Go's syntax, where Rust's differs: classes do not
            // nest and have no `&&`, `{,2}` is literal, `\<` is `<`, `\101`
            // is octal, `\s` `\w` `\b` are ASCII, stacked repeats multiply.
            (&["[[a]]"], "[]", true),
            (&["[[a]]"], "a", false),
            (&["[[:digit:]&&a]"], "&", true),
            (&["x{,2}*"], "x{,2}", true),
            (&["x{,2}*"], "xx", false),
            (&["a\\<*"], "a<b", true),
            (&["a\\101"], "aA", true),
            (&["a\\sb"], "a b", true),
            (&["a\\sb"], "a\u{B}b", false),
            (&["a\\w"], "aé", false),
            (&["\\ba"], "a", true),
            (&["\\bé"], "é", false),
            (&["a{2}\\Q\\E{2}*"], "aaaa", true),
            (&["a{2}\\Q\\E{2}*"], "aaa", false),
            // Unicode classes, by Go's names.
            (&["\\pL"], "é", true),
            (&["\\pL"], "1", false),
            (&["\\PL"], "1", true),
            (&["[\\p{^L}]"], "1", true),
            (&["\\p{Greek}x"], "αx", true),
            (&["\\p{Greek}x"], "ax", false),
            (&["a\\pC"], "a\u{AD}", true),
            // Surrogates are valid in Go's syntax but never in a path.
            (&["a[\\p{Cs}b]"], "ab", true),
            (&["[a\\x{D800}]"], "a", true),
            (&["a\\x{D800}|b*"], "ab", true),
            (&["a\\x{D800}|b*"], "a", false),
            // Docker drops a leading BOM from expressions only.
            (&["x\n\u{FEFF}a*"], "ab", true),
            // ...but a suffix test cuts two bytes off it, leaving a stray one.
            (&["x\n\u{FEFF}**b"], "\u{FEFF}**b", true),
            (&["x\n\u{FEFF}**b"], "b", false),
            (&["x\n\u{FEFF}ab"], "ab", false),
            // `.` from `**` does not cross a newline; `[^/]` does.
            (&["a/**/b"], "a/x\ny/b", false),
            (&["a*b"], "a\nb", true),
            // --- the root is never excluded ---
            (&["**"], "", false),
            (&["**"], ".", false),
            (&[], "anything", false),
        ];
        for (lines, path, want) in cases {
            let rules = rules(&lines.join("\n"));
            assert_eq!(
                rules.is_excluded(path),
                *want,
                "patterns {lines:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn rejects_what_docker_rejects() {
        use PatternErrorKind::*;
        // (file, line of the error, kind)
        type IsKind = fn(&PatternErrorKind) -> bool;
        let cases: &[(&str, usize, IsKind)] = &[
            ("[", 1, |k| matches!(k, Malformed(_))),
            ("ok\n# comment\n\nsrc/a[", 4, |k| matches!(k, Malformed(_))),
            ("[^", 1, |k| matches!(k, Malformed(_))),
            ("[^bc", 1, |k| matches!(k, Malformed(_))),
            ("a[", 1, |k| matches!(k, Malformed(_))),
            ("[]a]", 1, |k| matches!(k, Malformed(_))),
            ("[-]", 1, |k| matches!(k, Malformed(_))),
            ("[x-]", 1, |k| matches!(k, Malformed(_))),
            ("[-x]", 1, |k| matches!(k, Malformed(_))),
            ("[a-b-c]", 1, |k| matches!(k, Malformed(_))),
            ("\\", 1, |k| matches!(k, Malformed(_))),
            ("foo\\", 1, |k| matches!(k, Malformed(_))),
            ("!*.md[", 1, |k| matches!(k, Malformed(_))),
            ("!", 1, |k| *k == LoneBang),
            ("a\n  !  ", 2, |k| *k == LoneBang),
            ("!/", 1, |k| *k == LoneBang),
            // Valid globs whose regular expression Go rejects.
            ("[z-a]", 1, |k| matches!(k, InvalidRegex(_))),
            ("[Local-Only]/", 1, |k| matches!(k, InvalidRegex(_))),
            ("a\\q", 1, |k| matches!(k, InvalidRegex(_))),
            ("a\\1", 1, |k| matches!(k, InvalidRegex(_))),
            ("a\\é", 1, |k| matches!(k, InvalidRegex(_))),
            ("[[:nope:]]", 1, |k| matches!(k, InvalidRegex(_))),
            ("[a-?]", 1, |k| matches!(k, InvalidRegex(_))),
            ("a?x{1001}", 1, |k| matches!(k, InvalidRegex(_))),
            ("*|{2}", 1, |k| matches!(k, InvalidRegex(_))),
            ("a?**{2}", 1, |k| matches!(k, InvalidRegex(_))),
            // Go matches Unicode class names exactly.
            ("\\p{greek}", 1, |k| matches!(k, InvalidRegex(_))),
            ("\\p{Greek", 1, |k| matches!(k, InvalidRegex(_))),
            ("[\\pX]", 1, |k| matches!(k, InvalidRegex(_))),
            // Go caps stacked counts at 1000 copies in all: 2 * 600 is too many.
            ("a{2}\\Q\\E{600}", 1, |k| matches!(k, InvalidRegex(_))),
            // Go compiles this; the `regex` crate's form of it is too large.
            ("\\pL{1000}\\pL{1000}", 1, |k| matches!(k, Unsupported(_))),
        ];
        for (text, line, is_kind) in cases {
            match IgnoreRules::parse(text.as_bytes()) {
                Err(IgnoreError::Pattern {
                    line: got_line,
                    kind,
                    file: None,
                    ..
                }) => {
                    assert_eq!(got_line, *line, "input {text:?}");
                    assert!(is_kind(&kind), "input {text:?}: got {kind:?}");
                }
                other => panic!("input {text:?}: expected a pattern error, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_names_line_and_pattern() {
        let err = IgnoreRules::parse(b"*.md\n  src/[abc  \n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: invalid pattern `src/[abc`: unclosed `[`"
        );
        let err = IgnoreRules::parse(b"ok\n\xFFbad\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: pattern is not valid UTF-8");
        // A comment need not be UTF-8: Docker never looks inside it.
        assert!(IgnoreRules::parse(b"# caf\xE9\nx").is_ok());
    }

    #[test]
    fn reports_exceptions() {
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("docs\n*.md", false),
            ("docs\n!docs/README.md", true),
            ("  !x", true),
            ("!../../x", false),
        ];
        for (text, want) in cases {
            assert_eq!(rules(text).has_exceptions(), *want, "input {text:?}");
        }
    }

    #[test]
    fn may_include_under_directories() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["docs"], "docs", false),
            (&["docs", "!docs/README.md"], "docs", true),
            (&["docs", "!docs/README.md"], "src", false),
            (&["docs", "!docs/README.md"], "doc", false),
            (&["docs", "!docs/README.md"], "docs/sub", false),
            (&["build", "!buildx/keep"], "build", false),
            (&["a", "!a"], "a", true),
            (&["a", "!a"], "a/b", true),
            (&["a", "!a"], "ab", false),
            (&["foo", "!foo/*.txt"], "foo", true),
            (&["foo", "!foo/*.txt"], "foo/sub", true),
            (&["foo", "!foo/*.txt"], "bar", false),
            (&["*", "!*.md"], "docs", true),
            (&["**", "!**/keep"], "any/dir", true),
            (&["**", "!keep**"], "keeper", true),
            (&["**", "!keep**"], "kept", false),
            (&["**", "!^*"], "x", true),
            (&["x", "!a/**/b"], "a/c", true),
            (&["x", "!a/**/b"], "c", false),
            (&["x", "!a|b*"], "zzz", true),
            (&["x", "!ab{0}c*"], "ac", true),
            (&["x", "!ab{0}c*"], "b", false),
            // Without a wildcard it is an exact test, `{0}` and all.
            (&["x", "!ab{0}c"], "ac", false),
            (&["x", "!y"], "", true),
            (&["x"], "", false),
        ];
        for (lines, dir, want) in cases {
            assert_eq!(
                rules(&lines.join("\n")).may_include_under(dir),
                *want,
                "patterns {lines:?}, dir {dir:?}"
            );
        }
    }

    /// The promise walkers rely on: whenever a directory is excluded but
    /// something beneath it is not, `may_include_under` says so.
    #[test]
    fn may_include_under_never_hides_an_included_path() {
        let names = ["a", "b", "keep", "x.md", ".git"];
        let mut paths: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        for _ in 0..2 {
            let deeper: Vec<String> = paths
                .iter()
                .flat_map(|p| names.iter().map(move |n| format!("{p}/{n}")))
                .collect();
            paths.extend(deeper);
        }
        let files: &[&[&str]] = &[
            &["a", "!a/keep"],
            &["*", "!*/keep"],
            &["**", "!**/keep"],
            &["**", "!**/*.md"],
            &["a", "b", "!a/b/x.md", "a/b"],
            &["*/b", "!a/b/keep"],
            &["a", "!a?b/keep"],
            &["a/**", "!a/[bk]*"],
            &[".git", "!.git/keep", "!b"],
            &["**", "!^*"],
            &["*", "!a", "a/b"],
            &["**", "!x|kee*"],
            &["**", "!ak{0}ee*"],
        ];
        for lines in files {
            let rules = rules(&lines.join("\n"));
            for dir in &paths {
                if !rules.is_excluded(dir) || rules.may_include_under(dir) {
                    continue;
                }
                let prefix = format!("{dir}/");
                if let Some(kept) = paths
                    .iter()
                    .find(|p| p.starts_with(&prefix) && !rules.is_excluded(p))
                {
                    panic!("patterns {lines:?}: {dir:?} skipped, but {kept:?} is included");
                }
            }
        }
    }

    #[test]
    fn go_clean_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/..", "../.."),
            ("/../a", "/a"),
            ("/a/../..", "/"),
            ("!../../x", "x"),
        ];
        for (input, want) in cases {
            assert_eq!(go_clean(input), want, "input {input:?}");
        }
    }

    #[test]
    fn loads_from_a_context_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(IgnoreRules::load(dir.path(), ".dockerignore")
            .unwrap()
            .is_none());

        fs_err::write(dir.path().join(".dockerignore"), "*.md\r\n!README.md\r\n").unwrap();
        let rules = IgnoreRules::load(dir.path(), ".dockerignore")
            .unwrap()
            .unwrap();
        assert!(rules.is_excluded("NOTES.md"));
        assert!(!rules.is_excluded("README.md"));

        let bad = dir.path().join("Dockerfile.dockerignore");
        fs_err::write(&bad, "ok\n[oops\n").unwrap();
        let err = IgnoreRules::load(dir.path(), "Dockerfile.dockerignore").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: line 2: invalid pattern `[oops`: unclosed `[`",
                bad.display()
            )
        );

        let missing = IgnoreRules::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, IgnoreError::Io(_)), "{missing:?}");
    }
}
