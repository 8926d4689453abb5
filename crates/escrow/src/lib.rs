//! Key escrow (PRODUCT.md P5): an offline key — root, typically — split into k-of-n Shamir
//! shares, each encrypted to one custodian's age recipient, so a lost key does not end the
//! repository and no single custodian can sign.
//!
//! Guarantees:
//! - the secret shared is the key's PKCS#8 DER; its bytes and the shares live in zeroizing
//!   buffers; fewer than k shares reveal nothing about it (Shamir over GF(256), `blahaj`);
//! - each share file is an age message (X25519, armored) to exactly one custodian, readable
//!   with the `age` command-line tool: a custodian can check their share without Sealwright;
//! - [`join`] accepts shares of one escrow only (same key id, threshold, count), each index
//!   once, at least k of them, and returns the key only when it is the escrowed key (its key
//!   id is the one the shares name) — a wrong or tampered share fails, it never yields
//!   another key.
//!
//! Not guaranteed: that custodians keep their age identities apart; shares are not signed,
//! so a custodian could hand in garbage — which [`join`] detects, but cannot attribute.

use std::io::{Read, Write};
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sealwright_crypto::{PrivateKey, Signer};

/// The format tag of a share.
pub const SHARE_FORMAT: &str = "sealwright-escrow-share/v1";
/// Largest share file read.
pub const MAX_SHARE_FILE: usize = 64 * 1024;

/// Why escrow or recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    /// Bad threshold, count or recipient.
    #[error("{0}")]
    Setup(String),
    /// A share file is unreadable, for no identity given, or malformed.
    #[error("{0}")]
    Share(String),
    /// The shares given do not make the key.
    #[error("{0}")]
    Join(String),
}

/// One custodian's share (what the age message carries).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// [`SHARE_FORMAT`].
    pub format: String,
    /// The key's name in the policy.
    pub key: String,
    /// Its TUF key id.
    pub keyid: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub shares: u8,
    /// This share's number, 1-based.
    pub index: u8,
    /// Which custodian (their age recipient).
    pub custodian: String,
    /// The share, base64.
    pub share: String,
}

