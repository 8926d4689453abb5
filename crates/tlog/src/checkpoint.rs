//! C2SP tlog-checkpoint: the note text naming a log's size and root.
//!
//! Guarantees: [`Checkpoint::parse`] accepts exactly the text [`Checkpoint::to_text`]
//! writes — origin, size in decimal without leading zeros, base64 root of 32 bytes, then
//! any non-empty extension lines — so a checkpoint has one spelling, and a signature over
//! one spelling is never taken for another.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::merkle::Hash;
use crate::note::NoteError;

/// A checkpoint's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity: its scheme-less URL.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 root of those entries.
    pub root: Hash,
    /// Extension lines (opaque; we write none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint note's text.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("a checkpoint ends in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed(
                "a checkpoint has origin, size and root lines",
            ));
        };
        if origin.is_empty() {
            return Err(NoteError::Malformed("the origin is empty"));
        }
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NoteError::Malformed(
                "the size is not a decimal without leading zeros",
            ));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::Malformed("the size does not fit 64 bits"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed("the root is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Malformed("an empty extension line"));
        }
        let cp = Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        };
        if cp.to_text() != text {
            return Err(NoteError::Malformed(
                "the checkpoint is not in its one spelling",
            ));
        }
        Ok(cp)
    }

    /// The note text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}
