//! The resolver against indexes held in memory: what it chooses, what
//! it reads, and what its errors say.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pep440_rs::VersionSpecifiers;
use pep508_rs::MarkerEnvironmentBuilder;

use super::*;
use crate::deps::pip::dist::DistKind;
use crate::deps::pip::dist::Location;
use crate::deps::pip::tags::{Arch, Libc, WheelFilename};

/// An index in memory, one release per line:
/// `name version [flag ...] [: requirement | requirement ...]`.
///
/// Each release has a `py3-none-any` wheel unless flags say otherwise:
/// `whl=PY-ABI-PLAT` (repeatable) replaces it with wheels of those
/// tags, `nowheel` drops it, `sdist` adds an sdist, `yanked` yanks
/// every file, `rp=SPEC` gives the files a Requires-Python,
/// `meta-rp=SPEC` gives it to the metadata only, `metaname=NAME`
/// makes the metadata lie about the name. Extras are declared from the
/// `extra == "..."` markers of the requirements.
#[derive(Default)]
struct Fake {
    files: BTreeMap<PackageName, Vec<DistFile>>,
    metadata: HashMap<String, CoreMetadata>,
    broken: Vec<PackageName>,
    files_calls: Mutex<Vec<PackageName>>,
    metadata_calls: Mutex<Vec<String>>,
}

pub(super) fn name(s: &str) -> PackageName {
    PackageName::from_str(s).unwrap()
}

pub(super) fn version(s: &str) -> Version {
    Version::from_str(s).unwrap()
}

fn file(filename: String, kind: DistKind) -> DistFile {
    DistFile {
        location: Location::Url(format!("https://files.example/{filename}")),
        filename,
        kind,
        sha256: None,
        requires_python: None,
        yanked: false,
        metadata: Some(None),
        size: None,
    }
}

impl Fake {
    fn parse(text: &str) -> Fake {
        let mut fake = Fake::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (head, requires) = line.split_once(':').unwrap_or((line, ""));
            let mut words = head.split_whitespace();
            let (n, v) = (words.next().unwrap(), words.next().unwrap());
            let flags: Vec<&str> = words.collect();
            let requires: Vec<Requirement> = requires
                .split('|')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| Requirement::from_str(r).unwrap_or_else(|e| panic!("{r}: {e}")))
                .collect();
            let flag = |key: &str| {
                flags
                    .iter()
                    .filter_map(move |f| f.strip_prefix(key))
                    .collect::<Vec<_>>()
            };
            let mut tags: Vec<&str> = flag("whl=");
            if tags.is_empty() && !flags.contains(&"nowheel") {
                tags.push("py3-none-any");
            }
            let mut files: Vec<DistFile> = tags
                .iter()
                .map(|t| {
                    let f = format!("{}-{v}-{t}.whl", n.replace('-', "_"));
                    let w = WheelFilename::parse(&f).unwrap();
                    file(f, DistKind::Wheel(w))
                })
                .collect();
            if flags.contains(&"sdist") {
                let kind = DistKind::Sdist {
                    version: version(v),
                };
                files.push(file(format!("{n}-{v}.tar.gz"), kind));
            }
            let rp = flag("rp=")
                .first()
                .map(|s| VersionSpecifiers::from_str(s).unwrap());
            for f in &mut files {
                f.yanked = flags.contains(&"yanked");
                f.requires_python = rp.clone();
            }
            let extras: BTreeSet<ExtraName> = requires
                .iter()
                .flat_map(|r| {
                    let m = r.marker.try_to_string().unwrap_or_default();
                    m.split("extra == '")
                        .skip(1)
                        .map(|rest| ExtraName::from_str(&rest[..rest.find('\'').unwrap()]).unwrap())
                        .collect::<Vec<_>>()
                })
                .collect();
            let metadata = CoreMetadata {
                name: flag("metaname=")
                    .first()
                    .map_or_else(|| name(n), |m| name(m)),
                version: version(v),
                requires_dist: requires,
                requires_python: flag("meta-rp=")
                    .first()
                    .map(|s| VersionSpecifiers::from_str(s).unwrap()),
                provides_extras: extras.into_iter().collect(),
            };
            for f in &files {
                fake.metadata.insert(f.filename.clone(), metadata.clone());
            }
            fake.files.entry(name(n)).or_default().extend(files);
        }
        fake
    }
}

