//! `cargo xtask build-grafana`: build `grafana/` for linux/arm64, tag it `<grafana version>-<commit>`
//! and push it to the environment's ECR repository (plan task 6.2, req 4.4).
//!
//! Every check runs in both modes (tools, git, credentials, account, repository); only `--execute`
//! builds, logs in and pushes. The ECR password goes from `aws` to `docker login` through stdin
//! and is never printed or put in an argument list. Stdout carries only results (the dry run's
//! commands, or the pushed image); progress and docker's own output go to stderr.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use settings::Environment;
use tools::aws::Aws;
use tools::shell::{self, cmd, Shell};
use tools::Cmd;

use crate::commands::Target;
use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct BuildGrafanaArgs {
    #[command(flatten)]
    pub target: Target,
    /// Build even with uncommitted changes in grafana/ (the tag then ends in `-dirty`)
    #[arg(long)]
    pub allow_dirty: bool,
}

/// ECS tasks run on Graviton (req 1.2, 3.9).
const PLATFORM: &str = "linux/arm64";

/// `--provenance` (to keep the pushed manifest a plain single-platform image) arrived in buildx 0.10.
const MIN_BUILDX: (u32, u32) = (0, 10);
const BUILDX_HINT: &str = "install the Docker buildx plugin 0.10 or newer (Docker 23+ ships it; Debian/Ubuntu: \
                           `apt-get install docker-buildx-plugin`; https://docs.docker.com/build/install-buildx/)";
const DOCKER_HINT: &str = "install Docker 23 or newer with the buildx plugin (https://docs.docker.com/engine/install/)";

/// `aws ecr get-login-password` exists in every AWS CLI v2 and in v1 from 1.17.10.
const MIN_AWS_V1: (u32, u32, u32) = (1, 17, 10);

impl BuildGrafanaArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        let context = project.root.join("grafana");
        let version = grafana_version(project, &context)?;
        let commit = commit(&project.root, self.allow_dirty)?;

        let sh = Shell::new()?;
        let docker = find_docker(&sh)?;
        let aws = Aws::find(&env.settings.aws.region)?;
        check_aws_version(&aws)?;
        let api = crate::live::api::Api::connect(&aws)?;
        check_account(&api, &env)?;
        let repository =
            repository_uri(&api, &env.settings.aws.region, &format!("{}-grafana", env.settings.project.name))?;

        let image = format!("{repository}:{version}-{commit}");
        let plan = Plan::new(&sh, &docker, &aws, &context, &image);
        if !self.target.execute {
            eprintln!("Would build and push {image}:");
            for line in plan.lines() {
                println!("{line}");
            }
            eprintln!("dry run: nothing was built, logged in or pushed; re-run with --execute");
            return Ok(());
        }
        plan.execute()?;
        println!("{image}");
        eprintln!(
            "Pushed. Next: `cargo xtask deploy grafana --env {} --execute` (it records the image in the env file)",
            env.name
        );
        Ok(())
    }
}

/// The three steps, built once: printed by a dry run, run by `--execute`. Docker's commands are
/// plain and sequential (xshell); the AWS CLI's is [`Aws`]'s, with its region and credentials.
struct Plan<'a> {
    sh: &'a Shell,
    build: xshell::Cmd<'a>,
    password: Cmd,
    login: xshell::Cmd<'a>,
    registry: String,
    push: xshell::Cmd<'a>,
}

impl<'a> Plan<'a> {
    fn new(sh: &'a Shell, docker: &Path, aws: &Aws, context: &Path, image: &str) -> Plan<'a> {
        let registry = image.split('/').next().unwrap_or(image).to_string();
        Plan {
            sh,
            build: cmd!(
                sh,
                "{docker} buildx build --platform {PLATFORM} --provenance=false --tag {image} --load {context}"
            ),
            password: aws.cmd("get an ECR login password", ["ecr", "get-login-password"]),
            login: cmd!(sh, "{docker} login --username AWS --password-stdin {registry}"),
            registry,
            push: cmd!(sh, "{docker} push {image}"),
        }
    }

    fn lines(&self) -> [String; 3] {
        let show = |cmd| shell::display(self.sh, cmd);
        [show(&self.build), format!("{} | {}", self.password.display(), show(&self.login)), show(&self.push)]
    }

    fn execute(self) -> anyhow::Result<()> {
        shell::run(self.sh, &format!("build the Grafana image for {PLATFORM}"), self.build)?;
        let password = self.password.read()?;
        // Read, not run: the password goes in on stdin; docker's answer goes to stderr.
        let purpose = format!("log Docker in to {}", self.registry);
        let answer = shell::read(self.sh, &purpose, self.login.stdin(password.trim()))?;
        if !answer.trim().is_empty() {
            eprintln!("{}", answer.trim_end());
        }
        shell::run(self.sh, "push the Grafana image to ECR", self.push)
    }
}

pub fn grafana_version(project: &Project, context: &Path) -> anyhow::Result<String> {
    let dockerfile = context.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).with_context(|| format!("reading {}", dockerfile.display()))?;
    configcheck::grafana::grafana_version(&text)
        .map_err(|why| usage(format!("{}: {why}", project.rel(&dockerfile).display())))
}

