//! Which delegated role may sign for which target path.
//!
//! Guarantees:
//! - `paths` patterns follow python-tuf: pattern and path are split on `/` and must have the
//!   same number of components; each component is matched like `fnmatch` (`*`, `?`,
//!   `[set]`, `[!set]`, an unterminated `[` is literal), case-sensitively. Because
//!   matching is per component, `*` and `?` can never match `/` — a role delegated `app/*`
//!   cannot sign `app/x/evil`.
//! - `path_hash_prefixes`: the lowercase hex sha256 of the target path starts with a prefix.
//! - TAP 15 succinct roles: the bin of a path is the top `bit_length` bits of sha256(path),
//!   named `{name_prefix}-{bin:0w$x}` with `w = len(hex(2^bit_length - 1))`.
//! - Every function here is total: no input (pattern, path, bit length) panics, and the
//!   glob matcher runs in O(len(pattern) × len(path)) without recursion.

use sealwright_crypto::digest;

use crate::metadata::{DelegatedRole, Delegations};

/// Largest `bit_length` TAP 15 allows (the bin comes from the first 4 bytes of the hash).
pub const MAX_BIT_LENGTH: u32 = 32;

/// Whether `path` matches the delegation `pattern`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut parts = path.split('/');
    loop {
        match (pat.next(), parts.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) => {
                if !component_match(p.as_bytes(), s.as_bytes()) {
                    return false;
                }
            }
            // Different number of components.
            _ => return false,
        }
    }
}

/// Whether hex sha256(`path`) starts with one of `prefixes`.
pub fn hash_prefix_match(prefixes: &[String], path: &str) -> bool {
    let h = hex::encode(digest::sha256(path.as_bytes()));
    prefixes.iter().any(|p| h.starts_with(p.as_str()))
}

/// Whether `role` (a named delegation) covers `target_path`, by `paths` or by
/// `path_hash_prefixes`. A role with neither covers nothing.
pub fn is_delegated_path(role: &DelegatedRole, target_path: &str) -> bool {
    if let Some(patterns) = &role.paths {
        return patterns.iter().any(|p| glob_match(p, target_path));
    }
    if let Some(prefixes) = &role.path_hash_prefixes {
        return hash_prefix_match(prefixes, target_path);
    }
    false
}

/// The roles of `delegations` responsible for `target_path`, in order of appearance, each
/// with whether it is terminating (python-tuf's `get_roles_for_target`). Succinct bins
/// yield exactly one role, and it is terminating (TAP 15).
pub fn roles_for_target(delegations: &Delegations, target_path: &str) -> Vec<(String, bool)> {
    if let Some(roles) = &delegations.roles {
        return roles
            .iter()
            .filter(|r| is_delegated_path(r, target_path))
            .map(|r| (r.name.clone(), r.terminating))
            .collect();
    }
    if let Some(succinct) = &delegations.succinct_roles {
        return vec![(succinct.role_for_target(target_path), true)];
    }
    Vec::new()
}

/// `bit_length` forced into 0..=32 so the bin arithmetic below is total; metadata
/// validation separately refuses anything outside 1..=32.
fn clamp_bits(bit_length: u32) -> u32 {
    bit_length.min(MAX_BIT_LENGTH)
}

/// Number of bins for `bit_length` bits: 2^bit_length.
pub fn succinct_bin_count(bit_length: u32) -> u64 {
    1u64 << clamp_bits(bit_length)
}

/// Width of a bin's hex suffix: `len(format!("{:x}", 2^bit_length - 1))`.
pub fn succinct_suffix_len(bit_length: u32) -> usize {
    // ceil(bits / 4), but at least one digit (bin "0" for bit_length 0).
    let bits = clamp_bits(bit_length) as usize;
    bits.div_ceil(4).max(1)
}

/// The bin of `target_path`: the top `bit_length` bits of sha256(path), big-endian.
pub fn succinct_bin(bit_length: u32, target_path: &str) -> u64 {
    let h = digest::sha256(target_path.as_bytes());
    let top = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    // bits in 0..=32; a shift by 32 (bits == 0) is "no bits", i.e. bin 0.
    top.checked_shr(MAX_BIT_LENGTH - clamp_bits(bit_length))
        .map_or(0, u64::from)
}

