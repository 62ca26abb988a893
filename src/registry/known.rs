//! What hoist remembers a registry repository holds: the blobs it pushed
//! there, mounted there or found there (a `HEAD` that answered 200), so
//! that the next push of the same layers asks nothing about them.
//!
//! A push that skips a blob on this memory alone is only as right as the
//! memory: someone may have deleted the blob behind hoist's back, or a
//! registry may have garbage-collected it. The registry says so when the
//! manifest is put (distribution answers `MANIFEST_BLOB_UNKNOWN` or
//! `BLOB_UNKNOWN`), and the push then forgets the repository's memory,
//! checks every blob as it would without one, and puts the manifest again
//! once (see `push.rs`). Nothing else trusts the memory: a pull or a mount
//! source never reads it.
//!
//! One store entry per registry host and repository (`registry-blobs/`,
//! named by a hash of `HOST/REPOSITORY`), one blob per line as bare hex:
//! not `sha256:…`, so the store's garbage collector, which keeps every
//! blob an entry names, does not keep a blob alive only because it was
//! once pushed. Entries are written whole and atomically, without fsync
//! ([`Store::put_hint`]: after a crash an entry may be empty, which reads
//! as nothing known); two pushes to one repository at once may each
//! drop the other's additions, which costs a `HEAD` later, never a wrong
//! answer. The newest [`MAX_REMEMBERED`] blobs are kept.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// The store's entry kind for this memory.
pub const KNOWN_BLOBS_KIND: &str = "registry-blobs";

/// Blobs remembered per repository; the oldest are forgotten first.
const MAX_REMEMBERED: usize = 4096;

/// The blobs one registry repository is remembered to hold, in the order
/// they were learnt.
#[derive(Debug, Default, Clone)]
pub struct KnownBlobs {
    order: Vec<Digest>,
    set: HashSet<Digest>,
}

impl KnownBlobs {
    /// Reads the memory for `target`'s repository (empty when there is
    /// none or it cannot be read: the memory only saves requests).
    pub fn load(store: &Store, target: &Reference) -> KnownBlobs {
        match store.get_key(KNOWN_BLOBS_KIND, &entry_name(target)) {
            Ok(Some(bytes)) => KnownBlobs::parse(&bytes),
            _ => KnownBlobs::default(),
        }
    }

    /// Parses an entry: one 64-hex digest per line; anything else is
    /// skipped (a damaged line is a blob that will be checked again).
    pub fn parse(bytes: &[u8]) -> KnownBlobs {
        let mut k = KnownBlobs::default();
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(hex) = std::str::from_utf8(line) else {
                continue;
            };
            if let Ok(d) = Digest::parse(&format!("sha256:{}", hex.trim())) {
                k.add(d);
            }
        }
        k
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.set.contains(d)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Remembers `d` as the newest.
    pub fn add(&mut self, d: Digest) {
        if self.set.insert(d.clone()) {
            self.order.push(d);
        } else if let Some(i) = self.order.iter().position(|x| *x == d) {
            let d = self.order.remove(i);
            self.order.push(d);
        }
    }

    /// The entry's bytes: the newest [`MAX_REMEMBERED`] blobs, oldest
    /// first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = self.order.len().saturating_sub(MAX_REMEMBERED);
        let mut out = String::new();
        for d in &self.order[start..] {
            out.push_str(d.hex());
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Writes the memory for `target`'s repository: a hint (see
    /// [`Store::put_hint`]), since a lost or damaged entry only costs
    /// requests.
    pub fn save(&self, store: &Store, target: &Reference) -> Result<(), StoreError> {
        store.put_hint(KNOWN_BLOBS_KIND, &entry_name(target), &self.to_bytes())
    }

    /// Forgets everything remembered for `target`'s repository.
    pub fn forget(store: &Store, target: &Reference) -> Result<(), StoreError> {
        KnownBlobs::default().save(store, target)
    }
}

/// The entry's name: 32 hex of the hash of `HOST/REPOSITORY` (the API
/// host, so `docker.io` and its alias share one), short enough that the
/// garbage collector does not take it for a blob's digest.
fn entry_name(target: &Reference) -> String {
    let key = format!("{}/{}", target.api_host(), target.repository());
    Digest::of(key.as_bytes()).hex()[..32].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn parse_table() {
        let a = d(1);
        let b = d(2);
        let text = format!(
            "{}\n\nnot hex\nsha256:{}\n{} \n{}\n",
            a.hex(),
            b.hex(),
            b.hex(),
            a.hex()
        );
        let k = KnownBlobs::parse(text.as_bytes());
        assert!(k.contains(&a) && k.contains(&b));
        // `a` was seen again last: it is the newest.
        assert_eq!(k.order, vec![b.clone(), a.clone()]);
        for bad in [&b""[..], b"\n\n", b"zz", &[0xff, 0xfe][..]] {
            assert!(KnownBlobs::parse(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn bytes_hold_no_digest_the_collector_would_keep() {
        let mut k = KnownBlobs::default();
        k.add(d(1));
        let bytes = k.to_bytes();
        assert!(crate::store::gc::digests_in(&bytes).is_empty());
        assert!(crate::store::gc::refs_of(
            &entry_name(&"localhost:5000/a/b".parse().unwrap()),
            &bytes
        )
        .is_empty());
        assert!(KnownBlobs::parse(&bytes).contains(&d(1)));
    }

    #[test]
    fn keeps_the_newest() {
        let mut k = KnownBlobs::default();
        for i in 0..(MAX_REMEMBERED + 10) {
            k.add(Digest::of(&(i as u64).to_le_bytes()));
        }
        let back = KnownBlobs::parse(&k.to_bytes());
        assert_eq!(back.order.len(), MAX_REMEMBERED);
        assert!(!back.contains(&Digest::of(&0u64.to_le_bytes())));
        assert!(back.contains(&Digest::of(&((MAX_REMEMBERED + 9) as u64).to_le_bytes())));
    }

    #[test]
    fn round_trip_through_the_store_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r: Reference = "127.0.0.1:5000/app/web:1".parse().unwrap();
        let other: Reference = "127.0.0.1:5000/app/api:1".parse().unwrap();
        let mut k = KnownBlobs::load(&store, &r);
        assert!(k.is_empty());
        k.add(d(7));
        k.save(&store, &r).unwrap();
        assert!(KnownBlobs::load(&store, &r).contains(&d(7)));
        assert!(KnownBlobs::load(&store, &other).is_empty());
        KnownBlobs::forget(&store, &r).unwrap();
        assert!(KnownBlobs::load(&store, &r).is_empty());
    }
}
