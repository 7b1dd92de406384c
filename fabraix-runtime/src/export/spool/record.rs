//! One event as the spool stores it: a record that knows its own length and checksum, so
//! that a reader can tell a damaged record from a good one and skip it (as Vector's disk
//! buffer does), instead of sending garbage or stopping.
//!
//! A row holds the trace id (16 bytes, also indexed), the time the event was logged (Unix
//! seconds), the body's length, its checksum, and the body:
//!
//! ```text
//! body     = version:u8 (1) | timestamp:f64 LE | kind_len:u8 | kind | content_len:u32 LE
//!            | content | schema_len:u32 LE | schema
//! checksum = the first 8 bytes of SHA-256(trace id | body), as a signed 64-bit integer
//! ```

use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::super::Logged;
use crate::model::{EventType, TraceId};

const VERSION: u8 = 1;

/// A record ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded {
    pub trace: [u8; 16],
    pub logged_at: f64,
    pub len: i64,
    pub checksum: i64,
    pub body: Vec<u8>,
}

/// Encodes an event for the spool.
pub(crate) fn encode(logged: &Logged) -> Encoded {
    let kind = logged.kind.as_str().as_bytes();
    let mut body = Vec::with_capacity(18 + kind.len() + logged.content.len() + logged.schema.len());
    body.push(VERSION);
    body.extend_from_slice(&logged.timestamp.to_le_bytes());
    // Event type names are a dozen bytes at most.
    body.push(kind.len() as u8);
    body.extend_from_slice(kind);
    put_text(&mut body, &logged.content);
    put_text(&mut body, &logged.schema);
    let trace = *logged.trace_id.as_uuid().as_bytes();
    Encoded {
        trace,
        logged_at: logged.timestamp,
        len: body.len() as i64,
        checksum: checksum(&trace, &body),
        body,
    }
}

fn put_text(body: &mut Vec<u8>, text: &str) {
    // An event's text longer than 4 GiB cannot be sent either; it is cut at the length
    // field's limit, and the record's checksum still covers what was stored.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// The record's checksum over its trace id and body.
pub(crate) fn checksum(trace: &[u8], body: &[u8]) -> i64 {
    let digest = Sha256::new()
        .chain_update(trace)
        .chain_update(body)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// Why a stored record is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damage {
    Length,
    Checksum,
    Format,
}

/// Reads a stored record back, checking its length, its checksum and its format.
pub(crate) fn decode(
    trace: &[u8],
    len: i64,
    checksum_stored: i64,
    body: &[u8],
) -> Result<Logged, Damage> {
    if i64::try_from(body.len()).ok() != Some(len) {
        return Err(Damage::Length);
    }
    if checksum(trace, body) != checksum_stored {
        return Err(Damage::Checksum);
    }
    let trace_id = <[u8; 16]>::try_from(trace)
        .map(|bytes| TraceId::from_uuid(uuid::Uuid::from_bytes(bytes)))
        .map_err(|_| Damage::Format)?;
    let mut reader = Reader(body);
    if reader.take(1)? != [VERSION] {
        return Err(Damage::Format);
    }
    let timestamp = f64::from_le_bytes(reader.array()?);
    let kind_len = usize::from(reader.take(1)?[0]);
    let kind = std::str::from_utf8(reader.take(kind_len)?).map_err(|_| Damage::Format)?;
    let kind = EventType::from_str(kind).map_err(|_| Damage::Format)?;
    let content = reader.text()?.to_owned();
    let schema: Arc<str> = Arc::from(reader.text()?);
    if !reader.0.is_empty() || !timestamp.is_finite() {
        return Err(Damage::Format);
    }
    Ok(Logged {
        trace_id,
        kind,
        timestamp,
        content,
        schema,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        if self.0.len() < n {
            return Err(Damage::Format);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        self.take(N)?.try_into().map_err(|_| Damage::Format)
    }

    fn text(&mut self) -> Result<&'a str, Damage> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| Damage::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged() -> Logged {
        Logged {
            trace_id: TraceId::from_uuid(uuid::Uuid::from_u128(7)),
            kind: EventType::ModelOutput,
            timestamp: 1_700_000_000.125,
            content: r#"{"text":"héllo"}"#.into(),
            schema: Arc::from(r#"{"type":"object"}"#),
        }
    }

    fn read(record: &Encoded) -> Result<Logged, Damage> {
        decode(&record.trace, record.len, record.checksum, &record.body)
    }

    #[test]
    fn a_record_reads_back_as_it_was_logged() {
        let record = encode(&logged());
        let back = read(&record).expect("a good record");
        let original = logged();
        assert_eq!(back.trace_id, original.trace_id);
        assert_eq!(back.kind, original.kind);
        assert_eq!(back.timestamp.to_bits(), original.timestamp.to_bits());
        assert_eq!(back.content, original.content);
        assert_eq!(&*back.schema, &*original.schema);
        assert_eq!(record.len as usize, record.body.len());
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_caught() {
        let record = encode(&logged());
        for i in 0..record.body.len() {
            let mut bad = record.clone();
            bad.body[i] ^= 0x40;
            assert_eq!(read(&bad).err(), Some(Damage::Checksum), "byte {i}");
            let mut cut = record.clone();
            cut.body.truncate(i);
            assert_eq!(read(&cut).err(), Some(Damage::Length), "cut at {i}");
        }
        let mut other_trace = record.clone();
        other_trace.trace[0] ^= 1;
        assert_eq!(read(&other_trace).err(), Some(Damage::Checksum));
        let mut short_trace = record.clone();
        short_trace.checksum = checksum(&record.trace[..8], &record.body);
        assert!(
            decode(
                &record.trace[..8],
                record.len,
                short_trace.checksum,
                &record.body
            )
            .is_err()
        );
    }

    #[test]
    fn a_record_with_a_good_checksum_and_a_bad_format_is_refused() {
        let record = encode(&logged());
        for body in [vec![], vec![2u8; 20], record.body[..10].to_vec()] {
            let sum = checksum(&record.trace, &body);
            assert_eq!(
                decode(&record.trace, body.len() as i64, sum, &body).err(),
                Some(Damage::Format)
            );
        }
    }
}
