//! The text layout tlog-witness requests and tlog-proof files share: header lines, then
//! base64 hash lines, a blank line, then a checkpoint note verbatim.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::merkle::Hash;

/// Splits `bytes` (at most `max`) into its header lines and the note after the first blank
/// line.
pub(crate) fn header_and_note(bytes: &[u8], max: usize) -> Result<(&str, &str), &'static str> {
    if bytes.len() > max {
        return Err("too large");
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?;
    text.split_once("\n\n")
        .ok_or("no blank line before the checkpoint")
}

/// Hash lines: each base64 of exactly 32 bytes.
pub(crate) fn hashes<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Hash>, &'static str> {
    lines
        .map(|l| {
            B64.decode(l)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or("a hash line is not base64 of 32 bytes")
        })
        .collect()
}

/// Appends hash lines to `out`.
pub(crate) fn write_hashes(out: &mut String, hashes: &[Hash]) {
    for h in hashes {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
}