impl Source for Fake {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.files_calls.lock().unwrap().push(name.clone());
        if self.broken.contains(name) {
            return Err(SourceError::new(format!("HTTP 503 for /simple/{name}/")));
        }
        Ok(Arc::new(self.files.get(name).cloned().unwrap_or_default()))
    }

    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
        self.metadata_calls
            .lock()
            .unwrap()
            .push(file.filename.clone());
        self.metadata
            .get(&file.filename)
            .cloned()
            .ok_or_else(|| SourceError::new("no such file"))
    }
}

/// CPython 3.11.2 on x86_64 glibc 2.36 (Debian bookworm).
fn input(requirements: &str, constraints: &str, pre: bool) -> ResolveInput {
    let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: "3.11.2",
        os_name: "posix",
        platform_machine: "x86_64",
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: "Linux",
        platform_version: "",
        python_full_version: "3.11.2",
        python_version: "3.11",
        sys_platform: "linux",
    })
    .unwrap();
    let lines = |text: &str, file: &str| -> Vec<Requested> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Requested {
                requirement: Requirement::from_str(l.trim()).unwrap(),
                file: file.to_owned(),
                line: i + 1,
            })
            .collect()
    };
    ResolveInput {
        requirements: lines(requirements, "requirements.txt"),
        constraints: lines(constraints, "constraints.txt"),
        markers,
        target: Target {
            python: (3, 11),
            arch: Arch::X86_64,
            libc: Libc::Glibc {
                major: 2,
                minor: 36,
            },
        },
        python: version("3.11.2"),
        pre,
        unknown_patch: None,
    }
}

/// `a==1.0 b[x,y]==2.0`, in name order.
fn show(resolution: &Resolution) -> String {
    let one = |p: &Pinned| {
        let extras: Vec<String> = p.extras.iter().map(ToString::to_string).collect();
        let extras = if extras.is_empty() {
            String::new()
        } else {
            format!("[{}]", extras.join(","))
        };
        format!("{}{extras}=={}", p.name, p.version)
    };
    resolution
        .packages
        .iter()
        .map(one)
        .collect::<Vec<_>>()
        .join(" ")
}

const CHAIN: &str = "
    a 1.0 : b>=1
    b 0.9
    b 1.0 : c
    c 1.0
    c 2.0
";

const EXTRAS: &str = "
    web 1.0 : core | fast; extra == 'speed' | web[json]; extra == 'all' | web[speed]; extra == 'all' | orjson; extra == 'json'
    core 1.0
    fast 1.0
    orjson 3.0
    user 1.0 : web[speed]
    other 1.0 : web
";

const MARKERS: &str = "
    a 1.0 : old; python_version < '3.8' | win; sys_platform == 'win32' | arm; platform_machine == 'aarch64' | x86; platform_machine == 'x86_64' | new; python_full_version >= '3.11.1'
    old 1.0
    win 1.0
    arm 1.0
    x86 1.0
    new 1.0
    top 1.0
";

const PYTHON: &str = "
    a 3.0 meta-rp=>=3.12
    a 2.0 rp=>=3.12
    a 1.5 rp=<3.12,>=3.8
    a 1.0
";

const YANKED: &str = "
    a 2.0 yanked
    a 1.0
    b 1.0 yanked
";

const PRE: &str = "
    a 2.0b1
    a 1.0
    b 1.0rc1
    c 1.0 : a>=2.0b1
    d 1.0 : a!=2.0b1
";

