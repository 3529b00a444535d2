use serde_json::json;

use super::*;
use crate::decode::{DecodeLimits, decode, decode_written};

const NATIONAL_SYNC: &str = include_str!("../../../config/mappings/national-sync.toml");
const EXAMPLE_DIRECTORY: &str = include_str!("../../../config/agencies-example.toml");

fn national_sync() -> Mapping {
    Mapping::parse(NATIONAL_SYNC, "national-sync.toml").expect("the shipped mapping is valid")
}

fn directory() -> Directory {
    Directory::parse(EXAMPLE_DIRECTORY, "agencies-example.toml").expect("valid")
}

fn tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("in the bundled tz database")
}

/// A record of the national sync at `status`, updated at `updated`.
fn record(status: u8, updated: &str) -> Value {
    json!({
        "MaHoSo": "000.00.19.H42-261201-0001",
        "MaTTHC": "1.001234",
        "TenTTHC": "Cấp giấy chứng nhận quyền sử dụng đất lần đầu",
        "MaLinhVuc": "G09-TN01",
        "TenLinhVuc": "Đất đai",
        "KenhThucHien": 2,
        "TrangThaiHoSo": status,
        "NgayNopHoSo": "20261201074512",
        "NgayTiepNhan": "20261201083000",
        "NgayHenTra": "20261208170000",
        "NgayKetThucXuLy": if status >= 9 { "20261205101500" } else { "" },
        "NgayTraKetQua": "",
        "NgayCapNhat": updated,
        "TenCoQuanXuLy": "Trung tâm Phục vụ hành chính công tỉnh Phú Thọ",
        "HoTenNguoiNop": "Nguyễn Thị Hoa",
        "LyDo": "",
    })
}

fn map(m: &Mapping, payload: &Value) -> Result<Vec<Mapped>, MappingError> {
    let (tz, directory) = (tz(), directory());
    m.map(
        payload.to_string().as_bytes(),
        Context {
            tz: &tz,
            directory: &directory,
        },
    )
}