/// The short commit the tag names. The image is built from `grafana/` only, so only changes there
/// make the tag lie; with `--allow-dirty` such a build is tagged `-dirty` so it can never take the
/// clean tag's name in the immutable repository.
pub fn commit(root: &Path, allow_dirty: bool) -> anyhow::Result<String> {
    let git = tools::require("git", "install git")?;
    let sh = shell::shell_in(root)?;
    let sha = shell::read(&sh, "read the commit the image is built from", cmd!(sh, "{git} rev-parse --short=7 HEAD"))?
        .trim()
        .to_string();
    let changes = shell::read(
        &sh,
        "look for uncommitted changes in grafana/",
        cmd!(sh, "{git} status --porcelain --untracked-files=all -- grafana"),
    )?;
    if changes.trim().is_empty() {
        return Ok(sha);
    }
    if !allow_dirty {
        bail!(usage(format!(
            "grafana/ has uncommitted changes, so the tag `<version>-{sha}` would not name what is built:\n{}\n\
             commit them first, or pass --allow-dirty for a `-dirty` test image",
            changes.trim_end()
        )));
    }
    Ok(format!("{sha}-dirty"))
}

fn find_docker(sh: &Shell) -> anyhow::Result<PathBuf> {
    let docker = tools::require("docker", DOCKER_HINT)?;
    let out = shell::probe("check for docker buildx", cmd!(sh, "{docker} buildx version"))?;
    if !out.success() {
        let why = out.stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output");
        bail!(tools::not_set_up(format!(
            "docker buildx is not available (`docker buildx version`: {why}); {BUILDX_HINT}"
        )));
    }
    // e.g. "github.com/docker/buildx v0.17.1 257815a"
    let found = out.stdout.split_whitespace().find_map(|w| w.strip_prefix('v')).and_then(numbers::<2>);
    match found {
        Some(v) if v >= [MIN_BUILDX.0, MIN_BUILDX.1] => Ok(docker),
        Some([major, minor]) => {
            bail!(tools::not_set_up(format!("docker buildx {major}.{minor} is too old; {BUILDX_HINT}")))
        }
        None => bail!("could not read the buildx version from {:?}; {BUILDX_HINT}", out.stdout.trim()),
    }
}

fn check_aws_version(aws: &Aws) -> anyhow::Result<()> {
    let version = aws.version()?;
    let numbers = version.strip_prefix("aws-cli/").and_then(numbers::<3>);
    let (major, minor, patch) = MIN_AWS_V1;
    match numbers {
        Some([1, ..]) if numbers < Some([major, minor, patch]) => {
            bail!(tools::not_set_up(format!(
                "{version} has no `ecr get-login-password`; {} (v1 needs {major}.{minor}.{patch}+)",
                tools::aws::INSTALL_HINT
            )))
        }
        Some(_) => Ok(()),
        None => bail!("could not read the AWS CLI version from {version:?}; {}", tools::aws::INSTALL_HINT),
    }
}

/// Pushing to another account's registry is never what was meant.
fn check_account(api: &crate::live::api::Api, env: &Environment) -> anyhow::Result<()> {
    let identity = api.identity()?;
    let wanted = &env.settings.aws.account_id;
    if &identity.account != wanted {
        bail!(usage(format!(
            "the AWS credentials are for account {} ({}), but {} deploys to {wanted}; log in to {wanted}",
            identity.account,
            identity.arn,
            env.path.display()
        )));
    }
    Ok(())
}

fn repository_uri(api: &crate::live::api::Api, region: &str, name: &str) -> anyhow::Result<String> {
    let asked = api.json(
        "find the Grafana ECR repository",
        &probes::aws::ECR,
        "DescribeRepositories",
        serde_json::json!({"repositoryNames": [name]}),
    );
    let answer = match asked {
        Ok(answer) => answer,
        Err(err)
            if err.downcast_ref::<probes::aws::Refused>().is_some_and(|r| r.kind == "RepositoryNotFoundException") =>
        {
            bail!(usage(format!(
                "the ECR repository {name} does not exist in {region}; apply infra/grafana.tf first (it creates the repository), then run build-grafana again"
            )))
        }
        Err(err) => return Err(err),
    };
    answer["repositories"][0]["repositoryUri"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("ECR DescribeRepositories returned no repositoryUri for {name}"))
}

/// The first `N` dot-separated numbers of a version such as `1.46.3` or `0.17.1-desktop.1`.
fn numbers<const N: usize>(version: &str) -> Option<[u32; N]> {
    let mut parts = version.split(['.', '-', '+']);
    let mut out = [0; N];
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_are_read_leniently() {
        assert_eq!(numbers::<2>("0.17.1"), Some([0, 17]));
        assert_eq!(numbers::<3>("1.46.3"), Some([1, 46, 3]));
        assert_eq!(numbers::<2>("0.9.1-desktop.2"), Some([0, 9]));
        assert_eq!(numbers::<3>("2.17"), None);
        assert_eq!(numbers::<2>("abc"), None);
    }

    fn git(dir: &Path, args: &[&str]) {
        let sh = shell::shell_in(dir).unwrap();
        shell::read(&sh, "set up a test repository", cmd!(sh, "git {args...}")).unwrap();
    }

    #[test]
    fn a_dirty_grafana_dir_is_refused_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        git(root, &["init", "-q"]);
        git(root, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
        std::fs::create_dir(root.join("grafana")).unwrap();
        std::fs::write(root.join("other.txt"), "not part of the image").unwrap();

        // Changes elsewhere don't matter.
        let clean = commit(root, false).unwrap();
        assert_eq!(clean.len(), 7, "{clean}");

        std::fs::write(root.join("grafana/Dockerfile"), "FROM grafana/grafana:13.2.3\n").unwrap();
        let err = format!("{:#}", commit(root, false).unwrap_err());
        assert!(err.contains("grafana/ has uncommitted changes") && err.contains("--allow-dirty"), "{err}");
        assert!(err.contains("grafana/Dockerfile"), "{err}");
        assert_eq!(commit(root, true).unwrap(), format!("{clean}-dirty"));
    }
}
