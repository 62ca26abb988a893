//! Go's regular-expression syntax, checked the way Go checks it and written
//! out again for the `regex` crate.
//!
//! Both engines match alike (no backtracking; `.` stops at `\n`, `[^a]` does
//! not; `^` and `$` are the ends of the text), but their syntax differs where
//! Docker's translation lets user text through: Go takes a `[` inside a class
//! and a `{` that is not a count literally, reads `\12` as octal, refuses
//! `a**`, counts over 1000 and unknown `\p{..}` names, and has ASCII `\d\s\w\b`;
//! Rust nests classes (`[a[b]]`), reads `&&`, `--` and `~~` in them as set
//! operations, `\<` as a word start and `{,3}` as a count, and its `\d\s\w\b`
//! are Unicode. Handing Go's text to Rust would mostly work and sometimes
//! match differently, so this parses it with Go's rules (`regexp/syntax`'s
//! `parse`, with the flags `regexp.Compile` uses), fails where Go fails, and
//! writes each piece in a form Rust reads one way only: literals escaped,
//! classes rebuilt item by item, Go's named classes spelled out.
//!
//! `(` only ever opens the `(.*/)?` that `**` becomes (Docker escapes every
//! `(` of the pattern itself), so Go's `(?flags)` groups cannot occur.
//!
//! `\pL` and `\p{Greek}` take Go's names but the `regex` crate's tables,
//! which follow a newer Unicode than Go's (16 against 15), so characters
//! assigned since may be classed differently.

use super::PatternErrorKind;

/// Go's limit on a `{n,m}` count, and on counts stacked on one another.
const MAX_REPEAT: u32 = 1000;
/// An item that matches nothing, for classes of surrogates only (`\x{D800}`
/// is a valid Go literal that UTF-8 text never holds; Rust cannot name it).
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

/// Go's `unicode.Categories`, which `\pL` and `\p{Lu}` name.
const CATEGORIES: &str = "C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No \
    P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs";

/// Go's `unicode.Scripts` (Unicode 15, as in Go 1.21 onwards), which
/// `\p{Greek}` names.
const SCRIPTS: &str = "
    Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak
    Bengali Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian
    Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot
    Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs
    Elbasan Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi
    Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic
    Inherited Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana
    Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu
    Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean Marchen
    Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs
    Miao Modi Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari New_Tai_Lue Newa
    Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian
    Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage
    Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang
    Runic Samaritan Saurashtra Sharada Shavian Siddham SignWriting Sinhala Sogdian
    Sora_Sompeng Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham
    Tai_Viet Takri Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto
    Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square
";

/// Go's POSIX classes (`[[:alpha:]]`); Rust's of the same names are the
/// same ASCII sets (both copy RE2).
const POSIX: &str =
    "alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit";

/// Whether `name` is one of the space-separated `names`.
fn listed(names: &str, name: &str) -> bool {
    names.split_ascii_whitespace().any(|n| n == name)
}

/// Room for the `regex` crate's compiled form, which is far larger than
/// Go's for big classes: enough for `\pL{1000}` (about 40 MiB).
const SIZE_LIMIT: usize = 64 << 20;

/// Compiles Go's regular expression `src` into a Rust one that matches
/// the same texts.
pub(super) fn compile(src: &str) -> Result<regex::Regex, PatternErrorKind> {
    let rust = to_rust(src).map_err(PatternErrorKind::InvalidRegex)?;
    regex::RegexBuilder::new(&rust)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| PatternErrorKind::Unsupported(e.to_string()))
}

/// Go's regular expression `src` in Rust's syntax, or why Go refuses it.
fn to_rust(src: &str) -> Result<String, String> {
    Rewriter {
        chars: src.chars().collect(),
        pos: 0,
        out: String::new(),
        groups: Vec::new(),
        operand: None,
        after_repeat: false,
    }
    .run()
}

struct Rewriter {
    chars: Vec<char>,
    pos: usize,
    out: String,
    /// Where each open group starts in `out`.
    groups: Vec<usize>,
    /// What a repetition operator would repeat, `None` at the start of
    /// the expression, a group or an alternative (where Go reports a
    /// missing argument).
    operand: Option<Operand>,
    /// Whether the last thing read was a repetition: Go refuses `a**`.
    after_repeat: bool,
}