/// Decoding a mapped event at its spans gives what parsing its text gives, for every
/// source, accepted or refused: the daemon's fast path and replay of the log agree.
fn written_decodes_as_parsed(json: &[u8], spans: &[Span]) {
    let limits = DecodeLimits::default();
    let now = crate::time::parse_rfc3339("2026-12-06T12:00:00+07:00").unwrap();
    for source in [Source::Onestop, Source::Vc, Source::Soc] {
        assert_eq!(
            decode_written(source, json, spans, now, &limits),
            decode(source, json, now, &limits),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
}

/// The contract field `fact` of the event a national sync record at `status` makes when its
/// member `member` holds `value` (`None`: the record has no such member); `null` when the
/// event leaves the fact out.
fn fact(m: &Mapping, status: u8, member: &str, value: Option<&Value>, fact: &str) -> Value {
    let mut r = record(status, "20261201083005");
    if let Some(v) = value {
        r[member] = v.clone();
    }
    events(map(m, &r).unwrap())[0]
        .get(fact)
        .cloned()
        .unwrap_or(Value::Null)
}

fn events(mapped: Vec<Mapped>) -> Vec<Value> {
    mapped
        .into_iter()
        .filter_map(|m| match m {
            Mapped::Event {
                json,
                event_id,
                spans,
                ..
            } => {
                let v: Value = serde_json::from_slice(&json).unwrap();
                assert_eq!(v["event_id"], event_id.as_str());
                written_decodes_as_parsed(&json, &spans);
                Some(v)
            }
            Mapped::Skipped { .. } => None,
        })
        .collect()
}

#[test]
fn a_sync_record_becomes_a_contract_event_that_decodes() {
    let m = national_sync();
    assert_eq!(m.source, Source::Onestop);
    let mapped = map(&m, &record(2, "20261201083005")).unwrap();
    let [Mapped::Event { .. }] = mapped.as_slice() else {
        panic!("{mapped:?}")
    };
    let e = &events(mapped)[0];
    assert_eq!(e["type"], "received");
    // Local times without an offset are the IOC's: +07:00.
    assert_eq!(e["occurred_at"], "2026-12-01T08:30:00+07:00");
    assert_eq!(e["due_at"], "2026-12-08T17:00:00+07:00");
    assert_eq!(e["channel"], "online");
    assert_eq!(e["procedure"], "1.001234");
    assert_eq!(e["sector"], "Đất đai");
    // The agency by its name in the directory: its code.
    assert_eq!(e["agency"], "000.00.19.H42");
    assert_eq!(e["dossier_id"], "000.00.19.H42-261201-0001");
    let bytes = serde_json::to_vec(e).unwrap();
    let now = crate::time::parse_rfc3339("2026-12-06T12:00:00+07:00").unwrap();
    let decoded = decode(Source::Onestop, &bytes, now, &DecodeLimits::default());
    assert!(decoded.is_ok(), "{decoded:?}");
    // Without the 1.2 fields, their facts are unknown: not written.
    assert!(e.get("digitised").is_none() && e.get("fee_required").is_none());
}

/// `HoSoCoThanhPhanSoHoa`, which the rule of 4.3 reads for synced dossiers, is the reuse
/// of digitised data; absent or blank, the fact stays unknown.
#[test]
fn the_sync_reuse_flag_becomes_the_fact_of_1_2() {
    let m = national_sync();
    for (flag, want) in [
        (json!("1"), json!(true)),
        (json!(0), json!(false)),
        (json!(""), Value::Null),
    ] {
        let flag = Some(&flag);
        assert_eq!(
            fact(&m, 2, "HoSoCoThanhPhanSoHoa", flag, "reused_data"),
            want,
            "{flag:?}"
        );
        assert_eq!(
            fact(&m, 2, "HoSoCoThanhPhanSoHoa", flag, "digitised"),
            Value::Null,
            "a flag, not the files"
        );
    }
    // On another status the flag is not read.
    assert_eq!(
        fact(
            &m,
            9,
            "HoSoCoThanhPhanSoHoa",
            Some(&json!(1)),
            "reused_data"
        ),
        Value::Null
    );
}

/// Files attached to the components make a digitised dossier (4.2), a result document with a
/// file link an electronic result (4.1); lists without files say no, no list says nothing.
#[test]
fn the_sync_file_lists_say_digitised_and_electronic_result() {
    let m = national_sync();
    let part = |path: &str| json!({"TepDinhKemId": "1", "TenTepDinhKem": "CCCD.pdf", "IsDeleted": false, "MaThanhPhanHoSo": "TP01", "DuongDanTaiTepTin": path});
    for (list, want) in [
        (
            Some(json!([
                part(""),
                part("https://dvc.phutho.gov.vn/files/TP01.pdf")
            ])),
            json!(true),
        ),
        (
            Some(json!([part(""), {"TenTepDinhKem": "Tờ khai"}])),
            json!(false),
        ),
        // Items without the member (another key, or links not synced) do not answer, nor
        // does something that is not text.
        (
            Some(json!([{"TenTepDinhKem": "Tờ khai"}, {"DuongDanTaiTepTin": false}])),
            Value::Null,
        ),
        (Some(json!([])), Value::Null),
        (None, Value::Null),
    ] {
        assert_eq!(
            fact(&m, 2, "TaiLieuNop", list.as_ref(), "digitised"),
            want,
            "{list:?}"
        );
    }
    let result = |path: &str| json!({"TenGiayTo": "Giấy chứng nhận", "MaGiayToKetQua": "KQ01", "DuongDanTepTinKetQua": path});
    for (status, list, want) in [
        (
            9,
            json!([result("https://dvc.phutho.gov.vn/kq/KQ01.pdf")]),
            json!(true),
        ),
        (10, json!([result("  ")]), json!(false)),
        (
            2,
            json!([result("https://dvc.phutho.gov.vn/kq/KQ01.pdf")]),
            Value::Null,
        ),
    ] {
        assert_eq!(
            fact(
                &m,
                status,
                "DanhSachGiayToKetQua",
                Some(&list),
                "result_electronic"
            ),
            want,
            "status {status}"
        );
    }
}

/// The fee list says whether fees are due: a price other than 0 (a number or digits) in any
/// item is `true`, every price 0 is `false`, and no list, an empty one or no price at all
/// leaves it unknown, as the 766 rule reads `DanhSachLePhi`.
#[test]
fn the_sync_fee_list_says_whether_fees_are_due() {
    let m = national_sync();
    let fee = |gia: Value| json!({"TenPhiLePhi": "Lệ phí cấp giấy chứng nhận", "MaPhiLePhi": "LP01", "HinhThucThu": "1", "Gia": gia, "LoaiPhiLePhi": "1"});
    for (list, want) in [
        (Some(json!([fee(json!("50000"))])), json!(true)),
        (Some(json!([fee(json!(0)), fee(json!(25000))])), json!(true)),
        (Some(json!([fee(json!(0)), fee(json!("0"))])), json!(false)),
        // Amounts as Vietnamese systems write them: thousands separators, a unit.
        (
            Some(json!([fee(json!("0")), fee(json!("1.500.000"))])),
            json!(true),
        ),
        (Some(json!([fee(json!("50,000 đ"))])), json!(true)),
        (
            Some(json!([fee(json!("0 đồng")), fee(json!("0.00"))])),
            json!(false),
        ),
        (Some(json!([fee(json!("Miễn phí"))])), Value::Null),
        (Some(json!([fee(json!(true))])), Value::Null),
        (Some(json!([])), Value::Null),
        (Some(json!([fee(json!(""))])), Value::Null),
        (Some(json!([{"TenPhiLePhi": "Phí"}])), Value::Null),
        (Some(json!("không")), Value::Null),
        (None, Value::Null),
    ] {
        assert_eq!(
            fact(&m, 2, "DanhSachLePhi", list.as_ref(), "fee_required"),
            want,
            "{list:?}"
        );
    }
    // Read on the receipt only, where the contract carries it.
    assert_eq!(
        fact(
            &m,
            9,
            "DanhSachLePhi",
            Some(&json!([fee(json!(50000))])),
            "fee_required"
        ),
        Value::Null
    );
}

/// The online-payment flag makes a `paid` event besides the record's own: 1 on the national
/// portal, 2 through the province's gateway, anything else nothing. The payment's id is the
/// dossier's and the code's, so every later record that still shows it is a duplicate.
#[test]
fn the_sync_payment_flag_makes_a_paid_event() {
    let m = national_sync();
    for (flag, want) in [
        (json!(1), Some("online_national")),
        (json!("2"), Some("online_local")),
        (json!(0), None),
        (json!(""), None),
        (json!(3), None),
        (Value::Null, None),
    ] {
        let mut r = record(2, "20261201083005");
        r["DuocThanhToanTrucTuyen"] = flag.clone();
        let e = events(map(&m, &r).unwrap());
        assert_eq!(e[0]["type"], "received", "the record's own event first");
        match want {
            Some(method) => {
                assert_eq!(e.len(), 2, "{flag}: {e:?}");
                assert_eq!(e[1]["type"], "paid");
                assert_eq!(e[1]["method"], method);
                assert_eq!(e[1]["dossier_id"], "000.00.19.H42-261201-0001");
                assert_eq!(e[1]["occurred_at"], "2026-12-01T08:30:05+07:00");
                assert!(e[1].get("channel").is_none() && e[1].get("due_at").is_none());
                assert_ne!(e[0]["event_id"], e[1]["event_id"]);
            }
            None => assert_eq!(e.len(), 1, "{flag}: {e:?}"),
        }
    }
    // The same payment on the next status record: the same id (a duplicate).
    let paid_id = |status: u8, updated: &str| {
        let mut r = record(status, updated);
        r["DuocThanhToanTrucTuyen"] = json!(1);
        events(map(&m, &r).unwrap())[1]["event_id"].clone()
    };
    assert_eq!(paid_id(2, "20261201083005"), paid_id(9, "20261205101500"));
    // A withdrawal request (no event of its own) still reports the payment.
    let mut r = record(7, "20261203080000");
    r["DuocThanhToanTrucTuyen"] = json!(2);
    let mapped = map(&m, &r).unwrap();
    assert!(matches!(&mapped[0], Mapped::Skipped { .. }), "{mapped:?}");
    assert_eq!(events(mapped)[0]["method"], "online_local");
    // The payment carries the dossier and the method only: an agency name the directory does
    // not know cannot fail it.
    r["TenCoQuanXuLy"] = json!("Phòng Tài chính - Kế hoạch huyện cũ");
    let paid = events(map(&m, &r).unwrap());
    let keys: Vec<&String> = paid[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["dossier_id", "event_id", "method", "occurred_at", "type"]
    );
}

/// `[[also]]` is checked when the mapping is read, and a record whose further event cannot
/// be built is refused whole, naming the field.
#[test]
fn an_also_event_is_checked_and_maps_whole_or_not_at_all() {
    let base = r#"
name = "t"
source = "onestop"
[type]
field = "/s"
table = { "2" = "received" }
[event_id]
field = "/id"
[occurred_at]
field = "/at"
format = "yyyyMMddHHmmss"
[occurred_at.by_type]
paid = "/paid_at"
[fields.dossier_id]
field = "/d"
"#;
    for (also, why) in [
        (
            "[[also]]
type = \"\"\nwhen = \"/f\"\nvalues = [\"1\"]\nevent_id = { hash = [\"/d\"] }\n",
            "needs a `type`",
        ),
        (
            "[[also]]\ntype = \"paid\"\nwhen = \"/f\"\nvalues = []\nevent_id = { hash = [\"/d\"] }\n",
            "at least one of `values`",
        ),
        (
            "[[also]]\ntype = \"paid\"\nwhen = \"/f\"\nvalues = [\"1\"]\nevent_id = {}\n",
            "`field` or `hash`",
        ),
        (
            "[fields.fee_required]\nany_in = \"/fees\"\ntest = \"nonzero\"\nvalue = true\n",
            "`any_in` (a pointer",
        ),
        (
            "[fields.fee_required]\nany_in = \"/fees\"\nfield = \"/Gia\"\n",
            "`any_in` (a pointer",
        ),
        (
            "[fields.fee_required]\nfield = \"/Gia\"\ntest = \"nonblank\"\n",
            "`any_in` (a pointer",
        ),
        (
            "[fields.fee_required]\nany_in = \"fees\"\nfield = \"/Gia\"\ntest = \"nonzero\"\n",
            "`any_in` (a pointer",
        ),
        (
            "[fields.fee_required]\nany_in = \"/fees\"\nfield = \"/Gia\"\ntest = \"nonzero\"\nrequired = true\n",
            "takes no `table`",
        ),
        (
            "[[also]]\ntype = \"payd\"\nwhen = \"/f\"\nvalues = [\"1\"]\nevent_id = { hash = [\"/d\"] }\n",
            "`payd` is not a type of source onestop",
        ),
        (
            "[[also]]\ntype = \"paid\"\nwhen = \"/f\"\nvalues = [\"1\"]\nevent_id = { hash = [\"/d\"] }\nfields = [\"dossier\"]\n",
            "`dossier` is not one of [fields]",
        ),
    ] {
        let err = Mapping::parse(&format!("{base}{also}"), "t.toml").unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let m = Mapping::parse(
        &format!(
            "{base}[[also]]\ntype = \"paid\"\nwhen = \"/f\"\nvalues = [\"1\"]\nevent_id = {{ field = \"/id\" }}\n[fields.method]\nvalue = \"direct\"\ntypes = [\"paid\"]\n"
        ),
        "t.toml",
    )
    .unwrap();
    let good = json!({"s": 2, "id": "e1", "at": "20261201080000", "paid_at": "20261201090000", "d": "D1", "f": "1"});
    let e = events(map(&m, &good).unwrap());
    assert_eq!(
        (
            e[1]["event_id"].clone(),
            e[1]["occurred_at"].clone(),
            e[1]["method"].clone()
        ),
        (
            json!("e1:paid"),
            json!("2026-12-01T09:00:00+07:00"),
            json!("direct")
        )
    );
    assert!(e[0].get("method").is_none());
    // A type the source does not have, in the type table: refused at load, not at every
    // record.
    let err =
        Mapping::parse(&base.replace("= \"received\"", "= \"recieved\""), "t.toml").unwrap_err();
    assert!(
        err.contains("`recieved` is not a type of source onestop"),
        "{err}"
    );
    // A source id too long for the contract with its suffix: hashed instead, with the type.
    let mut long = good.clone();
    long["id"] = json!("x".repeat(125));
    let e = events(map(&m, &long).unwrap());
    assert_eq!(e[0]["event_id"], long["id"]);
    let id = e[1]["event_id"].as_str().unwrap();
    assert!(id.starts_with("t-") && id.len() == 34, "{id}");
    let mut bad = good.clone();
    bad["paid_at"] = json!("hôm qua");
    let err = map(&m, &bad).unwrap_err();
    assert_eq!(err.field, "/paid_at", "{err}");
}

#[test]
fn the_same_record_gives_the_same_id_and_a_new_state_a_new_one() {
    let m = national_sync();
    let id = |r: &Value| events(map(&m, r).unwrap())[0]["event_id"].clone();
    let a = id(&record(4, "20261202090000"));
    assert_eq!(a, id(&record(4, "20261202090000")), "re-sent: a duplicate");
    assert_ne!(a, id(&record(4, "20261203090000")), "updated again");
    assert_ne!(a, id(&record(5, "20261202090000")), "another status");
    assert!(a.as_str().is_some_and(|s| s.starts_with("national-sync-")));
}

#[test]
fn a_batch_body_yields_one_event_per_record_and_a_withdrawal_request_none() {
    let m = national_sync();
    let batch = json!({
        "service": "DongBoHoSoMCDT",
        "isUpdating": true,
        "data": [record(1, "20261201074512"), record(2, "20261201083000"), record(7, "20261202080000"), record(9, "20261205101500")],
    });
    let mapped = map(&m, &batch).unwrap();
    assert!(
        matches!(&mapped[2], Mapped::Skipped { record: 2, why } if why.contains("TrangThaiHoSo = 7"))
    );
    let types: Vec<Value> = events(mapped).iter().map(|e| e["type"].clone()).collect();
    assert_eq!(types, vec!["submitted", "received", "resolved"]);
    // Each status at its own date: submission, receipt, end of processing.
    let times: Vec<Value> = events(map(&m, &batch).unwrap())
        .iter()
        .map(|e| e["occurred_at"].clone())
        .collect();
    assert_eq!(
        times,
        vec![
            "2026-12-01T07:45:12+07:00",
            "2026-12-01T08:30:00+07:00",
            "2026-12-05T10:15:00+07:00"
        ]
    );
    // Fields only for some types: no channel on a resolution, a reason on a fee pause.
    let resolved = &events(map(&m, &record(9, "20261205101500")).unwrap())[0];
    assert!(resolved.get("channel").is_none());
    let paused = &events(map(&m, &record(6, "20261203100000")).unwrap())[0];
    assert_eq!(paused["reason"], "fees");
}

#[test]
fn what_cannot_be_mapped_names_the_mapping_the_record_and_the_field() {
    let m = national_sync();
    let mut bad_time = record(2, "20261201083000");
    bad_time["NgayTiepNhan"] = json!("2026-12-01");
    let e = map(
        &m,
        &json!({"data": [record(1, "20261201074512"), bad_time]}),
    )
    .unwrap_err();
    assert_eq!(
        (e.mapping.as_str(), e.record, e.field.as_str()),
        ("national-sync", 1, "/NgayTiepNhan")
    );
    assert!(e.problem.contains("yyyyMMddHHmmss"), "{e}");

    let mut unknown = record(2, "20261201083000");
    unknown["TrangThaiHoSo"] = json!(11);
    let e = map(&m, &unknown).unwrap_err();
    assert_eq!(e.field, "/TrangThaiHoSo");
    assert!(e.to_string().contains("11 is not in the type table"), "{e}");

    let mut stranger = record(2, "20261201083000");
    stranger["TenCoQuanXuLy"] = json!("Sở Không Có");
    let e = map(&m, &stranger).unwrap_err();
    assert_eq!(e.field, "/TenCoQuanXuLy");

    let mut no_id = record(2, "20261201083000");
    no_id["MaHoSo"] = json!("");
    assert_eq!(map(&m, &no_id).unwrap_err().field, "dossier_id");

    let e = m
        .map(
            b"{not json",
            Context {
                tz: &tz(),
                directory: &directory(),
            },
        )
        .unwrap_err();
    assert_eq!(e.field, "payload");
    assert_eq!(
        map(&m, &json!({"data": 3})).unwrap_err().problem,
        "not an array"
    );
}

#[test]
fn times_in_every_format_read_as_the_ioc_reads_them() {
    let tz = tz();
    let t = |v: Value, f| {
        let text = match v {
            Value::String(s) => s.trim().to_owned(),
            other => other.to_string(),
        };
        time(&text, f, &tz).map(|w| w.as_str().to_owned())
    };
    assert_eq!(
        t(json!("06/12/2026 08:05:09"), TimeFormat::DayFirst).unwrap(),
        "2026-12-06T08:05:09+07:00"
    );
    assert_eq!(
        t(json!(1_796_000_000), TimeFormat::EpochSeconds).unwrap(),
        "2026-11-30T07:53:20+07:00"
    );
    assert_eq!(
        t(json!("1796000000123"), TimeFormat::EpochMillis).unwrap(),
        "2026-11-30T07:53:20.123+07:00"
    );
    assert_eq!(
        t(json!("2026-12-06T01:00:00Z"), TimeFormat::Rfc3339).unwrap(),
        "2026-12-06T01:00:00Z"
    );
    assert!(t(json!("20261306083000"), TimeFormat::Compact).is_err());
    assert!(t(json!("2026120608300"), TimeFormat::Compact).is_err());
}

/// iocd's own RFC 3339 writer at the edges: negative years and offsets, offsets with
/// minutes, milliseconds or none (nanoseconds cut to milliseconds), the first and last years.
#[test]
fn written_times_are_rfc_3339_at_the_edges() {
    use jiff::civil::date;
    use jiff::tz::Offset;
    let cases = [
        (
            date(2026, 12, 6).at(8, 5, 9, 0),
            7 * 3600,
            "2026-12-06T08:05:09+07:00",
        ),
        (
            date(2026, 12, 6).at(8, 5, 9, 123_456_789),
            7 * 3600,
            "2026-12-06T08:05:09.123+07:00",
        ),
        (
            date(1, 1, 1).at(0, 0, 0, 1_000_000),
            -(9 * 3600 + 30 * 60),
            "0001-01-01T00:00:00.001-09:30",
        ),
        (
            date(9999, 12, 31).at(23, 59, 59, 999_999_999),
            14 * 3600,
            "9999-12-31T23:59:59.999+14:00",
        ),
        (
            date(-42, 3, 4).at(5, 6, 7, 0),
            5 * 3600 + 45 * 60,
            "-0042-03-04T05:06:07+05:45",
        ),
        (
            date(1975, 6, 13).at(0, 0, 0, 999_999),
            0,
            "1975-06-13T00:00:00+00:00",
        ),
    ];
    for (dt, secs, expected) in cases {
        let offset = Offset::from_seconds(secs).unwrap();
        assert_eq!(written(dt, offset).as_str(), expected);
    }
}

#[test]
fn a_mapping_without_an_id_or_with_an_empty_field_is_refused() {
    let no_id = NATIONAL_SYNC.replace(
        r#"hash = ["/MaHoSo", "/TrangThaiHoSo", "/NgayCapNhat"]"#,
        "",
    );
    assert!(
        Mapping::parse(&no_id, "m.toml")
            .unwrap_err()
            .contains("[event_id]")
    );
    let unknown_key = format!("{NATIONAL_SYNC}\n[fields.x]\nfield = \"/a\"\nwhatever = 1\n");
    assert!(
        Mapping::parse(&unknown_key, "m.toml")
            .unwrap_err()
            .contains("whatever")
    );
    let bad_source = NATIONAL_SYNC.replace(r#"source = "onestop""#, r#"source = "crm""#);
    assert!(
        Mapping::parse(&bad_source, "m.toml")
            .unwrap_err()
            .contains("crm")
    );
}

/// The fixtures' four dossiers (tests/fixtures/national-sync/README.md), mapped and applied:
/// the state the daemon would hold.
#[test]
fn the_national_sync_fixtures_apply_as_their_stories_say() {
    use crate::decode::DossierStatus;
    use crate::state::counters::Timing;
    use crate::state::{Input, Params, State};
    let m = national_sync();
    let batch = include_str!("../../../tests/fixtures/national-sync/batch.json");
    let (tz, directory) = (tz(), directory());
    let cx = Context {
        tz: &tz,
        directory: &directory,
    };
    let mapped = m.map(batch.as_bytes(), cx).unwrap();
    // 14 records, and a payment reported by each of the 4 records of the dossier paid online.
    assert_eq!(mapped.len(), 18);
    let now = crate::time::parse_rfc3339("2026-12-06T12:00:00+07:00").unwrap();
    let mut state = State::new(Params::default(), now);
    let payloads: Vec<Vec<u8>> = events(mapped)
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect();
    assert_eq!(payloads.len(), 17, "the withdrawal request is skipped");
    for p in &payloads {
        let ev = decode(Source::Onestop, p, now, &DecodeLimits::default()).unwrap();
        state.apply(&Input::Event(ev), now);
    }
    // Sent again, every record is a duplicate.
    for p in &payloads {
        let ev = decode(Source::Onestop, p, now, &DecodeLimits::default()).unwrap();
        assert_eq!(
            state.apply(&Input::Event(ev), now),
            crate::state::Outcome::Duplicate
        );
    }
    let d = |id: &str| state.dossiers.get(id).unwrap_or_else(|| panic!("{id}"));
    let early = d("X01.01-261124-0007");
    assert_eq!(
        (early.status(), early.timing()),
        (DossierStatus::Returned, Some(Timing::Early))
    );
    let late = d("X06.01-261123-0004");
    assert_eq!(
        (late.status(), late.timing()),
        (DossierStatus::Resolved, Some(Timing::Late))
    );
    assert_eq!(state.agencies.name(late.agency()), "000.00.21.H42");
    let waiting = d("000.00.19.H42-261130-0021");
    assert_eq!(waiting.status(), DossierStatus::WaitingCitizen);
    let stopped = d("000.00.19.H42-261126-0015");
    assert_eq!(stopped.status(), DossierStatus::Closed);
    // The 766 facts the records carry: fees due (a priced fee), none (every price 0) or
    // unknown (no list); paid on the national portal, or not paid online.
    assert_eq!(
        (early.facts().fee_required(), early.payment()),
        (
            Some(true),
            Some(crate::decode::PaymentMethod::OnlineNational)
        )
    );
    assert_eq!(
        (stopped.facts().fee_required(), stopped.payment()),
        (Some(true), None)
    );
    assert_eq!(
        (late.facts().fee_required(), late.payment()),
        (Some(false), None)
    );
    assert_eq!(waiting.facts().fee_required(), None);
    // Digitised (files on the components), data reused, electronic result.
    let facts = |d: &crate::state::dossiers::Dossier| {
        let f = d.facts();
        (f.digitised(), f.reused_data(), f.result_electronic())
    };
    assert_eq!(facts(early), (Some(true), Some(true), Some(true)));
    assert_eq!(facts(late), (Some(false), Some(false), Some(false)));
    assert_eq!(facts(stopped), (Some(true), Some(false), None));
    assert_eq!(facts(waiting), (None, None, None));
}

/// The shipped example mappings of a video platform's webhooks and a SIEM's export turn their
/// samples into contract events that decode, and skip what has no contract event.
#[test]
fn the_example_vc_and_soc_mappings_map_their_samples() {
    let now = crate::time::parse_rfc3339("2026-12-06T23:00:00+07:00").unwrap();
    for (file, text, sample, want) in [
        (
            "vc-generic.toml",
            include_str!("../../../config/mappings/vc-generic.toml"),
            include_str!("../../../tests/fixtures/mappings/vc-generic.json"),
            vec![
                "meeting_started",
                "endpoint_joined",
                "endpoint_stats",
                "endpoint_left",
                "meeting_ended",
            ],
        ),
        (
            "soc-generic.toml",
            include_str!("../../../config/mappings/soc-generic.toml"),
            include_str!("../../../tests/fixtures/mappings/soc-generic.json"),
            vec![
                "alert",
                "incident_opened",
                "system_heartbeat",
                "incident_acknowledged",
                "alert",
                "incident_resolved",
            ],
        ),
    ] {
        let m = Mapping::parse(text, file).unwrap();
        let (tz, directory) = (tz(), directory());
        let mapped = m
            .map(
                sample.as_bytes(),
                Context {
                    tz: &tz,
                    directory: &directory,
                },
            )
            .unwrap();
        assert_eq!(
            mapped
                .iter()
                .filter(|x| matches!(x, Mapped::Skipped { .. }))
                .count(),
            1,
            "{file}"
        );
        let events = events(mapped);
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types, want, "{file}");
        for e in &events {
            let bytes = serde_json::to_vec(e).unwrap();
            let decoded = decode(m.source, &bytes, now, &DecodeLimits::default());
            assert!(decoded.is_ok(), "{file}: {e} → {decoded:?}");
        }
        if m.source == Source::Vc {
            assert_eq!(events[0]["level"], "province");
            assert_eq!(
                events[1]["agency"], "X01.05",
                "the room's unit, by its alias"
            );
            assert_eq!(events[1]["occurred_at"], "2026-12-06T10:00:12.345+07:00");
        } else {
            assert_eq!(events[0]["severity"], "high");
            assert_eq!(events[0]["category"], "intrusion");
            assert_eq!(events[1]["severity"], "high", "P2");
            assert_eq!(events[4]["category"], "other", "no group: the fallback");
            assert_eq!(
                events[4]["alert_id"], "a1b2c3d4-0006",
                "no alert id: the uuid"
            );
        }
    }
}

/// Hashed ids cannot be forged by separators in values, and a missing value is not the text
/// "null".
#[test]
fn hashed_ids_keep_values_apart() {
    let m = Mapping::parse(
        r#"
name = "t"
source = "onestop"
[type]
field = "/s"
table = { "2" = "received" }
[event_id]
hash = ["/a", "/b"]
[occurred_at]
field = "/at"
"#,
        "t.toml",
    )
    .unwrap();
    let id = |a: Value, b: Value| {
        let r = json!({"s": 2, "at": "2026-12-01T08:00:00+07:00", "a": a, "b": b});
        events(map(&m, &r).unwrap())[0]["event_id"].clone()
    };
    assert_ne!(
        id(json!("x\u{1f}y"), json!("z")),
        id(json!("x"), json!("y\u{1f}z"))
    );
    assert_ne!(id(json!("ab"), json!("c")), id(json!("a"), json!("bc")));
    assert_ne!(id(Value::Null, json!("c")), id(json!("null"), json!("c")));
    assert_ne!(id(json!(1), json!("c")), id(json!("1"), json!("c")));
    assert_eq!(
        id(json!("a"), json!("c")),
        id(json!(" a "), json!("c")),
        "trimmed"
    );
}

/// Hashed ids stay the same from one version to the next: the dedupe memory, the event log
/// and a peer replica hold them, so a change would make every re-sent record a new event.
/// Pinned, and checked against XXH3 streamed over the parts as the first version hashed them.
#[test]
fn hashed_ids_are_the_streamed_xxh3_of_their_parts_and_stay_so() {
    let m = national_sync();
    let got = events(map(&m, &record(4, "20261202090000")).unwrap())[0]["event_id"].clone();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (kind, bytes) in [
        (b'm', "national-sync"),
        (b's', "000.00.19.H42-261201-0001"),
        (b'v', "4"),
        (b's', "20261202090000"),
    ] {
        h.update(&[kind]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes.as_bytes());
    }
    let streamed = format!("national-sync-{:032x}", h.digest128());
    assert_eq!(got, streamed.as_str());
    assert_eq!(got, "national-sync-781e6b243be2d6113778d7310c7fa487");
}