/// Name of bin number `bin`: `{name_prefix}-{bin as zero-padded lowercase hex}`.
pub fn succinct_bin_name(name_prefix: &str, bit_length: u32, bin: u64) -> String {
    format!(
        "{name_prefix}-{bin:0width$x}",
        width = succinct_suffix_len(bit_length)
    )
}

/// Whether `name` is one of the bins: the prefix, a dash, then exactly the suffix width of
/// lowercase hex digits naming a bin below the bin count.
pub fn is_succinct_bin_name(name_prefix: &str, bit_length: u32, name: &str) -> bool {
    let Some(suffix) = name
        .strip_prefix(name_prefix)
        .and_then(|s| s.strip_prefix('-'))
    else {
        return false;
    };
    suffix.len() == succinct_suffix_len(bit_length)
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && u64::from_str_radix(suffix, 16).is_ok_and(|n| n < succinct_bin_count(bit_length))
}

/// fnmatch on one path component, iterative with single-star backtracking (linear-ish,
/// no recursion, so a hostile pattern cannot blow the stack or take exponential time).
fn component_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => {
                if let Some(len) = utf8_len(s, i) {
                    p += 1;
                    i += len;
                    continue;
                }
            }
            Some(b'[') => {
                if let Some((matched, next_p, len)) = class_match(pat, p, s, i) {
                    if matched {
                        p = next_p;
                        i += len;
                        continue;
                    }
                } else if s.get(i) == Some(&b'[') {
                    // Unterminated class: '[' is literal (as in fnmatch).
                    p += 1;
                    i += 1;
                    continue;
                }
            }
            Some(&c) if s.get(i) == Some(&c) => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, si)) => {
                let next = si + utf8_len(s, si).unwrap_or(1);
                star = Some((sp, next));
                p = sp + 1;
                i = next;
            }
            None => return false,
        }
    }
    pat.get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

fn utf8_len(s: &[u8], i: usize) -> Option<usize> {
    let b = *s.get(i)?;
    let len = match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    Some(len.min(s.len() - i))
}

