//! Threshold signature verification — the one function every role passes through.
//!
//! Rules (TUF §5 and python-tuf's behaviour on real repositories):
//! - only signatures whose keyid is authorised for the role count;
//! - each *public key* counts at most once: one key listed under two key ids (ids are taken
//!   as given and other implementations compute them differently) is still one signer, so
//!   a threshold of two can never be met by one key holder;
//! - a `signatures` list naming one keyid twice never reaches this function: the envelope
//!   parser refuses it ([`crate::metadata::parse_envelope`]);
//! - an invalid, empty or unknown extra signature is ignored, never fatal, as long as the
//!   threshold is still met (otherwise one junk signature would let anyone deny service);
//! - key ids are taken from metadata as given, never recomputed.

use std::collections::{BTreeMap, BTreeSet};

use sealwright_crypto::PublicKey;

use crate::metadata::Signature;

/// Fewer valid signatures than the threshold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("role {role}: {valid} valid signature(s) of the {threshold} required")]
pub struct ThresholdError {
    /// Which role.
    pub role: String,
    /// Valid signatures by distinct authorised keys.
    pub valid: u32,
    /// Required.
    pub threshold: u32,
}

/// Checks that at least `threshold` distinct keys among `keyids` signed `canonical`.
pub fn verify_role(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<(), ThresholdError> {
    let authorised: BTreeSet<&str> = keyids.iter().map(String::as_str).collect();
    let mut counted_ids: BTreeSet<&str> = BTreeSet::new();
    let mut counted_keys = BTreeSet::new();
    for sig in signatures {
        let id = sig.keyid.as_str();
        if !authorised.contains(id) || counted_ids.contains(id) {
            continue;
        }
        let Some(key) = keys.get(id) else { continue };
        let Some(material) = key.material() else {
            continue;
        };
        if counted_keys.contains(&material) {
            continue; // the same key under another id: one signer, counted once
        }
        let Ok(raw) = hex::decode(&sig.sig) else {
            continue;
        };
        if key.verify(canonical, &raw).is_ok() {
            counted_ids.insert(id);
            counted_keys.insert(material);
        }
    }
    let counted = counted_keys;
    let valid = u32::try_from(counted.len()).unwrap_or(u32::MAX);
    if threshold >= 1 && valid >= threshold {
        Ok(())
    } else {
        Err(ThresholdError {
            role: role.to_owned(),
            valid,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealwright_crypto::{Algorithm, PrivateKey, Signer};

    fn sig(k: &PrivateKey, msg: &[u8]) -> Signature {
        Signature {
            keyid: k.keyid().into(),
            sig: hex::encode(k.sign(msg).unwrap()),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn threshold_rules() {
        let a = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let b = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let outsider = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let keys: BTreeMap<String, PublicKey> = [&a, &b, &outsider]
            .iter()
            .map(|k| (k.keyid().to_owned(), k.public_key().clone()))
            .collect();
        let ids = vec![a.keyid().to_owned(), b.keyid().to_owned()];
        let msg = b"canonical";
        // Same key twice does not make two.
        assert!(verify_role("r", msg, &[sig(&a, msg), sig(&a, msg)], &keys, &ids, 2).is_err());
        // Outsider does not count.
        assert!(verify_role(
            "r",
            msg,
            &[sig(&a, msg), sig(&outsider, msg)],
            &keys,
            &ids,
            2
        )
        .is_err());
        // Junk extra signatures do not hurt.
        let junk = Signature {
            keyid: b.keyid().into(),
            sig: "zz".into(),
            extra: BTreeMap::new(),
        };
        let empty = Signature {
            keyid: "nope".into(),
            sig: String::new(),
            extra: BTreeMap::new(),
        };
        verify_role(
            "r",
            msg,
            &[junk.clone(), empty, sig(&a, msg)],
            &keys,
            &ids,
            1,
        )
        .unwrap();
        // A bad signature first, then a good one by the same key: still counts once.
        verify_role(
            "r",
            msg,
            &[junk, sig(&b, msg), sig(&a, msg)],
            &keys,
            &ids,
            2,
        )
        .unwrap();
        let e = verify_role("r", b"other", &[sig(&a, msg)], &keys, &ids, 1).unwrap_err();
        assert_eq!(e.valid, 0);
    }

    #[test]
    fn one_key_under_two_keyids_counts_once() {
        let a = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let b = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut upper = a.public_key().clone();
        // The same key, written with upper-case hex: another keyid, the same signer.
        upper.keyval.public = upper.keyval.public.to_ascii_uppercase();
        let keys: BTreeMap<String, PublicKey> = [
            ("id-a".to_owned(), a.public_key().clone()),
            ("id-a-again".to_owned(), upper),
            ("id-b".to_owned(), b.public_key().clone()),
        ]
        .into();
        let ids: Vec<String> = keys.keys().cloned().collect();
        let msg = b"canonical";
        let as_id = |k: &PrivateKey, id: &str| Signature {
            keyid: id.into(),
            sig: hex::encode(k.sign(msg).unwrap()),
            extra: BTreeMap::new(),
        };
        let e = verify_role(
            "r",
            msg,
            &[as_id(&a, "id-a"), as_id(&a, "id-a-again")],
            &keys,
            &ids,
            2,
        )
        .unwrap_err();
        assert_eq!(e.valid, 1);
        verify_role(
            "r",
            msg,
            &[as_id(&a, "id-a-again"), as_id(&b, "id-b")],
            &keys,
            &ids,
            2,
        )
        .unwrap();
    }
}
