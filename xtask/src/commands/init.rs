//! `cargo xtask init <env>`: a new environment file from the example, then its Terraform backend.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use clap::Args;
use settings::Environment;

use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the new environment (envs/<ENV>.toml)
    pub env: String,
    /// AWS region (asked when missing and a terminal is attached)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS account id, 12 digits
    #[arg(long)]
    pub account_id: Option<String>,
    /// Prefix of every resource name
    #[arg(long)]
    pub project_name: Option<String>,
    /// S3 bucket holding the Terraform state
    #[arg(long)]
    pub state_bucket: Option<String>,
    /// Only write the env file; don't run `terraform init` against the backend
    #[arg(long)]
    pub no_backend: bool,
}

impl InitArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        settings::check_env_name(&self.env).map_err(usage)?;
        let path = project.root.join("envs").join(format!("{}.toml", self.env));
        let given =
            [&self.region, &self.account_id, &self.project_name, &self.state_bucket].iter().any(|v| v.is_some());
        if path.exists() {
            if given {
                bail!(usage(format!(
                    "{} exists already; edit it instead of passing settings to init",
                    project.rel(&path).display()
                )));
            }
            if self.no_backend {
                println!(
                    "{} exists; nothing to create, and --no-backend leaves its backend alone",
                    project.rel(&path).display()
                );
            } else {
                println!("{} exists; initialising its backend only", project.rel(&path).display());
            }
        } else {
            self.create(project, &path)?;
        }
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        render::write(&project.root, &render::render_all(&project.root)?)?;
        println!("rendered rendered/{}", env.name);
        if self.no_backend {
            println!(
                "Next: edit the platform ids in {}, then `cargo xtask init {}` for the backend",
                project.rel(&path).display(),
                self.env
            );
            return Ok(());
        }
        // The env file and rendered/ are written by now: a failure says so, and is not "nothing
        // changed" (exit 2) but a step that failed (exit 1).
        if let Err(err) = crate::live::Live::connect(project, env) {
            bail!(
                "{err:#}\n{} and rendered/{} were written and are kept. Without AWS access yet, \
                 `cargo xtask init {} --no-backend` stops before the backend; run `cargo xtask init {}` again once you have credentials",
                project.rel(&path).display(),
                self.env,
                self.env,
                self.env
            );
        }
        println!("Backend ready. Next: `cargo xtask deploy loki --env {}` (a dry run; add --execute to act)", self.env);
        Ok(())
    }

    fn create(&self, project: &Project, path: &std::path::Path) -> anyhow::Result<()> {
        let example = project.root.join("envs/example.toml");
        let text = std::fs::read_to_string(&example).with_context(|| format!("reading {}", example.display()))?;
        let mut doc: settings::TomlDocument = text.parse().context("parsing envs/example.toml")?;
        let region = value(&self.region, "--region", "AWS region", "eu-west-1")?;
        let account = value(&self.account_id, "--account-id", "AWS account id (12 digits)", "")?;
        let name = value(
            &self.project_name,
            "--project-name",
            "project name (prefix of resource names)",
            &format!("temporal-{}", self.env),
        )?;
        let bucket = value(&self.state_bucket, "--state-bucket", "S3 bucket of the Terraform state", "")?;
        // The example's ARNs and host names name its region and account: move them along.
        let moved = settings::retarget(&mut doc, &region, &account);
        settings::set_in_document(&mut doc, &["aws", "region"], region.as_str().into())?;
        settings::set_in_document(&mut doc, &["aws", "account_id"], account.as_str().into())?;
        settings::set_in_document(&mut doc, &["project", "name"], name.as_str().into())?;
        settings::set_in_document(&mut doc, &["state", "bucket"], bucket.as_str().into())?;
        let key = format!("loki-migration/{}.tfstate", self.env);
        settings::set_in_document(&mut doc, &["state", "key"], key.as_str().into())?;
        let new_text = doc.to_string();
        // Validate before anything is written: a bad value leaves no file behind.
        settings::parse(&new_text).map_err(|err| {
            let derived = if self.project_name.is_none() && format!("{err:#}").contains("project.name") {
                format!(
                    "\ninit derived project.name {name:?} from the env name; pass --project-name to choose one that fits"
                )
            } else {
                String::new()
            };
            usage(format!("{}: {err:#}{derived}", project.rel(path).display()))
        })?;
        settings::write_atomically(path, &new_text)?;
        println!(
            "created {} (platform ids are the example's placeholders: set yours before deploying)",
            project.rel(path).display()
        );
        if !moved.is_empty() {
            println!("  moved to {region} / {account}");
        }
        let created = settings::parse(&new_text)?;
        let left = settings::placeholders(&created);
        if !left.is_empty() {
            println!("  still the example's placeholders, to set before deploying: {}", left.join(", "));
        }
        Ok(())
    }
}

/// A flag's value, or the answer to a prompt when a terminal is attached.
fn value(flag: &Option<String>, flag_name: &str, question: &str, default: &str) -> anyhow::Result<String> {
    if let Some(value) = flag {
        return Ok(value.clone());
    }
    if !std::io::stdin().is_terminal() {
        if default.is_empty() {
            bail!(usage(format!("missing {question}: pass {flag_name} (see `cargo xtask init --help`)")));
        }
        return Ok(default.to_string());
    }
    let shown = if default.is_empty() { String::new() } else { format!(" [{default}]") };
    eprint!("{question}{shown}: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    Ok(if answer.is_empty() { default.to_string() } else { answer.to_string() })
}
