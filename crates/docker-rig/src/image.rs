//! The rig's image: our static log writer (src/writer.c) and nothing else, imported into the
//! engine (`docker import`'s API) since no registry can be reached.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::engine::{query_value, Engine};

const WRITER_SOURCE: &str = include_str!("writer.c");

/// Builds the writer with the C compiler, statically, and imports it as `rig-writer:<hash>`
/// unless the engine has that image already. Returns the image's name.
pub fn writer_image(engine: &Engine) -> anyhow::Result<String> {
    let tag = format!("{:016x}", fnv1a(WRITER_SOURCE.as_bytes()));
    let name = format!("rig-writer:{tag}");
    if engine.request("GET", &format!("/images/{}/json", query_value(&name)), None)?.0 == 200 {
        return Ok(name);
    }
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("writer.c");
    std::fs::write(&source, WRITER_SOURCE)?;
    let binary = dir.path().join("writer");
    compile_static(&source, &binary)?;
    let tar = tar_of_one_file("writer", &std::fs::read(&binary)?, 0o755);
    engine.expect(
        "POST",
        &format!("/images/create?fromSrc=-&repo=rig-writer&tag={tag}"),
        Some(("application/x-tar", &tar)),
        200,
    )?;
    Ok(name)
}

fn compile_static(source: &Path, binary: &Path) -> anyhow::Result<()> {
    let cc = which::which("cc").or_else(|_| which::which("gcc")).map_err(|_| {
        anyhow::anyhow!("no C compiler (cc or gcc) on PATH to build the rig's static log writer: install gcc")
    })?;
    let output = Command::new(&cc)
        .args(["-static", "-O2", "-o"])
        .arg(binary)
        .arg(source)
        .output()
        .with_context(|| format!("running {}", cc.display()))?;
    if !output.status.success() {
        bail!(
            "{} could not build the static log writer (static libc missing? install libc6-dev): {}",
            cc.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A ustar archive of one regular file at the root.
fn tar_of_one_file(name: &str, content: &[u8], mode: u32) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x100000001b3))
}
