//! Converts a provider schema in the format of `terraform providers schema -json`
//! into tfplugin6 `Schema` messages.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Map, Value};

use crate::proto::{Attribute, Block, NestedBlock, NestingMode, Object, Schema, STRING_KIND_MARKDOWN};

/// The provider address this binary stands in for.
const PROVIDER_SOURCE: &str = "registry.terraform.io/hashicorp/aws";

#[derive(Debug)]
pub struct ProviderSchema {
    pub provider: Schema,
    pub resources: BTreeMap<String, Schema>,
    pub data_sources: BTreeMap<String, Schema>,
}

/// Converts a schema document's bytes, gzipped or not (detected by the gzip magic bytes).
pub fn from_document(raw: &[u8]) -> Result<ProviderSchema, String> {
    let gunzipped;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 20);
        flate2::read::GzDecoder::new(raw).read_to_end(&mut out).map_err(|e| format!("cannot gunzip: {e}"))?;
        gunzipped = out;
        &gunzipped
    } else {
        raw
    };
    let doc: Value = serde_json::from_slice(json).map_err(|e| format!("not valid JSON: {e}"))?;
    parse(&doc)
}

/// Picks the hashicorp/aws entry of `provider_schemas` (or the only entry) and converts it.
pub fn parse(doc: &Value) -> Result<ProviderSchema, String> {
    let schemas = doc
        .get("provider_schemas")
        .and_then(Value::as_object)
        .ok_or("no \"provider_schemas\" object: expected the output of `terraform providers schema -json`")?;
    let entry = match schemas.get(PROVIDER_SOURCE) {
        Some(entry) => entry,
        None if schemas.len() == 1 => schemas.values().next().expect("one entry"),
        None => return Err(format!("\"provider_schemas\" has no \"{PROVIDER_SOURCE}\" entry")),
    };
    let provider = match entry.get("provider") {
        Some(schema) => convert_schema(schema).map_err(|e| format!("provider: {e}"))?,
        None => Schema { version: 0, block: Some(Block::default()) },
    };
    Ok(ProviderSchema {
        provider,
        resources: convert_map(entry.get("resource_schemas"), "resource_schemas")?,
        data_sources: convert_map(entry.get("data_source_schemas"), "data_source_schemas")?,
    })
}

fn convert_map(value: Option<&Value>, what: &str) -> Result<BTreeMap<String, Schema>, String> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let map = value.as_object().ok_or_else(|| format!("\"{what}\" is not an object"))?;
    map.iter()
        .map(|(name, schema)| {
            convert_schema(schema).map(|s| (name.clone(), s)).map_err(|e| format!("{what}.{name}: {e}"))
        })
        .collect()
}

fn convert_schema(value: &Value) -> Result<Schema, String> {
    let block = value.get("block").ok_or("missing \"block\"")?;
    Ok(Schema { version: int(value, "version"), block: Some(convert_block(block)?) })
}

