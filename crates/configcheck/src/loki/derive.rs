//! Derives the Loki key list (`data/loki-<version>-keys.txt`) from Loki's configuration reference,
//! `docs/sources/shared/configuration.md`, which Loki generates from its Go config structs.
//!
//! The reference is YAML-like: one fenced block per named config block (`### <name>`), plus the
//! root block. In a block, `[name: <type> | default = ...]` is a key whose type is a value type
//! or another block's name, `name:` opens an inline block, and `[<block>]` embeds a block's keys.

use std::collections::{HashMap, HashSet};

/// A key as the reference writes it.
#[derive(Debug)]
struct Entry {
    /// Empty for an embedded block (`[<tls_config>]`) or an opaque map (`[: <map of ...>]`).
    name: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Typed(String),
    Inline(Vec<Entry>),
}

const ROOT_SECTION: &str = "Supported contents and default values of `loki.yaml`";

/// The flattened key list, one `path<TAB>kind` line per key in reference order (no header).
///
/// Kinds: `block` (mapping with known keys), `list` (sequence of blocks, children under
/// `path[]`), `map` (string-keyed blocks, children under `path.*`), otherwise the value type as the
/// reference names it (`string`, `duration`, `list of strings`, ...), which is not descended into.
pub fn derive_key_list(markdown: &str) -> Result<String, String> {
    let sections = sections(markdown)?;
    let root = sections
        .get(ROOT_SECTION)
        .ok_or_else(|| format!("no `### {ROOT_SECTION}` section: is this Loki's configuration.md?"))?;
    let mut out = Flattener { sections: &sections, seen: HashSet::new(), lines: Vec::new() };
    out.entries(root, "", 0)?;
    let mut text = String::new();
    for (path, kind) in out.lines {
        text.push_str(&path);
        text.push('\t');
        text.push_str(&kind);
        text.push('\n');
    }
    Ok(text)
}

/// `### name` → the entries of its block definition.
fn sections(markdown: &str) -> Result<HashMap<String, Vec<Entry>>, String> {
    let mut sections = HashMap::new();
    let mut name: Option<String> = None;
    let mut block: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        if let Some(lines) = block.as_mut() {
            if line.trim_start().starts_with("```") {
                let lines = block.take().unwrap_or_default();
                // The definition starts at column 0; examples (named_stores_config) are indented.
                let first = lines.iter().find(|l| !is_skippable(l));
                if let (Some(n), Some(first)) = (name.as_ref(), first) {
                    if !first.starts_with(' ') && !sections.contains_key(n) {
                        let entries = parse_block(&lines).map_err(|e| format!("section `{n}`: {e}"))?;
                        sections.insert(n.clone(), entries);
                    }
                }
            } else {
                lines.push(line);
            }
        } else if let Some(heading) = line.strip_prefix("### ") {
            name = Some(heading.trim().to_string());
        } else if line.trim_start() == "```yaml" {
            block = Some(Vec::new());
        }
    }
    Ok(sections)
}

fn is_skippable(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn parse_block(lines: &[&str]) -> Result<Vec<Entry>, String> {
    let lines: Vec<&str> = lines.iter().copied().filter(|l| !is_skippable(l)).collect();
    let mut i = 0;
    let entries = parse_entries(&lines, &mut i, 0)?;
    match lines.get(i) {
        Some(line) => Err(format!("unexpected indentation at `{}`", line.trim())),
        None => Ok(entries),
    }
}

fn parse_entries(lines: &[&str], i: &mut usize, level: usize) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    while let Some(line) = lines.get(*i) {
        let ind = indent(line);
        if ind < level {
            break;
        }
        if ind > level {
            return Err(format!("unexpected indentation at `{}`", line.trim()));
        }
        let t = line.trim();
        *i += 1;
        if let Some(inner) = t.strip_prefix('[') {
            // `[name: <type> | default = ...]`, `[<block>]` or `[: <type>]`.
            let (name, rest) = match inner.split_once(':') {
                Some((n, r)) if !n.contains('<') => (n.trim(), r),
                _ => ("", inner),
            };
            let ty = rest
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(ty, _)| ty.trim())
                .ok_or_else(|| format!("no <type> in `{t}`"))?;
            entries.push(Entry { name: name.to_string(), body: Body::Typed(ty.to_string()) });
        } else if let Some(name) = t.strip_suffix(':') {
            let child_level = lines.get(*i).map(|l| indent(l)).filter(|&c| c > level);
            let children = match child_level {
                Some(c) => parse_entries(lines, i, c)?,
                None => Vec::new(),
            };
            entries.push(Entry { name: name.to_string(), body: Body::Inline(children) });
        } else {
            return Err(format!("cannot read `{t}`"));
        }
    }
    Ok(entries)
}

