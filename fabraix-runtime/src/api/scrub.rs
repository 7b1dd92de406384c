//! Keeping API keys out of everything the SDK shows: error messages, snippets of bodies,
//! verdicts, log lines.
//!
//! Every key a client is built with is remembered here for the life of the process, and
//! text that came from outside (a server's answer, a transport error holding a URL) is
//! scrubbed of all of them before it is stored or shown. A server can echo a key in any
//! form, so each key is also looked for:
//! - without regard to ASCII case (URL parsing lowercases hosts);
//! - less its first or last character (what is left when a JSON escape such as `\n`
//!   swallowed a neighbouring letter);
//! - percent-encoded, as a URL path carries it;
//! - and raw bodies are read through JSON string escapes (`\u0073k-…`) before they are
//!   searched ([`scrub_raw`]).

use std::borrow::Cow;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// What a key is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Shorter keys are not looked for: they would match ordinary words.
const MIN_KEY_LEN: usize = 4;

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

/// The forms to look for, of every key seen in this process.
static NEEDLES: RwLock<Vec<Box<str>>> = RwLock::new(Vec::new());

/// Changes whenever a key is remembered: a text found clean at one generation stays clean
/// until the next.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current generation of the remembered keys (see [`GENERATION`]).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Remembers `key`, so that [`scrub`] removes it from now on.
pub(crate) fn remember(key: &str) {
    // A blank "key" would match the spaces of ordinary text.
    if key.trim().len() < MIN_KEY_LEN {
        return;
    }
    let mut forms = vec![key.to_owned()];
    if key.len() >= 8 {
        forms.extend(key.get(1..).map(str::to_owned));
        forms.extend(key.get(..key.len() - 1).map(str::to_owned));
    }
    let encoded = utf8_percent_encode(key, PATH).to_string();
    if encoded != key {
        forms.push(encoded);
    }
    let mut needles = NEEDLES.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !needles.iter().any(|n| **n == *form) {
            needles.push(form.into_boxed_str());
            GENERATION.fetch_add(1, Ordering::AcqRel);
        }
    }
    // Longest first, so a whole key is replaced before a part of it could be.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
}

/// `text` with every remembered key removed.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = text.to_owned();
    let needles = NEEDLES.read().unwrap_or_else(|e| e.into_inner());
    for needle in needles.iter() {
        redact(&mut out, needle);
    }
    out
}

/// Whether `text` (a URL) holds a remembered key, in any case, raw or percent-encoded. A
/// URL is printed by the http stack's own logs, which nothing here can scrub: a URL that
/// holds a key must never be sent.
pub(crate) fn holds_a_key(text: &str) -> bool {
    let decoded = percent_decode_str(text).decode_utf8_lossy();
    let lowered = decoded.to_ascii_lowercase();
    let needles = NEEDLES.read().unwrap_or_else(|e| e.into_inner());
    needles
        .iter()
        .any(|needle| lowered.contains(&needle.to_ascii_lowercase()))
}

/// Raw text of a body, read through JSON string escapes (so an escaped key is found), with
/// every remembered key removed.
pub(crate) fn scrub_raw(text: &str) -> String {
    scrub(&unescape_json(text))
}

/// Scrubs a string in place, allocating only when it held a key.
pub(crate) fn scrub_in_place(text: &mut String) {
    let scrubbed = scrub(text);
    if scrubbed != *text {
        *text = scrubbed;
    }
}

/// Replaces every occurrence of `needle` in `text`, ignoring ASCII case.
fn redact(text: &mut String, needle: &str) {
    if needle.is_empty() || text.len() < needle.len() {
        return;
    }
    if !needle.is_ascii() {
        if text.contains(needle) {
            *text = text.replace(needle, REDACTED);
        }
        return;
    }
    // ASCII lowercasing keeps every byte offset, so matches in the lowered text are
    // matches at the same offsets (and char boundaries) of the original.
    let lowered = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::new();
    let mut last = 0;
    for (start, found) in lowered.match_indices(&needle) {
        out.push_str(&text[last..start]);
        out.push_str(REDACTED);
        last = start + found.len();
    }
    if last > 0 {
        out.push_str(&text[last..]);
        *text = out;
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
        remember(KEY);
        KEY
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
        remember("    ");
        assert!(!holds_a_key("https://api.example/a    b/v1"), "a blank key");
    }

    #[test]
    fn non_ascii_text_around_a_key_survives() {
        let key = remembered();
        assert_eq!(scrub(&format!("é{key}ü")), format!("é{REDACTED}ü"));
    }
}
