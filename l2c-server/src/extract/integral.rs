//! A deserializer adapter that reads a whole number written with a zero fraction or an exponent
//! (`3.0`, `1e3`) into an integer field.
//!
//! JSON Schema's `integer`, which the published OpenAPI document uses for counts, amounts and
//! versions, is "any number with a zero fractional part", so `3.0` is valid by the document;
//! serde refuses it for an `i64`. [`Integral`] wraps a deserializer and, where the type being
//! read asks for an integer (`deserialize_i64`, `deserialize_u32`, …) and the input holds a
//! float, hands the visitor that float as an integer when it is whole and within `i64`/`u64`.
//!
//! Everything else is passed through untouched: a float field still gets its float, a
//! `serde_json::Value` field (which asks for "anything") keeps `3.0` as `3.0`, a fraction
//! (`3.5`), a value beyond `i64`/`u64` (`1e300`) and `-0.0` for an unsigned field reach the
//! visitor as the float they are and are refused as before. The wrapped deserializer still does
//! all the parsing, so its checks (duplicate fields, unknown variants, trailing data) and its
//! error messages stay what they are.
//!
//! Types that buffer their input before reading it (`#[serde(flatten)]`, untagged or internally
//! tagged enums) read the buffered copy with serde's own deserializer and are not covered; no
//! request body uses them.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// 2^52: below it a float's last bit is worth at most ½, so a float read from a whole number is
/// either that number or not whole at all (serde_json's parser may be one bit off on long
/// inputs: `9007199254740991.0` reads as …990). From it on a float may be an integer other than
/// the one written (`9007199254740993.0` reads as …994): such a value is refused as before
/// rather than stored as a number nobody sent.
const MAX_EXACT: f64 = 4_503_599_627_370_496.0;

/// What the type being read asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// `i8`…`i64`.
    Signed,
    /// `u8`…`u64`.
    Unsigned,
    /// Anything else: floats pass through as floats.
    Other,
}

/// A deserializer that also reads whole floats into integer fields; see the module docs.
pub(crate) struct Integral<D>(pub(crate) D);

/// A visitor that turns a whole float into an integer when [`Want`] asks for one, and wraps
/// every nested deserializer so the whole document is covered.
struct Wrap<V> {
    inner: V,
    want: Want,
}

/// Seeds, sequences, maps, enums and variants whose nested values are read through
/// [`Integral`].
struct Nested<T>(T);

