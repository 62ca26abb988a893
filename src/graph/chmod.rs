//! `COPY/ADD --chmod`: an octal mode, or chmod(1)'s symbolic clauses
//! (`+x`, `u=rwX,go=rX`, `g=u`), as BuildKit reads them (Dockerfile 1.14:
//! BSD `setmode` with a umask of 0, through tonistiigi/dchapes-mode).
//!
//! A value that parses as octal is octal and replaces the mode. Otherwise
//! it is comma-separated clauses `[ugoa]*([+-=]([rwxXst]*|[ugo]))+`
//! applied in order to each entry's own mode: no `ugoa` means all (the
//! umask is 0), `X` (with `+` only) sets execute where the entry is a
//! folder or already had an execute bit (BuildKit's parser ignores `X`
//! after `=` and `-`, whatever its docs say), `s` and `t` are set-id and
//! sticky, and `u`, `g`, `o` after the operator copy that class's current
//! bits.

/// One step of a symbolic mode, applied to the mode so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Clear(u32),
    Set(u32),
    /// Set these bits when the original mode had an execute bit or the
    /// entry is a folder.
    SetIfExec(u32),
    /// Copy class `from`'s rwx (0 u, 1 g, 2 o) into the classes of `to`
    /// (bits 0o700, 0o070, 0o007), clearing them first with `=`.
    Copy {
        from: u8,
        to: u32,
        clear: bool,
        set: bool,
    },
}

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic { text: String, ops: Vec<Op> },
}

const SET_ID: u32 = 0o6000;
const STICKY: u32 = 0o1000;
const STANDARD: u32 = 0o6777;

impl Chmod {
    /// Parses `--chmod`'s value; the error says what is wrong and the fix.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let bad = || {
            format!("--chmod={s}: give an octal mode like 755, or symbolic clauses like u=rwX,go=rX or +x")
        };
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            return u32::from_str_radix(s, 8)
                .ok()
                .filter(|v| *v <= 0o7777)
                .map(Chmod::Octal)
                .ok_or_else(bad);
        }
        let mut ops = Vec::new();
        for clause in s.split(',') {
            let b = clause.as_bytes();
            let mut i = 0;
            let mut who = 0u32;
            while i < b.len() {
                who |= match b[i] {
                    b'a' => STANDARD,
                    b'u' => 0o4700,
                    b'g' => 0o2070,
                    b'o' => 0o0007,
                    _ => break,
                };
                i += 1;
            }
            if i == b.len() {
                return Err(bad());
            }
            // Where bits land: the named classes, else all (umask 0).
            let mask = |perm: u32, who: u32| match who {
                0 => perm,
                w => w & perm,
            };
            while i < b.len() {
                let op = b[i];
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(bad());
                }
                i += 1;
                let mut who = who;
                let mut perm = 0u32;
                let mut x = 0u32;
                let mut copy: Option<u8> = None;
                while i < b.len() && !matches!(b[i], b'+' | b'-' | b'=') {
                    match b[i] {
                        b'r' => perm |= 0o444,
                        b'w' => perm |= 0o222,
                        b'x' => perm |= 0o111,
                        b'X' if op == b'+' => x |= 0o111,
                        b'X' => {}
                        b's' if who == 0 || who & !0o007 != 0 => perm |= SET_ID,
                        b's' => {}
                        b't' if who == 0 || who & !0o007 != 0 => {
                            who |= STICKY;
                            perm |= STICKY;
                        }
                        b't' => {}
                        c @ (b'u' | b'g' | b'o') if copy.is_none() && perm == 0 && x == 0 => {
                            copy = Some(match c {
                                b'u' => 0,
                                b'g' => 1,
                                _ => 2,
                            })
                        }
                        _ => return Err(bad()),
                    }
                    i += 1;
                }
                if let Some(from) = copy {
                    let to = match who {
                        0 => 0o777,
                        w => w & 0o777,
                    };
                    ops.push(Op::Copy {
                        from,
                        to,
                        clear: op != b'+',
                        set: op != b'-',
                    });
                    continue;
                }
                match op {
                    b'+' => ops.push(Op::Set(mask(perm, who))),
                    b'-' => ops.push(Op::Clear(mask(perm, who))),
                    _ => {
                        ops.push(Op::Clear(match who {
                            0 => STANDARD,
                            w => w,
                        }));
                        ops.push(Op::Set(mask(perm, who)));
                    }
                }
                if x != 0 {
                    ops.push(Op::SetIfExec(mask(x, who)));
                }
            }
        }
        Ok(Chmod::Symbolic {
            text: s.to_owned(),
            ops,
        })
    }

    /// The mode of an entry whose own mode is `mode` (a folder when
    /// `dir`).
    pub fn apply(&self, mode: u32, dir: bool) -> u32 {
        let ops = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic { ops, .. } => ops,
        };
        let orig = mode & 0o7777;
        let mut m = orig;
        for op in ops {
            match *op {
                Op::Clear(bits) => m &= !bits,
                Op::Set(bits) => m |= bits,
                Op::SetIfExec(bits) => {
                    if dir || orig & 0o111 != 0 {
                        m |= bits
                    }
                }
                Op::Copy {
                    from,
                    to,
                    clear,
                    set,
                } => {
                    let v = (m >> (6 - 3 * u32::from(from))) & 0o7;
                    let spread = (v << 6 | v << 3 | v) & to;
                    if clear {
                        m &= !(match set {
                            true => to,
                            false => spread,
                        });
                    }
                    if set {
                        m |= spread;
                    }
                }
            }
        }
        m
    }
}

