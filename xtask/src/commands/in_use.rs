//! `cargo xtask in-use --env E`: the config parameters a rollback may need (what the live
//! deployments and the newest task definition revisions read), as the `-var-file` a plain
//! `terraform plan` takes. With it, Terraform deletes only the older configs nothing reads;
//! without it, it keeps every config (infra/config-parameters.tf). Reads AWS, changes nothing.

use clap::Args;
use settings::Environment;

use crate::live::Live;
use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct InUseArgs {
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Print the names as a JSON array instead of a tfvars line
    #[arg(long)]
    pub json: bool,
}

impl InUseArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        let made_up = settings::placeholder_ids(&env.settings);
        if !made_up.is_empty() {
            return Err(usage(crate::phase::order::placeholders_why(&env, &made_up)));
        }
        let live = Live::connect(project, env)?;
        let in_use = crate::phase::config_parameters_in_use(&live)?;
        if self.json {
            println!("{}", serde_json::json!(in_use));
        } else {
            print!("{}", crate::phase::in_use_tfvars(&in_use));
        }
        eprintln!(
            "{} config parameter(s) in use in `{}`; save this as in-use.tfvars and plan with \
             -var-file=../rendered/{}/terraform.tfvars -var-file=in-use.tfvars",
            in_use.len(),
            live.env.name,
            live.env.name
        );
        Ok(())
    }
}
