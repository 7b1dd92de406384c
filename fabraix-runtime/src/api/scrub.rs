//! Keeping API keys out of everything the SDK shows: error messages, snippets of bodies,
//! verdicts, log lines.
//!
//! The key of every live client is remembered here ([`remember`] returns a [`KeyGuard`]
//! that the client's settings hold), and so are the last [`RECENT`] keys whose clients are
//! gone, so that an error that outlives its client stays clean. Text that came from outside
//! (a server's answer, a transport error holding a URL) is scrubbed of all of them before it
//! is stored or shown. A server can echo a key in any form, so each key is also looked for:
//! - without regard to ASCII case (URL parsing lowercases hosts);
//! - less its first or last character (what is left when a JSON escape such as `\n`
//!   swallowed a neighbouring letter);
//! - percent-encoded, as a URL path carries it;
//! - and raw bodies are read through JSON string escapes (`\u0073k-…`) before they are
//!   searched ([`scrub_raw`]).
//!
//! Every form of every key is found in one pass over the text, by an Aho-Corasick automaton,
//! whatever the number of keys. Rebuilding it for every new key would cost the square of the
//! number of keys, so the keys are split in two: most are in a main automaton; the keys
//! added since it was built are searched by a second, small one. Both are brought up to
//! date at the first scrub after a change: the small one is rebuilt, or, once its keys
//! outnumber `max(32, √patterns)`, they join the main one, which is rebuilt. The keys let
//! go are found until the main automaton is rebuilt, which happens as soon as they are
//! half as many as the others, so that memory follows the keys looked for. A scrub takes a
//! snapshot of both automata (an `Arc`) and searches without any lock.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// What a key is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Shorter keys are not looked for: they would match ordinary words.
const MIN_KEY_LEN: usize = 4;

/// How many keys of dropped clients are still looked for.
pub(crate) const RECENT: usize = 64;

/// The main automaton is rebuilt once more keys than this (or than the square root of its
/// patterns) were added or dropped since it was built.
const MIN_PENDING: usize = 32;

/// The characters a URL path percent-encodes.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// The keys looked for, and how they are split between the two automata.
#[derive(Default)]
struct Registry {
    /// The keys of live clients, with how many guards hold each.
    live: HashMap<Box<str>, usize>,
    /// Keys whose last guard is gone, oldest first; at most [`RECENT`].
    recent: VecDeque<Box<str>>,
    /// The keys the main automaton was built from (live, recent, or stale).
    main: HashSet<Box<str>>,
    /// The patterns of the main automaton.
    main_patterns: usize,
    /// Keys of `main` no longer looked for: still found until the next rebuild.
    stale: HashSet<Box<str>>,
    /// Keys looked for that the main automaton lacks: the small automaton's.
    pending: HashSet<Box<str>>,
}

/// The automata readers search: a snapshot, replaced whole.
#[derive(Default)]
struct Searcher {
    main: Option<Arc<AhoCorasick>>,
    pending: Option<AhoCorasick>,
    /// An automaton could not be built (the keys are beyond its limits): every text is
    /// then taken to hold a key.
    broken: bool,
}

/// The keys; taken to change them and to rebuild an automaton, never to search.
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// What scrubs search: the latest snapshot of the automata (`None` before the first key).
static SEARCHER: RwLock<Option<Arc<Searcher>>> = RwLock::new(None);

/// Set when the pending keys changed and the small automaton is out of date.
static PENDING_CHANGED: AtomicBool = AtomicBool::new(false);

/// Changes whenever a key is added to those looked for: a text found clean at one
/// generation stays clean until the next.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current generation of the remembered keys (see [`GENERATION`]).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A remembered key, looked for as long as a guard of it lives (two clients with the same
/// key share it), and for a while after: the last [`RECENT`] dropped keys are kept.
#[must_use = "a key is forgotten once its guard is dropped"]
pub(crate) struct KeyGuard {
    key: Option<Box<str>>,
}

impl fmt::Debug for KeyGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyGuard([redacted])")
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            registry().release(key);
        }
    }
}

