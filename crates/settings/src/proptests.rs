//! Property tests of the env-file editor: for any env file it accepts (the example's content with
//! random comment lines, blank lines, indentation and trailing comments around it), `set` and
//! `set_collector` change exactly the value asked for, keep every comment and all layout, and
//! setting the old value back gives the original file byte for byte.

use proptest::prelude::*;

use super::*;

const EXAMPLE: &str = include_str!("../../../envs/example.toml");

/// What may surround a line: comment or blank lines before it, indentation, a trailing comment.
#[derive(Debug, Clone)]
struct Decoration {
    before: Vec<String>,
    indent: String,
    trailing: Option<String>,
}

fn comment_text() -> impl Strategy<Value = String> {
    // Any printable text, including `#`, `=`, quotes and non-ASCII.
    "[ -~é☃]{0,30}"
}

fn decoration() -> impl Strategy<Value = Decoration> {
    let line_before =
        prop_oneof![Just(String::new()), ("[ \t]{0,2}", comment_text()).prop_map(|(ws, text)| format!("{ws}#{text}")),];
    (
        prop::collection::vec(line_before, 0..3),
        "[ \t]{0,2}",
        prop::option::of(("[ \t]{1,3}", comment_text()).prop_map(|(ws, text)| format!("{ws}#{text}"))),
    )
        .prop_map(|(before, indent, trailing)| Decoration { before, indent, trailing })
}

/// The example env file with random decoration on every line.
fn decorated_example() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = EXAMPLE.lines().collect();
    prop::collection::vec(decoration(), lines.len()).prop_map(move |decorations| {
        let mut out = String::new();
        for (line, d) in lines.iter().zip(decorations) {
            for extra in &d.before {
                out.push_str(extra);
                out.push('\n');
            }
            let is_content = !line.trim().is_empty() && !line.trim_start().starts_with('#');
            if is_content {
                out.push_str(&d.indent);
            }
            out.push_str(line);
            if let (true, Some(trailing)) = (is_content, &d.trailing) {
                out.push_str(trailing);
            }
            out.push('\n');
        }
        out
    })
}

#[derive(Debug, Clone)]
enum Edit {
    LokiEnabled(bool),
    RetentionDays(u32),
    Collector(&'static str, Collector),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<bool>().prop_map(Edit::LokiEnabled),
        prop::sample::select(cloudwatch_retention_days()).prop_map(Edit::RetentionDays),
        (prop::sample::select(SERVICE_NAMES.to_vec()), prop_oneof![Just(Collector::Adot), Just(Collector::Alloy)])
            .prop_map(|(service, collector)| Edit::Collector(service, collector)),
    ]
}

impl Edit {
    fn apply(&self, path: &Path) -> anyhow::Result<()> {
        match self {
            Edit::LokiEnabled(on) => set(path, &["loki", "enabled"], (*on).into()),
            Edit::RetentionDays(days) => set(path, &["loki", "retention_days"], i64::from(*days).into()),
            Edit::Collector(service, collector) => set_collector(path, service, *collector),
        }
    }

    /// The same edit with the value `settings` has now.
    fn undo(&self, settings: &Settings) -> Edit {
        match self {
            Edit::LokiEnabled(_) => Edit::LokiEnabled(settings.loki.enabled),
            Edit::RetentionDays(_) => Edit::RetentionDays(settings.loki.retention_days),
            Edit::Collector(service, _) => {
                Edit::Collector(service, settings.services.get(service).expect("known service").collector)
            }
        }
    }

    fn holds_in(&self, settings: &Settings) -> bool {
        match self {
            Edit::LokiEnabled(on) => settings.loki.enabled == *on,
            Edit::RetentionDays(days) => settings.loki.retention_days == *days,
            Edit::Collector(service, collector) => {
                settings.services.get(service).map(|s| s.collector) == Some(*collector)
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn env_file_edits_keep_comments_and_round_trip(text in decorated_example(), edit in edit()) {
        let before = parse(&text).map_err(|err| TestCaseError::fail(format!("generated an invalid file: {err:#}\n{text}")))?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prop.toml");
        std::fs::write(&path, &text).unwrap();

        edit.apply(&path).map_err(|err| TestCaseError::fail(format!("{err:#}")))?;
        let after_text = std::fs::read_to_string(&path).unwrap();
        let after = parse(&after_text).map_err(|err| TestCaseError::fail(format!("{err:#}")))?;
        prop_assert!(edit.holds_in(&after), "{edit:?} not applied:\n{after_text}");

        // Only the edited line may differ, and only in its value: same key, indentation and comment.
        let old_lines: Vec<&str> = text.lines().collect();
        let new_lines: Vec<&str> = after_text.lines().collect();
        prop_assert_eq!(old_lines.len(), new_lines.len());
        let changed: Vec<(&str, &str)> = old_lines.iter().zip(&new_lines).filter(|(a, b)| a != b).map(|(a, b)| (*a, *b)).collect();
        prop_assert!(changed.len() <= 1, "{changed:#?}");
        for (old, new) in changed {
            let key = |line: &str| line.split_once('=').map(|(k, _)| k.to_string());
            let comment = |line: &str| line.split_once('#').map(|(_, c)| c.to_string());
            prop_assert_eq!(key(old), key(new));
            prop_assert_eq!(comment(old), comment(new));
        }

        // Setting the old value back restores the file byte for byte.
        edit.undo(&before).apply(&path).map_err(|err| TestCaseError::fail(format!("{err:#}")))?;
        prop_assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
