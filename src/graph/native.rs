//! What a Dockerfile RUN line does when hoist does it natively, as data:
//! the operations the frontend recognises ([`NativeOp`], account
//! commands read per tool flavour as [`AccountOp`]) and the executor
//! performs (`exec::steps::paths`, `exec::steps::accounts`).
//!
//! They live in the graph, as every type a frontend fills in does, so the
//! executor reads them without importing the frontend. `ModeSpec` carries
//! chmod's own arithmetic (GNU and busybox agree on what it accepts).

/// What a recognised command does, natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeOp {
    /// `npm ci` / `npm install` (lockfile presence is checked by the caller)
    Npm {
        /// `npm install` rather than `npm ci`.
        install: bool,
        omit_dev: bool,
        ignore_scripts: bool,
    },
    /// `pip install -r FILE` / `python -m pip install -r FILE` /
    /// `/opt/venv/bin/pip install -r FILE`
    Pip {
        /// As written (relative to the RUN's workdir when not absolute).
        requirements: String,
        user: bool,
        /// pip writes `.pyc` files unless `--no-compile`. (pip ignores
        /// `PYTHONDONTWRITEBYTECODE`: it compiles with `compileall`, which
        /// does not read it; so it does not clear this.)
        compile: bool,
        /// Set when a `python -m venv DIR` came first in the same RUN, or
        /// pip is `DIR/bin/pip` (`DIR/bin/python -m pip`): the venv pip
        /// installs into. The caller checks that DIR is a venv when no
        /// `python -m venv` made it here.
        venv: Option<String>,
    },
    /// useradd/groupadd/adduser/addgroup: argv as written, parsed elsewhere
    Account(Vec<String>),
    Mkdir {
        parents: bool,
        mode: Option<u32>,
        paths: Vec<String>,
    },
    Chown {
        /// `USER`, `USER:GROUP` or `:GROUP`, names or ids, as written.
        owner: String,
        recursive: bool,
        paths: Vec<String>,
    },
    Chmod {
        mode: ModeSpec,
        recursive: bool,
        paths: Vec<String>,
    },
}

/// The umask a RUN runs with (docker's and the sandbox's).
pub const UMASK: u32 = 0o022;

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const SVTX: u32 = 0o1000;
const ALL_X: u32 = 0o111;
const ALL_BITS: u32 = 0o7777;

/// A mode as `chmod` takes it: octal, or symbolic clauses
/// (`u+x`, `g-w,o=r`, `+x`, `a+rX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSpec {
    /// `digits` as written: GNU keeps a folder's setuid and setgid bits
    /// unless five digits are given.
    Octal {
        mode: u32,
        digits: usize,
    },
    Symbolic(Vec<ModeChange>),
}

/// One `WHO OP PERMS` of a symbolic mode (`a+rX` is one, `u+x,g-w` two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChange {
    /// The bits `WHO` covers; 0 when no `WHO` was written (then the umask
    /// limits the change, as in GNU chmod).
    affected: u32,
    op: char,
    value: u32,
    /// `X`: execute if a folder or already executable by someone.
    x_if_any: bool,
}