/// Remembers `key`, so that [`scrub`] removes it from now on, as long as the guard lives
/// (and for a while after).
pub(crate) fn remember(key: &str) -> KeyGuard {
    // A blank "key" would match the spaces of ordinary text.
    if key.trim().len() < MIN_KEY_LEN {
        return KeyGuard { key: None };
    }
    registry().hold(key);
    KeyGuard {
        key: Some(key.into()),
    }
}

/// The forms `key` is looked for in (besides ASCII case).
fn forms(key: &str) -> Vec<String> {
    let mut forms = vec![key.to_owned()];
    if key.len() >= 8 {
        forms.extend(key.get(1..).map(str::to_owned));
        forms.extend(key.get(..key.len() - 1).map(str::to_owned));
    }
    let encoded = utf8_percent_encode(key, PATH).to_string();
    if encoded != key {
        forms.push(encoded);
    }
    forms
}

/// An automaton finding every form of `keys`, and its number of patterns; `None` when the
/// keys are beyond what an automaton can hold.
fn build<'a>(keys: impl Iterator<Item = &'a Box<str>>) -> Option<(AhoCorasick, usize)> {
    let patterns: Vec<String> = keys.flat_map(|key| forms(key)).collect();
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(&patterns)
        .ok()?;
    Some((automaton, patterns.len()))
}

impl Registry {
    /// One more guard of `key`.
    fn hold(&mut self, key: &str) {
        if let Some(count) = self.live.get_mut(key) {
            *count = count.saturating_add(1);
            return;
        }
        let key: Box<str> = key.into();
        match self.recent.iter().position(|k| *k == key) {
            // Still looked for: only live again.
            Some(at) => {
                self.recent.remove(at);
            }
            None => self.added(key.clone()),
        }
        self.live.insert(key, 1);
    }

    /// One guard of `key` fewer: the last one moves it to the recent keys.
    fn release(&mut self, key: Box<str>) {
        let Some(count) = self.live.get_mut(&key) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        self.live.remove(&key);
        self.recent.push_back(key);
        while self.recent.len() > RECENT {
            if let Some(gone) = self.recent.pop_front() {
                self.removed(gone);
            }
        }
    }

    /// `key` is looked for from now on.
    fn added(&mut self, key: Box<str>) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
        if !self.stale.remove(&key) && !self.main.contains(&key) {
            self.pending.insert(key);
            PENDING_CHANGED.store(true, Ordering::Release);
        }
    }

    /// `key` is no longer looked for. Once the main automaton holds as many keys no longer
    /// looked for as half the others, it is rebuilt without them: what is kept stays within
    /// a small multiple of the keys looked for.
    fn removed(&mut self, key: Box<str>) {
        if self.pending.remove(&key) {
            PENDING_CHANGED.store(true, Ordering::Release);
        } else if self.main.contains(&key) {
            self.stale.insert(key);
            if self.stale.len() > MIN_PENDING.max(self.main.len() / 2) {
                self.rebuild_main();
            }
        }
    }

    /// Brings the automata up to date with the keys: the pending keys join the main
    /// automaton once they outnumber `max(32, √patterns)`, else the small one is rebuilt.
    fn refresh(&mut self) {
        if self.pending.len() > MIN_PENDING.max(self.main_patterns.isqrt()) {
            self.rebuild_main();
            return;
        }
        let main = current().main.clone();
        let pending = match self.pending.is_empty() {
            true => Some(None),
            false => build(self.pending.iter()).map(|(pending, _)| Some(pending)),
        };
        publish(pending.map_or_else(Searcher::broken, |pending| Searcher {
            main,
            pending,
            broken: false,
        }));
    }

    /// Rebuilds the main automaton from every key looked for, leaving none pending.
    fn rebuild_main(&mut self) {
        let stale = std::mem::take(&mut self.stale);
        self.main.retain(|key| !stale.contains(key));
        self.main.extend(self.pending.drain());
        let searcher = match build(self.main.iter()) {
            Some((main, patterns)) => {
                self.main_patterns = patterns;
                Searcher {
                    main: Some(Arc::new(main)),
                    pending: None,
                    broken: false,
                }
            }
            None => Searcher::broken(),
        };
        publish(searcher);
    }

    /// The keys held in any form: live, recent, or still in an automaton.
    #[cfg(test)]
    fn retained(&self) -> usize {
        self.main.len() + self.pending.len()
    }
}

