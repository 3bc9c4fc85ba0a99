//! End to end: a real Terraform loads the freshly built binary as `hashicorp/aws`
//! (through a `dev_overrides` CLI configuration) and validates, tests and plans
//! small configurations against the real provider schema.
//!
//! Terraform comes from the `TERRAFORM` environment variable (a path, or a name
//! looked up on PATH), else `terraform` on PATH. Without one these tests fail: the
//! point of the crate is that Terraform accepts it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-aws");
const MAGIC_COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

const MAIN_TF: &str = r#"
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = "eu-west-1"
}

resource "aws_s3_bucket" "logs" {
  bucket = "example-logs"
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/app"
  retention_in_days = 14
}

resource "aws_ecs_task_definition" "app" {
  family                   = "app"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  container_definitions = jsonencode([{
    name      = "app"
    image     = "public.ecr.aws/nginx/nginx:latest"
    essential = true
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group  = aws_cloudwatch_log_group.app.name
        awslogs-region = "eu-west-1"
      }
    }
  }])
}

# ingress/egress are set(object) attributes that also accept block syntax.
resource "aws_security_group" "closed" {
  name    = "closed"
  ingress = []
}

resource "aws_security_group" "web" {
  name = "web"
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"#;

/// The schema the project keeps in its repository.
fn schema_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/provider-schema/aws.schema.json.gz");
    assert!(path.is_file(), "provider schema missing: {}", path.display());
    path
}

fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn terraform_bin() -> PathBuf {
    match std::env::var_os("TERRAFORM") {
        Some(value) if Path::new(&value).components().count() > 1 => {
            let path = PathBuf::from(&value);
            assert!(path.is_file(), "TERRAFORM={} is not a file", path.display());
            path
        }
        Some(name) => {
            find_on_path(&name).unwrap_or_else(|| panic!("TERRAFORM={} not found on PATH", name.to_string_lossy()))
        }
        None => find_on_path(OsStr::new("terraform")).unwrap_or_else(|| {
            panic!(
                "no `terraform` on PATH: install Terraform 1.7 or later, or set TERRAFORM \
                 to a terraform executable (these tests need one and do not skip)"
            )
        }),
    }
}

/// A temporary Terraform working directory plus a CLI configuration that
/// points `hashicorp/aws` at the binary under test.
struct Workspace {
    tmp: tempfile::TempDir,
}