struct Flattener<'a> {
    sections: &'a HashMap<String, Vec<Entry>>,
    seen: HashSet<String>,
    lines: Vec<(String, String)>,
}

impl Flattener<'_> {
    fn push(&mut self, path: String, kind: &str) {
        if self.seen.insert(path.clone()) {
            self.lines.push((path, kind.to_string()));
        }
    }

    fn entries(&mut self, entries: &[Entry], prefix: &str, depth: usize) -> Result<(), String> {
        if depth > 32 {
            return Err(format!("blocks nest deeper than 32 levels at `{prefix}`"));
        }
        for entry in entries {
            let path = if entry.name.is_empty() {
                prefix.to_string()
            } else if prefix.is_empty() {
                entry.name.clone()
            } else {
                format!("{prefix}.{}", entry.name)
            };
            match &entry.body {
                Body::Inline(children) => {
                    // `http_headers:` + `[: <map of string to Header>]`: a free-form map.
                    if let [Entry { name, body: Body::Typed(ty) }] = children.as_slice() {
                        if name.is_empty() && !self.sections.contains_key(ty) {
                            self.push(path, ty);
                            continue;
                        }
                    }
                    self.push(path.clone(), "block");
                    self.entries(children, &path, depth + 1)?;
                }
                Body::Typed(ty) => self.typed(&path, entry.name.is_empty(), ty, depth)?,
            }
        }
        Ok(())
    }

    fn typed(&mut self, path: &str, embedded: bool, ty: &str, depth: usize) -> Result<(), String> {
        let sections = self.sections;
        if let Some(block) = sections.get(ty) {
            if !embedded {
                self.push(path.to_string(), "block");
            }
            return self.entries(block, path, depth + 1);
        }
        if embedded {
            // `[: <map of ...>]` directly in a block: nothing to name.
            return Ok(());
        }
        // `list of period_configs` → the `period_config` block, one per item.
        if let Some(block) = ty.strip_prefix("list of ").and_then(|p| p.strip_suffix('s')).and_then(|b| sections.get(b))
        {
            self.push(path.to_string(), "list");
            return self.entries(block, &format!("{path}[]"), depth + 1);
        }
        if let Some(block) = ty.strip_prefix("map of string to ").and_then(|b| sections.get(b)) {
            self.push(path.to_string(), "map");
            return self.entries(block, &format!("{path}.*"), depth + 1);
        }
        self.push(path.to_string(), ty);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::derive_key_list;

    const SAMPLE: &str = r#"
### Supported contents and default values of `loki.yaml`

```yaml
# Comment.
[auth_enabled: <boolean> | default = true]

[server: <server>]

ui:
  [enabled: <boolean> | default = false]

  ring:
    [names: <list of strings> | default = [<private network interfaces>]]

[schema_config: <schema_config>]

[named: <map of string to server>]

headers:
  [: <map of string to Header>]
```

### server

```yaml
[http_listen_port: <int> | default = 3100]

[<tls_config>]
```

### tls_config

```yaml
[cert_file: <string> | default = ""]
```

### schema_config

Example:
```yaml
  storage_config:
    weird: true
```

```yaml
[configs: <list of period_configs>]
```

### period_config

```yaml
[from: <daytime>]

index:
  [period: <duration>]
```
"#;

    #[test]
    fn flattens_blocks_lists_maps_and_embedded_blocks() {
        let got = derive_key_list(SAMPLE).unwrap();
        let want = "\
auth_enabled\tboolean
server\tblock
server.http_listen_port\tint
server.cert_file\tstring
ui\tblock
ui.enabled\tboolean
ui.ring\tblock
ui.ring.names\tlist of strings
schema_config\tblock
schema_config.configs\tlist
schema_config.configs[].from\tdaytime
schema_config.configs[].index\tblock
schema_config.configs[].index.period\tduration
named\tmap
named.*.http_listen_port\tint
named.*.cert_file\tstring
headers\tmap of string to Header
";
        assert_eq!(got, want);
    }

    #[test]
    fn refuses_a_file_without_the_root_section() {
        let err = derive_key_list("### server\n").unwrap_err();
        assert!(err.contains("configuration.md"), "{err}");
    }
}
