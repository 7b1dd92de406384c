//! Numbers JSON cannot hold. `serde_json` writes a NaN or an infinity as `null`, which
//! would send data other than what the user logged; [`has_non_finite`] finds them, so the
//! encoders can refuse the value instead.

use std::fmt;

use serde::Serialize;
use serde::ser;

/// Whether serializing `value` meets an `f32` or `f64` that is NaN or infinite.
///
/// A value whose `Serialize` fails for another reason is not judged here: the encoder
/// reports that failure itself.
pub(crate) fn has_non_finite<T: Serialize + ?Sized>(value: &T) -> bool {
    matches!(value.serialize(Finder), Err(Stop::NonFinite))
}

/// Why the walk stopped.
#[derive(Debug)]
enum Stop {
    NonFinite,
    /// The value's own `Serialize` failed.
    Other,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::NonFinite => "a number is NaN or infinite",
            Stop::Other => "the value could not be serialized",
        })
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop::Other
    }
}

fn float(finite: bool) -> Result<(), Stop> {
    if finite { Ok(()) } else { Err(Stop::NonFinite) }
}

/// A serializer that keeps nothing: it only walks the value, looking at its floats.
struct Finder;

impl ser::Serializer for Finder {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Finder;
    type SerializeTuple = Finder;
    type SerializeTupleStruct = Finder;
    type SerializeTupleVariant = Finder;
    type SerializeMap = Finder;
    type SerializeStruct = Finder;
    type SerializeStructVariant = Finder;

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        float(v.is_finite())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        float(v.is_finite())
    }

    fn serialize_bool(self, _: bool) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_i8(self, _: i8) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_i16(self, _: i16) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_i32(self, _: i32) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_i64(self, _: i64) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_i128(self, _: i128) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_u8(self, _: u8) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_u16(self, _: u16) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_u32(self, _: u32) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_u64(self, _: u64) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_u128(self, _: u128) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_char(self, _: char) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_str(self, _: &str) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_tuple(self, _: usize) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Finder, Stop> {
        Ok(Finder)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Finder, Stop> {
        Ok(Finder)
    }
}

impl ser::SerializeSeq for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTuple for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeMap for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        key.serialize(Finder)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStruct for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Finder {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(Finder)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Serialize)]
    struct Reading {
        label: &'static str,
        values: Vec<Option<f64>>,
        nested: BTreeMap<&'static str, (u8, f32)>,
    }

    fn reading(value: f64, nested: f32) -> Reading {
        Reading {
            label: "null is only text here",
            values: vec![Some(1.5), None, Some(value)],
            nested: BTreeMap::from([("x", (1, nested))]),
        }
    }

    #[test]
    fn finds_nan_and_infinities_wherever_they_are() {
        assert!(!has_non_finite(&reading(2.0, 3.0)));
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(has_non_finite(&reading(value, 3.0)), "{value}");
            assert!(has_non_finite(&value));
        }
        assert!(has_non_finite(&reading(2.0, f32::NAN)));
        assert!(!has_non_finite(&serde_json::json!({ "n": null, "x": 1.0 })));
        assert!(!has_non_finite(&(u128::MAX, i128::MIN, "text", ())));
    }
}
