use super::*;

const GOOD: &str = r#"
[[agency]]
code = "000.00.00.H42"
name = "Ủy ban nhân dân tỉnh Phú Thọ"
short_name = "UBND tỉnh"
level = "province"
kind = "people_committee"

[[agency]]
code = "000.00.04.H42"
name = "Sở Tư pháp tỉnh Phú Thọ"
short_name = "Sở Tư pháp"
level = "province"
kind = "department"
parent = "000.00.00.H42"
valid_from = "2025-07-01"
aliases = ["STP Phú Thọ"]
systems = ["HT-HOTICH"]

[[agency]]
code = "X01.01"
name = "Ủy ban nhân dân phường Việt Trì"
short_name = "Phường Việt Trì"
level = "commune"
kind = "commune"
parent = "000.00.00.H42"
endpoints = ["EP-X01"]

[[agency]]
code = "000.00.04.H62"
name = "Sở Tư pháp tỉnh Vĩnh Phúc"
short_name = "Sở Tư pháp (Vĩnh Phúc cũ)"
level = "province"
kind = "department"
valid_to = "2025-06-30"
successor = "000.00.04.H42"
"#;

fn problems(text: &str) -> Vec<(usize, String)> {
    Directory::parse(text, "t.toml")
        .expect_err("refused")
        .problems
        .into_iter()
        .map(|p| (p.line, p.what))
        .collect()
}

#[test]
fn a_good_directory_answers_by_code_alias_endpoint_system_and_parent() {
    let d = Directory::parse(GOOD, "t.toml").expect("valid");
    assert_eq!(d.len(), 4);
    assert_eq!(d.name_of("000.00.04.H42"), "Sở Tư pháp tỉnh Phú Thọ");
    assert_eq!(d.short_name_of("X01.01"), "Phường Việt Trì");
    assert_eq!(
        d.name_of("999.99.99.H99"),
        "999.99.99.H99",
        "unknown: the code"
    );
    assert_eq!(
        d.by_alias("STP Phú Thọ").map(|a| &*a.code),
        Some("000.00.04.H42")
    );
    assert_eq!(
        d.owner_of_endpoint("EP-X01").map(|a| &*a.code),
        Some("X01.01")
    );
    assert_eq!(
        d.owner_of_system("HT-HOTICH").map(|a| &*a.code),
        Some("000.00.04.H42")
    );
    let children: Vec<&str> = d.children("000.00.00.H42").map(|a| &*a.code).collect();
    assert_eq!(children, ["000.00.04.H42", "X01.01"]);
    let old = d.get("000.00.04.H62").expect("held");
    assert_eq!(old.successor.as_deref(), Some("000.00.04.H42"));
    let day = |s: &str| s.parse::<Date>().expect("date");
    assert!(old.valid_on(day("2025-06-30")) && !old.valid_on(day("2025-07-01")));
    assert_eq!(d.get("X01.01").map(|a| a.level), Some(Level::Commune));
}

#[test]
fn every_problem_is_named_with_its_line() {
    let text = r#"
[[agency]]
code = "A"
name = "Một"
short_name = "Một"
level = "province"
kind = "department"
parent = "NOPE"
aliases = ["B"]
endpoints = ["E1"]

[[agency]]
code = "B"
name = "Hai"
short_name = "Hai"
level = "commune"
kind = "commune"
successor = "A"
endpoints = ["E1"]

[[agency]]
code = "A"
name = " "
short_name = "Ba"
level = "commune"
kind = "commune"
valid_from = "2025-07-01"
valid_to = "2025-01-01"
"#;
    let got = problems(text);
    let want: [(usize, &str); 7] = [
        (2, "A: parent NOPE is not in the directory"),
        (2, "A: alias \"B\" is the code of line 12"),
        (
            12,
            "B: a successor needs valid_to (the last day of the unit)",
        ),
        (12, "B: endpoint E1 already belongs to line 2"),
        (21, "A: name is empty"),
        (21, "A: valid_from 2025-07-01 is after valid_to 2025-01-01"),
        (21, "A: code A is already used on line 2"),
    ];
    for (line, what) in want {
        assert!(
            got.contains(&(line, what.to_owned())),
            "missing ({line}, {what}) in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn a_cycle_of_parents_is_refused_once() {
    let unit = |code: &str, parent: &str| {
        format!(
            "[[agency]]\ncode = \"{code}\"\nname = \"{code}\"\nshort_name = \"{code}\"\n\
             level = \"province\"\nkind = \"department\"\nparent = \"{parent}\"\n\n"
        )
    };
    let text = unit("A", "B") + &unit("B", "C") + &unit("C", "A") + &unit("D", "A");
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, 1);
    assert!(got[0].1.contains("cycle: A → B → C → A"), "{}", got[0].1);
}

#[test]
fn syntax_errors_and_unknown_levels_name_their_line() {
    let got = problems(
        "[[agency]]\ncode = \"A\"\nname = \"x\"\nshort_name = \"x\"\nlevel = \"region\"\nkind = \"other\"\n",
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, 5, "{got:#?}");
    assert!(got[0].1.contains("region"), "{got:#?}");
    let got = problems("[[agency]\ncode = 1");
    assert_eq!(got[0].0, 1, "{got:#?}");
    let got = problems("[[agency]]\ncode = \"A\"\ncolour = \"red\"\n");
    assert!(got[0].1.contains("colour"), "{got:#?}");
}

#[test]
fn control_characters_in_names_are_refused() {
    let got = problems(
        "[[agency]]\ncode = \"A\"\nname = \"x\\n2026 INFO forged\"\nshort_name = \"x\"\nlevel = \"province\"\nkind = \"other\"\n",
    );
    assert!(got[0].1.contains("control character"), "{got:#?}");
}

#[test]
fn an_unreadable_file_says_why() {
    let e = Directory::read(Path::new("/nonexistent/agencies.toml")).expect_err("missing");
    assert!(e.to_string().contains("cannot read it"), "{e}");
}

#[cfg(feature = "demo")]
#[test]
fn the_shipped_example_is_valid_and_covers_the_simulated_province() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agencies-example.toml");
    let d = Directory::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let p = crate::simulate::model::Province::new();
    for a in &p.agencies {
        assert!(d.get(&a.code).is_some(), "agency {} missing", a.code);
    }
    for (ep, owner) in &p.endpoints {
        assert_eq!(
            d.owner_of_endpoint(ep).map(|a| &*a.code),
            Some(owner.as_str()),
            "endpoint {ep}"
        );
    }
    for s in &p.systems {
        assert!(d.owner_of_system(s).is_some(), "system {s} has no owner");
    }
}

#[test]
fn a_file_too_large_for_a_directory_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("agencies.toml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(MAX_FILE_BYTES + 1).expect("a sparse file");
    let e = Directory::read(&path).expect_err("too large");
    assert!(e.to_string().contains("more than the"), "{e}");
}