struct Operand {
    /// Where it starts in `out`.
    start: usize,
    /// Whether it already carries a repetition (`a*\Q\E*` is legal Go).
    repeated: bool,
    /// The counts stacked on it, innermost first, for Go's limit on
    /// their product.
    counts: Vec<Count>,
}

/// `{min,max}`; `None` for no maximum.
type Count = (u32, Option<u32>);

fn count_text((min, max): Count) -> String {
    match max {
        None => format!("{{{min},}}"),
        Some(max) if max == min => format!("{{{min}}}"),
        Some(max) => format!("{{{min},{max}}}"),
    }
}

/// A class Go knows by name: the inside of a Rust class, and whether
/// Go negated it.
struct Named {
    body: String,
    negated: bool,
}

impl Named {
    /// As one item of an enclosing Rust class.
    fn push_item(&self, out: &mut String) {
        if self.negated {
            out.push_str("[^");
            out.push_str(&self.body);
            out.push(']');
        } else {
            out.push_str(&self.body);
        }
    }
}

impl Rewriter {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Go's `parse` loop.
    fn run(mut self) -> Result<String, String> {
        while let Some(c) = self.bump() {
            let after_repeat = std::mem::take(&mut self.after_repeat);
            let repeat = match c {
                '*' | '+' | '?' => Some((c.to_string(), None)),
                '{' => self
                    .counted_repeat()?
                    .map(|count| (count_text(count), Some(count))),
                _ => None,
            };
            if let Some((op, count)) = repeat {
                self.repeat(after_repeat, &op, count)?;
                continue;
            }
            match c {
                '(' => {
                    self.groups.push(self.out.len());
                    self.out.push_str("(?:");
                    self.operand = None;
                }
                ')' => {
                    let start = self.groups.pop().ok_or("unexpected )")?;
                    self.out.push(')');
                    self.set_operand(start);
                }
                '|' => {
                    self.out.push('|');
                    self.operand = None;
                }
                '[' => self.class()?,
                '.' | '^' | '$' => self.atom(&c.to_string()),
                '\\' => self.escape()?,
                c => self.literal(u32::from(c)),
            }
        }
        if !self.groups.is_empty() {
            return Err("missing closing )".into());
        }
        Ok(self.out)
    }

    fn set_operand(&mut self, start: usize) {
        self.operand = Some(Operand {
            start,
            repeated: false,
            counts: Vec::new(),
        });
    }

    /// Something that repetition applies to as a whole, written as is.
    fn atom(&mut self, text: &str) {
        self.set_operand(self.out.len());
        self.out.push_str(text);
    }

    /// A code point to match; one that is not a `char` matches nothing.
    fn literal(&mut self, c: u32) {
        self.set_operand(self.out.len());
        match char::from_u32(c) {
            Some(c) => push_char(&mut self.out, c),
            None => self.out.push_str(NOTHING),
        }
    }

    /// Go's `repeat`: `op` (`*`, `{2,3}`, ...) applied to the operand.
    fn repeat(&mut self, after_repeat: bool, op: &str, count: Option<Count>) -> Result<(), String> {
        // Non-greedy `*?`: the same texts match, and we only ask whether
        // one does.
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if after_repeat {
            return Err("invalid nested repetition operator".into());
        }
        let operand = self
            .operand
            .as_mut()
            .ok_or("missing argument to repetition operator")?;
        if let Some((min, max)) = count {
            // Go's repeatIsValid, checked only for counts of 2 or more:
            // walking outwards in, each count divides a budget of 1000
            // and may not exceed what is left; a `{0}` ends the walk.
            if min >= 2 || max.is_some_and(|max| max >= 2) {
                let mut budget = MAX_REPEAT;
                for &(min, max) in std::iter::once(&(min, max)).chain(operand.counts.iter().rev()) {
                    let m = match max {
                        Some(0) => break,
                        Some(max) => max,
                        None => min,
                    };
                    if m > budget {
                        return Err(format!("invalid repeat count `{op}`"));
                    }
                    budget /= m.max(1);
                }
            }
            operand.counts.push((min, max));
        }
        // Rust would read `a*?` as one operator, so stacked ones get a group.
        if operand.repeated {
            self.out.insert_str(operand.start, "(?:");
            self.out.push(')');
        }
        operand.repeated = true;
        self.out.push_str(op);
        self.after_repeat = true;
        Ok(())
    }

