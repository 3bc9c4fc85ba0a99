//! AWS's own contract for its APIs: botocore's service models (`botocore/data/<service>/<version>/
//! service-2.json.gz`, shipped with the pinned AWS CLI) as the oracle for the requests the tests
//! see. [`Models::check_request`] takes one HTTP request as it reached moto or a stand-in and
//! says which operation it is (JSON `X-Amz-Target`, query `Action`, REST-XML method and path) and
//! everything in it the model rejects: unknown operations and members, missing required members,
//! wrong types, enums, lengths and ranges, and a SigV4 scope whose service or region is not the
//! model's. [`Models::check_input`] checks one value against one shape (ECS container definitions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// The services whose requests the tests may see; a request to any other is reported, so a new
/// service is checked (add it here) the day a call to it is added.
pub const SERVICES: [&str; 8] = ["ecs", "logs", "ssm", "secretsmanager", "sts", "s3", "ecr", "ec2"];

/// One service model, parsed once.
pub struct Model {
    pub service: String,
    json: Value,
}

impl Model {
    fn metadata(&self, key: &str) -> Option<&str> {
        self.json["metadata"][key].as_str()
    }

    pub fn protocol(&self) -> &str {
        self.metadata("protocol").unwrap_or_default()
    }

    /// The SigV4 service name: `signingName`, else the endpoint prefix (botocore's rule).
    pub fn signing_name(&self) -> &str {
        self.metadata("signingName").or(self.metadata("endpointPrefix")).unwrap_or_default()
    }

    fn shape(&self, name: &str) -> Option<&Value> {
        self.json["shapes"].get(name)
    }

    fn operation(&self, name: &str) -> Option<&Value> {
        self.json["operations"].get(name)
    }
}

/// The models of the pinned botocore, each read and parsed on first use and kept.
pub struct Models {
    data: PathBuf,
    loaded: Mutex<HashMap<String, Arc<Model>>>,
}

/// A request as it arrived: method, path and query, lower-cased header names, body.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// What a request turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub service: String,
    pub name: String,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.service, self.name)
    }
}