const LOCAL: &str = "
    torch 2.0
    torch 2.0+cpu
    torch 2.0.post1
    torch 1.9+cpu
";

const BACKTRACK: &str = "
    a 2.0 : b==1.0
    a 1.0 : b==2.0
    b 1.0
    b 2.0
";

const WHEELS: &str = "
    a 2.0 whl=cp39-cp39-manylinux_2_17_x86_64 whl=cp311-cp311-win_amd64
    a 1.0 whl=py3-none-any whl=cp311-cp311-manylinux_2_17_x86_64 whl=cp311-cp311-musllinux_1_2_x86_64
    s 2.0 nowheel sdist
    s 1.0
    w 2.0 whl=cp311-cp311-win_amd64 whl=cp311-cp311-macosx_11_0_arm64 sdist
    w 1.0
    m 1.0 whl=cp311-abi3-manylinux_2_28_x86_64 whl=cp311-cp311-manylinux_2_28_x86_64 whl=cp311-cp311-manylinux_2_17_x86_64
";

#[test]
fn resolutions() {
    // (what, index, requirements, constraints, --pre, expected)
    let cases: &[(&str, &str, &str, &str, bool, &str)] = &[
        ("chain, newest first", CHAIN, "a", "", false, "a==1.0 b==1.0 c==2.0"),
        ("top-level pin", CHAIN, "a\nc==1.0", "", false, "a==1.0 b==1.0 c==1.0"),
        ("two lines, one project", CHAIN, "c>=1\nc<2", "", false, "c==1.0"),
        ("no extra, no extra deps", EXTRAS, "web", "", false, "core==1.0 web==1.0"),
        ("an extra", EXTRAS, "web[speed]", "", false, "core==1.0 fast==1.0 web[speed]==1.0"),
        (
            "an extra that asks for others",
            EXTRAS,
            "web[all]",
            "",
            false,
            "core==1.0 fast==1.0 orjson==3.0 web[all,json,speed]==1.0",
        ),
        (
            "pkg[x] and pkg from different requirers",
            EXTRAS,
            "other\nuser",
            "",
            false,
            "core==1.0 fast==1.0 other==1.0 user==1.0 web[speed]==1.0",
        ),
        ("extra spelled differently", EXTRAS, "Web[Speed]", "", false, "core==1.0 fast==1.0 web[speed]==1.0"),
        (
            "markers for the image, transitive",
            MARKERS,
            "a",
            "",
            false,
            "a==1.0 new==1.0 x86==1.0",
        ),
        (
            "markers for the image, top level",
            MARKERS,
            "old; python_version < '3.8'\nwin; sys_platform == 'win32'\narm; platform_machine == 'aarch64'\ntop; python_version >= '3.11' and sys_platform == 'linux'",
            "",
            false,
            "top==1.0",
        ),
        ("requires-python skips newest", PYTHON, "a", "", false, "a==1.5"),
        ("requires-python, pinned away", PYTHON, "a<1.5", "", false, "a==1.0"),
        ("yanked skipped", YANKED, "a", "", false, "a==1.0"),
        ("yanked taken when pinned", YANKED, "a==2.0", "", false, "a==2.0"),
        ("yanked taken when pinned ===", YANKED, "a===2.0", "", false, "a==2.0"),
        ("yanked pinned by a constraint", YANKED, "a", "a==2.0", false, "a==2.0"),
        ("pre-release skipped", PRE, "a", "", false, "a==1.0"),
        ("--pre", PRE, "a", "", true, "a==2.0b1"),
        ("specifier names a pre-release", PRE, "a>=2.0b1", "", false, "a==2.0b1"),
        ("transitive specifier names one", PRE, "c", "", false, "a==2.0b1 c==1.0"),
        ("!= does not let pre-releases in", PRE, "d", "", false, "a==1.0 d==1.0"),
        ("only pre-releases: taken", PRE, "b", "", false, "b==1.0rc1"),
        ("only pre-releases in range: taken", PRE, "a>1.0", "", false, "a==2.0b1"),
        ("== matches local versions", LOCAL, "torch==2.0", "", false, "torch==2.0+cpu"),
        ("== with a local label", LOCAL, "torch==1.9+cpu", "", false, "torch==1.9+cpu"),
        ("<= matches local versions", LOCAL, "torch<=2.0", "", false, "torch==2.0+cpu"),
        ("!= excludes local versions", LOCAL, "torch!=2.0,<2.0.post1", "", false, "torch==1.9+cpu"),
        ("> excludes post and local", LOCAL, "torch>1.9,<2.0.post1", "", false, "torch==2.0+cpu"),
        ("constraint narrows", CHAIN, "a", "c<2", false, "a==1.0 b==1.0 c==1.0"),
        ("constraint adds nothing", CHAIN, "c", "a==1.0\nzzz==1", false, "c==2.0"),
        ("constraint with a false marker", CHAIN, "c", "c<2; sys_platform == 'win32'", false, "c==2.0"),
        ("backtracking", BACKTRACK, "a\nb>=2", "", false, "a==1.0 b==2.0"),
        ("wheels for elsewhere only: skipped", WHEELS, "a", "", false, "a==1.0"),
    ];
    for (what, index, reqs, constraints, pre, want) in cases {
        let fake = Fake::parse(index);
        let got = resolve(&fake, &input(reqs, constraints, *pre))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(show(&got), *want, "{what}");
        // Each listing read once, each version's metadata once.
        for calls in [
            fake.files_calls
                .lock()
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            fake.metadata_calls.lock().unwrap().clone(),
        ] {
            let mut unique = calls.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), calls.len(), "{what}: {calls:?}");
        }
    }
}

