use std::fs;

use shoal_node::identity::{
    FORMAT_VERSION, IdentityError, LocalState, MAGIC, load_or_init, state_path,
};

#[test]
fn first_start_creates_second_start_loads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first = load_or_init(dir.path(), "Test Cluster", 16).unwrap();
    assert_eq!(first.tokens.len(), 16);
    assert!(
        first.tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens sorted and distinct"
    );
    assert_eq!(first.host_id.get_version_num(), 4);
    assert_eq!(first.cluster_name, "Test Cluster");
    assert_eq!(first.format_version, FORMAT_VERSION);

    let path = state_path(dir.path());
    assert_eq!(path, dir.path().join("system").join("local.state"));
    assert!(path.exists());
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec!["local.state"],
        "no temporary file left behind"
    );

    let second = load_or_init(dir.path(), "Test Cluster", 16).unwrap();
    assert_eq!(second, first);

    let other = tempfile::tempdir().unwrap();
    let stranger = load_or_init(other.path(), "Test Cluster", 16).unwrap();
    assert_ne!(stranger.host_id, first.host_id);
}

#[test]
fn cluster_name_mismatch_refused() {
    let dir = tempfile::tempdir().unwrap();
    load_or_init(dir.path(), "alpha", 4).unwrap();
    let e = load_or_init(dir.path(), "beta", 4).unwrap_err();
    assert!(matches!(e, IdentityError::ClusterNameMismatch { .. }));
    assert_eq!(
        e.to_string(),
        "Saved cluster name alpha != configured name beta"
    );
}

#[test]
fn num_tokens_change_refused() {
    let dir = tempfile::tempdir().unwrap();
    load_or_init(dir.path(), "c", 4).unwrap();
    let e = load_or_init(dir.path(), "c", 8).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot change the number of tokens from 4 to 8"
    );
}

#[test]
fn corruption_detected_and_never_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let orig = load_or_init(dir.path(), "c", 4).unwrap();
    let path = state_path(dir.path());
    let good = fs::read(&path).unwrap();

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut flipped = good.clone();
    flipped[20] ^= 0x01; // inside the host ID
    cases.push(("checksum mismatch", flipped));
    cases.push(("length mismatch", good[..good.len() - 3].to_vec()));
    cases.push(("shorter than any valid file", Vec::new()));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    cases.push(("bad magic", bad_magic));
    cases.push(("bad magic", b"host_id=1234\ntokens=1,2,3\n".to_vec()));

    for (want, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let e = load_or_init(dir.path(), "c", 4).unwrap_err();
        assert!(matches!(e, IdentityError::Corrupt { .. }), "{want}: {e:?}");
        let text = e.to_string();
        assert!(text.contains(want), "{text}");
        assert!(text.contains("local.state"), "{text}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "file must be left alone");
    }

    fs::write(&path, &good).unwrap();
    assert_eq!(load_or_init(dir.path(), "c", 4).unwrap(), orig);
}

#[test]
fn newer_format_version_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path());
    let state = LocalState {
        host_id: uuid::Uuid::new_v4(),
        tokens: vec![-5, 7],
        cluster_name: "c".into(),
        format_version: FORMAT_VERSION,
    };
    state.store(&path).unwrap();
    assert_eq!(LocalState::load(&path).unwrap(), Some(state));

    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let e = load_or_init(dir.path(), "c", 2).unwrap_err();
    assert!(
        matches!(e, IdentityError::UnsupportedVersion { version, .. } if version == FORMAT_VERSION + 1),
        "{e:?}"
    );
}

#[test]
fn encoding_matches_documented_layout() {
    let state = LocalState {
        host_id: uuid::Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff),
        tokens: vec![-1, 2],
        cluster_name: "ab".into(),
        format_version: FORMAT_VERSION,
    };
    let b = state.encode();
    assert_eq!(&b[..8], &MAGIC);
    assert_eq!(&b[8..12], &1u32.to_le_bytes());
    let body_len = 16 + 2 + 2 + 4 + 16;
    assert_eq!(&b[12..16], &(body_len as u32).to_le_bytes());
    assert_eq!(&b[16..32], state.host_id.as_bytes());
    assert_eq!(&b[32..34], &2u16.to_le_bytes());
    assert_eq!(&b[34..36], b"ab");
    assert_eq!(&b[36..40], &2u32.to_le_bytes());
    assert_eq!(&b[40..48], &(-1i64).to_le_bytes());
    assert_eq!(&b[48..56], &2i64.to_le_bytes());
    assert_eq!(&b[56..60], &crc32fast::hash(&b[..56]).to_le_bytes());
    assert_eq!(b.len(), 60);
}

#[test]
fn zero_tokens_refused_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_or_init(dir.path(), "c", 0),
        Err(IdentityError::NoTokens)
    ));
    assert!(!state_path(dir.path()).exists());
}