/// Hands readers new automata, up to date with the keys (under the registry's lock).
fn publish(searcher: Searcher) {
    *SEARCHER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(searcher));
    PENDING_CHANGED.store(false, Ordering::Release);
}

fn current() -> Arc<Searcher> {
    SEARCHER
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// The automata to search, brought up to date with the keys remembered so far.
fn searcher() -> Arc<Searcher> {
    if PENDING_CHANGED.load(Ordering::Acquire) {
        let mut registry = registry();
        // Another reader may have brought it up to date while this one waited. The flag
        // is cleared only once the new automata are published (`refresh` does it, under
        // the lock): cleared before, a reader seeing it clear would search the old ones.
        if PENDING_CHANGED.load(Ordering::Acquire) {
            registry.refresh();
        }
    }
    current()
}

/// How many keys are held, in any form (for the tests: dropped clients' keys are let go).
#[cfg(test)]
pub(crate) fn retained() -> usize {
    registry().retained()
}

impl Searcher {
    /// Automata that could not be built: every text is taken to hold a key.
    fn broken() -> Self {
        Self {
            broken: true,
            ..Self::default()
        }
    }

    /// The spans of `text` that hold a key, in order; overlapping spans are joined.
    /// `None` when the text must be taken whole (the automata failed).
    fn spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        if self.broken {
            return None;
        }
        let mut spans = Vec::new();
        for automaton in [self.main.as_deref(), self.pending.as_ref()]
            .into_iter()
            .flatten()
        {
            for found in automaton.try_find_iter(Input::new(text)).ok()? {
                spans.push((found.start(), found.end()));
            }
        }
        if self.main.is_some() && self.pending.is_some() {
            spans.sort_unstable();
            let mut joined: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
            for (start, end) in spans {
                match joined.last_mut() {
                    Some(last) if start < last.1 => last.1 = last.1.max(end),
                    _ => joined.push((start, end)),
                }
            }
            spans = joined;
        }
        Some(spans)
    }

    fn is_match(&self, text: &str) -> bool {
        if self.broken {
            return true;
        }
        [self.main.as_deref(), self.pending.as_ref()]
            .into_iter()
            .flatten()
            // A failed search counts as a match: never send what could not be searched.
            .any(|automaton| !matches!(automaton.try_find(Input::new(text)), Ok(None)))
    }
}