/// Reading ahead (on many threads) and reading as asked (none) give the
/// same answers and the same errors, and reading ahead finds what the
/// requirements lead to before the resolver asks.
#[test]
fn reading_ahead_changes_nothing() {
    // (index, requirements, constraints, --pre)
    let cases: &[(&str, &str, &str, bool)] = &[
        (CHAIN, "a", "", false),
        (CHAIN, "a", "c<2", false),
        (EXTRAS, "web[all]", "", false),
        (EXTRAS, "other\nuser", "", false),
        (MARKERS, "a", "", false),
        (PYTHON, "a", "", false),
        (YANKED, "a==2.0\nb", "", false),
        (PRE, "c\nd", "", false),
        (PRE, "b", "", true),
        (LOCAL, "torch<=2.0", "", false),
        (BACKTRACK, "a\nb>=2", "", false),
        (WHEELS, "a\nm\nw", "", false),
        (WHEELS, "s", "", false),
        ("a 1.0 : b>=2\nb 1.0", "a", "", false),
        ("a 1.0 : nowhere", "a", "", false),
    ];
    let outcome = |r: Result<Resolution, ResolveError>| match r {
        Ok(r) => show(&r),
        Err(e) => format!("error: {e}"),
    };
    for (index, reqs, constraints, pre) in cases {
        let input = input(reqs, constraints, *pre);
        let asked = Fake::parse(index);
        let want = outcome(resolve_reading_ahead(&asked, &input, 0));
        for workers in [1, 4, prefetch::WORKERS] {
            let ahead = Fake::parse(index);
            let got = outcome(resolve_reading_ahead(&ahead, &input, workers));
            assert_eq!(got, want, "{reqs} over {index} with {workers} workers");
        }
    }
    // The listings and metadata of a wide tree are fetched side by side
    // ahead of the resolver, and one at a time without reading ahead.
    let wide = "
        app 1.0 : a | b | c | d
        a 1.0 : a1 | a2
        b 1.0 : b1 | b2
        c 1.0
        d 1.0
        a1 1.0
        a2 1.0
        b1 1.0
        b2 1.0
    ";
    for (workers, at_once) in [(0, 1), (prefetch::WORKERS, 2)] {
        let slow = Slow {
            fake: Fake::parse(wide),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        };
        let got = resolve_reading_ahead(&slow, &input("app", "", false), workers).unwrap();
        assert_eq!(
            show(&got),
            "a==1.0 a1==1.0 a2==1.0 app==1.0 b==1.0 b1==1.0 b2==1.0 c==1.0 d==1.0"
        );
        let most = slow.most.into_inner();
        if workers == 0 {
            assert_eq!(most, at_once, "without reading ahead");
        } else {
            assert!(most >= at_once, "{workers} workers, at most {most} at once");
        }
    }
}

