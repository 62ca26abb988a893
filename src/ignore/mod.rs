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
mod tests;

/// Whether `name` (one path part) matches the glob `pat` (`*`, `?`,
/// `[...]`), as Go's `filepath.Match` and so docker's COPY sources.
pub fn glob_match(pat: &str, name: &str) -> bool {
    IgnoreRules::parse(pat.as_bytes()).is_ok_and(|r| r.is_excluded(name))
}