/// `text` with every remembered key replaced, or `None` when it holds none.
fn redacted(text: &str) -> Option<String> {
    let Some(spans) = searcher().spans(text) else {
        return Some(REDACTED.to_owned());
    };
    if spans.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in spans {
        out.extend_from_slice(bytes.get(last..start).unwrap_or_default());
        out.extend_from_slice(REDACTED.as_bytes());
        last = end;
    }
    out.extend_from_slice(bytes.get(last..).unwrap_or_default());
    // Keys are whole characters, so the cuts fall between characters.
    Some(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// `text` with every remembered key removed.
pub(crate) fn scrub(text: &str) -> String {
    redacted(text).unwrap_or_else(|| text.to_owned())
}

/// Whether `text` (a URL) holds a remembered key, in any case, raw or percent-encoded. A
/// URL is printed by the http stack's own logs, which nothing here can scrub: a URL that
/// holds a key must never be sent.
pub(crate) fn holds_a_key(text: &str) -> bool {
    let decoded = percent_decode_str(text).decode_utf8_lossy();
    searcher().is_match(&decoded)
}

/// Raw text of a body, read through JSON string escapes (so an escaped key is found), with
/// every remembered key removed.
pub(crate) fn scrub_raw(text: &str) -> String {
    scrub(&unescape_json(text))
}

/// Scrubs a string in place, allocating only when it held a key.
pub(crate) fn scrub_in_place(text: &mut String) {
    if let Some(scrubbed) = redacted(text) {
        *text = scrubbed;
    }
}

/// Reads JSON string escapes (`\n`, `\"`, `\u0041`, surrogate pairs) as the characters
/// they stand for, so that an escaped key is found. Malformed escapes stay as written.
fn unescape_json(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (decoded, used) = escape_at(tail);
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..used]),
        }
        rest = &tail[used..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The escape at the start of `tail` (which starts with `\`): the character, and how many
/// bytes it took; `None` and the bytes to copy as they are when it is not an escape.
fn escape_at(tail: &str) -> (Option<char>, usize) {
    let simple = match tail.as_bytes().get(1) {
        Some(b'"') => Some('"'),
        Some(b'\\') => Some('\\'),
        Some(b'/') => Some('/'),
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{c}'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b't') => Some('\t'),
        Some(b'u') => None,
        _ => return (None, 1),
    };
    if simple.is_some() {
        return (simple, 2);
    }
    let Some(high) = hex4(tail, 2) else {
        return (None, 1);
    };
    if (0xD800..0xDC00).contains(&high) {
        // A surrogate pair: `\uD83D\uDE00`.
        if tail.get(6..8) == Some("\\u")
            && let Some(low) = hex4(tail, 8)
            && (0xDC00..0xE000).contains(&low)
        {
            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            return (char::from_u32(code), 12);
        }
        return (None, 1);
    }
    match char::from_u32(high) {
        Some(c) => (Some(c), 6),
        None => (None, 1),
    }
}

fn hex4(text: &str, at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-scrub-unit-Test-0123456789";

    fn remembered() -> &'static str {
        static GUARD: std::sync::OnceLock<KeyGuard> = std::sync::OnceLock::new();
        GUARD.get_or_init(|| remember(KEY));
        KEY
    }

    /// The tests that remember or drop many keys, one at a time: the bound on what is
    /// retained is checked with no other of them running.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `count` distinct keys, unlike every other test's, with a `/` in some (percent-encoded
    /// in a URL path).
    fn keys(tag: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                let sep = if i % 7 == 0 { '/' } else { '-' };
                format!(
                    "sk-{tag}{sep}{i:05}-{:016x}",
                    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )
            })
            .collect()
    }

    /// A text of about `len` bytes of ordinary words holding `keys` echoed in the forms a
    /// server may echo them, and the same text with each echo redacted.
    fn text_with(keys: &[&str], len: usize) -> (String, String) {
        let filler = "the agent looked up the order and found nothing amiss; ";
        let mut text = String::with_capacity(len + 1024);
        let mut expected = String::with_capacity(len + 1024);
        let mut i = 0;
        while text.len() < len {
            text.push_str(filler);
            expected.push_str(filler);
            if i % 64 == 0 && !keys.is_empty() {
                let key = keys[(i / 64) % keys.len()];
                let echo = match (i / 64) % 5 {
                    0 => key.to_owned(),
                    1 => key.to_ascii_uppercase(),
                    2 => key[1..].to_owned(),
                    3 => key[..key.len() - 1].to_owned(),
                    _ => utf8_percent_encode(key, PATH).to_string(),
                };
                text.push_str(&echo);
                expected.push_str(REDACTED);
                text.push(' ');
                expected.push(' ');
            }
            i += 1;
        }
        (text, expected)
    }

    #[test]
    fn removes_the_key_in_every_form() {
        let key = remembered();
        let lower = key.to_ascii_lowercase();
        let escaped: String = key
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let raw = format!("{{\"message\":\"{escaped}\"}}");
        for (text, scrubbed) in [
            format!("key {key} here"),
            format!("https://{lower}.example/v1"),
            format!("a \\n{} cut", &key[1..]),
            format!("{} at the end", &key[..key.len() - 1]),
            format!("{key}{key}"),
        ]
        .into_iter()
        .map(|text| {
            let scrubbed = scrub(&text);
            (text, scrubbed)
        })
        // Escapes are read only where raw bodies are scrubbed.
        .chain([(raw.clone(), scrub_raw(&raw))])
        {
            assert!(
                !scrubbed.to_ascii_lowercase().contains(&lower[2..10]),
                "{text} -> {scrubbed}"
            );
            assert!(scrubbed.contains(REDACTED), "{text} -> {scrubbed}");
        }
    }

    #[test]
    fn other_text_is_kept() {
        remembered();
        assert_eq!(scrub("nothing secret"), "nothing secret");
        assert_eq!(
            scrub("tab\\there"),
            "tab\\there",
            "decoded text is kept as it is"
        );
        assert_eq!(scrub_raw("tab\\there"), "tab\there");
        assert_eq!(scrub_raw("bad \\u12 escape \\"), "bad \\u12 escape \\");
        assert_eq!(scrub_raw("emoji \\ud83d\\ude00"), "emoji \u{1F600}");
        assert_eq!(
            scrub_raw("lone \\ud83d surrogate"),
            "lone \\ud83d surrogate"
        );
    }

    #[test]
    fn a_url_holding_a_key_is_recognised_in_any_form() {
        let key = remembered();
        let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
        for url in [
            format!("https://api.example/{key}/v1"),
            format!("https://{}.example/v1", key.to_ascii_lowercase()),
            format!("https://api.example/{encoded}/v1"),
            format!("https://api.example/v1?k={}", key.to_ascii_uppercase()),
        ] {
            assert!(holds_a_key(&url), "{url}");
        }
        assert!(!holds_a_key("https://api.example/v1"));
        let _blank = remember("    ");
        assert!(!holds_a_key("https://api.example/a    b/v1"), "a blank key");
    }

    #[test]
    fn non_ascii_text_around_a_key_survives() {
        let key = remembered();
        assert_eq!(scrub(&format!("é{key}ü")), format!("é{REDACTED}ü"));
    }

    #[test]
    fn ten_thousand_keys_are_scrubbed_from_a_mebibyte_in_one_pass() {
        let _serial = serial();
        let keys = keys("many", 10_000);
        let guards: Vec<KeyGuard> = keys.iter().map(|key| remember(key)).collect();
        // Echoes of keys from all over the list: the oldest, the newest, and between.
        let echoed: Vec<&str> = keys
            .iter()
            .step_by(97)
            .chain(keys.last())
            .map(String::as_str)
            .collect();
        let (text, expected) = text_with(&echoed, 1024 * 1024);
        assert!(text.len() >= 1024 * 1024);
        assert_eq!(scrub(&text), expected);
        let mut in_place = text.clone();
        scrub_in_place(&mut in_place);
        assert_eq!(in_place, expected);
        // A URL holding the newest key, percent-encoded.
        let last = keys.last().map(String::as_str).unwrap_or_default();
        assert!(holds_a_key(&format!(
            "https://api.example/{}/v1",
            utf8_percent_encode(last, PATH)
        )));
        assert!(!holds_a_key("https://api.example/v1"));
        drop(guards);
    }

    #[test]
    fn a_long_verdict_is_scrubbed_of_every_key_after_three_hundred_clients() {
        let _serial = serial();
        let keys = keys("three", 300);
        let guards: Vec<KeyGuard> = keys.iter().map(|key| remember(key)).collect();
        let echoed: Vec<&str> = keys.iter().rev().step_by(7).map(String::as_str).collect();
        let (text, expected) = text_with(&echoed, 256 * 1024);
        assert_eq!(scrub(&text), expected);
        // Read through JSON escapes as a raw body is.
        let escaped = text.replacen("sk-three", "\\u0073k-three", 3);
        assert_eq!(scrub_raw(&escaped), expected);
        drop(guards);
    }

    #[test]
    fn text_without_keys_is_returned_as_it_is() {
        let _serial = serial();
        let keys = keys("clean", 100);
        let _guards: Vec<KeyGuard> = keys.iter().map(|key| remember(key)).collect();
        let (text, expected) = text_with(&[], 64 * 1024);
        assert_eq!(text, expected);
        assert_eq!(scrub(&text), text);
        let mut in_place = text.clone();
        scrub_in_place(&mut in_place);
        assert_eq!(in_place, text);
    }

    #[test]
    fn a_dropped_key_is_scrubbed_for_a_while_and_memory_stays_bounded() {
        let _serial = serial();
        let [dropped, shared] = ["sk-dropped-key-0123456789", "sk-shared-key-0123456789"];
        let guard = remember(dropped);
        let (first, second) = (remember(shared), remember(shared));
        drop(guard);
        drop(first);
        assert_eq!(
            scrub(&format!("<{dropped}>")),
            format!("<{REDACTED}>"),
            "just dropped"
        );
        // 10,000 clients come and go.
        for (i, key) in keys("gone", 10_000).into_iter().enumerate() {
            let guard = remember(&key);
            // Scrubbed now and then, so that keys reach the main automaton and leave it.
            if i % 8 == 0 {
                assert_eq!(scrub(&format!("<{key}>")), format!("<{REDACTED}>"));
            }
            drop(guard);
        }
        assert_eq!(
            scrub(&format!("<{shared}>")),
            format!("<{REDACTED}>"),
            "a key held by one guard of two is live"
        );
        assert_eq!(
            scrub(&format!("<{dropped}>")),
            format!("<{dropped}>"),
            "long gone, it is let go"
        );
        // The recent keys, the live ones of other tests, and the stale ones not yet let go
        // by a rebuild: nothing like 10,000.
        let retained = retained();
        assert!(
            retained <= RECENT + 2 * MIN_PENDING + 16,
            "{retained} keys retained"
        );
        drop(second);
    }

    #[test]
    fn matches_of_both_automata_are_joined() {
        let searcher = |main: &str, pending: &str| Searcher {
            main: build([main.into()].iter()).map(|(a, _)| Arc::new(a)),
            pending: build([pending.into()].iter()).map(|(a, _)| a),
            broken: false,
        };
        // One key running into another: both go, as one span.
        let both = searcher("abcd-efgh-ijkl", "ijkl-mnop-qrst");
        assert_eq!(
            both.spans("> abcd-efgh-ijkl-mnop-qrst <"),
            Some(vec![(2, 26)])
        );
        // Apart, or side by side: one span each, in order.
        assert_eq!(
            both.spans("ijkl-mnop-qrst abcd-efgh-ijklABCD-EFGH-IJKL"),
            Some(vec![(0, 14), (15, 29), (29, 43)])
        );
        assert!(both.is_match("IJKL-MNOP-QRST"));
        assert!(!both.is_match("abcd-efgh"));
        let broken = Searcher::broken();
        assert_eq!(broken.spans("anything"), None);
        assert!(broken.is_match("anything"));
    }

    #[test]
    fn a_key_is_scrubbed_as_soon_as_it_is_remembered_while_others_come_and_go() {
        let _serial = serial();
        let stop = Arc::new(AtomicBool::new(false));
        let noise: Vec<_> = (0..3)
            .map(|thread| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut held = VecDeque::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        held.push_back(remember(&format!("sk-noise-{thread}-{i}")));
                        if held.len() > 40 {
                            held.pop_front();
                        }
                        let _ = scrub("ordinary words");
                        i += 1;
                    }
                })
            })
            .collect();
        let mut missed = Vec::new();
        for i in 0..2_000 {
            let key = format!("sk-fresh-{i}-0123456789");
            let _guard = remember(&key);
            let text = format!("<{key}>");
            if !holds_a_key(&text) || scrub(&text) != format!("<{REDACTED}>") {
                missed.push(i);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for thread in noise {
            assert!(thread.join().is_ok());
        }
        assert!(
            missed.is_empty(),
            "keys missed right after being remembered: {missed:?}"
        );
    }
}