impl ModeSpec {
    /// Reads a mode; `None` for what this module does not take: copy
    /// forms (`g=u`), a mode without a WHO that writes or assigns
    /// (`+w`, `=r`: there the umask applies and GNU and busybox differ),
    /// anything malformed.
    pub fn parse(s: &str) -> Option<ModeSpec> {
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            let mode = u32::from_str_radix(s, 8).ok()?;
            return (mode <= ALL_BITS).then_some(ModeSpec::Octal {
                mode,
                digits: s.len(),
            });
        }
        let mut changes = Vec::new();
        for clause in s.split(',') {
            let mut chars = clause.chars().peekable();
            let mut affected = 0;
            while let Some(&c) = chars.peek() {
                affected |= match c {
                    'u' => SUID | 0o700,
                    'g' => SGID | 0o070,
                    'o' => SVTX | 0o007,
                    'a' => ALL_BITS,
                    _ => break,
                };
                chars.next();
            }
            // At least one OP per clause.
            chars.peek().filter(|c| "+-=".contains(**c))?;
            while let Some(op) = chars.next() {
                if !"+-=".contains(op) {
                    return None;
                }
                let (mut value, mut x_if_any) = (0, false);
                while let Some(&c) = chars.peek() {
                    value |= match c {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => ALL_X,
                        'X' => {
                            x_if_any = true;
                            0
                        }
                        's' => SUID | SGID,
                        't' => SVTX,
                        '+' | '-' | '=' => break,
                        _ => return None,
                    };
                    chars.next();
                }
                if affected == 0 && (op == '=' || value & 0o222 != 0) {
                    return None;
                }
                // busybox's `o` does not cover the sticky bit, GNU's
                // does: `t` only for everyone (`a`, or no WHO).
                if value & SVTX != 0 && affected != 0 && affected != ALL_BITS {
                    return None;
                }
                changes.push(ModeChange {
                    affected,
                    op,
                    value,
                    x_if_any,
                });
            }
        }
        Some(ModeSpec::Symbolic(changes))
    }

    /// The mode an entry with `old_mode` gets (permission bits, 0o7777),
    /// as GNU chmod computes it (coreutils' `mode_adjust`), umask 022.
    pub fn apply(&self, old_mode: u32, is_dir: bool) -> u32 {
        let old = old_mode & ALL_BITS;
        match self {
            ModeSpec::Octal { mode, digits } => {
                if is_dir && *digits < 5 {
                    // Set bits are set; unmentioned setuid/setgid kept.
                    (old & (SUID | SGID)) | mode
                } else {
                    *mode
                }
            }
            ModeSpec::Symbolic(changes) => {
                let mut new = old;
                for c in changes {
                    let mentioned = match c.affected {
                        0 => c.value,
                        a => a & c.value,
                    };
                    let omit = if is_dir { SUID | SGID } else { 0 } & !mentioned;
                    let mut value = c.value;
                    if c.x_if_any && (new & ALL_X != 0 || is_dir) {
                        value |= ALL_X;
                    }
                    value &= match c.affected {
                        0 => !UMASK,
                        a => a,
                    } & !omit;
                    match c.op {
                        '=' => {
                            let preserved = match c.affected {
                                0 => 0,
                                a => !a,
                            } | omit;
                            new = (new & preserved) | value;
                        }
                        '+' => new |= value,
                        _ => new &= !value,
                    }
                }
                new & ALL_BITS
            }
        }
    }
}

/// The program named by the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Groupadd,
    Useradd,
    Addgroup,
    Adduser,
}

/// Whose flag set a reading follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// shadow's `groupadd`/`useradd`.
    Shadow,
    /// Debian's perl `adduser`/`addgroup`.
    Debian,
    /// busybox's `adduser`/`addgroup`.
    Busybox,
}

/// One recognised account command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOp {
    pub program: Program,
    /// The words as written, for messages.
    pub argv: Vec<String>,
    /// What the words mean to each flavour that accepts them.
    pub readings: Vec<Reading>,
}

impl AccountOp {
    /// What the command means to `flavour`'s tool, if it accepts it.
    pub fn reading(&self, flavour: Flavour) -> Option<&Action> {
        self.readings
            .iter()
            .find(|r| r.flavour == flavour)
            .map(|r| &r.action)
    }
}

/// The command as one flavour reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub flavour: Flavour,
    pub action: Action,
}

/// What the command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Group(NewGroup),
    User(NewUser),
    /// An existing user into an existing group (`adduser USER GROUP`,
    /// `addgroup USER GROUP`).
    Member {
        user: String,
        group: String,
    },
}

/// A new group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    pub gid: Option<u32>,
    pub system: bool,
}

/// A new user; `None` fields are left to the tool's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUser {
    pub name: String,
    pub uid: Option<u32>,
    pub system: bool,
    /// The primary group by name or number: shadow `-g`, Debian
    /// `--ingroup` (a name) or `--gid` (a number), busybox `-G` (a name).
    pub group: Option<String>,
    /// A group named after the user: shadow `-U` (`Some(true)`) or `-N`
    /// (`Some(false)`), Debian `--group`.
    pub user_group: Option<bool>,
    pub home: Option<String>,
    /// shadow `-m`/`-M`, Debian `--no-create-home`, busybox `-H`.
    pub create_home: Option<bool>,
    pub shell: Option<String>,
    pub gecos: Option<String>,
    /// shadow `-l`: leave lastlog and faillog alone.
    pub no_log_init: bool,
    /// Debian `--disabled-login`: the shell defaults to nologin.
    pub disabled_login: bool,
}

/// A RUN line hoist may do natively: what the frontend recognised in it.
/// The executor does it natively only where the result is exactly the
/// command's, else runs the line in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeRun {
    /// Only account tools (groupadd, useradd, adduser, addgroup).
    Accounts(Vec<AccountOp>),
    /// Only mkdir, chown and chmod.
    Paths(Vec<NativeOp>),
}
