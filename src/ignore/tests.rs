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
            &[
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
            ],
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
