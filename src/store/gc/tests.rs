use super::*;

fn d(n: u8) -> Digest {
    Digest::of(&[n])
}

#[test]
fn digests_in_finds_whole_digests_only() {
    let a = d(1);
    let b = d(2);
    let hex = a.hex().to_owned();
    let cases: Vec<(String, Vec<Digest>)> = vec![
        (String::new(), vec![]),
        (format!("{a}"), vec![a.clone()]),
        (
            format!(r#"{{"digest":"{a}","diff_id":"{b}","again":"{a}"}}"#),
            vec![a.clone(), b.clone()],
        ),
        // Too short, too long, upper case, no prefix: not digests.
        (format!("sha256:{}", &hex[..63]), vec![]),
        (format!("sha256:{hex}0"), vec![]),
        (format!("sha256:{}", hex.to_uppercase()), vec![]),
        (hex.clone(), vec![]),
        // A broken one does not hide the next.
        (format!("sha256:zz sha256:{hex}"), vec![a.clone()]),
        (format!("sha256:sha256:{hex}"), vec![a.clone()]),
        ("sha256:".into(), vec![]),
    ];
    for (input, want) in cases {
        assert_eq!(digests_in(input.as_bytes()), want, "{input}");
    }
}

#[test]
fn refs_of_adds_a_digest_the_name_is_made_of() {
    let (a, b) = (d(1), d(2));
    let cases: Vec<(String, String, Vec<Digest>)> = vec![
        (format!("v2-{}", a.hex()), "{}".into(), vec![a.clone()]),
        (a.hex().into(), b.to_string(), vec![b.clone(), a.clone()]),
        (a.hex().into(), a.to_string(), vec![a.clone()]),
        // A sha512 hex (npm integrity) is not a sha256 digest.
        (format!("{}{}", a.hex(), b.hex()), "{}".into(), vec![]),
        ("abc".into(), "{}".into(), vec![]),
    ];
    for (name, value, want) in cases {
        assert_eq!(refs_of(&name, value.as_bytes()), want, "{name}");
    }
}

#[test]
fn needed_by_takes_descriptor_digests_not_diff_ids() {
    let (a, b, c) = (d(1), d(2), d(3));
    let cases: Vec<(String, Vec<Digest>)> = vec![
        // A layer cache entry.
        (
            format!(
                r#"{{"descriptor":{{"mediaType":"x","digest":"{a}","size":3}},"diff_id":"{b}","uncompressed_size":9}}"#
            ),
            vec![a.clone()],
        ),
        // A remembered tag, a wheel URL: the value is the digest.
        (format!("{a}\n"), vec![a.clone()]),
        // A pip index page.
        (
            format!(r#"{{"status":200,"url":"u","body":"{c}"}}"#),
            vec![c.clone()],
        ),
        // A build record names the base it used, which need not be kept.
        (format!(r#"{{"base":"{a}","deps":[]}}"#), vec![]),
        // An image record.
        (
            format!(r#"{{"manifest":"{a}","platforms":[{{"manifest":"{b}","config":"{c}"}}]}}"#),
            vec![a.clone(), b.clone()],
        ),
        ("not json".into(), vec![]),
        (r#"{"digest":"sha256:nothex"}"#.into(), vec![]),
    ];
    for (input, want) in cases {
        assert_eq!(needed_by(input.as_bytes()), want, "{input}");
    }
}

/// A store seen at time `NOW`: entries with ages in days and the blobs
/// they name.
const NOW: u64 = 1_000_000_000;
const DAY: u64 = 86_400;

fn entry(name: &str, age_days: u64, refs: &[u8]) -> Entry {
    Entry {
        kind: "deps-npm".into(),
        name: name.into(),
        bytes: 0,
        last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW - age_days * DAY),
        refs: refs.iter().map(|&n| d(n)).collect(),
        needs: Vec::new(),
    }
}

fn inventory(entries: Vec<Entry>, blobs: &[(u8, u64, &[u8])]) -> Inventory {
    Inventory {
        entries,
        blobs: blobs
            .iter()
            .map(|&(n, size, children)| {
                (
                    d(n),
                    Blob {
                        size,
                        children: children.iter().map(|&c| d(c)).collect(),
                    },
                )
            })
            .collect(),
        temp: Vec::new(),
        strays: Vec::new(),
    }
}

#[test]
fn plan_prune_by_age_size_and_all() {
    // `old` (10 days) names blob 1; `mid` (5 days) names manifest 2,
    // which names 3 and 4; `new` (1 day) names 4 too. Blob 5 is garbage.
    let inv = inventory(
        vec![
            entry("new", 1, &[4]),
            entry("old", 10, &[1]),
            entry("mid", 5, &[2]),
        ],
        &[
            (1, 1000, &[]),
            (2, 10, &[3, 4]),
            (3, 200, &[]),
            (4, 30, &[]),
            (5, 7, &[]),
        ],
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    let days = |n: u64| Some(Duration::from_secs(n * DAY));
    struct Case {
        policy: Policy,
        entries: &'static [&'static str],
        blobs: &'static [u8],
        kept: u64,
    }
    let cases = [
        // Nothing asked: only garbage goes.
        Case {
            policy: Policy::default(),
            entries: &[],
            blobs: &[5],
            kept: 1240,
        },
        Case {
            policy: Policy {
                older_than: days(7),
                ..Policy::default()
            },
            entries: &["old"],
            blobs: &[1, 5],
            kept: 240,
        },
        // 4 stays: `new` still names it.
        Case {
            policy: Policy {
                older_than: days(2),
                ..Policy::default()
            },
            entries: &["old", "mid"],
            blobs: &[1, 2, 3, 5],
            kept: 30,
        },
        // Least recently used first, until what is left fits.
        Case {
            policy: Policy {
                max_size: Some(1240),
                ..Policy::default()
            },
            entries: &[],
            blobs: &[5],
            kept: 1240,
        },
        Case {
            policy: Policy {
                max_size: Some(1000),
                ..Policy::default()
            },
            entries: &["old"],
            blobs: &[1, 5],
            kept: 240,
        },
        Case {
            policy: Policy {
                max_size: Some(100),
                ..Policy::default()
            },
            entries: &["old", "mid"],
            blobs: &[1, 2, 3, 5],
            kept: 30,
        },
        Case {
            policy: Policy {
                max_size: Some(0),
                ..Policy::default()
            },
            entries: &["new", "old", "mid"],
            blobs: &[1, 2, 3, 4, 5],
            kept: 0,
        },
        // Age first, then the budget over what is left.
        Case {
            policy: Policy {
                older_than: days(7),
                max_size: Some(100),
                ..Policy::default()
            },
            entries: &["old", "mid"],
            blobs: &[1, 2, 3, 5],
            kept: 30,
        },
        Case {
            policy: Policy {
                all: true,
                ..Policy::default()
            },
            entries: &["new", "old", "mid"],
            blobs: &[1, 2, 3, 4, 5],
            kept: 0,
        },
    ];
    for c in cases {
        let plan = inv.plan_prune(&c.policy, now);
        let mut names: Vec<&str> = plan
            .entries
            .iter()
            .map(|&i| inv.entries[i].name.as_str())
            .collect();
        names.sort();
        let mut want: Vec<&str> = c.entries.to_vec();
        want.sort();
        assert_eq!(names, want, "{:?}", c.policy);
        let mut want_blobs: Vec<Digest> = c.blobs.iter().map(|&n| d(n)).collect();
        want_blobs.sort();
        assert_eq!(plan.blobs, want_blobs, "{:?}", c.policy);
        assert_eq!(plan.kept, c.kept, "{:?}", c.policy);
        assert_eq!(plan.freed + plan.kept, 1247, "{:?}", c.policy);
    }
}

#[test]
fn an_entry_used_in_the_future_is_young() {
    // Clocks differ between hosts sharing a store; a future mtime is
    // "just used", never an error.
    let mut e = entry("x", 0, &[1]);
    e.last_used = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + DAY);
    let inv = inventory(vec![e], &[(1, 5, &[])]);
    let policy = Policy {
        older_than: Some(Duration::from_secs(60)),
        ..Policy::default()
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    assert!(inv.plan_prune(&policy, now).entries.is_empty());
}

#[test]
fn usage_counts_each_blob_once_under_its_first_category() {
    let mut base = entry("tag", 1, &[2]);
    base.kind = "registry-tag".into();
    let mut image = entry("img", 1, &[6]);
    image.kind = crate::store::IMAGES_KIND.into();
    let inv = inventory(
        vec![base, image],
        &[
            (2, 10, &[3]),
            (3, 100, &[]),
            // The built image's manifest names the base layer and its own.
            (6, 20, &[3, 7]),
            (7, 50, &[]),
            (8, 1, &[]),
        ],
    );
    let u = inv.usage();
    let rows: Vec<(&str, usize, usize, u64)> = u
        .rows
        .iter()
        .map(|r| (r.category.as_str(), r.entries, r.blobs, r.bytes))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("bases", 1, 2, 110),
            ("images", 1, 2, 70),
            ("unreferenced", 0, 1, 1),
        ]
    );
    assert_eq!(u.total, 181);
    let ls = inv.listing();
    assert_eq!(ls.entries[0].kind, "registry-tag");
    assert_eq!(ls.entries[0].size, 110);
    assert_eq!(ls.entries[1].size, 170, "an entry's size is all it reaches");
}

#[test]
fn scan_and_prune_a_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (layer, _) = store.put_bytes(b"layer bytes").unwrap();
    let manifest = format!(r#"{{"schemaVersion":2,"layers":[{{"digest":"{layer}"}}]}}"#);
    let (m, _) = store.put_bytes(manifest.as_bytes()).unwrap();
    let (garbage, _) = store.put_bytes(b"nobody names me").unwrap();
    store
        .put_key("registry-tag", "t1", m.as_str().as_bytes())
        .unwrap();
    std::fs::write(dir.path().join("tmp/blob-abandoned"), b"half").unwrap();

    let inv = scan(&store).unwrap();
    assert_eq!(inv.entries.len(), 1);
    assert_eq!(inv.blobs.len(), 3);
    assert_eq!(inv.blobs[&m].children, vec![layer.clone()]);
    assert_eq!(inv.temp.len(), 1);

    let r = prune(
        &store,
        &Policy::default(),
        SystemTime::now(),
        Duration::ZERO,
        true,
    )
    .unwrap();
    assert!(
        r.dry_run && store.has(&garbage),
        "a dry run removes nothing"
    );

    let r = prune(
        &store,
        &Policy::default(),
        SystemTime::now(),
        Duration::ZERO,
        false,
    )
    .unwrap();
    assert_eq!((r.entries, r.blobs, r.temp), (0, 1, 1));
    assert!(!store.has(&garbage));
    assert!(store.has(&m) && store.has(&layer), "reachable blobs stay");
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );

    let all = Policy {
        all: true,
        ..Policy::default()
    };
    let r = prune(&store, &all, SystemTime::now(), Duration::ZERO, false).unwrap();
    assert_eq!((r.entries, r.blobs, r.kept), (1, 2, 0));
    assert_eq!(store.get_key("registry-tag", "t1").unwrap(), None);
    // The store still works afterwards.
    store.put_bytes(b"again").unwrap();
}

#[test]
fn get_key_marks_an_entry_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_key("facts", "k", b"{}").unwrap();
    let path = dir.path().join("keys/facts/k");
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // Listing is not using.
    scan(&store).unwrap();
    store.list_keys("facts").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), old);
    store.get_key("facts", "k").unwrap();
    assert!(std::fs::metadata(&path).unwrap().modified().unwrap() > old);
}

