//! Deserialising a metadata object's known fields and keeping every unknown one.
//!
//! TUF lets any object carry fields this version of the specification does not name, and
//! they are signed like the rest: we keep them (`extra`) so that re-signing a role never
//! drops a field another tool added. serde's `#[serde(flatten)]` does that by first
//! copying the whole object into an untyped buffer and then reading it a second time,
//! which, for a targets role with a million entries, doubles the cost of reading it.
//! [`deserialize_known_fields!`] reads each field once, straight into its type.
//!
//! The rules are serde's own for these structs: a duplicated field is an error, a missing
//! required field is an error, an optional field may be absent or `null`, a defaulted one
//! may be absent.

/// Implements `Deserialize` for a struct whose fields are all listed, plus
/// `extra: BTreeMap<String, Value>` for the unknown ones. Each field is
/// `name: "json key" => KIND Type`, where KIND is
/// - `required`: must be present; the struct field is `Type` (or anything `Type` converts
///   into, such as [`crate::metadata::Expires`] into a time);
/// - `optional`: may be absent or `null`; the struct field is `Option<Type>`;
/// - `default`: may be absent (then `Type::default()`); the struct field is `Type`.
macro_rules! deserialize_known_fields {
    ($ty:ident { $($field:ident: $key:literal => $kind:ident $fty:ty),* $(,)? }) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> ::serde::de::Visitor<'de> for Fields {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        $(let mut $field: $crate::known_fields::Slot<$fty> =
                            $crate::known_fields::Slot::Absent;)*
                        let mut extra = ::std::collections::BTreeMap::new();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $($key => {
                                    if !matches!($field, $crate::known_fields::Slot::Absent) {
                                        return Err(<A::Error as ::serde::de::Error>::duplicate_field($key));
                                    }
                                    $field = $crate::known_fields::deserialize_known_fields!(
                                        @read $kind, map, $fty
                                    );
                                })*
                                _ => {
                                    let value: ::serde_json::Value = map.next_value()?;
                                    if extra.contains_key(&key) {
                                        return Err(<A::Error as ::serde::de::Error>::custom(
                                            format!("duplicate field `{key}`"),
                                        ));
                                    }
                                    extra.insert(key, value);
                                }
                            }
                        }
                        Ok($ty {
                            $($field: $crate::known_fields::deserialize_known_fields!(
                                @finish $kind, $field, $key, A
                            ),)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(Fields)
            }
        }
    };
    (@read required, $map:ident, $fty:ty) => {
        $crate::known_fields::Slot::Given(Some($map.next_value::<$fty>()?))
    };
    (@read default, $map:ident, $fty:ty) => {
        $crate::known_fields::Slot::Given(Some($map.next_value::<$fty>()?))
    };
    (@read optional, $map:ident, $fty:ty) => {
        $crate::known_fields::Slot::Given($map.next_value::<Option<$fty>>()?)
    };
    (@finish required, $field:ident, $key:literal, $A:ident) => {
        match $field {
            $crate::known_fields::Slot::Given(Some(v)) => v.into(),
            _ => return Err(<$A::Error as ::serde::de::Error>::missing_field($key)),
        }
    };
    (@finish default, $field:ident, $key:literal, $A:ident) => {
        match $field {
            $crate::known_fields::Slot::Given(Some(v)) => v,
            _ => Default::default(),
        }
    };
    (@finish optional, $field:ident, $key:literal, $A:ident) => {
        match $field {
            $crate::known_fields::Slot::Given(v) => v,
            $crate::known_fields::Slot::Absent => None,
        }
    };
}
pub(crate) use deserialize_known_fields;

/// One known field while its object is read: not seen yet, or seen (`None` when it was
/// `null`, which only optional fields accept).
pub(crate) enum Slot<T> {
    Absent,
    Given(Option<T>),
}