impl Models {
    /// The models under a venv's botocore (`.tools/venv`); fails naming the fix when it has none.
    pub fn in_venv(venv: &Path) -> anyhow::Result<Models> {
        let lib = venv.join("lib");
        let python = std::fs::read_dir(&lib)
            .with_context(|| format!("{} is missing: run `cargo xtask tools`", lib.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python3")))
            .with_context(|| format!("no python3.* in {}: run `cargo xtask tools`", lib.display()))?;
        let data = python.join("site-packages/botocore/data");
        if !data.is_dir() {
            bail!("{} is missing (botocore comes with the pinned awscli): run `cargo xtask tools`", data.display());
        }
        Ok(Models { data, loaded: Mutex::new(HashMap::new()) })
    }

    /// The newest API version of `service`'s model, as botocore's loader picks it.
    pub fn model(&self, service: &str) -> anyhow::Result<Arc<Model>> {
        if let Some(model) = self.loaded.lock().expect("models lock").get(service) {
            return Ok(Arc::clone(model));
        }
        let dir = self.data.join(service);
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("botocore has no model of `{service}` ({})", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        versions.sort();
        let version = versions.pop().with_context(|| format!("no API version in {}", dir.display()))?;
        let (plain, gz) = (version.join("service-2.json"), version.join("service-2.json.gz"));
        let text = if plain.is_file() {
            std::fs::read_to_string(&plain)?
        } else {
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&gz).with_context(|| format!("open {}", gz.display()))?)
                .read_to_string(&mut text)
                .with_context(|| format!("decompress {}", gz.display()))?;
            text
        };
        let json = serde_json::from_str(&text).with_context(|| format!("parse the model of `{service}`"))?;
        let model = Arc::new(Model { service: service.to_string(), json });
        self.loaded.lock().expect("models lock").insert(service.to_string(), Arc::clone(&model));
        Ok(model)
    }

    /// `value` against shape `shape` of `service`'s model: every problem, `path: what` each.
    pub fn check_input(&self, service: &str, shape: &str, value: &Value, path: &str) -> anyhow::Result<Vec<String>> {
        let model = self.model(service)?;
        let mut problems = Vec::new();
        check_shape(&model, shape, value, path, &mut problems);
        Ok(problems)
    }

    /// Which operation `request` is and every way it breaks the model (empty: AWS would take it);
    /// `regions` are those the request may be signed for (the env's).
    pub fn check_request(&self, request: &HttpRequest, regions: &[&str]) -> anyhow::Result<(Operation, Vec<String>)> {
        let header = |name: &str| request.headers.get(name).map(String::as_str);
        let mut problems = Vec::new();
        let (model, operation, input) = if let Some(target) = header("x-amz-target") {
            let (prefix, name) = target.split_once('.').unwrap_or((target, ""));
            let model = self.service_where(
                |m| m.metadata("targetPrefix") == Some(prefix),
                &format!("X-Amz-Target prefix `{prefix}`"),
            )?;
            let input: Value = if request.body.is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_slice(&request.body).context("a JSON-protocol body that is not JSON")?
            };
            let version = model.metadata("jsonVersion").unwrap_or("1.0");
            let want = format!("application/x-amz-json-{version}");
            if !header("content-type").is_some_and(|c| c.starts_with(&want)) {
                problems
                    .push(format!("Content-Type is {:?}, the model's protocol wants {want}", header("content-type")));
            }
            (model, name.to_string(), input)
        } else if let Some(form) = form_of(request) {
            let version = lookup(&form, "Version").unwrap_or_default().to_string();
            let model = self.service_where(
                |m| matches!(m.protocol(), "query" | "ec2") && m.metadata("apiVersion") == Some(version.as_str()),
                &format!("query API version `{version}`"),
            )?;
            let name = lookup(&form, "Action").context("a query-protocol request without Action")?.to_string();
            let input = match model.operation(&name).and_then(|op| op["input"]["shape"].as_str()) {
                Some(shape) => {
                    let mut used = BTreeSet::from(["Action".to_string(), "Version".to_string()]);
                    let value = decode_query(&model, shape, "", &form, &mut used);
                    for (key, _) in &form {
                        if !used.contains(key) {
                            problems.push(format!("{name}: unknown parameter `{key}`"));
                        }
                    }
                    value
                }
                None => Value::Object(Map::new()),
            };
            (model, name, input)
        } else {
            let model = self.service_where(|m| m.protocol() == "rest-xml", "a REST-XML request")?;
            let (name, input) = match rest_operation(&model, request, &mut problems) {
                Some(found) => found,
                None => bail!(
                    "{} {} is no operation of {}'s model (no requestUri matches)",
                    request.method,
                    request.path,
                    model.service
                ),
            };
            (model, name, input)
        };
        let Some(op) = model.operation(&operation) else {
            bail!("`{operation}` is no operation of {}'s model", model.service);
        };
        if let Some(method) = op["http"]["method"].as_str() {
            if method != request.method {
                problems.push(format!("{operation} is sent with {}, the model says {method}", request.method));
            }
        }
        if let Some(shape) = op["input"]["shape"].as_str() {
            check_shape(&model, shape, &input, &operation, &mut problems);
        } else if input.as_object().is_some_and(|o| !o.is_empty()) {
            problems.push(format!("{operation} takes no input, got {input}"));
        }
        match signing_scope(header("authorization")) {
            Some((signed_region, signed_service)) => {
                if signed_service != model.signing_name() {
                    problems.push(format!(
                        "signed for service `{signed_service}`, the model's signing name is `{}`",
                        model.signing_name()
                    ));
                }
                if !regions.contains(&signed_region.as_str()) {
                    problems
                        .push(format!("signed for region `{signed_region}`, the env's region is one of {regions:?}"));
                }
            }
            None => problems.push("no SigV4 Authorization header (AWS4-HMAC-SHA256 Credential=…)".to_string()),
        }
        Ok((Operation { service: model.service.clone(), name: operation }, problems))
    }

