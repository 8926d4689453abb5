//! What a signer is asked to sign, shown as changes against the published version of the
//! role, the risky ones flagged (the signing workflow around PRODUCT.md P3): `sign-request`
//! shows it to whoever asks, `sign` to whoever signs — who can refuse.
//!
//! Flags, each found by one function:
//! - `threshold-lowered`, `key-added`, `key-removed` — a role's (or a delegated role's)
//!   signers changed ([`review_authority`]; a first version, or a new delegated role, lists
//!   its signers without flags — the new role itself is flagged);
//! - `expiry-beyond-policy` — the version expires later than the role's policy period
//!   allows from now ([`review_expiry`]);
//! - `target-repointed` — a path already listed now names other bytes ([`review_targets`]);
//! - `delegation-widened` — a delegated role may now sign for paths it could not, or a new
//!   delegated role appears ([`review_delegations`]).
//!
//! Not guaranteed: the published version the diff is against travels in the request, from
//! the machine that asks for the signature. A signer who distrusts that machine compares
//! against their own copy (`sign --against FILE`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Why it deserves a second look, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<&'static str>,
    /// What changed, in words.
    pub what: String,
}

#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn note(&mut self, what: String) {
        self.0.push(Change { flag: None, what });
    }
    fn flag(&mut self, flag: &'static str, what: String) {
        self.0.push(Change {
            flag: Some(flag),
            what,
        });
    }
}

