//! The `traceparent` header: `00-<trace id>-<parent id>-<flags>`, W3C Trace Context level 1.

use std::cell::Cell;

use uuid::Uuid;

use crate::model::TraceId;

/// The only version written and read. `ff` is forbidden by the standard, and a later
/// version may change the layout, so anything else is refused.
const VERSION: &str = "00";

/// `sampled`: the run is recorded.
const FLAGS: &str = "01";

/// `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

/// Writes the header for `trace_id`, with a fresh random parent id. `None` for the nil
/// UUID, which the standard forbids as a trace id.
pub(crate) fn encode(trace_id: TraceId) -> Option<String> {
    let id = trace_id.as_uuid();
    if id.is_nil() {
        return None;
    }
    let value = format!(
        "{VERSION}-{}-{:016x}-{FLAGS}",
        id.simple(),
        random_parent_id()
    );
    debug_assert_eq!(value.len(), LEN);
    Some(value)
}

/// Reads the trace id from a header value; `None` for anything but a well-formed version
/// `00` value with non-zero ids.
pub(crate) fn decode(value: &str) -> Option<TraceId> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() != LEN {
        return None;
    }
    let mut fields = value.split('-');
    let (version, trace_id, parent_id, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() || version != VERSION {
        return None;
    }
    let trace_id = lower_hex(trace_id, 32)?;
    let parent_id = lower_hex(parent_id, 16)?;
    lower_hex(flags, 2)?;
    if trace_id == 0 || parent_id == 0 {
        return None;
    }
    Some(TraceId::from_uuid(Uuid::from_u128(trace_id)))
}

/// `len` lowercase hex digits (the standard forbids uppercase), as a number.
fn lower_hex(field: &str, len: usize) -> Option<u128> {
    let lower = field
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if field.len() != len || !lower {
        return None;
    }
    u128::from_str_radix(field, 16).ok()
}

/// 64 random bits, never all zero: splitmix64 over a per-thread state seeded once from the
/// system's randomness (a v4 UUID), so a hop costs no system call. A parent id only has to
/// be unique, not secret.
fn random_parent_id() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let bits = Uuid::new_v4().as_u128();
            (bits >> 64) as u64 ^ bits as u64
        });
    }
    loop {
        let state = STATE.with(|s| {
            let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(next);
            next
        });
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn the_trace_id_is_the_uuid_in_lowercase_hex() {
        let id: TraceId = "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736".parse().unwrap();
        let value = encode(id).unwrap();
        assert!(value.starts_with(&format!("00-{TRACE}-")), "{value}");
        assert!(value.ends_with("-01"));
        assert_eq!(decode(&value), Some(id));
    }

    #[test]
    fn each_hop_gets_its_own_parent_id() {
        let id = TraceId::from_uuid(Uuid::new_v4());
        let (a, b) = (encode(id).unwrap(), encode(id).unwrap());
        assert_ne!(a[36..52], b[36..52]);
        assert_ne!(&a[36..52], "0000000000000000");
    }

    #[test]
    fn parent_ids_differ_within_and_across_threads() {
        let here: Vec<u64> = (0..1000).map(|_| random_parent_id()).collect();
        let there: Vec<u64> =
            std::thread::spawn(|| (0..1000).map(|_| random_parent_id()).collect())
                .join()
                .unwrap();
        let all: std::collections::HashSet<u64> = here.iter().chain(&there).copied().collect();
        assert_eq!(all.len(), 2000);
        assert!(!all.contains(&0));
    }

    #[test]
    fn the_nil_trace_id_is_not_written() {
        assert_eq!(encode(TraceId::from_uuid(Uuid::nil())), None);
    }

    #[test]
    fn only_well_formed_version_00_is_read() {
        let ok = format!("00-{TRACE}-00f067aa0ba902b7-01");
        assert!(decode(&ok).is_some());
        assert!(decode(&format!(" {ok}\t")).is_some());
        assert!(decode(&format!("00-{TRACE}-00f067aa0ba902b7-00")).is_some());
        for bad in [
            String::new(),
            "garbage".into(),
            format!("ff-{TRACE}-00f067aa0ba902b7-01"),
            format!("01-{TRACE}-00f067aa0ba902b7-01"),
            format!("01-{TRACE}-00f067aa0ba902b7-01-extra"),
            format!("00-{TRACE}-00f067aa0ba902b7-01-"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{TRACE}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-00F067AA0BA902B7-01"),
            format!("00-{TRACE}-00f067aa0ba902b7-0g"),
            format!("00-{TRACE}-00f067aa0ba902b7x01"),
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            format!("00_{TRACE}-00f067aa0ba902b7-01"),
            format!("00-{TRACE}-00f067aa0ba902b-701"),
            format!("00-{TRACE}-00f067aa0ba902b7-é"),
        ] {
            assert_eq!(decode(&bad), None, "{bad:?}");
        }
    }
}
