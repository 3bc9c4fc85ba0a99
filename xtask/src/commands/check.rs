//! `cargo xtask check`: everything that can be proven offline, without AWS credentials (the
//! stages are in `checks::suite`).

use clap::Args;

use crate::checks::stages::Stages;
use crate::project::Project;

#[derive(Debug, Args)]
pub struct CheckArgs {}

impl CheckArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let mut stages = Stages::default();
        crate::checks::suite::add_stages(project, &mut stages);
        stages.finish("check")
    }
}
