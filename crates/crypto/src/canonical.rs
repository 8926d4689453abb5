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

fn write_string(s: &str, out: &mut Vec<u8>) {
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

    proptest::proptest! {
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