    fn service_where(&self, pick: impl Fn(&Model) -> bool, what: &str) -> anyhow::Result<Arc<Model>> {
        for service in SERVICES {
            let model = self.model(service)?;
            if pick(&model) {
                return Ok(model);
            }
        }
        bail!("no model among {SERVICES:?} has {what}: a call to a new service? add it to botocore::SERVICES")
    }
}

/// `(region, service)` of a SigV4 credential scope: `Credential=AKID/date/region/service/aws4_request`.
fn signing_scope(authorization: Option<&str>) -> Option<(String, String)> {
    let auth = authorization?.strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = auth.split(',').find_map(|part| part.trim().strip_prefix("Credential="))?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [_, _, region, service, "aws4_request"] => Some((region.to_string(), service.to_string())),
        _ => None,
    }
}

/// The parameters of a query-protocol request (form body, else URL query) with an `Action`.
fn form_of(request: &HttpRequest) -> Option<Vec<(String, String)>> {
    let is_form =
        request.headers.get("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { parse_query(&String::from_utf8_lossy(&request.body)) } else { request.query.clone() };
    lookup(&form, "Action").is_some().then_some(form)
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `a=1&b=%20` → pairs, percent-decoded.
pub fn parse_query(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `%XX` and `+` decoding of a query component.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value a query-protocol request carries for `shape` under `prefix` (`Name.member.1`,
/// EC2's `Name.1`), marking the parameters it consumed.
fn decode_query(
    model: &Model,
    shape: &str,
    prefix: &str,
    form: &[(String, String)],
    used: &mut BTreeSet<String>,
) -> Value {
    let Some(def) = model.shape(shape) else { return Value::Null };
    let join = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
    let ec2 = model.protocol() == "ec2";
    match def["type"].as_str().unwrap_or_default() {
        "structure" => {
            let mut out = Map::new();
            for (member, spec) in def["members"].as_object().into_iter().flatten() {
                let name = match (ec2, spec["queryName"].as_str(), spec["locationName"].as_str()) {
                    (true, Some(query), _) => query.to_string(),
                    (true, None, Some(location)) => capitalize(location),
                    (false, _, Some(location)) => location.to_string(),
                    _ => member.clone(),
                };
                let key = join(&name);
                if form.iter().any(|(k, _)| *k == key || k.starts_with(&format!("{key}."))) {
                    let target = spec["shape"].as_str().unwrap_or_default();
                    out.insert(member.clone(), decode_query(model, target, &key, form, used));
                }
            }
            Value::Object(out)
        }
        "list" => {
            let flat = ec2 || def["flattened"].as_bool() == Some(true);
            let base = if flat {
                prefix.to_string()
            } else {
                join(def["member"]["locationName"].as_str().unwrap_or("member"))
            };
            let target = def["member"]["shape"].as_str().unwrap_or_default();
            let mut items = Vec::new();
            for index in 1.. {
                let key = format!("{base}.{index}");
                if !form.iter().any(|(k, _)| *k == key || k.starts_with(&format!("{key}."))) {
                    break;
                }
                items.push(decode_query(model, target, &key, form, used));
            }
            Value::Array(items)
        }
        kind => {
            used.insert(prefix.to_string());
            let text = lookup(form, prefix).unwrap_or_default();
            scalar_from_text(kind, text)
        }
    }
}

/// A text-encoded scalar (query string, header, path label) as the JSON value it stands for,
/// so one checker serves every protocol; text that is no such value stays text (a type error).
fn scalar_from_text(kind: &str, text: &str) -> Value {
    match kind {
        "integer" | "long" => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text)),
        "float" | "double" => text.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::from(text)),
        "boolean" => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::from(text),
        },
        _ => Value::from(text),
    }
}

