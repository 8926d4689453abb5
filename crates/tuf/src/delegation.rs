//! Which delegated role may sign for which target path.
//!
//! `paths` patterns follow python-tuf: pattern and path are split on `/` and must have the
//! same number of components; each component is matched like `fnmatch` (`*`, `?`,
//! `[set]`, `[!set]`), case-sensitively. Because matching is per component, `*` and `?`
//! can never match `/` — a role delegated `app/*` cannot sign `app/x/evil`.

use sealwright_crypto::digest;

/// Whether `path` matches the delegation `pattern`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = path.split('/').collect();
    pat.len() == parts.len()
        && pat
            .iter()
            .zip(&parts)
            .all(|(p, s)| component_match(p.as_bytes(), s.as_bytes()))
}

/// Whether hex sha256(`path`) starts with one of `prefixes`.
pub fn hash_prefix_match(prefixes: &[String], path: &str) -> bool {
    let h = hex::encode(digest::sha256(path.as_bytes()));
    prefixes.iter().any(|p| h.starts_with(p.as_str()))
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

    proptest::proptest! {
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
