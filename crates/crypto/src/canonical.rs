//! OLPC canonical JSON, exactly as securesystemslib's `encode_canonical` writes it.
//!
//! TUF signatures cover these bytes, so a single differing byte means a signature made by
//! python-tuf does not verify here (or the reverse). The rules, taken from securesystemslib:
//!
//! - object keys sorted by Unicode code point (Python's `sorted` on `str`); UTF-8 byte order
//!   is the same order, which is why we sort by bytes. (`olpc-cjson` sorts differently for
//!   characters outside the Basic Multilingual Plane, which is why we do not use it.)
//! - strings: only `"` and `\` are escaped; every other character, including control
//!   characters and non-ASCII, is written raw as UTF-8;
//! - integers only: a float has no canonical form, so it is an error rather than a guess;
//! - no whitespace anywhere.

use serde_json::Value;

/// Why a value has no canonical JSON form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalJsonError {
    /// Canonical JSON has no floating point numbers.
    #[error("canonical JSON forbids non-integer numbers (found {0})")]
    NonInteger(String),
    /// A Rust value with no JSON counterpart (non-string map keys, enum variants with data).
    #[error("cannot encode as canonical JSON: {0}")]
    Unsupported(String),
}

/// Encodes `value` as canonical JSON bytes.
pub fn to_canonical_json(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical JSON form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(CanonicalJsonError::NonInteger(n.to_string()));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // serde_json's default map is already sorted by bytes, but with the
            // `preserve_order` feature (which any crate in the graph may enable) it is not:
            // sort explicitly so the encoding never depends on feature unification.
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        // Multi-byte UTF-8 sequences never contain 0x22 or 0x5C, so escaping bytewise is exact.
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Deepest nesting [`is_canonical`] follows (serde_json's own recursion limit).
const MAX_DEPTH: usize = 128;

/// Whether `bytes` is a JSON text already in canonical form: valid JSON (so every strict
/// parser reads it), and exactly what [`to_canonical_json`] writes for the value it holds.
///
/// This lets a reader use received bytes as the signed message as they are, instead of
/// parsing them into a tree and encoding that tree again — the cost that dominates reading
/// a role with hundreds of thousands of targets. A `false` answer means only "not proven";
/// the caller then takes the general path (parse, refuse duplicates, re-encode), so the
/// check errs towards `false`:
/// - keys must be strictly increasing by bytes (which also rules out duplicates) and free of
///   escapes, so the order seen here is the order of the decoded keys;
/// - strings may escape only `"` and `\` (the canonical writer's escapes), and hold no raw
///   control characters (canonical, but not JSON);
/// - numbers are integers in the canonical spelling: no `-0`, no leading zeros, no fraction
///   or exponent, at most 18 digits (so they fit every 64-bit reading);
/// - no whitespace anywhere, nesting at most 128 deep, valid UTF-8.
pub fn is_canonical(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut scan = CanonicalScan { bytes, at: 0 };
    scan.value(0) && scan.at == bytes.len()
}

/// The position of [`is_canonical`]'s single forward pass.
struct CanonicalScan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> CanonicalScan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self
            .bytes
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') if depth < MAX_DEPTH => self.object(depth + 1),
            Some(b'[') if depth < MAX_DEPTH => self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            let Some((key, escaped)) = self.string() else {
                return false;
            };
            if escaped || previous.is_some_and(|p| p >= key) {
                return false;
            }
            previous = Some(key);
            if !self.eat(b':') || !self.value(depth) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A canonical string: its raw contents (between the quotes) and whether it held an
    /// escape.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.peek()? {
                b'"' => {
                    let bytes: &'a [u8] = self.bytes;
                    let contents = bytes.get(start..self.at)?;
                    self.at += 1;
                    return Some((contents, escaped));
                }
                b'\\' => {
                    self.at += 1;
                    if !matches!(self.peek()?, b'"' | b'\\') {
                        return None;
                    }
                    escaped = true;
                    self.at += 1;
                }
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    fn integer(&mut self) -> bool {
        let negative = self.eat(b'-');
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = self.bytes.get(start..self.at).unwrap_or_default();
        let spelled_canonically = match digits {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => digits.len() <= 18,
        };
        spelled_canonically && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        String::from_utf8(to_canonical_json(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        assert_eq!(
            enc(json!({"b": 1, "a": [true, null, "x"]})),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(enc(json!("a\"b\\c\nd\u{1}é")), "\"a\\\"b\\\\c\nd\u{1}é\"");
    }

    #[test]
    fn orders_by_code_point_not_utf16() {
        // U+FFFF sorts before U+1F600 by code point, after it by UTF-16 code units.
        assert_eq!(
            enc(json!({"😀": 1, "\u{ffff}": 2})),
            "{\"\u{ffff}\":2,\"😀\":1}"
        );
    }

    #[test]
    fn rejects_floats() {
        assert!(to_canonical_json(&json!({"a": 1.5})).is_err());
    }

    #[test]
    fn integer_extremes() {
        assert_eq!(
            enc(json!([i64::MIN, u64::MAX])),
            format!("[{},{}]", i64::MIN, u64::MAX)
        );
    }

    #[test]
    fn typed_encoding_sorts_struct_fields_and_flattened_extras() {
        #[derive(serde::Serialize)]
        struct Doc {
            zeta: u32,
            alpha: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            #[serde(flatten)]
            extra: std::collections::BTreeMap<String, Value>,
        }
        let d = Doc {
            zeta: 1,
            alpha: None,
            skipped: None,
            extra: [("mid".to_string(), json!({"b": [1, "x"], "a": true}))].into(),
        };
        let direct = to_canonical_json_from(&d).unwrap();
        let via_value = to_canonical_json(&serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(direct, via_value);
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            r#"{"alpha":null,"mid":{"a":true,"b":[1,"x"]},"zeta":1}"#
        );
        assert!(to_canonical_json_from(&1.5f64).is_err());

        // A flattened map naming a field again is refused, not written twice.
        let d = Doc {
            zeta: 1,
            alpha: None,
            skipped: None,
            extra: [("zeta".to_string(), json!(2))].into(),
        };
        assert!(to_canonical_json_from(&d).is_err());
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn recognises_canonical_text_only() {
        for yes in [
            r#"{"a":[true,null,"x\"y\\z"],"b":{"":-12,"c":0}}"#,
            r#""é😀""#,
            "[]",
            "{}",
            "999999999999999999",
        ] {
            assert!(is_canonical(yes.as_bytes()), "{yes}");
        }
        for no in [
            r#"{"b":1,"a":2}"#, // keys out of order
            r#"{"a":1,"a":2}"#, // duplicate
            r#"{"a\"":1}"#,     // escaped key
            r#"{"a": 1}"#,      // whitespace
            r#"["\n"]"#,        // an escape the canonical writer never makes
            r#"["\u0041"]"#,    // likewise
            "[\"\u{1}\"]",      // raw control character: canonical, not JSON
            "[-0]",
            "[01]",
            "[1.0]",
            "[1e3]",
            "1000000000000000000", // 19 digits: left to the general path
            "[1,]",
            "{\"a\":1",
            "[1] ",
            "tru",
            "",
        ] {
            assert!(!is_canonical(no.as_bytes()), "{no}");
        }
        assert!(!is_canonical(b"[\"\xff\"]"));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!is_canonical(deep.as_bytes()));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(is_canonical(ok.as_bytes()));
    }

    fn has_escaped_key(v: &Value) -> bool {
        match v {
            Value::Array(items) => items.iter().any(has_escaped_key),
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| k.contains(['"', '\\']) || has_escaped_key(v)),
            _ => false,
        }
    }

    /// JSON values whose canonical form is also a JSON text (no control characters) with
    /// numbers [`is_canonical`] accepts.
    fn arb_json_text() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        const MAX: i64 = 999_999_999_999_999_999;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-MAX..=MAX).prop_map(Value::from),
            "[^\\x00-\\x1f]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[^\\x00-\\x1f]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn typed_encoding_equals_value_encoding(v in arb_json()) {
            proptest::prop_assert_eq!(to_canonical_json_from(&v).unwrap(), to_canonical_json(&v).unwrap());
        }

        #[test]
        fn canonical_encodings_are_recognised(v in arb_json_text()) {
            let bytes = to_canonical_json(&v).unwrap();
            // Keys with `"` or `\\` are canonical but escaped, which the check leaves to the
            // general path.
            proptest::prop_assert!(is_canonical(&bytes) || has_escaped_key(&v));
        }

        /// The claim the fast path rests on: bytes it accepts are exactly the canonical
        /// encoding of what a parser reads from them. Mutations of canonical texts probe
        /// the edges (reordered keys, duplicates, escapes, whitespace, numbers).
        #[test]
        fn accepted_bytes_are_their_own_canonical_encoding(
            v in arb_json_text(),
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), 0u8..=127), 0..4),
        ) {
            use proptest::prelude::*;
            let mut bytes = to_canonical_json(&v).unwrap();
            for (at, b) in edits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
            }
            if is_canonical(&bytes) {
                let parsed: Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(to_canonical_json(&parsed).unwrap(), bytes);
            }
        }

        #[test]
        fn output_is_valid_json_with_same_value(s in "[^\\x00-\\x1f]*", k in "[^\\x00-\\x1f]*", n in proptest::num::i64::ANY) {
            // Raw control characters are canonical but not valid JSON, so they are left out here
            // (the python-tuf corpus test covers them).
            let v = json!({ k.clone(): [s.clone(), n], "z": {"y": s} });
            let bytes = to_canonical_json(&v).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            proptest::prop_assert_eq!(back, v);
        }
    }
}