/// Matches `[...]` at `pat[p]` against the character at `s[i]`. Returns
/// (matched, index after the class, length of the character), or None if unterminated.
fn class_match(pat: &[u8], p: usize, s: &[u8], i: usize) -> Option<(bool, usize, usize)> {
    let len = utf8_len(s, i)?;
    let ch = std::str::from_utf8(s.get(i..i + len)?)
        .ok()?
        .chars()
        .next()?;
    let mut j = p + 1;
    let negate = matches!(pat.get(j), Some(b'!'));
    if negate {
        j += 1;
    }
    let body_start = j;
    // A ']' right after '[' or '[!' is a literal member.
    if pat.get(j) == Some(&b']') {
        j += 1;
    }
    while pat.get(j)? != &b']' {
        j += 1;
    }
    let body = std::str::from_utf8(pat.get(body_start..j)?).ok()?;
    let chars: Vec<char> = body.chars().collect();
    let mut found = false;
    let mut k = 0;
    while k < chars.len() {
        let c = *chars.get(k)?;
        if chars.get(k + 1) == Some(&'-') && k + 2 < chars.len() {
            let hi = *chars.get(k + 2)?;
            if c <= ch && ch <= hi {
                found = true;
            }
            k += 3;
        } else {
            if c == ch {
                found = true;
            }
            k += 1;
        }
    }
    Some((found != negate, j + 1, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tuf_semantics() {
        assert!(glob_match("app/*", "app/x"));
        assert!(!glob_match("app/*", "app/x/y"), "* must not cross /");
        assert!(glob_match("app/*/*", "app/1.0.0/bin"));
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "dir/a.txt"));
        assert!(glob_match("file?.bin", "file1.bin"));
        assert!(!glob_match("file?.bin", "file/.bin"));
        assert!(glob_match("f[0-9].txt", "f7.txt"));
        assert!(!glob_match("f[!0-9].txt", "f7.txt"));
        assert!(glob_match("f[!0-9].txt", "fx.txt"));
        assert!(!glob_match("App/*", "app/x"), "case-sensitive");
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("é/?", "é/ü"));
        assert!(glob_match("[", "["));
        assert!(glob_match("", ""));
    }

    #[test]
    fn hash_prefixes() {
        let h = hex::encode(digest::sha256(b"x/y"));
        assert!(hash_prefix_match(&[h[..2].to_string()], "x/y"));
        assert!(!hash_prefix_match(&["zz".into()], "x/y"));
    }

    #[test]
    fn fnmatch_class_edge_cases_match_python() {
        // Expected values from Python's fnmatch.fnmatch on POSIX.
        for (pat, s, want) in [
            ("[]]", "]", true),
            ("[!]]", "]", false),
            ("[!]]", "a", true),
            ("[a-]", "-", true),
            ("[-a]", "-", true),
            ("[a-c-e]", "-", true),
            ("[a-c-e]", "d", false),
            ("[z-a]", "m", false),
            ("[!z-a]", "m", true),
            ("[]", "[]", true),
            ("[!", "[!", true),
            ("\\*", "\\x", true),
            ("a[", "a[", true),
            ("*[", "xx[", true),
            ("[é]", "é", true),
            ("?", "é", true),
            ("??", "é", false),
        ] {
            assert_eq!(glob_match(pat, s), want, "{pat:?} vs {s:?}");
        }
    }

    #[test]
    fn tap15_bins() {
        assert_eq!(succinct_suffix_len(1), 1);
        assert_eq!(succinct_suffix_len(4), 1);
        assert_eq!(succinct_suffix_len(5), 2);
        assert_eq!(succinct_suffix_len(32), 8);
        assert_eq!(succinct_bin_count(8), 256);
        assert_eq!(succinct_bin_name("bin", 5, 3), "bin-03");
        assert_eq!(succinct_bin_name("bin", 32, 0xdead_beef), "bin-deadbeef");
        let path = "targets/file.txt";
        let h = digest::sha256(path.as_bytes());
        let top = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        assert_eq!(succinct_bin(32, path), u64::from(top));
        assert_eq!(succinct_bin(1, path), u64::from(top >> 31));
        assert_eq!(succinct_bin(8, path), u64::from(h[0]));
        // Out-of-range bit lengths are clamped, never panic.
        assert_eq!(succinct_bin(0, path), 0);
        assert_eq!(succinct_bin(99, path), u64::from(top));
        assert!(is_succinct_bin_name("bin", 5, "bin-1f"));
        assert!(!is_succinct_bin_name("bin", 5, "bin-20"), "beyond 32 bins");
        assert!(!is_succinct_bin_name("bin", 5, "bin-1F"));
        assert!(!is_succinct_bin_name("bin", 5, "bin-f"));
        assert!(!is_succinct_bin_name("bin", 5, "bin1f"));
        assert!(!is_succinct_bin_name("bin", 5, "bim-1f"));
    }

    #[test]
    fn roles_for_target_in_order_with_terminating() {
        use crate::metadata::SuccinctRoles;
        use std::collections::BTreeMap;
        let role = |name: &str, paths: &[&str], terminating: bool| {
            DelegatedRole::new(
                name.into(),
                vec!["k".into()],
                1,
                terminating,
                Some(paths.iter().map(|p| (*p).to_owned()).collect()),
                None,
            )
            .unwrap()
        };
        let d = Delegations::new_roles(
            BTreeMap::new(),
            vec![
                role("z", &["a/*"], false),
                role("b", &["b/*"], false),
                role("a", &["a/x"], true),
                role("h", &[], false),
            ],
        );
        assert_eq!(
            roles_for_target(&d, "a/x"),
            [("z".to_owned(), false), ("a".to_owned(), true)]
        );
        assert!(roles_for_target(&d, "c").is_empty());
        let prefix = hex::encode(digest::sha256(b"a/x"))[..3].to_owned();
        let hashed = DelegatedRole::new(
            "p".into(),
            vec!["k".into()],
            1,
            false,
            None,
            Some(vec![prefix]),
        )
        .unwrap();
        assert!(is_delegated_path(&hashed, "a/x"));
        let s = SuccinctRoles::new(vec!["k".into()], 1, 6, "bins".into()).unwrap();
        let want = s.role_for_target("a/x");
        let d = Delegations::new_succinct(BTreeMap::new(), s);
        assert_eq!(roles_for_target(&d, "a/x"), [(want, true)]);
    }

    /// Reference fnmatch (Python semantics), written for clarity not speed: exponential in
    /// the number of stars, so only used on small inputs.
    fn oracle_component(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).any(|k| oracle_component(&p[1..], &s[k..])),
            Some('?') => !s.is_empty() && oracle_component(&p[1..], &s[1..]),
            Some('[') => match oracle_class(p) {
                Some((set, rest)) => !s.is_empty() && set(s[0]) && oracle_component(rest, &s[1..]),
                None => s.first() == Some(&'[') && oracle_component(&p[1..], &s[1..]),
            },
            Some(c) => s.first() == Some(c) && oracle_component(&p[1..], &s[1..]),
        }
    }

    /// Parses `[...]` at the start of `p`: a membership test and the rest of the pattern.
    #[allow(clippy::type_complexity)]
    fn oracle_class(p: &[char]) -> Option<(Box<dyn Fn(char) -> bool>, &[char])> {
        let mut j = 1;
        let negate = p.get(j) == Some(&'!');
        if negate {
            j += 1;
        }
        let start = j;
        if p.get(j) == Some(&']') {
            j += 1;
        }
        while *p.get(j)? != ']' {
            j += 1;
        }
        let body: Vec<char> = p[start..j].to_vec();
        let mut items: Vec<(char, char)> = Vec::new();
        let mut k = 0;
        while k < body.len() {
            if k + 2 < body.len() && body[k + 1] == '-' {
                items.push((body[k], body[k + 2]));
                k += 3;
            } else {
                items.push((body[k], body[k]));
                k += 1;
            }
        }
        let set = move |c: char| items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != negate;
        Some((Box::new(set), &p[j + 1..]))
    }

    fn oracle(pattern: &str, path: &str) -> bool {
        let pat: Vec<&str> = pattern.split('/').collect();
        let parts: Vec<&str> = path.split('/').collect();
        pat.len() == parts.len()
            && pat.iter().zip(&parts).all(|(p, s)| {
                let p: Vec<char> = p.chars().collect();
                let s: Vec<char> = s.chars().collect();
                oracle_component(&p, &s)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Fuzz-style differential test: the iterative matcher agrees with the reference on
        /// patterns and paths drawn from a small alphabet rich in metacharacters.
        #[test]
        fn glob_agrees_with_reference(
            pattern in "[ab*?/\\[\\]!é-]{0,10}",
            path in "[ab/\\[\\]!é-]{0,10}",
        ) {
            proptest::prop_assert_eq!(glob_match(&pattern, &path), oracle(&pattern, &path),
                "pattern {:?} path {:?}", pattern, path);
        }

        /// A path always matches itself with every component replaced by `*`.
        #[test]
        fn stars_per_component_match(path in "[a-z0-9._/-]{0,30}") {
            let pattern: Vec<&str> = path.split('/').map(|_| "*").collect();
            proptest::prop_assert!(glob_match(&pattern.join("/"), &path));
        }

        #[test]
        fn star_never_crosses_slash(a in "[a-z]{0,5}", b in "[a-z]{0,5}") {
            let path = format!("{a}/{b}");
            proptest::prop_assert!(!glob_match("*", &path));
            proptest::prop_assert!(glob_match("*/*", &path));
        }

        #[test]
        fn arbitrary_patterns_never_panic(p in ".{0,20}", s in ".{0,20}") {
            let _ = glob_match(&p, &s);
        }

        #[test]
        fn literal_patterns_match_only_themselves(s in "[a-z0-9./]{0,20}", t in "[a-z0-9./]{0,20}") {
            proptest::prop_assert_eq!(glob_match(&s, &t), s == t);
        }
    }
}
