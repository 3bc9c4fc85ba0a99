//! `cargo xtask schema import <file>`: replace the committed hashicorp/aws schema.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, format_err, Context};
use clap::{Args, Subcommand};

use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Replace the committed schema with the output of `terraform providers schema -json`
    /// (plain or gzipped JSON); a broken or foreign file is rejected and nothing changes
    Import {
        /// The JSON file (`terraform providers schema -json > aws.json` in an initialised root)
        file: PathBuf,
    },
}

const PROVIDER_KEY: &str = "registry.terraform.io/hashicorp/aws";
/// Resources this project uses: a schema without them is not the AWS provider's.
const EXPECTED_RESOURCES: &[&str] =
    &["aws_s3_bucket", "aws_ecs_service", "aws_ecs_task_definition", "aws_iam_role", "aws_security_group"];

impl SchemaArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        match self.command {
            SchemaCommand::Import { file } => import(project, &file),
        }
    }
}

fn import(project: &Project, file: &Path) -> anyhow::Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display())).map_err(usage)?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut text)
            .map_err(|err| usage(format!("{}: not a readable gzip file: {err}", file.display())))?;
        text
    } else {
        raw
    };
    let summary = validate(&json)
        .map_err(|err| usage(format!("{} is not a usable hashicorp/aws schema: {err}", file.display())))?;

    let target = project.root.join(tools::terraform::SCHEMA_PATH);
    let dir = target.parent().expect("schema path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".aws.schema.json.gz.tmp");
    {
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::best());
        gz.write_all(&json)?;
        gz.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, &target).with_context(|| format!("replacing {}", target.display()))?;
    println!("imported {summary} into {}", project.rel(&target).display());
    println!("record where it came from in {}/README.md and commit both", project.rel(dir).display());
    Ok(())
}

/// Checks the document is `terraform providers schema -json` output for hashicorp/aws.
fn validate(json: &[u8]) -> anyhow::Result<String> {
    let doc: serde_json::Value = serde_json::from_slice(json).map_err(|err| format_err!("not JSON ({err})"))?;
    let format = doc["format_version"]
        .as_str()
        .ok_or_else(|| format_err!("no format_version (expected the output of `terraform providers schema -json`)"))?;
    if !format.starts_with("1.") {
        bail!("format_version {format:?} is not one this tool knows (1.x)");
    }
    let schemas = doc["provider_schemas"].as_object().ok_or_else(|| format_err!("no provider_schemas object"))?;
    let aws = schemas.get(PROVIDER_KEY).ok_or_else(|| {
        let found: Vec<&str> = schemas.keys().map(String::as_str).collect();
        format_err!("no {PROVIDER_KEY} provider in it (found: {})", found.join(", "))
    })?;
    if !aws["provider"]["block"].is_object() {
        bail!("the provider has no configuration block schema");
    }
    let resources = aws["resource_schemas"].as_object().ok_or_else(|| format_err!("no resource_schemas"))?;
    let data_sources = aws["data_source_schemas"].as_object().map_or(0, |d| d.len());
    let missing: Vec<&str> = EXPECTED_RESOURCES.iter().copied().filter(|r| !resources.contains_key(*r)).collect();
    if !missing.is_empty() {
        bail!("resources this project needs are missing: {}", missing.join(", "));
    }
    for (name, schema) in resources {
        if !schema["block"].is_object() {
            bail!("resource {name} has no block schema");
        }
    }
    Ok(format!("{} resources and {data_sources} data sources", resources.len()))
}

#[cfg(test)]
mod tests {
    use super::validate;

    fn doc(resources: &[&str]) -> String {
        let resources: Vec<String> =
            resources.iter().map(|r| format!("\"{r}\": {{\"version\": 0, \"block\": {{}}}}")).collect();
        format!(
            "{{\"format_version\": \"1.0\", \"provider_schemas\": {{\"registry.terraform.io/hashicorp/aws\": {{\"provider\": {{\"version\": 0, \"block\": {{}}}}, \"resource_schemas\": {{{}}}, \"data_source_schemas\": {{}}}}}}}}",
            resources.join(",")
        )
    }

    #[test]
    fn accepts_an_aws_schema() {
        let text = doc(super::EXPECTED_RESOURCES);
        assert_eq!(validate(text.as_bytes()).unwrap(), "5 resources and 0 data sources");
    }

    #[test]
    fn rejects_broken_and_foreign_documents() {
        assert!(validate(b"{not json").unwrap_err().to_string().contains("not JSON"));
        let google = doc(super::EXPECTED_RESOURCES).replace("hashicorp/aws", "hashicorp/google");
        assert!(validate(google.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("no registry.terraform.io/hashicorp/aws"));
        let partial = doc(&["aws_s3_bucket"]);
        assert!(validate(partial.as_bytes()).unwrap_err().to_string().contains("aws_ecs_service"));
        assert!(validate(b"{\"format_version\": \"2.0\"}").unwrap_err().to_string().contains("format_version"));
    }
}
