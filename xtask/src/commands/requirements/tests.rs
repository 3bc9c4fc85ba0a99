use std::path::{Path, PathBuf};

use super::*;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/requirements")
}

/// The fixture tree copied to a scratch directory, plus files the walk must skip.
fn scratch_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_root(), dir.path());
    let bad = "#[test]\nfn req_9_9_must_not_be_seen() {}\n";
    for skipped in ["target/debug", ".tools/lib", "crates/demo/fixtures", "node_modules/x"] {
        std::fs::create_dir_all(dir.path().join(skipped)).unwrap();
        std::fs::write(dir.path().join(skipped).join("skipped.rs"), bad).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn ids(scan: &Scan, name: &str) -> Vec<String> {
    scan.tests.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no test {name}: {:?}", scan.tests)).ids.clone()
}

#[test]
fn names_carry_ids_in_every_form() {
    assert_eq!(parse_name("req_2_3_lifecycle_scoped_to_chunks").unwrap(), ["2.3"]);
    assert_eq!(parse_name("req_10_5").unwrap(), ["10.5"]);
    assert_eq!(parse_name("req_3_5_req_3_6_pipeline_in_rendered_config").unwrap(), ["3.5", "3.6"]);
    assert_eq!(parse_name("req_p6_req_2_3_lifecycle").unwrap(), ["P6", "2.3"]);
    assert_eq!(parse_name("req_nf6_wal_flushed").unwrap(), ["NF6"]);
    // Trailing numbers after the id are the description, not a second id.
    assert_eq!(parse_name("req_10_1_cpu_300_is_rejected").unwrap(), ["10.1"]);
    assert!(parse_name("ports_metrics_and_service_connect").unwrap().is_empty());
}

#[test]
fn names_with_a_section_or_no_id_are_problems() {
    let section = parse_name("req_5_retention_in_the_config").unwrap_err();
    assert!(section.contains("section 5"), "{section}");
    for name in ["req_safe_shutdown", "req_public_access", "req_nfs_mount", "req_", "req_5"] {
        assert!(parse_name(name).is_err(), "{name}");
    }
}

#[test]
fn tags_take_canonical_ids_in_any_case() {
    assert_eq!(parse_tag(" 2.3, p4 nf6").unwrap(), ["2.3", "P4", "NF6"]);
    assert!(parse_tag("").is_err());
    assert!(parse_tag("2.3, X9").unwrap_err().contains("X9"));
    assert!(parse_tag("02.3").is_err());
}

#[test]
fn terraform_runs_are_found_with_names_and_tags() {
    let mut scan = Scan::default();
    let text = std::fs::read_to_string(fixture_root().join("infra/tests/storage.tftest.hcl")).unwrap();
    scan_text("storage.tftest.hcl", TestKind::Terraform, &text, &mut scan);
    assert_eq!(ids(&scan, "req_2_3_lifecycle_scoped_to_chunks"), ["2.3"]);
    assert_eq!(ids(&scan, "tagged_only"), ["P4"]);
    assert_eq!(ids(&scan, "req_2_3_slash_tag"), ["2.3", "3.8", "NF6"]);
    assert!(ids(&scan, "plain_name_is_not_a_requirement_test").is_empty());
    // The blank line detaches the tag: the test names nothing, the tag is reported.
    assert!(ids(&scan, "blank_line_breaks_the_tag").is_empty());
    let lines: Vec<usize> = scan.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [20, 28], "{:#?}", scan.problems);
    assert!(scan.problems[0].message.contains("section 5"));
    assert!(scan.problems[1].message.contains("not directly above a test"));
    assert_eq!(scan.tests.iter().find(|t| t.name == "tagged_only").unwrap().line, 11);
}

#[test]
fn rust_tests_are_found_with_names_tags_and_proptests() {
    let mut scan = Scan::default();
    let text = std::fs::read_to_string(fixture_root().join("crates/demo/src/lib.rs")).unwrap();
    scan_text("lib.rs", TestKind::Rust, &text, &mut scan);
    assert_eq!(ids(&scan, "req_3_8_req_p4_labels_and_json"), ["3.8", "P4"]);
    assert_eq!(ids(&scan, "tagged_above_attributes"), ["NF6", "10.5"]);
    assert_eq!(ids(&scan, "req_10_5_same_line"), ["10.5"]);
    assert_eq!(ids(&scan, "req_p4_in_proptest"), ["P4"]);
    // Not marked #[test]: not a test, whatever its name.
    assert!(!scan.tests.iter().any(|t| t.name == "req_2_3_helper" || t.name == "helper_not_a_test"));
    let messages: Vec<String> = scan.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].starts_with("lib.rs:5: a `req:` tag that is not directly above a test"), "{messages:#?}");
    assert!(messages[1].contains("`req_safe_shutdown_has_no_id`"), "{messages:#?}");
    assert!(messages[2].contains("X9"), "{messages:#?}");
}

