//! Scrubbing a long answer (256 KiB, as a verdict's reasoning may be) of the keys of the
//! clients in the process: with 1, 300 and 10,000 keys, next to the search it replaced
//! (every form of every key in turn, each over the whole text) with 1 and 300 keys.
//! Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench scrub --all-features
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fabraix::__fuzz;

const REDACTED: &str = "[redacted]";

fn keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!(
                "sk-bench-{i:05}-{:016x}",
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect()
}

/// 256 KiB of ordinary words with the first key echoed 64 times: the same text, and the
/// same work to redact it, whatever the number of keys.
fn text(key: &str) -> String {
    let words = "the transfer exceeds the daily limit and needs a second approval; ";
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 256 * 1024 {
        text.push_str(words);
        if i % 62 == 0 {
            text.push_str(key);
        }
        i += 1;
    }
    text
}

/// The forms the scrubber looks for: the key, less its first or last character, and
/// percent-encoded (none of the bench's keys changes when encoded).
fn forms(key: &str) -> [String; 3] {
    [
        key.to_owned(),
        key[1..].to_owned(),
        key[..key.len() - 1].to_owned(),
    ]
}

/// The search scrubbing replaced: each form, longest first, replaced in turn over the
/// whole text, ignoring ASCII case.
fn form_by_form(text: &str, needles: &[String]) -> String {
    let mut out = text.to_owned();
    for needle in needles {
        let lowered = out.to_ascii_lowercase();
        let needle = needle.to_ascii_lowercase();
        let mut next = String::new();
        let mut last = 0;
        for (start, found) in lowered.match_indices(&needle) {
            next.push_str(&out[last..start]);
            next.push_str(REDACTED);
            last = start + found.len();
        }
        if last > 0 {
            next.push_str(&out[last..]);
            out = next;
        }
    }
    out
}

fn scrub(c: &mut Criterion) {
    let keys = keys(10_000);
    let text = text(&keys[0]);
    let mut group = c.benchmark_group("scrub 256 KiB");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let mut remembered = Vec::new();
    for (label, count) in [("1 key", 1), ("300 keys", 300), ("10,000 keys", 10_000)] {
        while remembered.len() < count {
            remembered.push(__fuzz::remember(&keys[remembered.len()]));
        }
        // The first scrub after new keys brings the automata up to date: not measured.
        let scrubbed = __fuzz::scrub(&text);
        assert!(!scrubbed.contains(&keys[0]) && scrubbed.contains(REDACTED));
        group.bench_function(format!("one pass, {label}"), |b| {
            b.iter(|| __fuzz::scrub(black_box(&text)))
        });
        if count <= 300 {
            let mut needles: Vec<String> = keys[..count].iter().flat_map(|k| forms(k)).collect();
            needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
            assert_eq!(form_by_form(&text, &needles), scrubbed);
            group.bench_function(format!("form by form, {label}"), |b| {
                b.iter(|| form_by_form(black_box(&text), &needles))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, scrub);
criterion_main!(benches);