#[test]
fn verify_finds_corrupt_blobs_dangling_entries_and_strays_and_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (good, _) = store.put_bytes(b"good").unwrap();
    let (bad, _) = store.put_bytes(b"soon bad").unwrap();
    let gone = d(7);
    let entry = |dg: &Digest| format!(r#"{{"descriptor":{{"digest":"{dg}","size":1}}}}"#);
    store
        .put_key("app-layer", "ok", entry(&good).as_bytes())
        .unwrap();
    store
        .put_key("app-layer", "on-bad", entry(&bad).as_bytes())
        .unwrap();
    store
        .put_key("pip-url", "gone", gone.as_str().as_bytes())
        .unwrap();
    std::fs::write(store.blob_path(&bad), b"soon bae").unwrap();
    std::fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();

    let r = verify(&store, false, Duration::ZERO).unwrap();
    assert_eq!(r.blobs, 2);
    assert_eq!(r.entries, 3);
    let shown: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(r.problems.len(), 4, "{shown:?}");
    assert!(
        r.problems.contains(&Problem::Corrupt {
            digest: bad.clone(),
            actual: Digest::of(b"soon bae")
        }),
        "{shown:?}"
    );
    for (entry, missing) in [("app-layer/on-bad", &bad), ("pip-url/gone", &gone)] {
        assert!(
            r.problems.contains(&Problem::Dangling {
                entry: entry.into(),
                missing: missing.clone()
            }),
            "{shown:?}"
        );
    }
    assert!(!r.repaired);

    let r = verify(&store, true, Duration::ZERO).unwrap();
    assert!(r.repaired);
    let r = verify(&store, false, Duration::ZERO).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.blobs, r.entries), (1, 1));
    assert!(store.get_key("app-layer", "ok").unwrap().is_some());
}

#[test]
fn parse_age_and_size() {
    let ages: [(&str, Option<u64>); 9] = [
        ("7d", Some(7 * DAY)),
        ("12h", Some(12 * 3600)),
        ("30m", Some(1800)),
        ("2w", Some(14 * DAY)),
        ("90s", Some(90)),
        ("0d", Some(0)),
        ("7", None),
        ("d", None),
        ("7y", None),
    ];
    for (s, want) in ages {
        assert_eq!(parse_age(s).ok().map(|d| d.as_secs()), want, "{s}");
    }
    let sizes: [(&str, Option<u64>); 10] = [
        ("2G", Some(2_000_000_000)),
        ("500MB", Some(500_000_000)),
        ("1.5GiB", Some(1_610_612_736)),
        ("100000", Some(100_000)),
        ("10k", Some(10_000)),
        ("1KiB", Some(1024)),
        ("0", Some(0)),
        ("2X", None),
        ("", None),
        ("-1G", None),
    ];
    for (s, want) in sizes {
        assert_eq!(parse_size(s).ok(), want, "{s}");
    }
}