#[test]
fn report_lists_coverage_and_fails_on_gaps_and_unknown_ids() {
    let tree = scratch_tree();
    let report = build(tree.path()).unwrap();
    assert!(
        !report.problems.iter().any(|p| p.message.contains("9.9")),
        "skipped dirs were scanned: {:#?}",
        report.problems
    );
    // 7.7 is named by a test but not in the fixture's requirements.toml.
    assert!(report.problems.iter().any(|p| p.message.contains("names requirement 7.7")), "{:#?}", report.problems);
    // Every offline requirement of the fixture is named somewhere; 4.5 is live only.
    assert!(report.missing().is_empty(), "{:?}", report.missing());
    let row = report.rows.iter().find(|r| r.requirement.id == "2.3").unwrap();
    let names: Vec<&str> = row.tests.iter().map(|t| t.name.as_str()).collect();
    // `bad_tag_token`'s tag has a bad token, so the whole tag is ignored (and reported).
    assert_eq!(names, ["req_2_3_lifecycle_scoped_to_chunks", "req_2_3_slash_tag"]);
    let table = report.table();
    assert!(
        table.contains("4.5   LogQL in Explore\n      tests: none (live only)\n      live:  verify 7\n"),
        "{table}"
    );
    let json = report.to_json();
    assert_eq!(json["passed"], false);
    assert_eq!(json["requirements"][1]["tests"][0]["file"], "crates/demo/src/lib.rs");
    let err = format!("{:#}", report.verdict().unwrap_err());
    assert!(err.contains("problem(s) with requirement names"), "{err}");
}

#[test]
fn an_offline_requirement_without_a_test_fails_the_report() {
    let requirements = parse_requirements(
        "[[requirement]]\nid = \"2.3\"\nstatement = \"x\"\noffline = true\n\n\
         [[requirement]]\nid = \"NF1\"\nstatement = \"y\"\noffline = false\n",
    )
    .unwrap();
    let report = Report::new(requirements, Scan::default());
    assert_eq!(report.missing(), ["2.3"]);
    let err = format!("{:#}", report.verdict().unwrap_err());
    assert!(err.contains("1 offline-checkable requirement(s) have no test: 2.3"), "{err}");
}

#[test]
fn requirements_file_rejects_bad_and_duplicate_ids() {
    let err = parse_requirements(
        "[[requirement]]\nid = \"2.3\"\nstatement = \"x\"\noffline = true\n\n\
         [[requirement]]\nid = \"2.3\"\nstatement = \"x\"\noffline = true\n\n\
         [[requirement]]\nid = \"p4\"\nstatement = \"x\"\noffline = true\n",
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("2.3 is listed twice") && err.contains("\"p4\""), "{err}");
}

/// The committed requirements.toml parses and holds every id of ../shared/requirements.md.
#[test]
fn committed_requirements_cover_every_numbered_requirement() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join(REQUIREMENTS_FILE)).unwrap();
    let ids: Vec<String> = parse_requirements(&text).unwrap().into_iter().map(|r| r.id).collect();
    let sections = [7, 7, 12, 5, 5, 6, 5, 5, 4, 5];
    let mut expected: Vec<String> = Vec::new();
    for (section, count) in sections.iter().enumerate() {
        expected.extend((1..=*count).map(|item| format!("{}.{item}", section + 1)));
    }
    expected.extend((1..=7).map(|n| format!("NF{n}")));
    expected.extend((1..=7).map(|n| format!("P{n}")));
    assert_eq!(ids, expected);
}

/// The real tree scans well under a second (the walk skips target/ and .tools/).
#[test]
fn scanning_the_repository_finds_its_tests() {
    // How long it takes is `cargo xtask bench`'s to print, not a test's to assert.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scan = scan(root).unwrap();
    assert!(scan.tests.iter().any(|t| t.name.starts_with("req_")), "{} tests found", scan.tests.len());
}
