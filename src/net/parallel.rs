//! Work over a list on a few plain threads, results in list order.
//!
//! Downloads (npm tarballs, wheels) are I/O bound and independent, so a
//! handful of scoped threads over the one blocking HTTP client is all the
//! concurrency they need; no async runtime. Once one item fails no new
//! item is started, and the error reported is that of the first failed
//! item in list order among those tried, so the message does not depend on
//! thread timing more than it must.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// `f` over every item on up to `workers` threads; the results in item
/// order, or the first error (in item order) of those tried.
pub fn try_map<I, T, E, F>(items: &[I], workers: usize, f: F) -> Result<Vec<T>, E>
where
    I: Sync,
    T: Send,
    E: Send,
    F: Fn(&I) -> Result<T, E> + Sync,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers.min(items.len()) {
            let tx = tx.clone();
            let (next, stop, f) = (&next, &stop, &f);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let result = f(&items[i]);
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<Option<T>> = items.iter().map(|_| None).collect();
    let mut first_error: Option<(usize, E)> = None;
    for (i, result) in rx {
        match result {
            Ok(t) => results[i] = Some(t),
            Err(e) => {
                if first_error.as_ref().is_none_or(|(at, _)| *at >= i) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_and_the_first_error_by_position() {
        let items: Vec<u32> = (0..50).collect();
        let doubled = try_map(&items, 8, |i| Ok::<_, String>(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let none: Vec<u32> = try_map(&[] as &[u32], 8, |i| Ok::<_, String>(*i)).unwrap();
        assert!(none.is_empty());
        // One worker tries items in order, so the first failure is item 3.
        let err = try_map(&items, 1, |i| {
            if *i >= 3 {
                Err(format!("item {i}"))
            } else {
                Ok(*i)
            }
        })
        .unwrap_err();
        assert_eq!(err, "item 3");
    }
}
