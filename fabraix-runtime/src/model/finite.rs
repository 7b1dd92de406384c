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

/// Methods of [`Finder`] for values that hold no float: nothing to look at.
macro_rules! nothing_inside {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Stop> {
            Ok(())
        })*
    };
}

/// Methods of [`Finder`] that begin a compound value: its parts are walked as they come.
macro_rules! parts_follow {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Finder, Stop> {
            Ok(Finder)
        })*
    };
}

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

    nothing_inside! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(Finder)
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

    parts_follow! {
        serialize_seq(Option<usize>);
        serialize_tuple(usize);
        serialize_tuple_struct(&'static str, usize);
        serialize_tuple_variant(&'static str, u32, &'static str, usize);
        serialize_map(Option<usize>);
        serialize_struct(&'static str, usize);
        serialize_struct_variant(&'static str, u32, &'static str, usize);
    }
}

/// The compound values' parts: each walked in turn. `$method` names the part's method,
/// `$name` whether it comes with a field name.
macro_rules! walk_parts {
    ($($trait:ident :: $method:ident $(($name:ty))?;)*) => {
        $(impl ser::$trait for Finder {
            type Ok = ();
            type Error = Stop;

            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $(_: $name,)?
                value: &T,
            ) -> Result<(), Stop> {
                value.serialize(Finder)
            }

            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        })*
    };
}

walk_parts! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
    SerializeStruct::serialize_field(&'static str);
    SerializeStructVariant::serialize_field(&'static str);
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

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(f64),
        Tuple(u8, f64),
        Struct { x: f64 },
    }

    #[derive(Serialize)]
    struct Pair(u8, f32);

    #[derive(Serialize)]
    struct Wrapped(f64);

    #[test]
    fn looks_inside_every_shape_of_value() {
        let shapes = |x: f64| {
            vec![
                (has_non_finite(&Shape::Newtype(x)), "newtype variant"),
                (has_non_finite(&Shape::Tuple(1, x)), "tuple variant"),
                (has_non_finite(&Shape::Struct { x }), "struct variant"),
                (has_non_finite(&Pair(1, x as f32)), "tuple struct"),
                (has_non_finite(&Wrapped(x)), "newtype struct"),
                (has_non_finite(&[(1u8, x)]), "array of tuples"),
                (has_non_finite(&Some(Some(x))), "options"),
            ]
        };
        for (found, shape) in shapes(f64::NAN) {
            assert!(found, "{shape}");
        }
        for (found, shape) in shapes(0.5) {
            assert!(!found, "{shape}");
        }
        assert!(!has_non_finite(&Shape::Unit));
        assert!(!has_non_finite(&(true, 'c', b"bytes", None::<f64>)));
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