/// A role's signers: key ids and threshold.
fn authority(role: &Value) -> (BTreeSet<String>, u64) {
    let keyids = role
        .get("keyids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let threshold = role.get("threshold").and_then(Value::as_u64).unwrap_or(0);
    (keyids, threshold)
}

fn short(keyid: &str) -> &str {
    keyid.get(..16).unwrap_or(keyid)
}

/// Signers of `name` before and after.
fn review_authority(name: &str, old: Option<&Value>, new: &Value, out: &mut Changes) {
    let (new_keys, new_threshold) = authority(new);
    let Some(old) = old else {
        out.note(format!(
            "{name} is new: threshold {new_threshold} of {} key(s) {}",
            new_keys.len(),
            new_keys
                .iter()
                .map(|k| short(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return;
    };
    let (old_keys, old_threshold) = authority(old);
    if new_threshold < old_threshold {
        out.flag(
            "threshold-lowered",
            format!("{name}: threshold lowered from {old_threshold} to {new_threshold}"),
        );
    } else if new_threshold > old_threshold {
        out.note(format!(
            "{name}: threshold raised from {old_threshold} to {new_threshold}"
        ));
    }
    for k in new_keys.difference(&old_keys) {
        out.flag("key-added", format!("{name}: key {} added", short(k)));
    }
    for k in old_keys.difference(&new_keys) {
        out.flag("key-removed", format!("{name}: key {} removed", short(k)));
    }
}

/// Expiry against the policy's period for the role.
fn review_expiry(new: &Value, period: Option<Duration>, now: DateTime<Utc>, out: &mut Changes) {
    let Some(expires) = new
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.with_timezone(&Utc))
    else {
        out.flag("expiry-beyond-policy", "no readable expiry".into());
        return;
    };
    // A day of slack: the request may have been made yesterday. (Within the policy the
    // header already says when it expires.)
    if let Some(p) = period.filter(|p| expires > now + *p + Duration::days(1)) {
        out.flag(
            "expiry-beyond-policy",
            format!(
                "expires {expires}, beyond the policy's {} days from now",
                p.num_days()
            ),
        );
    }
}

/// Targets added, removed, and re-pointed.
fn review_targets(old: Option<&Value>, new: &Value, out: &mut Changes) {
    let empty = serde_json::Map::new();
    let targets = |v: Option<&Value>| -> serde_json::Map<String, Value> {
        v.and_then(|v| v.get("targets"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (before, after) = (targets(old), targets(Some(new)));
    let mut added = 0usize;
    for (path, entry) in &after {
        match before.get(path) {
            None => added += 1,
            Some(was)
                if was.get("hashes") != entry.get("hashes")
                    || was.get("length") != entry.get("length") =>
            {
                // Channel pointers move by design; everything else keeps its bytes.
                if sealwright_tuf::layout::is_channel_pointer(path) {
                    out.note(format!("{path}: moves to another release"));
                } else {
                    out.flag(
                        "target-repointed",
                        format!("{path}: already published, now names other bytes"),
                    );
                }
            }
            Some(_) => {}
        }
    }
    if added > 0 {
        out.note(format!("{added} target(s) added"));
    }
    let removed = before.keys().filter(|p| !after.contains_key(*p)).count();
    if removed > 0 {
        out.note(format!("{removed} target(s) removed"));
    }
}

/// A delegated role's scope: its path patterns and hash prefixes.
fn scope(role: &Value) -> BTreeSet<String> {
    ["paths", "path_hash_prefixes"]
        .iter()
        .filter_map(|k| role.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

/// Delegated roles added, widened, and their signers.
fn review_delegations(old: Option<&Value>, new: &Value, out: &mut Changes) {
    let roles = |v: Option<&Value>| -> BTreeMap<String, Value> {
        let delegations = v.and_then(|v| v.get("delegations"));
        let listed = delegations
            .and_then(|d| d.get("roles"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut map: BTreeMap<String, Value> = listed
            .into_iter()
            .filter_map(|r| Some((r.get("name")?.as_str()?.to_owned(), r)))
            .collect();
        if let Some(s) = delegations.and_then(|d| d.get("succinct_roles")) {
            map.insert("(succinct bins)".into(), s.clone());
        }
        map
    };
    let (before, after) = (roles(old), roles(Some(new)));
    for (name, role) in &after {
        match before.get(name) {
            None => {
                out.flag(
                    "delegation-widened",
                    format!(
                        "delegates {name} (new) for {}",
                        scope(role).into_iter().collect::<Vec<_>>().join(", ")
                    ),
                );
                review_authority(name, None, role, out);
            }
            Some(was) => {
                let wider: Vec<String> = scope(role).difference(&scope(was)).cloned().collect();
                if !wider.is_empty() {
                    out.flag(
                        "delegation-widened",
                        format!("{name} may now also sign for {}", wider.join(", ")),
                    );
                }
                if was.get("terminating") == Some(&Value::Bool(true))
                    && role.get("terminating") != Some(&Value::Bool(true))
                {
                    out.flag(
                        "delegation-widened",
                        format!("{name} is no longer terminating: roles after it may answer for its paths"),
                    );
                }
                review_authority(name, Some(was), role, out);
            }
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        out.note(format!("no longer delegates {name}"));
    }
}

/// The changes from `published` (the `signed` of the version devices have now, if any) to
/// `next`, for a role whose policy period is `period`.
pub fn review(
    published: Option<&Value>,
    next: &Value,
    period: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let mut out = Changes::default();
    let version = |v: Option<&Value>| v.and_then(|v| v.get("version")).and_then(Value::as_u64);
    match version(published) {
        Some(old) => out.note(format!(
            "version {old} → {}",
            version(Some(next)).unwrap_or(0)
        )),
        None => out.note("first version".into()),
    }
    review_expiry(next, period, now, &mut out);
    if next.get("_type").and_then(Value::as_str) == Some("root") {
        let roles = |v: Option<&Value>| {
            v.and_then(|v| v.get("roles"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let before = roles(published);
        for (name, role) in roles(Some(next)) {
            review_authority(&name, before.get(&name), &role, &mut out);
        }
    } else {
        review_targets(published, next, &mut out);
        review_delegations(published, next, &mut out);
    }
    out.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(changes: &[Change]) -> Vec<&'static str> {
        changes.iter().filter_map(|c| c.flag).collect()
    }

    #[test]
    fn each_risky_change_is_flagged_and_a_routine_one_is_not() {
        let now = Utc::now();
        let expires = |days: i64| (now + Duration::days(days)).to_rfc3339();
        let root = |threshold: u64, keys: &[&str], days: i64| {
            json!({"_type": "root", "version": 1, "expires": expires(days),
                   "roles": {"root": {"keyids": keys, "threshold": threshold}}})
        };
        let year = Some(Duration::days(365));
        // Routine: a re-signed root, nothing else.
        let old = root(2, &["a", "b"], 300);
        assert!(flags(&review(Some(&old), &root(2, &["a", "b"], 365), year, now)).is_empty());
        assert_eq!(
            flags(&review(Some(&old), &root(1, &["a", "c"], 365), year, now)),
            ["threshold-lowered", "key-added", "key-removed"]
        );
        assert_eq!(
            flags(&review(Some(&old), &root(2, &["a", "b"], 3650), year, now)),
            ["expiry-beyond-policy"]
        );

        let targets = |entries: Value, delegations: Value| {
            json!({"_type": "targets", "version": 2, "expires": expires(30),
                   "targets": entries, "delegations": delegations})
        };
        let file = |sha: &str| json!({"length": 1, "hashes": {"sha256": sha}});
        let delegation = |paths: &[&str], terminating: bool| {
            json!({"keys": {}, "roles": [{"name": "app", "keyids": ["k"], "threshold": 1,
                   "terminating": terminating, "paths": paths}]})
        };
        let old = targets(
            json!({"app/1.0.0/app": file("aa"), "app/channels/stable.json": file("p1")}),
            delegation(&["app/*"], true),
        );
        let month = Some(Duration::days(90));
        // A new release and a moved channel pointer: routine.
        let routine = targets(
            json!({"app/1.0.0/app": file("aa"), "app/1.1.0/app": file("bb"), "app/channels/stable.json": file("p2")}),
            delegation(&["app/*"], true),
        );
        assert!(flags(&review(Some(&old), &routine, month, now)).is_empty());
        let risky = targets(
            json!({"app/1.0.0/app": file("cc"), "app/channels/stable.json": file("p1")}),
            delegation(&["app/*", "*"], false),
        );
        assert_eq!(
            flags(&review(Some(&old), &risky, month, now)),
            [
                "target-repointed",
                "delegation-widened",
                "delegation-widened"
            ]
        );
        // A first version is all new, and flags nothing.
        assert!(flags(&review(None, &root(1, &["a"], 365), year, now)).is_empty());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A signing request comes from the online machine: any JSON for the published and
        /// the next version gives a review, never a panic.
        #[test]
        fn any_documents_give_a_review(old in "\\PC{0,300}", new in "\\PC{0,300}", days in proptest::option::of(0i64..10_000)) {
            let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.to_owned()));
            let (old, new) = (parse(&old), parse(&new));
            let _ = review(Some(&old), &new, days.map(Duration::days), Utc::now());
            let _ = review(None, &new, None, Utc::now());
        }

        /// Structured documents with targets and delegations of any shape, too.
        #[test]
        fn any_shaped_targets_give_a_review(paths in proptest::collection::vec("[a-z/*]{0,8}", 0..5), threshold in any::<i64>()) {
            let doc = serde_json::json!({"_type": "targets", "expires": "2030-01-01T00:00:00Z",
                "targets": {"a": {"hashes": paths.clone()}},
                "delegations": {"roles": [{"name": "d", "paths": paths, "threshold": threshold, "keyids": [threshold]}]}});
            let _ = review(Some(&serde_json::json!({"targets": [], "delegations": {"roles": 3}})), &doc, None, Utc::now());
            let _ = review(Some(&doc), &doc, Some(Duration::days(1)), Utc::now());
        }
    }
}