fn capitalize(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The REST-XML operation whose method and `requestUri` match (the most literal one when
/// several do, as `GET /{Bucket}?list-type=2` is ListObjectsV2, not ListObjects), and its input
/// from the path labels, query and headers. The XML payload itself is not decoded.
fn rest_operation(model: &Model, request: &HttpRequest, problems: &mut Vec<String>) -> Option<(String, Value)> {
    struct Candidate {
        score: (usize, usize),
        name: String,
        labels: BTreeMap<String, String>,
        literals: Vec<String>,
    }
    let mut best: Option<Candidate> = None;
    for (name, op) in model.json["operations"].as_object().into_iter().flatten() {
        if op["http"]["method"].as_str() != Some(request.method.as_str()) {
            continue;
        }
        let uri = op["http"]["requestUri"].as_str().unwrap_or_default();
        let (template, literal_query) = uri.split_once('?').unwrap_or((uri, ""));
        let literals: Vec<String> = parse_query(literal_query).into_iter().map(|(k, _)| k).collect();
        if !literals.iter().all(|k| request.query.iter().any(|(q, _)| q == k)) {
            continue;
        }
        let Some(labels) = match_path(template, &request.path) else { continue };
        // PutObject and CopyObject share a URI: a required header (x-amz-copy-source) tells.
        let headers_missing = required_headers(model, op).filter(|h| !request.headers.contains_key(h)).count();
        let score = literals.len() * 100 + template.split('/').filter(|s| !s.starts_with('{')).count();
        let score = (usize::MAX - headers_missing, score);
        if best.as_ref().is_none_or(|b| score > b.score) {
            best = Some(Candidate { score, name: name.clone(), labels, literals });
        }
    }
    let Candidate { name, labels, literals, .. } = best?;
    let shape = model.operation(&name)?["input"]["shape"].as_str().map(str::to_string);
    let mut input = Map::new();
    let mut used: BTreeSet<String> = literals.into_iter().collect();
    if let Some(def) = shape.as_deref().and_then(|s| model.shape(s)) {
        for (member, spec) in def["members"].as_object().into_iter().flatten() {
            let location_name = spec["locationName"].as_str().unwrap_or(member);
            let kind = spec["shape"].as_str().and_then(|s| model.shape(s)).and_then(|d| d["type"].as_str());
            let kind = kind.unwrap_or("string");
            let text = match spec["location"].as_str() {
                Some("uri") => labels.get(location_name).cloned(),
                Some("querystring") => {
                    let found = lookup(&request.query, location_name).map(str::to_string);
                    if found.is_some() {
                        used.insert(location_name.to_string());
                    }
                    found
                }
                Some("header") => request.headers.get(&location_name.to_ascii_lowercase()).cloned(),
                // A blob or text payload is checked as one; an XML body is not decoded.
                _ if !request.body.is_empty() && matches!(kind, "blob" | "string") => {
                    Some(String::from_utf8_lossy(&request.body).into_owned())
                }
                _ => None,
            };
            if let Some(text) = text {
                input.insert(member.clone(), scalar_from_text(kind, &text));
            }
        }
    }
    for (key, _) in &request.query {
        if !used.contains(key) {
            problems.push(format!("{name}: unknown query parameter `{key}`"));
        }
    }
    Some((name, Value::Object(input)))
}

/// The lower-cased names of the required header members of an operation's input.
fn required_headers<'a>(model: &'a Model, op: &'a Value) -> impl Iterator<Item = String> + 'a {
    let def = op["input"]["shape"].as_str().and_then(|s| model.shape(s));
    let required: Vec<&str> =
        def.and_then(|d| d["required"].as_array()).into_iter().flatten().filter_map(Value::as_str).collect();
    required.into_iter().filter_map(move |name| {
        let spec = &def?["members"][name];
        (spec["location"].as_str() == Some("header"))
            .then(|| spec["locationName"].as_str().unwrap_or(name).to_ascii_lowercase())
    })
}

/// The labels of `template` (`/{Bucket}/{Key+}`) in `path`, or None when it does not match.
fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let want: Vec<&str> = template.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mut labels = BTreeMap::new();
    for (i, segment) in want.iter().enumerate() {
        if let Some(greedy) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if got.len() <= i {
                return None;
            }
            labels.insert(greedy.to_string(), percent_decode(&got[i..].join("/")));
            return Some(labels);
        }
        let part = got.get(i)?;
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(label) => {
                labels.insert(label.to_string(), percent_decode(part));
            }
            None if segment == part => {}
            None => return None,
        }
    }
    (want.len() == got.len()).then_some(labels)
}

