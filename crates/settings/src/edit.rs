//! Edits keep the file's comments and layout (toml_edit) and land atomically: the new text is
//! validated as a whole, written to a temporary file beside the original and renamed over it.

use std::io::Write;
use std::path::Path;

use anyhow::{format_err, Context};

use crate::{check_service_name, parse, Collector};

/// Records `collector` for `service` in the env file at `path`.
pub fn set_collector(path: &Path, service: &str, collector: Collector) -> anyhow::Result<()> {
    let service = check_service_name(service)?;
    edit(path, |doc| {
        let table = doc
            .get_mut("services")
            .and_then(|services| services.get_mut(service))
            .and_then(|item| item.as_table_like_mut())
            .ok_or_else(|| format_err!("no [services.{service}] table"))?;
        match table.get_mut("collector").and_then(|item| item.as_value_mut()) {
            // Replace only the value so the key's own decoration (comments, spacing) survives.
            Some(value) => {
                let decor = value.decor().clone();
                *value = toml_edit::Value::from(collector.as_str());
                *value.decor_mut() = decor;
            }
            None => {
                table.insert("collector", toml_edit::value(collector.as_str()));
            }
        }
        Ok(())
    })
}

/// Applies `change` to the document and writes it back only when the result still parses as
/// valid settings.
fn edit(
    path: &Path,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut =
        text.parse().with_context(|| format!("parsing {}", path.display()))?;
    change(&mut doc).with_context(|| format!("editing {}", path.display()))?;
    let new_text = doc.to_string();
    parse(&new_text).map_err(|err| format_err!("{}: the edit would make it invalid: {err:#}", path.display()))?;
    write_atomically(path, &new_text)
}

/// Writes `text` to `path` so that readers see either the old or the new file, never a part.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
