//! The live environment: signed AWS calls with the operator's credentials (`api`), SSM sessions
//! and tunnels, ECS waits, and `Live`, a deployed env. May use `project` only; nothing offline uses it.
//!
//! A deployed environment: its settings, the AWS API with the AWS CLI's credentials for its
//! account, and Terraform initialised against its state backend.

pub mod api;
pub mod ecs;
pub mod session;
pub mod tunnel;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{bail, Context};
use serde_json::Value;
use settings::Environment;
use tools::aws::{Aws, Identity};
use tools::terraform::{EngineChoice, ProviderChoice, Terraform};

use crate::live::api::Api;
use crate::project::{usage, Project};

pub struct Live<'p> {
    pub project: &'p Project,
    pub env: Environment,
    pub api: Api,
    pub identity: Identity,
    pub terraform: Terraform,
    /// Read once per apply: `phase::apply` forgets them, so a phase never sees stale outputs.
    outputs: RefCell<Option<Rc<Value>>>,
}

impl<'p> Live<'p> {
    /// Checks the credentials belong to the env's account and initialises its Terraform backend.
    pub fn connect(project: &'p Project, env: Environment) -> anyhow::Result<Live<'p>> {
        // The CLI stays required: it resolves the credentials (profiles, SSO, roles).
        let aws = Aws::find(&env.settings.aws.region)?;
        let api = Api::connect(&aws)?;
        let identity = api.identity().map_err(usage)?;
        if identity.account != env.settings.aws.account_id {
            bail!(usage(format!(
                "the AWS credentials are for account {} ({}) but {} is account {}; switch to that account's profile",
                identity.account,
                identity.arn,
                project.rel(&env.path).display(),
                env.settings.aws.account_id
            )));
        }
        let terraform = terraform_for_env(project, &env)?;
        init_backend(&terraform, project, &env)?;
        Ok(Live { project, env, api, identity, terraform, outputs: RefCell::new(None) })
    }

    pub fn infra_dir(&self) -> PathBuf {
        self.project.root.join("infra")
    }

    /// `terraform output -json` as `{name: value}`, read once per apply.
    pub fn outputs(&self) -> anyhow::Result<Rc<Value>> {
        if let Some(outputs) = self.outputs.borrow().as_ref() {
            return Ok(Rc::clone(outputs));
        }
        let text = self
            .terraform
            .cmd("read the Terraform outputs")
            .args(["output", "-json", "-no-color"])
            .dir(self.infra_dir())
            .read()?;
        let raw: Value = serde_json::from_str(&text).context("`terraform output -json` did not print JSON")?;
        let mut flat = serde_json::Map::new();
        if let Some(map) = raw.as_object() {
            for (name, entry) in map {
                flat.insert(name.clone(), entry["value"].clone());
            }
        }
        let outputs = Rc::new(Value::Object(flat));
        *self.outputs.borrow_mut() = Some(Rc::clone(&outputs));
        Ok(outputs)
    }

    /// The next `outputs()` reads them again (after an apply changed them).
    pub fn forget_outputs(&self) {
        self.outputs.borrow_mut().take();
    }

    /// One output that must be a non-empty string, or an error naming the phase that makes it.
    /// `name` may be a dotted path into a map output: `temporal_services.worker.service_name`.
    pub fn output_str(&self, name: &str, made_by: &str) -> anyhow::Result<String> {
        let outputs = self.outputs()?;
        let mut value: &Value = &outputs;
        for key in name.split('.') {
            value = &value[key];
        }
        match value.as_str() {
            Some(value) if !value.is_empty() => Ok(value.to_string()),
            _ => bail!(usage(format!(
                "the Terraform output `{name}` is missing in environment `{}`; run `{made_by}` first",
                self.env.name
            ))),
        }
    }
}

/// Terraform with the real provider (deploying needs it) and a data dir of the env's own.
pub fn terraform_for_env(project: &Project, env: &Environment) -> anyhow::Result<Terraform> {
    let terraform = tools::terraform::discover(
        &project.root,
        || project.python_tools(),
        EngineChoice::from_env(),
        ProviderChoice::Registry,
        || tools::terraform::build_offline_provider(&project.root),
    )?;
    let data_dir = project.root.join("infra/.terraform/envs").join(&env.name);
    Ok(terraform.with_data_dir(data_dir))
}

/// The `terraform init` arguments that point the root module at the env's state.
pub fn backend_args(env: &Environment) -> Vec<String> {
    let s = &env.settings;
    vec![
        "init".into(),
        "-input=false".into(),
        "-reconfigure".into(),
        "-no-color".into(),
        format!("-backend-config=bucket={}", s.state.bucket),
        format!("-backend-config=key={}", s.state.key),
        format!("-backend-config=region={}", s.aws.region),
        // S3-native state locking (Terraform 1.10+): no DynamoDB table needed.
        "-backend-config=use_lockfile=true".into(),
    ]
}

fn init_backend(terraform: &Terraform, project: &Project, env: &Environment) -> anyhow::Result<()> {
    terraform
        .cmd(format!("initialise the Terraform backend of `{}` (s3://{}/{})", env.name, env.settings.state.bucket, env.settings.state.key))
        .args(backend_args(env))
        .dir(project.root.join("infra"))
        .checked_output()
        .map(drop)
        .context("Terraform could not initialise the state backend or install the hashicorp/aws provider; deploying needs both (network access to the registry and the state bucket)")
}
