//! Unit and property tests of the installer's parsers and file handling.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;

use sealwright_tuf::TargetFile;

use super::*;

mod unit {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header(path: &str, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // Written raw so hostile names are not sanitised by the builder.
        let name = h.as_old_mut();
        let bytes = path.as_bytes();
        name.name[..bytes.len()].copy_from_slice(bytes);
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_cksum();
        h
    }

    #[test]
    fn hostile_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = tar_with(|b| {
            b.append(&header("bin/app", 2, tar::EntryType::Regular), &b"hi"[..])
                .unwrap();
        });
        let d = dir.path().join("good");
        fs::create_dir(&d).unwrap();
        unpack(&good[..], &d).unwrap();
        assert_eq!(fs::read(d.join("bin/app")).unwrap(), b"hi");
        assert_eq!(
            fs::metadata(d.join("bin/app"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );

        for (i, (path, kind)) in [
            ("../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("a/../../evil", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("hard", tar::EntryType::Link),
            ("dev", tar::EntryType::Char),
        ]
        .into_iter()
        .enumerate()
        {
            let bad = tar_with(|b| {
                b.append(&header(path, 0, kind), &b""[..]).unwrap();
            });
            let d = dir.path().join(format!("bad{i}"));
            fs::create_dir(&d).unwrap();
            assert!(unpack(&bad[..], &d).is_err(), "{path}");
        }
        assert!(!dir.path().join("evil").exists());
        let dup = tar_with(|b| {
            b.append(&header("x", 1, tar::EntryType::Regular), &b"a"[..])
                .unwrap();
            b.append(&header("x", 1, tar::EntryType::Regular), &b"b"[..])
                .unwrap();
        });
        let d = dir.path().join("dup");
        fs::create_dir(&d).unwrap();
        assert!(unpack(&dup[..], &d).is_err());
    }

    #[test]
    fn pointer_must_match_product_channel_and_directory() {
        let mut custom = serde_json::json!({"sealwright": {
            "name": "app", "version": "1.0.0", "channel": "stable",
            "target": "app/1.0.0/app.bin", "length": 3,
            "hashes": {"sha256": "00"}, "recovery": false}});
        let mk = |c: &serde_json::Value| {
            let mut t = TargetFile::new(1, Default::default());
            t.custom = Some(std::sync::Arc::new(c.clone()));
            t
        };
        let p = "app/channels/stable.json";
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_ok());
        assert!(parse_pointer(&mk(&custom), "other", "stable", p).is_err());
        assert!(parse_pointer(&mk(&custom), "app", "beta", p).is_err());
        custom["sealwright"]["target"] = "app/1.0.0/../../x".into();
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_err());
        custom["sealwright"]["target"] = "app/2.0.0/app.bin".into();
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_err());
    }
}

/// Parsers of untrusted bytes never panic and never write outside their directory.
mod props {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.push(p);
            }
        }
        out
    }

    /// A tar whose entries have arbitrary (raw, unsanitised) names, kinds and contents.
    fn hostile_tar(entries: &[(Vec<u8>, u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            let n = name.len().min(99);
            h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_mode(0o755);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn unpack_of_arbitrary_bytes_stays_inside_its_directory(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            fs::create_dir(&dest).unwrap();
            let _ = unpack(&bytes[..], &dest);
            let outside: Vec<_> = files_under(root.path())
                .into_iter()
                .filter(|p| !p.starts_with(&dest))
                .collect();
            prop_assert!(outside.is_empty(), "{:?}", outside);
        }

        #[test]
        fn unpack_of_hostile_entries_stays_inside_its_directory(
            entries in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![Just(b'/'), Just(b'.'), Just(b'a'), Just(b'b'), any::<u8>()],
                        0..24,
                    ),
                    prop_oneof![Just(b'0'), Just(b'1'), Just(b'2'), Just(b'5'), any::<u8>()],
                    proptest::collection::vec(any::<u8>(), 0..16),
                ),
                0..8,
            ),
        ) {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            fs::create_dir(&dest).unwrap();
            let _ = unpack(&hostile_tar(&entries)[..], &dest);
            for p in files_under(root.path()) {
                prop_assert!(p.starts_with(&dest), "{} escaped", p.display());
                let meta = fs::symlink_metadata(&p).unwrap();
                prop_assert!(meta.is_file() || meta.is_dir(), "{} is a link or special", p.display());
            }
        }

        #[test]
        fn any_signed_custom_field_gives_a_pointer_or_an_error(
            custom in proptest::arbitrary::any::<String>().prop_map(serde_json::Value::String),
            version in "[0-9a-z./-]{0,12}",
            target in "[a-z./]{0,24}",
            length in any::<u64>(),
        ) {
            for value in [
                custom,
                serde_json::json!({"sealwright": {
                    "name": "app", "channel": "stable", "version": version,
                    "target": target, "length": length, "hashes": {}, "recovery": false,
                }}),
            ] {
                let tf = TargetFile {
                    custom: Some(std::sync::Arc::new(value)),
                    ..TargetFile::new(1, Default::default())
                };
                if let Ok(p) = parse_pointer(&tf, "app", "stable", "app/channels/stable.json") {
                    let release_dir = format!("app/{}/", p.version);
                    prop_assert!(p.target.starts_with(&release_dir));
                    prop_assert!(!p.target.split('/').any(|c| c == ".."));
                }
            }
        }

        #[test]
        fn corrupt_state_files_are_errors_not_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(STATE_FILE), &bytes).unwrap();
            let _ = load_state(dir.path());
            fs::write(dir.path().join(CONFIG_FILE), &bytes).unwrap();
            let _ = load_config(dir.path());
        }
    }
}