/// Encodes any `Serialize` value as canonical JSON directly, without building a
/// `serde_json::Value` first. The bytes are identical to
/// `to_canonical_json(&serde_json::to_value(value)?)`; for large metadata (hundreds of
/// thousands of targets) this avoids a full in-memory copy of the document.
pub fn to_canonical_json_from<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(4096);
    value.serialize(ser::Canonical { out: &mut out })?;
    Ok(out)
}

impl serde::ser::Error for CanonicalJsonError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CanonicalJsonError::Unsupported(msg.to_string())
    }
}

mod ser {
    use super::{write_string, CanonicalJsonError as E};
    use serde::ser::{self, Serialize};

    pub(super) struct Canonical<'a> {
        pub(super) out: &'a mut Vec<u8>,
    }

    fn int(out: &mut Vec<u8>, v: impl std::fmt::Display) {
        out.extend_from_slice(v.to_string().as_bytes());
    }

    impl<'a> ser::Serializer for Canonical<'a> {
        type Ok = ();
        type Error = E;
        type SerializeSeq = Seq<'a>;
        type SerializeTuple = Seq<'a>;
        type SerializeTupleStruct = Seq<'a>;
        type SerializeTupleVariant = Variant<Seq<'a>>;
        type SerializeMap = Map<'a>;
        type SerializeStruct = Map<'a>;
        type SerializeStructVariant = Variant<Map<'a>>;

        fn serialize_bool(self, v: bool) -> Result<(), E> {
            self.out
                .extend_from_slice(if v { b"true" } else { b"false" });
            Ok(())
        }
        fn serialize_i8(self, v: i8) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_i16(self, v: i16) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_i32(self, v: i32) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_i64(self, v: i64) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_u8(self, v: u8) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_u16(self, v: u16) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_u32(self, v: u32) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_u64(self, v: u64) -> Result<(), E> {
            int(self.out, v);
            Ok(())
        }
        fn serialize_f32(self, v: f32) -> Result<(), E> {
            Err(E::NonInteger(v.to_string()))
        }
        fn serialize_f64(self, v: f64) -> Result<(), E> {
            // serde_json::Value holds whole numbers parsed as floats as floats too: refuse alike.
            Err(E::NonInteger(v.to_string()))
        }
        fn serialize_char(self, v: char) -> Result<(), E> {
            write_string(v.encode_utf8(&mut [0u8; 4]), self.out);
            Ok(())
        }
        fn serialize_str(self, v: &str) -> Result<(), E> {
            write_string(v, self.out);
            Ok(())
        }
        fn serialize_bytes(self, v: &[u8]) -> Result<(), E> {
            use ser::SerializeSeq;
            let mut seq = self.serialize_seq(Some(v.len()))?;
            for b in v {
                seq.serialize_element(b)?;
            }
            seq.end()
        }
        fn serialize_none(self) -> Result<(), E> {
            self.out.extend_from_slice(b"null");
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), E> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), E> {
            self.serialize_none()
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), E> {
            self.serialize_none()
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), E> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<(), E> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            v: &T,
        ) -> Result<(), E> {
            use ser::SerializeMap;
            let mut m = self.serialize_map(Some(1))?;
            m.serialize_entry(variant, v)?;
            m.end()
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, E> {
            self.out.push(b'[');
            Ok(Seq {
                out: self.out,
                first: true,
            })
        }
        fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, E> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, E> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            len: usize,
        ) -> Result<Variant<Seq<'a>>, E> {
            Err(E::Unsupported(format!(
                "tuple variant {variant} ({len} fields)"
            )))
        }
        fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, E> {
            let start = self.out.len();
            self.out.push(b'{');
            Ok(Map {
                out: self.out,
                start,
                entries: Vec::with_capacity(len.unwrap_or(8)),
                key: None,
                in_order: true,
            })
        }
        fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'a>, E> {
            self.serialize_map(Some(len))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Variant<Map<'a>>, E> {
            Err(E::Unsupported(format!("struct variant {variant}")))
        }
    }

    pub(super) struct Seq<'a> {
        out: &'a mut Vec<u8>,
        first: bool,
    }

    impl Seq<'_> {
        fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            if !self.first {
                self.out.push(b',');
            }
            self.first = false;
            v.serialize(Canonical { out: self.out })
        }
    }

    impl ser::SerializeSeq for Seq<'_> {
        type Ok = ();
        type Error = E;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            self.element(v)
        }
        fn end(self) -> Result<(), E> {
            self.out.push(b']');
            Ok(())
        }
    }
    impl ser::SerializeTuple for Seq<'_> {
        type Ok = ();
        type Error = E;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            self.element(v)
        }
        fn end(self) -> Result<(), E> {
            self.out.push(b']');
            Ok(())
        }
    }
    impl ser::SerializeTupleStruct for Seq<'_> {
        type Ok = ();
        type Error = E;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            self.element(v)
        }
        fn end(self) -> Result<(), E> {
            self.out.push(b']');
            Ok(())
        }
    }

    /// Buffers entries (key, encoded value) and writes them sorted by key when complete:
    /// struct fields and flattened extras arrive in declaration order, not key order.
    /// An object being written. Entries go straight into `out` as they come; if their keys
    /// did not arrive in canonical order (struct fields, flattened maps), `finish` reorders
    /// the written entries. Sorted maps — every `BTreeMap`, so every large one — are never
    /// copied.
    pub(super) struct Map<'a> {
        out: &'a mut Vec<u8>,
        /// Where this object's `{` is in `out`.
        start: usize,
        /// Each entry's key and where its `"key":value` text begins in `out`.
        entries: Vec<(String, usize)>,
        key: Option<String>,
        /// Whether every key so far came after the one before it.
        in_order: bool,
    }

    impl Map<'_> {
        fn finish(mut self) -> Result<(), E> {
            if !self.in_order {
                self.reorder()?;
            }
            self.out.push(b'}');
            Ok(())
        }

        /// Sorts the written entries by key (bytes, i.e. code points), refusing duplicates.
        fn reorder(&mut self) -> Result<(), E> {
            let body_start = self.start.saturating_add(1);
            let body = self.out.split_off(body_start);
            // Each entry runs from its start to the comma before the next one, or the end.
            let ends = self
                .entries
                .iter()
                .skip(1)
                .map(|(_, next)| next.saturating_sub(1))
                .chain(std::iter::once(body_start.saturating_add(body.len())));
            let mut texts: Vec<(&[u8], &[u8])> = self
                .entries
                .iter()
                .zip(ends)
                .map(|((key, from), to)| {
                    let text = body
                        .get(from.saturating_sub(body_start)..to.saturating_sub(body_start))
                        .unwrap_or_default();
                    (key.as_bytes(), text)
                })
                .collect();
            texts.sort_unstable_by(|a, b| a.0.cmp(b.0));
            if texts.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
                return Err(E::Unsupported("duplicate object key".into()));
            }
            for (written, (_, text)) in texts.into_iter().enumerate() {
                if written > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(text);
            }
            Ok(())
        }

        fn value<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), E> {
            if let Some((last, _)) = self.entries.last() {
                if last.as_bytes() >= key.as_bytes() {
                    self.in_order = false;
                }
                self.out.push(b',');
            }
            let at = self.out.len();
            write_string(&key, self.out);
            self.out.push(b':');
            v.serialize(Canonical { out: self.out })?;
            self.entries.push((key, at));
            Ok(())
        }
    }

    impl ser::SerializeMap for Map<'_> {
        type Ok = ();
        type Error = E;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), E> {
            self.key = Some(key.serialize(KeyOnly)?);
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            let key = self
                .key
                .take()
                .ok_or_else(|| E::Unsupported("map value without key".into()))?;
            self.value(key, v)
        }
        fn end(self) -> Result<(), E> {
            self.finish()
        }
    }

    impl ser::SerializeStruct for Map<'_> {
        type Ok = ();
        type Error = E;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            v: &T,
        ) -> Result<(), E> {
            self.value(key.to_owned(), v)
        }
        fn end(self) -> Result<(), E> {
            self.finish()
        }
    }

    /// Never constructed: tuple and struct variants are refused before one is needed.
    pub(super) struct Variant<T>(T);

    impl ser::SerializeTupleVariant for Variant<Seq<'_>> {
        type Ok = ();
        type Error = E;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
            self.0.element(v)
        }
        fn end(self) -> Result<(), E> {
            Err(E::Unsupported("tuple variant".into()))
        }
    }
    impl ser::SerializeStructVariant for Variant<Map<'_>> {
        type Ok = ();
        type Error = E;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            v: &T,
        ) -> Result<(), E> {
            self.0.value(key.to_owned(), v)
        }
        fn end(self) -> Result<(), E> {
            Err(E::Unsupported("struct variant".into()))
        }
    }

    /// Object keys must be strings (as in JSON).
    struct KeyOnly;

    macro_rules! not_a_key {
        ($($f:ident: $t:ty),*) => {$(
            fn $f(self, _: $t) -> Result<String, E> { Err(E::Unsupported("object keys must be strings".into())) }
        )*};
    }

    impl ser::Serializer for KeyOnly {
        type Ok = String;
        type Error = E;
        type SerializeSeq = ser::Impossible<String, E>;
        type SerializeTuple = ser::Impossible<String, E>;
        type SerializeTupleStruct = ser::Impossible<String, E>;
        type SerializeTupleVariant = ser::Impossible<String, E>;
        type SerializeMap = ser::Impossible<String, E>;
        type SerializeStruct = ser::Impossible<String, E>;
        type SerializeStructVariant = ser::Impossible<String, E>;

        fn serialize_str(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn serialize_char(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
        not_a_key!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
            serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
            serialize_f64: f64, serialize_bytes: &[u8], serialize_unit_struct: &'static str);
        fn serialize_none(self) -> Result<String, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, E> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<String, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<String, E> {
            Ok(variant.to_owned())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<String, E> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<String, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, E> {
            Err(E::Unsupported("object keys must be strings".into()))
        }
    }
}