/// A [`Fake`] whose every answer takes a while, counting how many
/// questions are under way at once.
struct Slow {
    fake: Fake,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Slow {
    fn slowly<T>(&self, f: impl FnOnce() -> T) -> T {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let out = f();
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

impl Source for Slow {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.slowly(|| self.fake.files(name))
    }

    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
        self.slowly(|| self.fake.metadata(file))
    }
}

#[test]
fn chosen_wheels() {
    // (requirement, the wheel taken)
    let cases = [
        ("a", "a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        ("m", "m-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        ("s<2", "s-1.0-py3-none-any.whl"),
    ];
    for (req, want) in cases {
        let got = resolve(&Fake::parse(WHEELS), &input(req, "", false)).unwrap();
        assert_eq!(got.packages[0].wheel.filename, want, "{req}");
    }
}

#[test]
fn who_requires_what() {
    let got = resolve(
        &Fake::parse(EXTRAS),
        &input("other\nuser\nweb[nosuch]", "", false),
    )
    .unwrap();
    let by: Vec<(String, Vec<String>)> = got
        .packages
        .iter()
        .map(|p| (p.name.to_string(), p.required_by.clone()))
        .collect();
    let want: Vec<(String, Vec<String>)> = [
        ("core", &["web==1.0"][..]),
        ("fast", &["web[speed]==1.0"]),
        ("other", &["requirements.txt:1"]),
        ("user", &["requirements.txt:2"]),
        ("web", &["requirements.txt:3", "other==1.0", "user==1.0"]),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), r.iter().map(ToString::to_string).collect()))
    .collect();
    assert_eq!(by, want);
    assert_eq!(
        got.warnings,
        ["web 1.0 does not provide the extra 'nosuch'"]
    );
}

#[test]
fn metadata_only_for_versions_tried() {
    // (index, requirements, metadata that must be read, and must not)
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (CHAIN, "a", &["b-1.0-py3-none-any.whl"], &["b-0.9-py3-none-any.whl", "c-1.0-py3-none-any.whl"]),
        // The extra takes the version its project already has.
        (
            "web 2.0 : x; extra == 'speed'\nweb 1.0 : x; extra == 'speed'\nx 1.0\nuser 1.0 : web[speed]",
            "web<2\nuser",
            &["web-1.0-py3-none-any.whl"],
            &["web-2.0-py3-none-any.whl"],
        ),
    ];
    for (index, reqs, read, unread) in cases {
        let fake = Fake::parse(index);
        resolve(&fake, &input(reqs, "", false)).unwrap();
        let calls = fake.metadata_calls.lock().unwrap().clone();
        for f in *read {
            assert!(calls.iter().any(|c| c == f), "{f} not read: {calls:?}");
        }
        for f in *unread {
            assert!(!calls.iter().any(|c| c == f), "{f} read: {calls:?}");
        }
    }
}

#[test]
fn source_errors_name_the_project() {
    let mut fake = Fake::parse(CHAIN);
    fake.broken.push(name("b"));
    let err = resolve(&fake, &input("a", "", false))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "reading the index for `b`: HTTP 503 for /simple/b/");
}