impl Workspace {
    fn new(files: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let provider_dir = Path::new(PROVIDER_BIN).parent().expect("binary has a directory");
        let cli_config = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"hashicorp/aws\" = {:?}\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display().to_string()
        );
        std::fs::write(tmp.path().join("cli.tfrc"), cli_config).expect("write CLI config");
        let work = tmp.path().join("work");
        for (name, content) in files {
            let path = work.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
            std::fs::write(&path, content).expect("write file");
        }
        Self { tmp }
    }

    /// Terraform as `cargo xtask` runs it: plain gRPC on the plugin channel, the converted schema
    /// kept for the next start (the first start of a new build converts it).
    fn terraform(&self, args: &[&str]) -> Output {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("offline-provider-schema.cache");
        self.terraform_with(args, |command| {
            command.env("TF_DISABLE_PLUGIN_TLS", "1").env("OFFLINE_PROVIDER_CACHE", cache);
        })
    }

    fn terraform_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
        let terraform = terraform_bin();
        let mut command = Command::new(&terraform);
        command
            .args(args)
            .current_dir(self.tmp.path().join("work"))
            .env("TF_CLI_CONFIG_FILE", self.tmp.path().join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("OFFLINE_PROVIDER_SCHEMA", schema_path());
        adjust(&mut command);
        command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", terraform.display()))
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn all_output(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn validate_accepts_a_small_config() {
    let ws = Workspace::new(&[("main.tf", MAIN_TF)]);
    let out = ws.terraform(&["validate", "-no-color"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(all_output(&out).contains("The configuration is valid"), "{}", describe(&out));
}

#[test]
fn validate_rejects_an_unknown_argument() {
    let config = MAIN_TF.replace("retention_in_days = 14", "retention_in_dayz = 14");
    let ws = Workspace::new(&[("main.tf", &config)]);
    let out = ws.terraform(&["validate", "-no-color"]);
    let text = all_output(&out);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(text.contains("Unsupported argument"), "{}", describe(&out));
    assert!(text.contains("retention_in_dayz"), "{}", describe(&out));
}

#[test]
fn validate_rejects_a_missing_required_argument() {
    let config = MAIN_TF.replace("family                   = \"app\"", "");
    let ws = Workspace::new(&[("main.tf", &config)]);
    let out = ws.terraform(&["validate", "-no-color"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let text = all_output(&out);
    assert!(text.contains("Missing required argument") && text.contains("\"family\""), "{}", describe(&out));
}

const PASSING_TEST: &str = r#"
mock_provider "aws" {}

run "plan" {
  command = plan

  assert {
    condition     = aws_cloudwatch_log_group.app.retention_in_days == 14
    error_message = "log retention should be 14 days"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.app.container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/app"
    error_message = "container logs should go to the log group"
  }

  assert {
    condition     = one(aws_security_group.web.ingress).from_port == 443
    error_message = "web should open port 443"
  }
}
"#;

const FAILING_TEST: &str = r#"
mock_provider "aws" {}

run "plan" {
  command = plan

  assert {
    condition     = aws_cloudwatch_log_group.app.retention_in_days == 30
    error_message = "expected the wrong retention on purpose"
  }
}
"#;

/// A passing and a failing file in one run: each gets its own verdict.
#[test]
fn terraform_test_with_mock_provider_passes_and_fails_on_a_false_assertion() {
    let ws = Workspace::new(&[
        ("main.tf", MAIN_TF),
        ("tests/pass.tftest.hcl", PASSING_TEST),
        ("tests/wrong.tftest.hcl", FAILING_TEST),
    ]);
    let out = ws.terraform(&["test", "-no-color"]);
    let text = all_output(&out);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(text.contains("tests/pass.tftest.hcl... pass"), "{}", describe(&out));
    assert!(text.contains("tests/wrong.tftest.hcl... fail"), "{}", describe(&out));
    assert!(text.contains("1 passed, 1 failed"), "{}", describe(&out));
    assert!(text.contains("expected the wrong retention on purpose"), "{}", describe(&out));
}

/// Without a mock, plan goes through the echoing plan RPCs of the stand-in.
#[test]
fn plan_without_mocks_works() {
    let ws = Workspace::new(&[("main.tf", MAIN_TF)]);
    let out = ws.terraform(&["plan", "-no-color", "-input=false"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(all_output(&out).contains("Plan: 5 to add"), "{}", describe(&out));
}

/// The converted schema is kept where `OFFLINE_PROVIDER_CACHE` says and serves the next start;
/// a file that is not such a cache is converted over, never served.
#[test]
fn the_converted_schema_is_kept_for_the_next_start() {
    let ws = Workspace::new(&[("main.tf", MAIN_TF)]);
    let cache = ws.tmp.path().join("schema.cache");
    std::fs::write(&cache, b"not a converted schema").unwrap();
    let with_cache = |command: &mut Command| {
        command.env("TF_DISABLE_PLUGIN_TLS", "1").env("OFFLINE_PROVIDER_CACHE", &cache);
    };
    let first = ws.terraform_with(&["validate", "-no-color"], with_cache);
    assert!(first.status.success(), "{}", describe(&first));
    let kept = std::fs::metadata(&cache).unwrap();
    assert!(kept.len() > 1_000_000, "the cache holds the converted schema: {} bytes", kept.len());

    // A typo is caught from the kept schema exactly as from the document.
    let config = MAIN_TF.replace("retention_in_days = 14", "retention_in_dayz = 14");
    std::fs::write(ws.tmp.path().join("work/main.tf"), config).unwrap();
    let second = ws.terraform_with(&["validate", "-no-color"], with_cache);
    assert!(!second.status.success(), "{}", describe(&second));
    assert!(all_output(&second).contains("retention_in_dayz"), "{}", describe(&second));
    // A miss would have renamed a new file over it.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&cache).unwrap().ino(), kept.ino(), "the second start read the cache as it was");
}

/// Terraform's default plugin channel is mTLS, which the stand-in does not speak: the failure
/// must say how to run Terraform instead.
#[test]
fn terraform_with_plugin_tls_is_told_to_disable_it() {
    let ws = Workspace::new(&[("main.tf", MAIN_TF)]);
    let out = ws.terraform_with(&["validate", "-no-color"], |command| {
        command.env_remove("TF_DISABLE_PLUGIN_TLS");
    });
    assert!(!out.status.success(), "{}", describe(&out));
    // Terraform wraps its error text: compare with the line breaks taken out.
    let words = all_output(&out).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("run Terraform with TF_DISABLE_PLUGIN_TLS=1"), "{}", describe(&out));
}

#[test]
fn refuses_to_run_outside_terraform() {
    let out = Command::new(PROVIDER_BIN).env_remove("TF_PLUGIN_MAGIC_COOKIE").output().expect("run binary");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("This binary is a plugin"), "{}", describe(&out));
}

#[test]
fn requires_the_schema_variable() {
    let out = Command::new(PROVIDER_BIN)
        .env("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("OFFLINE_PROVIDER_SCHEMA")
        .output()
        .expect("run binary");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "no handshake expected: {}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OFFLINE_PROVIDER_SCHEMA"), "{}", describe(&out));
}