    /// Go's `parseRepeat` after a `{`: `{n}`, `{n,}` or `{n,m}`, or
    /// `None` (nothing consumed) when the text is not one, in which case
    /// the `{` is a literal.
    fn counted_repeat(&mut self) -> Result<Option<Count>, String> {
        let start = self.pos;
        let parsed = (|| {
            let min = self.decimal()?;
            let max = if self.peek() == Some(',') {
                self.pos += 1;
                if self.peek() == Some('}') {
                    None
                } else {
                    Some(self.decimal()?)
                }
            } else {
                Some(min)
            };
            (self.bump() == Some('}')).then_some((min, max))
        })();
        let Some((min, max)) = parsed else {
            self.pos = start;
            return Ok(None);
        };
        let too_big = |n: u64| n > u64::from(MAX_REPEAT);
        if too_big(min) || max.is_some_and(|max| too_big(max) || min > max) {
            let text: String = self.chars[start - 1..self.pos].iter().collect();
            return Err(format!("invalid repeat count `{text}`"));
        }
        // Both fit in u32: they are at most MAX_REPEAT.
        let narrow = |n: u64| u32::try_from(n).unwrap_or(MAX_REPEAT);
        Ok(Some((narrow(min), max.map(narrow))))
    }

    /// Go's `parseInt`: digits without a leading zero (a lone `0` is
    /// fine); a huge value saturates, to be refused as too big.
    fn decimal(&mut self) -> Option<u64> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.chars[start..self.pos];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == '0') {
            return None;
        }
        Some(digits.iter().fold(0u64, |n, d| {
            n.saturating_mul(10)
                .saturating_add(u64::from(u32::from(*d) - u32::from('0')))
        }))
    }

    /// After a `\` outside a class.
    fn escape(&mut self) -> Result<(), String> {
        let assertion = match self.peek() {
            Some('A') => Some(r"\A"),
            Some('z') => Some(r"\z"),
            // Go's word boundaries look at ASCII word characters only.
            Some('b') => Some(r"(?-u:\b)"),
            Some('B') => Some(r"(?-u:\B)"),
            _ => None,
        };
        if let Some(assertion) = assertion {
            self.pos += 1;
            self.atom(assertion);
            return Ok(());
        }
        if self.peek() == Some('Q') {
            // `\Q...\E`: literal text, to `\E` or the end.
            self.pos += 1;
            while let Some(c) = self.bump() {
                if c == '\\' && self.peek() == Some('E') {
                    self.pos += 1;
                    break;
                }
                self.literal(u32::from(c));
            }
            return Ok(());
        }
        if let Some(named) = self.class_escape()? {
            self.set_operand(self.out.len());
            self.out.push('[');
            if named.negated {
                self.out.push('^');
            }
            self.out.push_str(&named.body);
            self.out.push(']');
            return Ok(());
        }
        let c = self.escaped_char()?;
        self.literal(c);
        Ok(())
    }

    /// `\d \D \s \S \w \W` or a Unicode class like `\pL` (the `\` already
    /// read); `None` leaves the position alone.
    fn class_escape(&mut self) -> Result<Option<Named>, String> {
        // Go's are ASCII; Rust's are Unicode, and its ASCII `\s` has `\v`.
        let (body, negated) = match self.peek() {
            Some('d') => ("0-9", false),
            Some('D') => ("0-9", true),
            Some('s') => (r"\t\n\x0C\r ", false),
            Some('S') => (r"\t\n\x0C\r ", true),
            Some('w') => ("0-9A-Za-z_", false),
            Some('W') => ("0-9A-Za-z_", true),
            Some('p' | 'P') => return self.unicode_class().map(Some),
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(Named {
            body: body.to_owned(),
            negated,
        }))
    }

    /// Go's `parseUnicodeClass` at the `p` of `\pL`, `\p{Greek}`,
    /// `\p{^Greek}` or `\PL`: a one-character name, or one in braces.
    fn unicode_class(&mut self) -> Result<Named, String> {
        let start = self.pos - 1;
        let mut negated = self.bump() == Some('P');
        let name: String = match self.bump() {
            Some('{') => {
                let rest = &self.chars[self.pos..];
                let Some(len) = rest.iter().position(|&c| c == '}') else {
                    return Err("unclosed Unicode class name".into());
                };
                self.pos += len + 1;
                rest[..len].iter().collect()
            }
            Some(c) => c.to_string(),
            None => String::new(),
        };
        let name = match name.strip_prefix('^') {
            Some(name) => {
                negated = !negated;
                name
            }
            None => &name,
        };
        let body = match name {
            "Any" => r"\x{0}-\x{10FFFF}".to_owned(),
            // Surrogates, which UTF-8 text never holds.
            "Cs" => NOTHING.to_owned(),
            // Go's `C` lacks the unassigned code points (Cn) that
            // Unicode's, and Rust's, has.
            "C" => r"\p{gc=Cc}\p{gc=Cf}\p{gc=Co}".to_owned(),
            // Go matches names exactly (`\p{greek}` is an error), Rust
            // loosely; and `gc=`/`sc=` keep Rust from reading a name as
            // some other property.
            _ if listed(CATEGORIES, name) => format!(r"\p{{gc={name}}}"),
            _ if listed(SCRIPTS, name) => format!(r"\p{{sc={name}}}"),
            _ => {
                let text: String = self.chars[start..self.pos].iter().collect();
                return Err(format!("unknown Unicode class `{text}`"));
            }
        };
        Ok(Named { body, negated })
    }

    /// Go's `parseEscape`: the character after a `\`.
    fn escaped_char(&mut self) -> Result<u32, String> {
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Err("trailing backslash".into());
        };
        let octal = |c: Option<char>| c.and_then(|c| c.to_digit(8));
        let value = match c {
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(u32::from(c)),
            // `\1`..`\7` alone would be a backreference: an error in Go.
            '1'..='7' if octal(self.peek()).is_none() => None,
            '0'..='7' => {
                let mut value = u32::from(c) - u32::from('0');
                for _ in 0..2 {
                    let Some(digit) = octal(self.peek()) else {
                        break;
                    };
                    value = value * 8 + digit;
                    self.pos += 1;
                }
                Some(value)
            }
            'x' => self.hex_escape(),
            'a' => Some(0x07),
            'f' => Some(0x0C),
            'n' => Some(0x0A),
            'r' => Some(0x0D),
            't' => Some(0x09),
            'v' => Some(0x0B),
            _ => None,
        };
        value.ok_or_else(|| {
            let seq: String = self.chars[start..self.pos].iter().collect();
            format!("invalid escape sequence `\\{seq}`")
        })
    }

    /// `\xHH` or `\x{H...}` (the `\x` already read).
    fn hex_escape(&mut self) -> Option<u32> {
        let hex = |c: Option<char>| c.and_then(|c| c.to_digit(16));
        if self.peek() != Some('{') {
            let high = hex(self.bump())?;
            let low = hex(self.bump())?;
            return Some(high * 16 + low);
        }
        self.pos += 1;
        let mut value: u32 = 0;
        let mut digits = 0;
        loop {
            match self.bump()? {
                '}' if digits > 0 => return Some(value),
                c => {
                    value = value * 16 + c.to_digit(16)?;
                    if value > u32::from(char::MAX) {
                        return None;
                    }
                    digits += 1;
                }
            }
        }
    }

    /// Go's `parseClass`, after the `[`, written as a Rust class of the
    /// same items.
    fn class(&mut self) -> Result<(), String> {
        let start = self.out.len();
        self.out.push('[');
        if self.peek() == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true; // a `]` right after `[` or `[^` is literal
        loop {
            match self.peek() {
                None => return Err("missing closing ]".into()),
                Some(']') if !first => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            first = false;
            if self.peek() == Some('[') && self.peek_at(1) == Some(':') {
                if let Some(named) = self.posix_class()? {
                    named.push_item(&mut self.out);
                    continue;
                }
            }
            if self.peek() == Some('\\') {
                self.pos += 1;
                if let Some(named) = self.class_escape()? {
                    named.push_item(&mut self.out);
                    continue;
                }
                self.pos -= 1;
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            // Perl rules: `-` is a range unless it is last (`[a-]`).
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err("invalid character class range".into());
                }
            }
            push_range(&mut self.out, lo, hi);
        }
        self.out.push(']');
        self.set_operand(start);
        Ok(())
    }

    fn class_char(&mut self) -> Result<u32, String> {
        match self.bump() {
            None => Err("missing closing ]".into()),
            Some('\\') => self.escaped_char(),
            Some(c) => Ok(u32::from(c)),
        }
    }

    /// `[:name:]` or `[:^name:]` at the position. Like Go, a `[:` with no
    /// `:]` anywhere after it is not a named class, and an unknown name is
    /// an error.
    fn posix_class(&mut self) -> Result<Option<Named>, String> {
        let after = &self.chars[self.pos + 2..];
        let Some(i) = after.windows(2).position(|w| w == [':', ']']) else {
            return Ok(None);
        };
        let name: String = after[..i].iter().collect();
        let (negated, bare) = match name.strip_prefix('^') {
            Some(bare) => (true, bare),
            None => (false, name.as_str()),
        };
        if !listed(POSIX, bare) {
            return Err(format!("invalid character class range `[:{name}:]`"));
        }
        self.pos += 2 + i + 2;
        Ok(Some(Named {
            body: format!("[:{bare}:]"),
            negated,
        }))
    }
}