/// Splits `key` (policy name `name`) into one share per recipient, `threshold` needed;
/// returns each custodian's armored age message, in the order of `recipients`.
pub fn split(
    key: &PrivateKey,
    name: &str,
    threshold: u8,
    recipients: &[String],
) -> Result<Vec<String>, EscrowError> {
    let n = recipients.len();
    if threshold < 2 || usize::from(threshold) > n || n > 255 {
        return Err(EscrowError::Setup(format!(
            "--threshold {threshold} with {n} custodians: the threshold must be at least 2 (one custodian alone must not hold the key) and at most the number of custodians (255 at most)"
        )));
    }
    let parsed: Vec<age::x25519::Recipient> = recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r.trim()).map_err(|e| {
                EscrowError::Setup(format!("{r:?} is not an age recipient (age1…): {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    let secret = key
        .to_pkcs8_v1_der()
        .map_err(|e| EscrowError::Setup(e.to_string()))?;
    let dealt: Vec<blahaj::Share> = blahaj::Sharks(threshold).dealer(&secret).take(n).collect();
    let mut out = Vec::with_capacity(n);
    for ((index, share), (recipient, custodian)) in
        (1u8..).zip(&dealt).zip(parsed.iter().zip(recipients))
    {
        let bytes = Zeroizing::new(Vec::<u8>::from(share));
        let record = Zeroizing::new(
            serde_json::to_vec(&Share {
                format: SHARE_FORMAT.to_owned(),
                key: name.to_owned(),
                keyid: key.keyid().to_owned(),
                threshold,
                shares: n as u8,
                index,
                custodian: custodian.trim().to_owned(),
                share: base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
            })
            .map_err(|e| EscrowError::Setup(e.to_string()))?,
        );
        out.push(encrypt_armored(recipient, &record)?);
    }
    Ok(out)
}

fn encrypt_armored(
    recipient: &age::x25519::Recipient,
    plaintext: &[u8],
) -> Result<String, EscrowError> {
    let fail = |e: &dyn std::fmt::Display| EscrowError::Setup(format!("age encryption: {e}"));
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| fail(&e))?;
    let mut armored = Vec::new();
    let mut writer = encryptor
        .wrap_output(
            age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
                .map_err(|e| fail(&e))?,
        )
        .map_err(|e| fail(&e))?;
    writer.write_all(plaintext).map_err(|e| fail(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| fail(&e))?;
    String::from_utf8(armored).map_err(|e| fail(&e))
}

/// Reads one share: an age message (armored or binary) that one of `identities` opens, or
/// the plaintext a custodian got with `age -d`.
pub fn open_share(bytes: &[u8], identities: &[String]) -> Result<Share, EscrowError> {
    if bytes.len() > MAX_SHARE_FILE {
        return Err(EscrowError::Share("larger than a share can be".into()));
    }
    let plaintext = if bytes.first() == Some(&b'{') {
        Zeroizing::new(bytes.to_vec())
    } else {
        let keys: Vec<age::x25519::Identity> = identities
            .iter()
            .flat_map(|text| text.lines())
            .map(str::trim)
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
            .filter_map(|l| age::x25519::Identity::from_str(l).ok())
            .collect();
        if keys.is_empty() {
            return Err(EscrowError::Share(
                "an encrypted share needs its custodian's age identity (--identity FILE)".into(),
            ));
        }
        let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(bytes))
            .map_err(|e| EscrowError::Share(format!("not an age message: {e}")))?;
        let reader = decryptor
            .decrypt(keys.iter().map(|k| k as &dyn age::Identity))
            .map_err(|e| EscrowError::Share(format!("no identity given opens it: {e}")))?;
        let mut out = Zeroizing::new(Vec::new());
        reader
            .take(MAX_SHARE_FILE as u64)
            .read_to_end(&mut out)
            .map_err(|e| EscrowError::Share(format!("decrypting: {e}")))?;
        out
    };
    let share: Share = serde_json::from_slice(&plaintext)
        .map_err(|e| EscrowError::Share(format!("not a Sealwright share: {e}")))?;
    if share.format != SHARE_FORMAT {
        return Err(EscrowError::Share(format!(
            "format {:?}, not {SHARE_FORMAT}",
            share.format
        )));
    }
    Ok(share)
}

/// Rebuilds the escrowed key from `shares` (see the module guarantees).
pub fn join(shares: &[Share]) -> Result<PrivateKey, EscrowError> {
    let first = shares
        .first()
        .ok_or_else(|| EscrowError::Join("no shares given".into()))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut parsed = Vec::with_capacity(shares.len());
    for s in shares {
        if (s.keyid.as_str(), s.threshold, s.shares)
            != (first.keyid.as_str(), first.threshold, first.shares)
        {
            return Err(EscrowError::Join(format!(
                "share {} is from another escrow (key {}, {} of {}), not key {}'s",
                s.index, s.key, s.threshold, s.shares, first.key
            )));
        }
        if !seen.insert(s.index) {
            return Err(EscrowError::Join(format!(
                "share {} is given twice",
                s.index
            )));
        }
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&s.share)
                .map_err(|e| EscrowError::Join(format!("share {}: {e}", s.index)))?,
        );
        parsed.push(
            blahaj::Share::try_from(bytes.as_slice())
                .map_err(|e| EscrowError::Join(format!("share {}: {e}", s.index)))?,
        );
    }
    if parsed.len() < usize::from(first.threshold) {
        return Err(EscrowError::Join(format!(
            "{} share(s) of the {} needed to rebuild {}: ask more custodians",
            parsed.len(),
            first.threshold,
            first.key
        )));
    }
    let secret = Zeroizing::new(
        blahaj::Sharks(first.threshold)
            .recover(parsed.iter())
            .map_err(|e| EscrowError::Join(e.to_owned()))?,
    );
    let wrong = || {
        EscrowError::Join(format!(
            "the shares do not make key {} ({}): one of them is wrong or altered",
            first.key, first.keyid
        ))
    };
    let key = PrivateKey::from_pkcs8_der(&secret).map_err(|_| wrong())?;
    if key.keyid() != first.keyid {
        return Err(wrong());
    }
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sealwright_crypto::Algorithm;

    #[test]
    fn k_shares_rebuild_the_key_and_fewer_or_altered_ones_do_not() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let identities: Vec<age::x25519::Identity> =
            (0..3).map(|_| age::x25519::Identity::generate()).collect();
        let recipients: Vec<String> = identities
            .iter()
            .map(|i| i.to_public().to_string())
            .collect();
        let secrets: Vec<String> = identities
            .iter()
            .map(|i| {
                use age::secrecy::ExposeSecret as _;
                i.to_string().expose_secret().to_owned()
            })
            .collect();
        let files = split(&key, "root-key", 2, &recipients).unwrap();
        let shares: Vec<Share> = files
            .iter()
            .map(|f| open_share(f.as_bytes(), &secrets).unwrap())
            .collect();
        assert_eq!(join(&shares[..2]).unwrap().keyid(), key.keyid());
        assert_eq!(join(&shares[1..]).unwrap().keyid(), key.keyid());
        assert!(join(&shares[..1])
            .unwrap_err()
            .to_string()
            .contains("1 share(s) of the 2"));
        assert!(join(&[shares[0].clone(), shares[0].clone()]).is_err());
        let mut altered = shares[1].clone();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&altered.share)
            .unwrap();
        bytes[5] ^= 1;
        altered.share = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(join(&[shares[0].clone(), altered])
            .unwrap_err()
            .to_string()
            .contains("wrong or altered"));
        // A share opens only with its custodian's identity.
        assert!(open_share(files[0].as_bytes(), &secrets[1..]).is_err());
        assert!(split(&key, "root-key", 1, &recipients).is_err());
        assert!(split(&key, "root-key", 4, &recipients).is_err());
    }
}

#[cfg(test)]
mod props {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A share file comes from a custodian: any bytes give a share or a typed refusal,
        /// never a panic.
        #[test]
        fn any_share_bytes_give_a_share_or_a_refusal(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = open_share(&bytes, &[]);
            let mut json = b"{".to_vec();
            json.extend_from_slice(&bytes);
            let _ = open_share(&json, &[]);
        }

        /// Shares of any content join to the escrowed key or a refusal, never a panic.
        #[test]
        fn any_shares_join_or_are_refused(
            raw in proptest::collection::vec((1u8..=8, proptest::collection::vec(any::<u8>(), 0..64)), 0..6),
            threshold in 0u8..6,
        ) {
            let shares: Vec<Share> = raw
                .into_iter()
                .map(|(index, bytes)| Share {
                    format: SHARE_FORMAT.into(),
                    key: "root-key".into(),
                    keyid: "00".repeat(32),
                    threshold,
                    shares: 8,
                    index,
                    custodian: "age1x".into(),
                    share: base64::engine::general_purpose::STANDARD.encode(bytes),
                })
                .collect();
            prop_assert!(join(&shares).is_err());
        }
    }
}