impl std::fmt::Display for Chmod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chmod::Octal(m) => write!(f, "{m:o}"),
            Chmod::Symbolic { text, .. } => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_table() {
        // (--chmod, mode before, folder, mode after); the expected values
        // are what chmod(1) gives with umask 0.
        let cases: &[(&str, u32, bool, u32)] = &[
            ("755", 0o600, false, 0o755),
            ("0644", 0o755, true, 0o644),
            ("4755", 0o600, false, 0o4755),
            ("+x", 0o644, false, 0o755),
            ("u+x", 0o644, false, 0o744),
            ("u=rwX,go=rX", 0o600, false, 0o644),
            // BuildKit's parser honours X after `+` only.
            ("u=rwX,go=rX", 0o700, false, 0o644),
            ("u=rwX,go=rX", 0o700, true, 0o644),
            ("=rw,+X", 0o600, true, 0o777),
            ("=rw,+X", 0o700, false, 0o777),
            ("=rw,+X", 0o600, false, 0o666),
            ("g=u", 0o640, false, 0o660),
            ("g=u", 0o751, false, 0o771),
            ("go-w", 0o666, false, 0o644),
            ("a=r", 0o777, false, 0o444),
            ("=", 0o4755, false, 0o0),
            ("o=", 0o777, false, 0o770),
            ("u+s", 0o755, false, 0o4755),
            ("g+s", 0o755, true, 0o2755),
            ("+t", 0o777, true, 0o1777),
            ("o+t", 0o777, true, 0o777),
            ("u=rwx,g=rx,o=", 0o000, false, 0o750),
            ("u+x,g=rx", 0o600, false, 0o750),
            ("a+rX", 0o600, false, 0o644),
            ("a+rX", 0o610, false, 0o755),
            ("u-x+r", 0o300, false, 0o600),
            ("go+u", 0o700, false, 0o777),
            ("go-u", 0o777, false, 0o700),
        ];
        for (text, before, dir, after) in cases {
            let c = Chmod::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                c.apply(*before, *dir),
                *after,
                "{text} on {before:o} (dir {dir}): got {:o}",
                c.apply(*before, *dir)
            );
        }
    }

    #[test]
    fn chmod_errors() {
        for bad in ["", "99", "17777", "u", "u+y", "x+", "u+x,", "ug"] {
            let e = Chmod::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("--chmod={bad}:")), "{bad}: {e}");
        }
    }
}