macro_rules! forward {
    ($want:expr => $($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(Wrap { inner: visitor, want: $want })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Integral<D> {
    type Error = D::Error;

    forward!(Want::Signed => deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64);
    forward!(Want::Unsigned => deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64);
    forward!(Want::Other =>
        deserialize_any, deserialize_bool, deserialize_i128, deserialize_u128, deserialize_f32,
        deserialize_f64, deserialize_char, deserialize_str, deserialize_string, deserialize_bytes,
        deserialize_byte_buf, deserialize_option, deserialize_unit, deserialize_seq,
        deserialize_map, deserialize_identifier, deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap::other(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_newtype_struct(name, Wrap::other(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap::other(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap::other(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_struct(name, fields, Wrap::other(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_enum(name, variants, Wrap::other(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<V> Wrap<V> {
    fn other(inner: V) -> Self {
        Wrap {
            inner,
            want: Want::Other,
        }
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    pass!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    // The conversions are exact: the value is whole and inside the target's range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let whole = v.fract() == 0.0;
        match self.want {
            Want::Signed if whole && v.abs() < MAX_EXACT => self.inner.visit_i64(v as i64),
            // `-0.0` is not a non-negative number for an unsigned field.
            Want::Unsigned if whole && v.is_sign_positive() && v < MAX_EXACT => {
                self.inner.visit_u64(v as u64)
            }
            _ => self.inner.visit_f64(v),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Integral(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Integral(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Nested(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Nested(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Nested(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Integral(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Nested(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Nested(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.next_value_seed(Nested(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Nested<A> {
    type Error = A::Error;
    type Variant = Nested<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(Nested(seed))
            .map(|(value, variant)| (value, Nested(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Nested(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Wrap::other(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, Wrap::other(visitor))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::Value;

    use super::*;

    fn read<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let v = T::deserialize(Integral(&mut *de))?;
        de.end()?;
        Ok(v)
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        count: u32,
        delta: i64,
        ratio: f64,
        #[serde(default)]
        extra: Option<Value>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        quantity: Option<u8>,
    }

    #[test]
    fn whole_floats_become_integers_and_floats_stay_floats() {
        let b: Body = read(
            r#"{"count":3.0,"delta":-1e3,"ratio":2,"extra":{"x":3.0},
                "items":[{"quantity":1.0},{"quantity":null}]}"#,
        )
        .unwrap();
        assert_eq!(b.count, 3);
        assert_eq!(b.delta, -1000);
        let edge: Body = read(r#"{"count":0,"delta":-4503599627370495e0,"ratio":0}"#).unwrap();
        assert_eq!(
            edge.delta, -4_503_599_627_370_495,
            "2^52 - 1 is read exactly"
        );
        assert!((b.ratio - 2.0).abs() < f64::EPSILON);
        // A `Value` asks for anything: the float stays as written.
        assert_eq!(b.extra.unwrap()["x"], serde_json::json!(3.0));
        assert_eq!(
            b.items,
            [Item { quantity: Some(1) }, Item { quantity: None }]
        );
        // Integers were already fine; `-0.0` is zero for a signed field.
        let b: Body = read(r#"{"count":7,"delta":-0.0,"ratio":0.5}"#).unwrap();
        assert_eq!((b.count, b.delta), (7, 0));
    }

    #[test]
    fn fractions_out_of_range_and_negative_zero_are_still_refused() {
        for (json, wanted) in [
            (
                r#"{"count":3.5,"delta":0,"ratio":0}"#,
                "floating point `3.5`",
            ),
            (
                r#"{"count":1e300,"delta":0,"ratio":0}"#,
                "floating point `1e+300`",
            ),
            (
                r#"{"count":-0.0,"delta":0,"ratio":0}"#,
                "floating point `-0.0`",
            ),
            (
                r#"{"count":-1.0,"delta":0,"ratio":0}"#,
                "floating point `-1.0`",
            ),
            (
                r#"{"count":5e9,"delta":0,"ratio":0}"#,
                "integer `5000000000`",
            ),
            (
                r#"{"count":0,"delta":1e19,"ratio":0}"#,
                "floating point `1e+19`",
            ),
            // From 2^52 on the float may be another integer than the one written.
            (
                r#"{"count":0,"delta":9007199254740993.0,"ratio":0}"#,
                "floating point `90071992547409",
            ),
            (
                r#"{"count":0,"delta":4503599627370496e0,"ratio":0}"#,
                "floating point `4503599627370496",
            ),
            (
                r#"{"count":0,"delta":0,"ratio":0,"items":[{"quantity":256.0}]}"#,
                "integer `256`",
            ),
        ] {
            let err = read::<Body>(json).unwrap_err().to_string();
            assert!(err.contains(wanted), "{json}: {err}");
        }
    }

    #[test]
    fn the_wrapped_deserializers_checks_still_apply() {
        let err = read::<Body>(r#"{"count":1.0,"count":2,"delta":0,"ratio":0}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate field `count`"), "{err}");
        #[derive(Debug, Deserialize)]
        enum Kind {
            A { n: u16 },
            B(u16),
        }
        assert!(matches!(
            read::<Kind>(r#"{"A":{"n":2.0}}"#),
            Ok(Kind::A { n: 2 })
        ));
        assert!(matches!(read::<Kind>(r#"{"B":4e0}"#), Ok(Kind::B(4))));
        assert!(read::<Kind>(r#"{"C":1}"#).is_err());
    }
}