#[test]
fn failures() {
    // (what, index, requirements, constraints, substrings of the error)
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            "unsatisfiable pair",
            "a 1.0\na 2.0\nb 1.0 : a>=2",
            "a==1.0\nb",
            "",
            &[
                "you require a==1.0 (requirements.txt:1)",
                "b requires a>=2",
                "you require b (requirements.txt:2)",
            ],
        ),
        (
            "two lines that disagree",
            CHAIN,
            "c>=2 ; python_version >= '3'\na\nc<2",
            "",
            &["you require c>=2 (requirements.txt:1) and c<2 (requirements.txt:3), and no version is all of those"],
        ),
        (
            "conflict through a constraint",
            CHAIN,
            "a",
            "c>2",
            &["c>2", "constraints.txt:1 allows only c>2"],
        ),
        (
            "yanked only, not pinned",
            YANKED,
            "b",
            "",
            &["no version of b fits the image", "b 1.0 is yanked"],
        ),
        (
            "requires-python everywhere",
            "a 2.0 rp=>=3.12\na 1.0 meta-rp=>=3.13",
            "a",
            "",
            &[
                "a==1.0 requires Python >=3.13 (the image has 3.11.2)",
                "a 2.0 requires Python >=3.12",
            ],
        ),
        (
            "wheels for other platforms only",
            "x 1.0 whl=cp311-cp311-win_amd64 whl=cp311-cp311-manylinux_2_17_aarch64",
            "x",
            "",
            &[
                "no version of x fits the image",
                "x 1.0 has no sdist and no wheel for this image (x-1.0-cp311-cp311-win_amd64.whl, ...)",
                "x has no version for this image",
            ],
        ),
        (
            "newest sdist only: no wheel",
            WHEELS,
            "s",
            "",
            &[
                "`s==2.0` has no wheel for this image (only an sdist)",
                "cp311-cp311-manylinux_2_36_x86_64",
                "py3-none-any",
                "--find-links",
                "`s<2.0`",
                "sandbox",
            ],
        ),
        (
            "newest for other platforms and an sdist",
            WHEELS,
            "w",
            "",
            &[
                "`w==2.0` has no wheel",
                "w-2.0-cp311-cp311-win_amd64.whl",
                "w-2.0-cp311-cp311-macosx_11_0_arm64.whl",
            ],
        ),
        (
            "unknown top-level package",
            CHAIN,
            "a\nnosuch>=1",
            "",
            &[
                "`nosuch` is on no index (required by requirements.txt:2)",
                "--index-url",
            ],
        ),
        (
            "unknown transitive package",
            "a 1.0 : nosuch",
            "a",
            "",
            &["`nosuch` is on no index (required by a==1.0)"],
        ),
        (
            "metadata disagrees with the file",
            "a 1.0 metaname=b",
            "a",
            "",
            &["a-1.0-py3-none-any.whl says it is `b==1.0`, not `a==1.0`"],
        ),
        (
            "URL dependency",
            "a 1.0 : b @ https://example.com/b-1.0-py3-none-any.whl",
            "a",
            "",
            &[
                "`a==1.0` requires `b @ https://example.com/b-1.0-py3-none-any.whl` from a URL",
                "--find-links",
            ],
        ),
        (
            "constraint with extras",
            CHAIN,
            "a",
            "b[x]<2",
            &["constraints.txt:1: constraint `b[x]<2` has extras"],
        ),
    ];
    for (what, index, reqs, constraints, wants) in cases {
        let fake = Fake::parse(index);
        let err = match resolve(&fake, &input(reqs, constraints, false)) {
            Ok(r) => panic!("{what}: resolved to {}", show(&r)),
            Err(e) => e.to_string(),
        };
        for want in *wants {
            assert!(err.contains(want), "{what}: {want:?} not in:\n{err}");
        }
    }
}

mod build_tests {
    //! A source that builds sdists: the built wheel stands for the version,
    //! its metadata gives the dependencies, and a failed build names the
    //! version.
    use super::*;

    /// Wraps [`Fake`]: an sdist "builds" into a `py3-none-any` wheel with
    /// the sdist's metadata; `fail` names projects whose build fails.
    struct Building {
        fake: Fake,
        fail: Vec<&'static str>,
        builds: std::sync::Mutex<Vec<String>>,
    }