/// Every way `value` breaks shape `shape`, as `path: what`. A null member is an absent one (as
/// the SDKs and Terraform's AWS provider send it).
fn check_shape(model: &Model, shape: &str, value: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(def) = model.shape(shape) else {
        problems.push(format!("{path}: the model has no shape `{shape}`"));
        return;
    };
    if value.is_null() {
        return;
    }
    let kind = def["type"].as_str().unwrap_or_default();
    let mut wrong = |want: &str| problems.push(format!("{path}: {value} is not {want} (shape {shape})"));
    let size = match (kind, value) {
        ("structure", Value::Object(fields)) => {
            let members = def["members"].as_object();
            for (name, field) in fields {
                match members.and_then(|m| m.get(name)) {
                    Some(spec) => {
                        let target = spec["shape"].as_str().unwrap_or_default();
                        check_shape(model, target, field, &format!("{path}.{name}"), problems);
                    }
                    None => {
                        let known = members.into_iter().flat_map(|m| m.keys().map(String::as_str));
                        let hint = settings::hint::did_you_mean(name, known)
                            .map(|k| format!(", did you mean `{k}`?"))
                            .unwrap_or_default();
                        problems.push(format!("{path}: unknown member `{name}` (shape {shape}){hint}"));
                    }
                }
            }
            for required in def["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if fields.get(required).is_none_or(Value::is_null) {
                    problems.push(format!("{path}: required member `{required}` is missing (shape {shape})"));
                }
            }
            None
        }
        ("list", Value::Array(items)) => {
            let target = def["member"]["shape"].as_str().unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                check_shape(model, target, item, &format!("{path}[{i}]"), problems);
            }
            Some(items.len() as f64)
        }
        ("map", Value::Object(entries)) => {
            let (key, target) = (def["key"]["shape"].as_str(), def["value"]["shape"].as_str());
            for (k, v) in entries {
                check_shape(model, key.unwrap_or_default(), &Value::from(k.as_str()), &format!("{path} key"), problems);
                check_shape(model, target.unwrap_or_default(), v, &format!("{path}.{k}"), problems);
            }
            Some(entries.len() as f64)
        }
        ("string", Value::String(text)) => {
            if let Some(allowed) = def["enum"].as_array() {
                if !allowed.iter().any(|a| a.as_str() == Some(text)) {
                    let allowed: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                    problems.push(format!("{path}: `{text}` is not one of {allowed:?} (shape {shape})"));
                }
            }
            Some(text.chars().count() as f64)
        }
        ("blob", Value::String(text)) => Some(text.len() as f64),
        ("integer" | "long", Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_f64(),
        ("float" | "double", Value::Number(n)) => n.as_f64(),
        ("boolean", Value::Bool(_)) => None,
        // JSON sends epoch seconds; a text timestamp (ISO 8601) where a format says so.
        ("timestamp", Value::Number(_) | Value::String(_)) => None,
        ("structure", _) => return wrong("an object"),
        ("list", _) => return wrong("a list"),
        ("map", _) => return wrong("a map"),
        ("integer" | "long", _) => return wrong("an integer"),
        ("float" | "double", _) => return wrong("a number"),
        ("boolean", _) => return wrong("a boolean"),
        ("timestamp", _) => return wrong("a timestamp"),
        ("string" | "blob", _) => return wrong("a string"),
        (other, _) => return problems.push(format!("{path}: shape {shape} has type `{other}`, which is not checked")),
    };
    if let Some(size) = size {
        let what = if matches!(kind, "integer" | "long" | "float" | "double") { "value" } else { "length" };
        if let Some(min) = def["min"].as_f64().filter(|min| size < *min) {
            problems.push(format!("{path}: {what} {size} is below the minimum {min} (shape {shape})"));
        }
        if let Some(max) = def["max"].as_f64().filter(|max| size > *max) {
            problems.push(format!("{path}: {what} {size} is above the maximum {max} (shape {shape})"));
        }
    }
}

#[cfg(test)]
mod tests;
