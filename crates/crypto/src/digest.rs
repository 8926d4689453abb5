//! SHA-256 and SHA-512 through aws-lc-rs, one-shot and streaming.
//!
//! TUF lists several hashes per file; [`Hasher`] computes both in one pass so a download or
//! an artifact is read exactly once.

use aws_lc_rs::digest::{self, Context, SHA256, SHA512};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-512 of `data`.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let d = digest::digest(&SHA512, data);
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Whether `s` has the form [`sha256_hex`] gives: 64 lowercase hex digits (content-addressed
/// names are exactly this, so anything else is not one).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The digests and length of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// SHA-512, when it was computed (see [`Hasher::sha256_only`]).
    pub sha512: Option<[u8; 64]>,
    /// Number of bytes hashed.
    pub length: u64,
}

/// Streaming SHA-256 (+ SHA-512 unless asked not to) with a byte count.
pub struct Hasher {
    sha256: Context,
    sha512: Option<Context>,
    length: u64,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("length", &self.length)
            .finish()
    }
}

/// Buffer of [`Hasher::consume`]: large enough for few system calls, small enough to stay
/// in cache.
const STREAM_BUFFER: usize = 256 * 1024;

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// A hasher of SHA-256 and SHA-512 that has seen no bytes.
    pub fn new() -> Self {
        Self {
            sha256: Context::new(&SHA256),
            sha512: Some(Context::new(&SHA512)),
            length: 0,
        }
    }

    /// SHA-256 alone: for verifying a file whose metadata lists no SHA-512, where computing
    /// it would more than halve the throughput (SHA-512 has no CPU instructions of its own).
    pub fn sha256_only() -> Self {
        Self {
            sha256: Context::new(&SHA256),
            sha512: None,
            length: 0,
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        if let Some(sha512) = &mut self.sha512 {
            sha512.update(data);
        }
        self.length = self.length.saturating_add(data.len() as u64);
    }

    /// Feeds everything `reader` yields, a buffer at a time (never the whole input in
    /// memory), and returns the digests.
    pub fn consume(mut self, mut reader: impl std::io::Read) -> std::io::Result<Digests> {
        let mut buf = vec![0u8; STREAM_BUFFER];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(self.finish()),
                Ok(n) => self.update(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the hashing to a thread of its own, fed through a few 1 MiB buffers, so that
    /// reading and writing (a download to disk, a copy out of a bundle) go on while it
    /// hashes: the cost of verifying becomes that of hashing alone on a free core.
    pub fn in_background(self) -> BackgroundHasher {
        BackgroundHasher::start(self)
    }

    /// Number of bytes fed so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The final digests.
    pub fn finish(self) -> Digests {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(self.sha256.finish().as_ref());
        let sha512 = self.sha512.map(|c| {
            let mut out = [0u8; 64];
            out.copy_from_slice(c.finish().as_ref());
            out
        });
        Digests {
            sha256,
            sha512,
            length: self.length,
        }
    }
}

impl Digests {
    /// Digests of an in-memory buffer.
    pub fn of(data: &[u8]) -> Self {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_sha256_hex_accepts_exactly_what_sha256_hex_gives() {
        assert!(is_sha256_hex(&sha256_hex(b"abc")));
        let upper = sha256_hex(b"abc").to_ascii_uppercase();
        assert!(!is_sha256_hex(&upper));
        assert!(!is_sha256_hex(&sha256_hex(b"abc")[..63]));
        assert!(!is_sha256_hex(&format!("{}0", sha256_hex(b"abc"))));
        assert!(!is_sha256_hex(&"g".repeat(64)));
        assert!(!is_sha256_hex(""));
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = Digests::of(b"abc");
        assert_eq!(d.length, 3);
        assert!(hex::encode(d.sha512.unwrap_or([0; 64])).starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn sha256_only_skips_sha512_and_agrees_on_sha256() {
        let mut h = Hasher::sha256_only();
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(d.sha512, None);
        assert_eq!(d.sha256, Digests::of(b"abc").sha256);
        assert_eq!(d.length, 3);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut h = Hasher::new();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finish(), Digests::of(b"abc"));
    }
}

/// Bytes handed to the hashing thread at a time.
const BACKGROUND_CHUNK: usize = 1024 * 1024;
/// Buffers in flight between the caller and the hashing thread (bounds memory at
/// `BACKGROUND_BUFFERS` × [`BACKGROUND_CHUNK`]).
const BACKGROUND_BUFFERS: usize = 4;

/// A [`Hasher`] running on its own thread ([`Hasher::in_background`]). `update` copies into
/// a buffer and returns; [`BackgroundHasher::finish`] waits for the thread and returns the
/// digests of exactly the bytes fed, in order.
pub struct BackgroundHasher {
    filling: Vec<u8>,
    to_worker: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<Hasher>>,
    allocated: usize,
}

impl std::fmt::Debug for BackgroundHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundHasher").finish_non_exhaustive()
    }
}

impl BackgroundHasher {
    fn start(mut hasher: Hasher) -> Self {
        let (to_worker, from_caller) = std::sync::mpsc::sync_channel::<Vec<u8>>(BACKGROUND_BUFFERS);
        let (give_back, free) = std::sync::mpsc::channel::<Vec<u8>>();
        let worker = std::thread::spawn(move || {
            for mut buf in from_caller {
                hasher.update(&buf);
                buf.clear();
                // The caller may be gone (finished early): the buffer is then dropped.
                let _ = give_back.send(buf);
            }
            hasher
        });
        BackgroundHasher {
            filling: Vec::with_capacity(BACKGROUND_CHUNK),
            to_worker: Some(to_worker),
            free,
            worker: Some(worker),
            allocated: 1,
        }
    }

    /// Feeds `data` (copied; the hashing happens on the other thread).
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = BACKGROUND_CHUNK.saturating_sub(self.filling.len());
            let (now, rest) = data.split_at(room.min(data.len()));
            self.filling.extend_from_slice(now);
            data = rest;
            if self.filling.len() >= BACKGROUND_CHUNK {
                self.hand_over();
            }
        }
    }

    /// Sends the filled buffer and takes an empty one: a returned one, a new one while
    /// fewer than [`BACKGROUND_BUFFERS`] exist, else the next one the thread frees.
    fn hand_over(&mut self) {
        let next = match self.free.try_recv() {
            Ok(buf) => buf,
            Err(_) if self.allocated < BACKGROUND_BUFFERS + 1 => {
                self.allocated += 1;
                Vec::with_capacity(BACKGROUND_CHUNK)
            }
            Err(_) => self
                .free
                .recv()
                .unwrap_or_else(|_| Vec::with_capacity(BACKGROUND_CHUNK)),
        };
        let full = std::mem::replace(&mut self.filling, next);
        if let Some(tx) = &self.to_worker {
            // A send fails only if the thread is gone; `finish` then reports it.
            let _ = tx.send(full);
        }
    }

    /// The digests of everything fed. Fails only if the hashing thread died.
    pub fn finish(mut self) -> std::io::Result<Digests> {
        if !self.filling.is_empty() {
            let last = std::mem::take(&mut self.filling);
            if let Some(tx) = &self.to_worker {
                let _ = tx.send(last);
            }
        }
        drop(self.to_worker.take());
        let worker = self
            .worker
            .take()
            .ok_or_else(|| std::io::Error::other("the hashing thread was already joined"))?;
        worker
            .join()
            .map(Hasher::finish)
            .map_err(|_| std::io::Error::other("the hashing thread failed"))
    }
}

#[cfg(test)]
mod background_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Whatever the sizes of the pieces it is fed in, the background hasher gives the
    /// digests (both algorithms, and the length) of the whole input.
    #[test]
    fn background_digests_equal_foreground_ones() {
        let data: Vec<u8> = (0..5 * BACKGROUND_CHUNK + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for total in [
            0,
            1,
            BACKGROUND_CHUNK - 1,
            BACKGROUND_CHUNK,
            BACKGROUND_CHUNK + 1,
            data.len(),
        ] {
            for piece in [1usize, 8192, BACKGROUND_CHUNK, 3 * BACKGROUND_CHUNK + 5] {
                if total > 100_000 && piece == 1 {
                    continue;
                }
                let input = &data[..total];
                let mut background = Hasher::new().in_background();
                for chunk in input.chunks(piece) {
                    background.update(chunk);
                }
                assert_eq!(
                    background.finish().unwrap(),
                    Digests::of(input),
                    "total {total}, pieces of {piece}"
                );
            }
        }
    }
}
