//! Edits keep the file's comments and layout (toml_edit) and land atomically: the new text is
//! validated as a whole, written to a temporary file beside the original and renamed over it.

use std::io::Write;
use std::path::Path;

use anyhow::{format_err, Context};

use crate::{check_service_name, parse, Collector};

/// Records `collector` for `service` in the env file at `path`.
pub fn set_collector(path: &Path, service: &str, collector: Collector) -> anyhow::Result<()> {
    let service = check_service_name(service)?;
    set(path, &["services", service, "collector"], collector.as_str().into())
}

/// Sets the value at `keys` (e.g. `["loki", "enabled"]`) in the env file at `path`. Comments and
/// layout survive; the file is rewritten only when the result is still valid settings.
pub fn set(path: &Path, keys: &[&str], new_value: toml_edit::Value) -> anyhow::Result<()> {
    edit(path, |doc| set_in_document(doc, keys, new_value))
}

/// Sets the value at `keys` in a document, creating the key in its existing table if needed and
/// keeping the old value's decoration (comments, spacing).
pub fn set_in_document(
    doc: &mut toml_edit::DocumentMut,
    keys: &[&str],
    new_value: toml_edit::Value,
) -> anyhow::Result<()> {
    let (last, tables) = keys.split_last().expect("a key path is never empty");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for key in tables {
        table = table
            .get_mut(key)
            .and_then(|item| item.as_table_like_mut())
            .ok_or_else(|| format_err!("no [{}] table", tables.join(".")))?;
    }
    match table.get_mut(last).and_then(|item| item.as_value_mut()) {
        Some(value) => {
            let decor = value.decor().clone();
            *value = new_value;
            *value.decor_mut() = decor;
        }
        None => {
            table.insert(last, toml_edit::Item::Value(new_value));
        }
    }
    Ok(())
}

/// Applies `change` to the document and writes it back only when the result still parses as
/// valid settings.
fn edit(path: &Path, change: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    change(&mut doc).with_context(|| format!("editing {}", path.display()))?;
    let new_text = doc.to_string();
    parse(&new_text).map_err(|err| format_err!("{}: the edit would make it invalid: {err:#}", path.display()))?;
    write_atomically(path, &new_text)
}

/// Writes `text` to `path` so that readers see either the old or the new file, never a part.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Moves the ARNs and AWS host names in `doc` from one region and account to another (what
/// `cargo xtask init` does to the example's placeholders); returns the keys it changed.
pub fn retarget(doc: &mut toml_edit::DocumentMut, region: &str, account: &str) -> Vec<String> {
    let (Some(from_region), Some(from_account)) = (
        doc.get("aws").and_then(|t| t.get("region")).and_then(|v| v.as_str()).map(str::to_string),
        doc.get("aws").and_then(|t| t.get("account_id")).and_then(|v| v.as_str()).map(str::to_string),
    ) else {
        return Vec::new();
    };
    let partitions = (crate::rules::partition(&from_region), crate::rules::partition(region));
    let moved = |text: &str| -> String {
        if let Some(rest) = text.strip_prefix("arn:") {
            let mut fields: Vec<String> = rest.splitn(5, ':').map(str::to_string).collect();
            if let [partition, _, arn_region, arn_account, _] = &mut fields[..] {
                if let (Some(from), Some(to)) = partitions {
                    if partition == from {
                        *partition = to.to_string();
                    }
                }
                if *arn_region == from_region {
                    *arn_region = region.to_string();
                }
                if *arn_account == from_account {
                    *arn_account = account.to_string();
                }
            }
            return format!("arn:{}", fields.join(":"));
        }
        text.replace(&format!(".{from_region}.rds.amazonaws.com"), &format!(".{region}.rds.amazonaws.com"))
            .replace(&format!("{from_account}.dkr.ecr.{from_region}."), &format!("{account}.dkr.ecr.{region}."))
    };
    let mut changed = Vec::new();
    for (section, table) in doc.as_table_mut().iter_mut() {
        if section == "aws" {
            continue;
        }
        let Some(table) = table.as_table_like_mut() else { continue };
        for (key, item) in table.iter_mut() {
            let Some(value) = item.as_value_mut() else { continue };
            let Some(text) = value.as_str() else { continue };
            let new = moved(text);
            if new != text {
                let decor = value.decor().clone();
                *value = new.into();
                *value.decor_mut() = decor;
                changed.push(format!("{section}.{key}"));
            }
        }
    }
    changed
}