    impl Source for Building {
        fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
            self.fake.files(name)
        }
        fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
            match file.filename.strip_suffix("-py3-none-any.whl") {
                Some(stem) if file.filename.contains("-0built") => {
                    let sdist = format!("{}.tar.gz", stem.trim_end_matches("-0built"));
                    let m = self.fake.metadata.get(&sdist).cloned();
                    m.ok_or_else(|| SourceError::new("no such sdist"))
                }
                _ => self.fake.metadata(file),
            }
        }
        fn build(
            &self,
            name: &PackageName,
            sdist: &DistFile,
        ) -> Result<Option<DistFile>, SourceError> {
            self.builds.lock().unwrap().push(sdist.filename.clone());
            if self.fail.contains(&name.as_ref()) {
                return Err(SourceError::new("the build exited with status 1"));
            }
            let stem = sdist.filename.trim_end_matches(".tar.gz");
            let f = format!("{stem}-0built-py3-none-any.whl");
            let w = WheelFilename::parse(&f).unwrap();
            Ok(Some(file(f, DistKind::Wheel(w))))
        }
    }

    #[test]
    fn sdists_built_by_the_source() {
        let index = "
        app 1.0 nowheel sdist : dep>=2
        dep 2.0
        dep 1.0
        broken 1.0 nowheel sdist
        both 1.0 sdist
    ";
        // (requirements, Ok(chosen files) or Err(part of the message), builds)
        type Case = (
            &'static str,
            Result<Vec<&'static str>, &'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "app",
                Ok(vec![
                    "app-1.0-0built-py3-none-any.whl",
                    "dep-2.0-py3-none-any.whl",
                ]),
                vec!["app-1.0.tar.gz"],
            ),
            // A published wheel wins over a build.
            ("both", Ok(vec!["both-1.0-py3-none-any.whl"]), vec![]),
            (
                "broken",
                Err("building `broken==1.0` from its sdist: the build exited with status 1"),
                vec!["broken-1.0.tar.gz"],
            ),
        ];
        for (reqs, want, builds) in cases {
            let source = Building {
                fake: Fake::parse(index),
                fail: vec!["broken"],
                builds: Default::default(),
            };
            let got = resolve(&source, &input(reqs, "", false));
            match (got, want) {
                (Ok(r), Ok(files)) => {
                    let chosen: Vec<&str> = r
                        .packages
                        .iter()
                        .map(|p| p.wheel.filename.as_str())
                        .collect();
                    assert_eq!(chosen, files, "{reqs}");
                }
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{reqs}: {e}"),
                (got, want) => panic!("{reqs}: got {got:?}, want {want:?}"),
            }
            assert_eq!(*source.builds.lock().unwrap(), builds, "{reqs}: built once");
        }
    }
}

