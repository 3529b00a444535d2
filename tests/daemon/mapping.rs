//! `iocd mapping check`: a vendor's payload mapped offline, as the daemon would map it.

use crate::helpers::process::iocd;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn mapping_check_prints_the_contract_events_of_a_national_sync_batch() {
    let out = iocd()
        .args(["mapping", "check", "--mapping"])
        .arg(root().join("config/mappings/national-sync.toml"))
        .arg("--payload")
        .arg(root().join("tests/fixtures/national-sync/batch.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 13 status events (the withdrawal request is skipped) and the payment online that each
    // of one dossier's 4 records reports, under the same id.
    assert_eq!(events.len(), 17, "{stdout}");
    let paid: Vec<_> = events.iter().filter(|e| e["type"] == "paid").collect();
    assert_eq!(paid.len(), 4, "{stdout}");
    assert!(paid.iter().all(|e| e["event_id"] == paid[0]["event_id"]
        && e["method"] == "online_national"
        && e["dossier_id"] == "X01.01-261124-0007"));
    assert!(events.iter().all(|e| {
        e["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("national-sync-"))
    }));
    assert_eq!(
        events[0]["agency"], "000.00.21.H42",
        "named, turned into its code"
    );
    assert!(stdout.contains("# record 11: skipped, /TrangThaiHoSo = 7 has no contract event type"));
}

#[test]
fn mapping_check_names_the_record_and_the_field_it_cannot_map() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("bad.json");
    let mut record: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/national-sync/single.json")).unwrap();
    record["NgayTiepNhan"] = "02/12/2026".into();
    std::fs::write(&payload, record.to_string()).unwrap();
    let out = iocd()
        .args(["mapping", "check", "--mapping"])
        .arg(root().join("config/mappings/national-sync.toml"))
        .arg("--payload")
        .arg(&payload)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "mapping_failed: mapping national-sync, record 0, /NgayTiepNhan: \"02/12/2026\" is not a time in yyyyMMddHHmmss"
        ),
        "{stderr}"
    );
}