fn push_char(out: &mut String, c: char) {
    out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

/// `lo-hi` as items of a Rust class, without the surrogates.
fn push_range(out: &mut String, lo: u32, hi: u32) {
    let mut any = false;
    for (lo, hi) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
        if let (Some(lo), Some(hi)) = (char::from_u32(lo), char::from_u32(hi)) {
            if lo <= hi {
                push_char(out, lo);
                if hi > lo {
                    out.push('-');
                    push_char(out, hi);
                }
                any = true;
            }
        }
    }
    if !any {
        out.push_str(NOTHING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_for_rust() {
        let cases = [
            (r"^[^/]*\.txt$", r"^[^/]*\.txt$"),
            (r"^(.*/)?a|b$", r"^(?:.*/)?a|b$"),
            (r"^[a-c[:digit:]\d]$", r"^[a-c[:digit:]0-9]$"),
            (r"^[[:^alpha:]]$", r"^[[^[:alpha:]]]$"),
            (r"^\D\s$", r"^[^0-9][\t\n\x0C\r ]$"),
            (
                r"^[^\pL\PN]\p{Greek}$",
                r"^[^\p{gc=L}[^\p{gc=N}]][\p{sc=Greek}]$",
            ),
            (r"^[[a]-]$", r"^[\[a]\-\]$"),
            (r"^[a&&b~~][--]$", r"^[a\&\&b\~\~][\-\-]$"),
            (r"^x{,2}a{02}{2,}$", r"^x\{,2\}a\{02\}{2,}$"),
            (r"^\<\101\x{42}\Q.*\E$", r"^<AB\.\*$"),
            (r"^\ba\B\A\z$", r"^(?-u:\b)a(?-u:\B)\A\z$"),
            (r"^a*?\Q\E{2}$", r"^(?:a*){2}$"),
            (
                r"^\x{D800}[\x{D800}-\x{E000}]$",
                "^[^\\x{0}-\\x{10FFFF}][\u{E000}]$",
            ),
        ];
        for (go, rust) in cases {
            assert_eq!(to_rust(go).as_deref(), Ok(rust), "Go regex {go:?}");
        }
    }

    #[test]
    fn knows_the_names_go_knows() {
        let names = [CATEGORIES, SCRIPTS, "Any"].map(str::split_ascii_whitespace);
        for name in names.into_iter().flatten() {
            for class in [format!(r"\p{{{name}}}"), format!(r"[^\P{{^{name}}}]")] {
                assert!(compile(&class).is_ok(), "{class}");
            }
        }
    }
}