fn convert_block(value: &Value) -> Result<Block, String> {
    let attributes = members(value, "attributes")?
        .map(|(name, attr)| convert_attribute(name, attr).map_err(|e| format!("{name}: {e}")))
        .collect::<Result<_, _>>()?;
    let block_types = members(value, "block_types")?
        .map(|(name, nested)| convert_nested_block(name, nested).map_err(|e| format!("{name}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Block {
        version: int(value, "version"),
        attributes,
        block_types,
        description: string(value, "description"),
        description_kind: description_kind(value),
        deprecated: flag(value, "deprecated"),
    })
}

fn convert_attribute(name: &str, value: &Value) -> Result<Attribute, String> {
    let (r#type, nested_type) = match (value.get("type"), value.get("nested_type")) {
        (Some(ty), _) => (serde_json::to_vec(ty).map_err(|e| e.to_string())?, None),
        (None, Some(nested)) => (Vec::new(), Some(convert_object(nested)?)),
        (None, None) => return Err("attribute has neither \"type\" nor \"nested_type\"".into()),
    };
    Ok(Attribute {
        name: name.to_string(),
        r#type,
        nested_type,
        description: string(value, "description"),
        description_kind: description_kind(value),
        required: flag(value, "required"),
        optional: flag(value, "optional"),
        computed: flag(value, "computed"),
        sensitive: flag(value, "sensitive"),
        deprecated: flag(value, "deprecated"),
        write_only: flag(value, "write_only"),
    })
}

fn convert_object(value: &Value) -> Result<Object, String> {
    let attributes: Vec<Attribute> = members(value, "attributes")?
        .map(|(name, attr)| convert_attribute(name, attr).map_err(|e| format!("{name}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut nesting = nesting_mode(value)?;
    // Same rule as for set-nested blocks below.
    if nesting == NestingMode::Set && attributes.iter().any(attribute_has_dynamic) {
        nesting = NestingMode::List;
    }
    Ok(Object { attributes, nesting: nesting as i32 })
}

fn convert_nested_block(name: &str, value: &Value) -> Result<NestedBlock, String> {
    let block = convert_block(value.get("block").ok_or("missing \"block\"")?)?;
    let mut nesting = nesting_mode(value)?;
    // Terraform rejects the whole provider schema if a set-nested block contains a
    // dynamic ("any") attribute: set elements must have one exact type to be compared.
    // Schemas rebuilt offline turn deeply recursive blocks into dynamic attributes, so
    // such a block is served as a list instead; only ordering semantics change.
    if nesting == NestingMode::Set && block_has_dynamic(&block) {
        nesting = NestingMode::List;
    }
    Ok(NestedBlock {
        type_name: name.to_string(),
        block: Some(block),
        nesting: nesting as i32,
        min_items: int(value, "min_items"),
        max_items: int(value, "max_items"),
    })
}

fn nesting_mode(value: &Value) -> Result<NestingMode, String> {
    match value.get("nesting_mode").and_then(Value::as_str) {
        Some("single") => Ok(NestingMode::Single),
        Some("list") => Ok(NestingMode::List),
        Some("set") => Ok(NestingMode::Set),
        Some("map") => Ok(NestingMode::Map),
        Some("group") => Ok(NestingMode::Group),
        other => Err(format!("unknown nesting_mode {other:?}")),
    }
}

fn block_has_dynamic(block: &Block) -> bool {
    block.attributes.iter().any(attribute_has_dynamic)
        || block.block_types.iter().any(|b| b.block.as_ref().is_some_and(block_has_dynamic))
}

fn attribute_has_dynamic(attr: &Attribute) -> bool {
    match &attr.nested_type {
        Some(object) => object.attributes.iter().any(attribute_has_dynamic),
        None => serde_json::from_slice(&attr.r#type).is_ok_and(|ty: Value| type_has_dynamic(&ty)),
    }
}

/// Whether a cty type in its JSON form contains `dynamic` anywhere.
fn type_has_dynamic(ty: &Value) -> bool {
    match ty {
        Value::String(s) => s == "dynamic",
        Value::Array(parts) => match (parts.first().and_then(Value::as_str), parts.get(1)) {
            (Some("list" | "set" | "map"), Some(element)) => type_has_dynamic(element),
            (Some("object"), Some(Value::Object(attrs))) => attrs.values().any(type_has_dynamic),
            (Some("tuple"), Some(Value::Array(elements))) => elements.iter().any(type_has_dynamic),
            _ => false,
        },
        _ => false,
    }
}

fn members<'a>(value: &'a Value, key: &str) -> Result<impl Iterator<Item = (&'a String, &'a Value)>, String> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match value.get(key) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new).iter()),
        Some(Value::Object(map)) => Ok(map.iter()),
        Some(_) => Err(format!("\"{key}\" is not an object")),
    }
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn int(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn string(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn description_kind(value: &Value) -> i32 {
    match value.get("description_kind").and_then(Value::as_str) {
        Some("markdown") => STRING_KIND_MARKDOWN,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn attr<'a>(block: &'a Block, name: &str) -> &'a Attribute {
        block.attributes.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no attribute {name}"))
    }

    fn nested<'a>(block: &'a Block, name: &str) -> &'a NestedBlock {
        block.block_types.iter().find(|b| b.type_name == name).unwrap_or_else(|| panic!("no block {name}"))
    }

    /// The project's copy of the real schema (see infra/provider-schema/).
    fn project_schema_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/provider-schema/aws.schema.json.gz")
    }

    #[test]
    fn converts_the_project_schema() {
        let path = project_schema_path();
        assert!(path.exists(), "schema missing: {} (copy it from the shared schema directory)", path.display());
        let schema = from_document(&std::fs::read(&path).unwrap()).expect("schema loads");
        assert!(schema.resources.len() > 1000, "resources: {}", schema.resources.len());
        assert!(schema.data_sources.len() > 500, "data sources: {}", schema.data_sources.len());

        let bucket = schema.resources["aws_s3_bucket"].block.as_ref().expect("block");
        let name = attr(bucket, "bucket");
        assert_eq!(name.r#type, br#""string""#);
        assert!(name.optional && !name.required);
        let arn = attr(bucket, "arn");
        assert!(arn.computed && !arn.optional);

        let log_group = schema.resources["aws_cloudwatch_log_group"].block.as_ref().expect("block");
        assert_eq!(attr(log_group, "tags").r#type, br#"["map","string"]"#);

        let task = schema.resources["aws_ecs_task_definition"].block.as_ref().expect("block");
        assert!(attr(task, "family").required);
        let volume = nested(task, "volume");
        assert_eq!(volume.nesting, NestingMode::Set as i32);

        let service = schema.resources["aws_ecs_service"].block.as_ref().expect("block");
        let network = nested(service, "network_configuration");
        assert_eq!(network.nesting, NestingMode::List as i32);
        assert_eq!(network.max_items, 1);

        // ingress is a set(object) attribute in the real provider, not a block.
        let sg = schema.resources["aws_security_group"].block.as_ref().expect("block");
        assert!(attr(sg, "ingress").r#type.starts_with(br#"["set",["object","#));

        let provider = schema.provider.block.as_ref().expect("block");
        assert!(attr(provider, "region").optional);
    }

    #[test]
    fn set_block_with_dynamic_attribute_becomes_list() {
        let doc = json!({"format_version": "1.0", "provider_schemas": {PROVIDER_SOURCE: {
            "provider": {"version": 0, "block": {}},
            "resource_schemas": {"r": {"version": 2, "block": {
                "attributes": {
                    "id": {"type": "string", "computed": true, "description": "x", "description_kind": "markdown"},
                    "nested": {"nested_type": {"nesting_mode": "set", "attributes": {
                        "v": {"type": ["list", "dynamic"], "optional": true}}}, "optional": true}
                },
                "block_types": {
                    "loose": {"nesting_mode": "set", "block": {"block_types": {"deep": {
                        "nesting_mode": "single", "block": {"attributes": {
                            "v": {"type": ["object", {"dynamic": "string", "x": "dynamic"}], "optional": true}}}}}}},
                    "strict": {"nesting_mode": "set", "min_items": 1, "block": {"attributes": {
                        "dynamic": {"type": ["object", {"dynamic": "string"}], "required": true}}}}
                }
            }}}
        }}});
        let schema = parse(&doc).expect("parses");
        let r = &schema.resources["r"];
        assert_eq!(r.version, 2);
        let block = r.block.as_ref().expect("block");
        assert_eq!(nested(block, "loose").nesting, NestingMode::List as i32);
        // An attribute *named* "dynamic" is not a dynamic type.
        let strict = nested(block, "strict");
        assert_eq!(strict.nesting, NestingMode::Set as i32);
        assert_eq!(strict.min_items, 1);
        let nested_attr = attr(block, "nested");
        assert!(nested_attr.r#type.is_empty());
        assert_eq!(nested_attr.nested_type.as_ref().expect("nested").nesting, NestingMode::List as i32);
        let id = attr(block, "id");
        assert_eq!(id.description_kind, STRING_KIND_MARKDOWN);
        assert!(schema.data_sources.is_empty());
    }

    #[test]
    fn rejects_documents_without_provider_schemas() {
        let err = parse(&json!({"format_version": "1.0"})).expect_err("must fail");
        assert!(err.contains("provider_schemas"), "{err}");
    }
}