#[test]
fn unknown_libc_takes_pure_wheels_and_names_a_package_that_needs_one() {
    let mut unknown = input("p\nn", "", false);
    unknown.target.libc = Libc::Unknown;
    let fake = Fake::parse(
        "p 1.0 whl=py3-none-any\n\
         n 2.0 whl=cp311-cp311-manylinux_2_17_x86_64 sdist\n\
         n 1.0 whl=py3-none-any",
    );
    // The pure wheel of `p` installs; `n` 2.0 only has a native wheel
    // (and an sdist): the error names it and says why.
    let err = resolve(&fake, &unknown).unwrap_err().to_string();
    for needle in [
        "`n==2.0` has only wheels with native code (n-2.0-cp311-cp311-manylinux_2_17_x86_64.whl)",
        "cannot tell on this base",
        "python:3.12-slim",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let pinned = input("p\nn<2", "", false);
    let got = resolve(
        &fake,
        &ResolveInput {
            target: unknown.target,
            ..pinned
        },
    )
    .unwrap();
    assert_eq!(show(&got), "n==1.0 p==1.0");
    // Native wheels only, no sdist: the resolver's report says why.
    let native = Fake::parse("x 1.0 whl=cp311-cp311-manylinux_2_17_x86_64");
    let mut only_x = input("x", "", false);
    only_x.target.libc = Libc::Unknown;
    let err = resolve(&native, &only_x).unwrap_err().to_string();
    assert!(
        err.contains("only pure-Python (`none-any`) wheels fit"),
        "{err}"
    );
}

/// On an image that does not say its interpreter's patch version, a
/// dependency whose marker reads it (`new; python_full_version >=
/// '3.11.1'`, required by `a`) is refused, naming both; markers that do
/// not depend on the patch version resolve as before.
#[test]
fn a_dependency_marker_on_an_unknown_patch_version_is_refused() {
    let at = |full: &str| {
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: full,
            os_name: "posix",
            platform_machine: "x86_64",
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: full,
            python_version: "3.11",
            sys_platform: "linux",
        })
        .unwrap()
    };
    let known = input("a", "", false);
    let got = resolve(&Fake::parse(MARKERS), &known).unwrap();
    assert_eq!(show(&got), "a==1.0 new==1.0 x86==1.0");
    // Known only as 3.11: evaluated at 3.11.0, checked at the last 3.11.
    let unknown = ResolveInput {
        markers: at("3.11.0"),
        unknown_patch: Some(at("3.11.4294967295")),
        ..known
    };
    let err = resolve(&Fake::parse(MARKERS), &unknown)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`a==1.0` requires `new")
            && err.contains("python_full_version")
            && err.contains("Python 3.11's"),
        "{err}"
    );
    let plain = ResolveInput {
        requirements: input("x86", "", false).requirements,
        ..unknown
    };
    assert_eq!(
        show(&resolve(&Fake::parse(MARKERS), &plain).unwrap()),
        "x86==1.0"
    );
}

/// A [`Slow`] source that also has, at no cost, what an earlier run was
/// told (`kept`): the listings and metadata a warm store holds.
struct Kept {
    slow: Slow,
    kept: Fake,
}

impl Source for Kept {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.slow.files(name)
    }

    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
        self.slow.metadata(file)
    }

    fn kept_files(&self, name: &PackageName) -> Option<Vec<DistFile>> {
        self.kept.files.get(name).cloned()
    }

    fn kept_metadata(&self, file: &DistFile) -> Option<CoreMetadata> {
        self.kept.metadata.get(&file.filename).cloned()
    }
}

#[test]
fn kept_listings_send_a_deep_trees_requests_at_once() {
    let chain = "
        app 1.0 : a
        a 1.0 : b
        b 1.0 : c
        c 1.0 : d
        d 1.0
        z 1.0
    ";
    // (what an earlier run saw, the most questions at once at least,
    // and at most)
    let cases = [
        // Nothing kept: one level of the chain after the other.
        ("", 1, 1),
        // The same tree kept: every listing asked for at once.
        (chain, 4, usize::MAX),
        // An older tree kept (`a` then needed `z`): a wasted fetch at
        // most, and the same answer.
        ("app 1.0 : a\na 0.9 : z\nz 1.0", 2, usize::MAX),
    ];
    let plain = resolve_reading_ahead(&Fake::parse(chain), &input("app", "", false), 0).unwrap();
    for (kept, least, most_allowed) in cases {
        let source = Kept {
            slow: Slow {
                fake: Fake::parse(chain),
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
            },
            kept: Fake::parse(kept),
        };
        let got =
            resolve_reading_ahead(&source, &input("app", "", false), prefetch::WORKERS).unwrap();
        assert_eq!(show(&got), show(&plain), "kept: {kept}");
        let most = source.slow.most.into_inner();
        assert!(
            most >= least && most <= most_allowed,
            "kept {kept:?}: at most {most} at once"
        );
    }
}
