//! Docker's word and variable expansion, in one place.
//!
//! A Dockerfile is not run by a shell, but its values are read by a small
//! shell-like lexer (BuildKit's `frontend/dockerfile/shell`): `$V`,
//! `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`,
//! `${V?msg}`, single quotes (literal), double quotes (expanding; the
//! escape character escapes only `"`, `$` and itself there) and the
//! escape character outside quotes (the next character is literal).
//! [`Lexer::word`] gives one string (no splitting: `COPY $SRC /d` with
//! `SRC="a b"` copies one path named `a b`, as docker does);
//! [`Lexer::words`] splits on unquoted white space, including inside an
//! expanded value (only EXPOSE uses it).
//!
//! The parser uses the same lexer with quotes and escapes kept and unset
//! variables left as written, to find heredoc words on a line. The
//! shell-only forms `${V#p}`, `${V%p}` and `${V/p/r}` are refused with an
//! error naming the form, never expanded wrongly.

/// Variables in scope, in the order they were set; setting one again
/// replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    entries: Vec<(String, String)>,
}

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == name) {
            Some(e) => e.1 = value.to_owned(),
            None => self.entries.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in iter {
            vars.set(k.as_ref(), v.as_ref());
        }
        vars
    }
}

/// Why a value could not be expanded. The caller adds file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// How deep `${A:-${B:-...}}` may nest before the lexer gives up.
const MAX_DEPTH: usize = 64;

/// The lexer's settings. [`Lexer::new`] is the one instructions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// `\` or, after `# escape=``, a backtick.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Quotes are ordinary characters (heredoc bodies).
    pub skip_quotes: bool,
    /// Leave `$V` of an unset `V` as written.
    pub skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
        }
    }

    /// `word` expanded into one string.
    pub fn word(&self, word: &str, vars: &Vars) -> Result<String, ExpandError> {
        self.scan(word, vars).map(|(w, _)| w)
    }

    /// `word` expanded and split on unquoted white space.
    pub fn words(&self, word: &str, vars: &Vars) -> Result<Vec<String>, ExpandError> {
        self.scan(word, vars).map(|(_, ws)| ws)
    }

    fn scan(&self, word: &str, vars: &Vars) -> Result<(String, Vec<String>), ExpandError> {
        let mut s = Scan {
            chars: word.chars().collect(),
            pos: 0,
            lx: self,
            vars,
            depth: 0,
        };
        s.stop_on(None, self.raw_escapes)
            .map_err(|ExpandError(e)| ExpandError(format!("{e} in `{word}`")))
    }
}

/// Words as the lexer splits them.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct Scan<'a> {
    chars: Vec<char>,
    pos: usize,
    lx: &'a Lexer,
    vars: &'a Vars,
    depth: usize,
}

