//! PKCS#11 URIs (RFC 7512), the address of a key on a token:
//! `pkcs11:token=release;object=targets?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/sealwright/pin`.
//!
//! Guarantees:
//! - the path attributes `token`, `object`, `id`, `serial`, `slot-id` and the query
//!   attributes `module-path` and `pin-source` are read; other standard path attributes
//!   (`manufacturer`, `model`, `library-*`, `type`) are accepted and ignored, anything else
//!   is refused — a typo never widens which key is used;
//! - `pin-value` is refused: a PIN written into a URI ends up in policy files, shell
//!   histories and process listings. The PIN comes from `pin-source` (a file) or a prompt;
//! - a URI names at most one token and one key: `token`/`serial`/`slot-id` choose the token,
//!   `object`/`id` the key, and [`Pkcs11Uri::display`] writes back exactly what was read.

use std::fmt;
use std::path::PathBuf;

/// A parsed `pkcs11:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
    /// Slot id.
    pub slot_id: Option<u64>,
    /// Key label (`CKA_LABEL`).
    pub object: Option<String>,
    /// Key id (`CKA_ID`), raw bytes.
    pub id: Option<Vec<u8>>,
    /// The PKCS#11 module to load.
    pub module_path: Option<PathBuf>,
    /// A file holding the PIN.
    pub pin_source: Option<PathBuf>,
}

/// Why a URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a usable pkcs11: URI: {0}")]
pub struct UriError(pub String);

fn bad(m: impl Into<String>) -> UriError {
    UriError(m.into())
}

/// `%XX`-decodes `s` (RFC 3986); refuses a malformed escape.
fn percent_decode(s: &str) -> Result<Vec<u8>, UriError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("bad %-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn text(attr: &str, value: &str) -> Result<String, UriError> {
    String::from_utf8(percent_decode(value)?).map_err(|_| bad(format!("{attr} is not UTF-8")))
}

/// Escapes everything but RFC 7512's unreserved characters (and `/` in paths).
fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Largest URI read (a policy line, not a document).
pub const MAX_URI: usize = 4096;

impl Pkcs11Uri {
    /// Parses `pkcs11:PATH[?QUERY]`.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        if uri.len() > MAX_URI {
            return Err(bad("longer than 4096 bytes"));
        }
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it does not start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parsed = Pkcs11Uri::default();
        let mut seen = std::collections::BTreeSet::new();
        let attributes = path
            .split(';')
            .filter(|a| !a.is_empty())
            .map(|a| (a, false))
            .chain(
                query
                    .split('&')
                    .filter(|a| !a.is_empty())
                    .map(|a| (a, true)),
            );
        for (attribute, in_query) in attributes {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| bad(format!("{attribute:?} has no value")))?;
            if !seen.insert(name) {
                return Err(bad(format!("{name} is given twice")));
            }
            match (name, in_query) {
                ("token", false) => parsed.token = Some(text(name, value)?),
                ("serial", false) => parsed.serial = Some(text(name, value)?),
                ("slot-id", false) => {
                    parsed.slot_id = Some(
                        text(name, value)?
                            .parse()
                            .map_err(|_| bad("slot-id is not a number"))?,
                    )
                }
                ("object", false) => parsed.object = Some(text(name, value)?),
                ("id", false) => parsed.id = Some(percent_decode(value)?),
                ("manufacturer" | "model" | "library-manufacturer" | "library-description"
                | "library-version" | "slot-manufacturer" | "slot-description", false) => {}
                ("type", false) => {
                    let t = text(name, value)?;
                    if t != "private" {
                        return Err(bad(format!(
                            "type={t}: a signing key is addressed by its private object (type=private, or no type)"
                        )));
                    }
                }
                ("module-path", true) => parsed.module_path = Some(PathBuf::from(text(name, value)?)),
                ("pin-source", true) => {
                    let source = text(name, value)?;
                    let path = source.strip_prefix("file:").unwrap_or(&source);
                    parsed.pin_source = Some(PathBuf::from(path));
                }
                ("pin-value", _) => {
                    return Err(bad(
                        "pin-value puts the PIN in policy files and process listings; give pin-source=FILE, or let Sealwright ask for it",
                    ))
                }
                (other, _) => return Err(bad(format!("unknown attribute {other:?}"))),
            }
        }
        if parsed.object.is_none() && parsed.id.is_none() {
            return Err(bad("it names no key: give object=LABEL or id=%XX…"));
        }
        Ok(parsed)
    }

    /// The URI as text (what was parsed, in a fixed order).
    pub fn display(&self) -> String {
        let mut path = Vec::new();
        if let Some(t) = &self.token {
            path.push(format!("token={}", percent_encode(t.as_bytes(), false)));
        }
        if let Some(s) = &self.serial {
            path.push(format!("serial={}", percent_encode(s.as_bytes(), false)));
        }
        if let Some(s) = self.slot_id {
            path.push(format!("slot-id={s}"));
        }
        if let Some(o) = &self.object {
            path.push(format!("object={}", percent_encode(o.as_bytes(), false)));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path.push(format!("id={hex}"));
        }
        let mut query = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!(
                "module-path={}",
                percent_encode(m.to_string_lossy().as_bytes(), true)
            ));
        }
        if let Some(p) = &self.pin_source {
            query.push(format!(
                "pin-source={}",
                percent_encode(p.to_string_lossy().as_bytes(), true)
            ));
        }
        let mut uri = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query.join("&"));
        }
        uri
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7512_examples_and_refusals() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;object=my-key;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.object.as_deref(), Some("my-key"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(uri.pin_source, Some(PathBuf::from("/etc/pin")));
        assert_eq!(Pkcs11Uri::parse(&uri.display()).unwrap(), uri);
        for refused in [
            "pkcs11:object=k?pin-value=1234",
            "pkcs11:token=t",
            "file:object=k",
            "pkcs11:object=k;objekt=typo",
            "pkcs11:object=a;object=b",
            "pkcs11:object=%zz",
            "pkcs11:object=k;type=public",
        ] {
            assert!(Pkcs11Uri::parse(refused).is_err(), "{refused}");
        }
    }
}
