use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "BUCKET" => Some("logs".into()),
        "PATH_NAME" => Some("/home/bozo/ideas/thoughts.for.today".into()),
        "UPPER" => Some("ABC".into()),
        "FILE" => Some("thoughts.for.today".into()),
        _ => None,
    }
}

fn ok(input: &str) -> String {
    expand(input, env).unwrap_or_else(|f| panic!("{input:?}: {}", f.error.message()))
}

fn err(input: &str) -> ParseError {
    expand(input, env).expect_err(input).error
}

#[test]
fn text_and_plain_references() {
    assert_eq!(ok("bucketnames: ${BUCKET}\n"), "bucketnames: logs\n");
    assert_eq!(ok("a${BUCKET}b${BUCKET}"), "alogsblogs");
    assert_eq!(ok("${UNSET}"), "", "unset expands to nothing, without an error");
}

#[test]
fn only_dollar_brace_starts_a_reference() {
    assert_eq!(ok("$BUCKET $ 5$ end$"), "$BUCKET $ 5$ end$");
    assert_eq!(ok("cost: $5"), "cost: $5");
}

#[test]
fn double_dollar_is_an_escape() {
    assert_eq!(ok("$${BUCKET}"), "${BUCKET}");
    assert_eq!(ok("$$BUCKET"), "$BUCKET");
    assert_eq!(ok("a $$$${BUCKET}"), "a $${BUCKET}");
    assert_eq!(ok("$$$BUCKET"), "$$BUCKET");
    assert_eq!(ok("$$${BUCKET}"), "$logs");
}

#[test]
fn backslash_escapes_outside_references_v1_0_3() {
    // A YAML "\\d" reaches the YAML parser as "\d".
    assert_eq!(ok(r#"regex: "\\d+\/x""#), r#"regex: "\d+/x""#);
    assert_eq!(ok(r"\n \$"), r"\n \$");
}

#[test]
fn defaults() {
    assert_eq!(ok("${UNSET:-dflt}"), "dflt");
    assert_eq!(ok("${BUCKET:-dflt}"), "logs");
    assert_eq!(ok("${UNSET=x}${UNSET:=y}${UNSET:?z}${UNSET:+w}"), "xyzw");
    assert_eq!(ok("${UNSET:-}"), "");
    assert_eq!(ok("${UNSET:-${BUCKET}}"), "logs");
    assert_eq!(ok("${UNSET:-a ${UNSET2:-b} c}"), "a b c");
    assert_eq!(ok("${UNSET:-http://x:3100/y}"), "http://x:3100/y");
}

#[test]
fn string_functions() {
    assert_eq!(ok("${#BUCKET}"), "4");
    assert_eq!(ok("${PATH_NAME:11}"), "ideas/thoughts.for.today");
    assert_eq!(ok("${PATH_NAME:11:5}"), "ideas");
    assert_eq!(ok("${PATH_NAME:-5}"), "/home/bozo/ideas/thoughts.for.today", ":- is a default, not a substring");
    assert_eq!(ok("${BUCKET^}${BUCKET^^}${UPPER,}${UPPER,,}"), "LogsLOGSaBCabc");
    assert_eq!(ok("${PATH_NAME#/home}"), "/bozo/ideas/thoughts.for.today");
    assert_eq!(ok("${FILE#*.}"), "for.today");
    assert_eq!(ok("${FILE##*.}"), "today");
    assert_eq!(ok("${FILE%.*}"), "thoughts.for");
    assert_eq!(ok("${FILE%%.*}"), "thoughts");
    // `*` never crosses a `/` (Go's path.Match).
    assert_eq!(ok("${PATH_NAME#*.}"), "/home/bozo/ideas/thoughts.for.today");
    assert_eq!(ok("${BUCKET/o/0}"), "l0gs");
    assert_eq!(ok("${UPPER//B/}"), "AC");
    assert_eq!(ok("${BUCKET/#lo/LO}${BUCKET/%gs/GS}"), "LOgsloGS");
}

#[test]
fn what_loki_rejects() {
    // The comment that stopped Loki at start-up.
    assert_eq!(err("# ${...} is expanded by Loki"), ParseError::ParseVariableName);
    assert_eq!(err("${}"), ParseError::ParseVariableName);
    assert_eq!(err("${ BUCKET}"), ParseError::ParseVariableName);
    assert_eq!(err("${BUCKET"), ParseError::MissingClosingBrace);
    assert_eq!(err("${BUCKET.x}"), ParseError::MissingClosingBrace);
    // No colon-less `-`, `+`, `?` forms in drone/envsubst.
    assert_eq!(err("${BUCKET-x}"), ParseError::MissingClosingBrace);
    assert_eq!(err("${BUCKET+x}"), ParseError::MissingClosingBrace);
    assert_eq!(err("${BUCKET:-x"), ParseError::ParseFuncSubstitution);
    assert_eq!(err("${BUCKET:}"), ParseError::ParseFuncSubstitution);
    assert_eq!(err("${BUCKET#}"), ParseError::ParseFuncSubstitution);
    assert_eq!(err("${BUCKET/a}"), ParseError::BadSubstitution);
    assert_eq!(err("${#}"), ParseError::BadSubstitution);
    assert_eq!(err("${BUCKET^x}"), ParseError::BadSubstitution);
}

#[test]
fn a_failure_points_at_its_reference() {
    let text = "a: ${BUCKET}\n# ${oops!}\n";
    let failure = expand(text, env).unwrap_err();
    assert_eq!(failure.offset, text.find("${oops").unwrap());
}

#[test]
fn references_include_nested_defaults() {
    let refs: Vec<String> =
        references("${A:-${B}} $${C} ${#D} ${E:1:2}").unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(refs, ["A", "B", "D", "E"]);
}

#[test]
fn globs_follow_go_path_match() {
    assert!(glob("a*c", "abc"));
    assert!(!glob("a*c", "a/c"));
    assert!(glob("[a-c]?", "bz"));
    assert!(!glob("[^a-c]", "b"));
    assert!(glob(r"\*", "*"));
}