fn err<T>(msg: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError(msg.into()))
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to `stop` (consumed) or the end.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("`${{...}}` nested more than {MAX_DEPTH} deep"));
        }
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                self.depth -= 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    words.add_str(&v);
                }
                '\'' if !self.lx.skip_quotes => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                '"' if !self.lx.skip_quotes => {
                    let v = self.double_quote()?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                '<' => {
                    let v = self.possible_heredoc();
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.lx.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(c) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching `{c}`"
            ));
        }
        self.depth -= 1;
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote: close the `'`",
                    );
                }
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote: close the `\"`",
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(mut c) => {
                    self.pos += 1;
                    if c == self.lx.escape {
                        if self.lx.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lx.escape => {
                                self.pos += 1;
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay glued to the next word, so that
    /// `<< EOF` is one heredoc word.
    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.pos += 1;
        let mut out = "<<".to_owned();
        while let Some(c @ (' ' | '\t')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(str::to_owned)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return err("syntax error: missing `}`"),
            Some('{' | '}' | ':') => {
                return err("syntax error: bad substitution: write `${NAME}`");
            }
            _ => {}
        }
        let name = self.name();
        let mut modifier = String::new();
        let mut null_is_unset = false;
        let op = match self.next() {
            None => return err("syntax error: missing `}`"),
            Some('}') => {
                return Ok(match self.lookup(&name) {
                    Some(v) => v,
                    None if self.lx.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            Some(':') => {
                null_is_unset = true;
                modifier.push(':');
                match self.next() {
                    None => return err("syntax error: missing `}`"),
                    Some(c) => c,
                }
            }
            Some(c) => c,
        };
        modifier.push(op);
        match op {
            '-' | '+' | '?' => {}
            '#' | '%' | '/' if !null_is_unset => {
                return err(format!(
                    "`${{{name}{op}...}}` (pattern removal or replacement) is not supported by hoist: compute the value in a RUN step or pass it with --build-arg"
                ));
            }
            _ => {
                return err(format!(
                    "unsupported modifier `{modifier}` in `${{{name}...}}`: use `${{{name}:-default}}`, `${{{name}:+alt}}` or `${{{name}:?message}}`"
                ));
            }
        }
        let word = match self.stop_on(Some('}'), false) {
            Ok((w, _)) => w,
            Err(e) if self.peek().is_none() => {
                return Err(if e.0.contains("matching `}`") {
                    ExpandError("syntax error: missing `}`".to_owned())
                } else {
                    e
                });
            }
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if self.lx.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            _ => match value {
                Some(v) if !unset => Ok(v),
                v => {
                    let why = if !word.is_empty() {
                        word
                    } else if v.is_none() {
                        "is not allowed to be unset".to_owned()
                    } else {
                        "is not allowed to be empty".to_owned()
                    };
                    err(format!("{name}: {why}"))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("A", "a"),
            ("E", ""),
            ("S", "x y  z"),
            ("P", "/usr/bin"),
            ("_u1", "under"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn single_words_expand_as_docker_does() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$A", "a"),
            ("${A}", "a"),
            ("x$A.y", "xa.y"),
            ("$_u1", "under"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$", "$"),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("${A:-d}", "a"),
            ("${E:-d}", "d"),
            ("${UNSET:-d}", "d"),
            ("${A-d}", "a"),
            ("${E-d}", ""),
            ("${UNSET-d}", "d"),
            ("${A:+alt}", "alt"),
            ("${E:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${A+alt}", "alt"),
            ("${E+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${A:?must}", "a"),
            ("${E?must}", ""),
            ("${UNSET:-${A}x}", "ax"),
            ("${UNSET:-a b}", "a b"),
            ("${UNSET:-\\}}", "}"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"${A}\"", "a"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("'a\\nb'", "a\\nb"),
            ("a\\ b", "a b"),
            ("a\\", "a"),
            ("\"\"", ""),
            ("x'y'\"z\"", "xyz"),
            ("$P:/x", "/usr/bin:/x"),
            ("$1", ""),
            ("$@", ""),
            ("$S", "x y  z"),
            ("<<EOF", "<<EOF"),
            ("a<b", "a<b"),
        ];
        let lx = Lexer::new('\\');
        for (input, want) in cases {
            assert_eq!(lx.word(input, &vars()).as_deref(), Ok(*want), "{input}");
        }
    }

    #[test]
    fn a_backtick_escape_leaves_backslashes_alone() {
        let lx = Lexer::new('`');
        let cases: &[(&str, &str)] = &[
            ("C:\\dir", "C:\\dir"),
            ("`$A", "$A"),
            ("\"`\"\"", "\""),
            ("\\$A", "\\a"),
        ];
        for (input, want) in cases {
            assert_eq!(lx.word(input, &vars()).as_deref(), Ok(*want), "{input}");
        }
    }

    #[test]
    fn words_split_on_unquoted_blanks_and_expanded_values() {
        let cases: &[(&str, &[&str])] = &[
            ("a b", &["a", "b"]),
            ("  a   b  ", &["a", "b"]),
            ("\"a b\" c", &["a b", "c"]),
            ("$S", &["x", "y", "z"]),
            ("\"$S\"", &["x y  z"]),
            ("a\\ b", &["a b"]),
            ("80/tcp ${UNSET:-443}", &["80/tcp", "443"]),
            ("\"\"", &[]),
            ("", &[]),
        ];
        let lx = Lexer::new('\\');
        for (input, want) in cases {
            assert_eq!(lx.words(input, &vars()).unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn bad_substitutions_are_errors_naming_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("${UNSET:?}", "UNSET: is not allowed to be unset"),
            ("${E:?}", "E: is not allowed to be empty"),
            ("${UNSET?give it}", "UNSET: give it"),
            ("${E:?set E}", "E: set E"),
            ("${A", "missing `}`"),
            ("${A:-x", "missing `}`"),
            ("${", "missing `}`"),
            ("${}", "bad substitution"),
            ("${:-x}", "bad substitution"),
            ("${A:x}", "unsupported modifier `:x`"),
            ("${A#x}", "not supported by hoist"),
            ("${A%x}", "not supported by hoist"),
            ("${A/x/y}", "not supported by hoist"),
            ("'open", "single-quote"),
            ("\"open", "double-quote"),
        ];
        let lx = Lexer::new('\\');
        for (input, want) in cases {
            let got = lx.word(input, &vars());
            match got {
                Err(ExpandError(e)) => assert!(e.contains(want), "{input}: {e}"),
                Ok(v) => panic!("{input}: expanded to {v:?}, wanted an error"),
            }
        }
    }

    #[test]
    fn raw_mode_keeps_quotes_escapes_and_unset_names() {
        let lx = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            ..Lexer::new('\\')
        };
        let cases: &[(&str, &[&str])] = &[
            ("cat <<\"EOF\" > $OUT", &["cat", "<<\"EOF\"", ">", "$OUT"]),
            ("<< EOF", &["<< EOF"]),
            ("${X:-y} \\$A 'q w'", &["${X:-y}", "\\$A", "'q w'"]),
            ("$A", &["a"]),
        ];
        for (input, want) in cases {
            assert_eq!(lx.words(input, &vars()).unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "${A:-".repeat(200) + &"}".repeat(200);
        assert!(Lexer::new('\\').word(&deep, &vars()).is_err());
    }
}
