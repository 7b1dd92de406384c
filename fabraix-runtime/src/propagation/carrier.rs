//! Carriers: where the trace is read from and written to. HTTP headers, an MCP request's
//! `_meta` object, or a plain map.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// Reads string values by key from a carrier: HTTP headers, an MCP `_meta` object, a map.
///
/// Implement it for your own carrier (a message queue's attributes, say) to
/// [`extract`](super::extract) from it. Keys are the lowercase names
/// [`TRACEPARENT`](super::TRACEPARENT) and [`BAGGAGE`](super::BAGGAGE).
pub trait Extractor {
    /// The value under `key`, if there is one and it is text.
    fn get(&self, key: &str) -> Option<&str>;

    /// Every value under `key`, for carriers that may repeat a key (HTTP headers); `None`
    /// when there is none, or when one of them is not text. The default is [`get`](Self::get)
    /// alone.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        self.get(key).map(|value| vec![value])
    }
}

/// Writes string values by key into a carrier. [`inject`](super::inject) reads the
/// carrier's `baggage` first (hence `Extractor`), so it can keep what is already there.
pub trait Injector: Extractor {
    /// Sets `key` to `value`, replacing every value it had.
    fn set(&mut self, key: &str, value: String);
}

impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderMap::get(self, key)?.to_str().ok()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values = HeaderMap::get_all(self, key)
            .iter()
            .map(|value| value.to_str().ok())
            .collect::<Option<Vec<_>>>()?;
        (!values.is_empty()).then_some(values)
    }
}

impl Injector for HeaderMap {
    /// Sets the header. A key that is not a header name, or a value that cannot be a
    /// header value, writes nothing: neither occurs for the values this module writes.
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            self.insert(name, value);
        }
    }
}

/// A JSON object, such as an MCP request's `_meta`: string values only.
impl Extractor for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        Map::get(self, key)?.as_str()
    }
}

impl Injector for Map<String, Value> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), Value::String(value));
    }
}

impl<S: BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
}

impl Extractor for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl Injector for BTreeMap<String, String> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
}

impl<T: Extractor + ?Sized> Extractor for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        (**self).get_all(key)
    }
}

impl<T: Extractor + ?Sized> Extractor for &mut T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        (**self).get_all(key)
    }
}

impl<T: Injector + ?Sized> Injector for &mut T {
    fn set(&mut self, key: &str, value: String) {
        (**self).set(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_maps_read_every_value_and_refuse_non_text() {
        let mut headers = HeaderMap::new();
        assert_eq!(Extractor::get_all(&headers, "baggage"), None);
        headers.append("baggage", HeaderValue::from_static("a=1"));
        headers.append("baggage", HeaderValue::from_static("b=2"));
        assert_eq!(Extractor::get(&headers, "baggage"), Some("a=1"));
        assert_eq!(
            Extractor::get_all(&headers, "baggage"),
            Some(vec!["a=1", "b=2"])
        );
        headers.append("baggage", HeaderValue::from_bytes(b"c=\xff").unwrap());
        assert_eq!(Extractor::get_all(&headers, "baggage"), None);

        headers.set("baggage", "d=4".into());
        assert_eq!(Extractor::get_all(&headers, "baggage"), Some(vec!["d=4"]));
        headers.set("not a header", "x".into());
        headers.set("x-bad", "line\nbreak".into());
        assert_eq!(headers.len(), 1);
        assert_eq!(Extractor::get(&headers, "not a header"), None);
    }

    #[test]
    fn json_objects_read_strings_only() {
        let mut meta = Map::new();
        meta.insert("traceparent".into(), Value::from(12));
        assert_eq!(Extractor::get(&meta, "traceparent"), None);
        meta.set("traceparent", "x".into());
        assert_eq!(Extractor::get(&meta, "traceparent"), Some("x"));
    }

    #[test]
    fn maps_read_and_write() {
        let mut hash = HashMap::<String, String>::new();
        hash.set("k", "v".into());
        assert_eq!(Extractor::get(&hash, "k"), Some("v"));
        let mut tree = BTreeMap::new();
        tree.set("k", "v".into());
        assert_eq!(Extractor::get(&&tree, "k"), Some("v"));
        assert_eq!(Extractor::get_all(&tree, "k"), Some(vec!["v"]));
    }
}
