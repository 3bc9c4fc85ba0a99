//! Checks the Grafana image directory (`grafana/`) without running Grafana.
//!
//! Grafana skips unknown provisioning keys silently and resolves a dashboard's datasource only
//! when a panel loads, so a typo shows up as an empty panel in production. This module checks
//! what Grafana 13 accepts: provisioning files (apiVersion, required fields, known keys, `jsonData`
//! keys of the `loki`, `prometheus` and Amazon Prometheus types), dashboards (they parse, and every
//! datasource they name is provisioned with that type), and the Dockerfile (a pinned base, no
//! entrypoint of its own, not running as root, every `COPY` source present).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

pub use crate::loki::Finding;

/// The provisioning file format version Grafana reads.
const API_VERSION: i64 = 1;

/// Datasource uids every Grafana has without provisioning.
const BUILTIN_UIDS: &[&str] = &["grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"];

const DATASOURCE_FILE_KEYS: &[&str] = &["apiVersion", "datasources", "deleteDatasources", "prune"];
const DATASOURCE_KEYS: &[&str] = &[
    "orgId",
    "uid",
    "name",
    "type",
    "access",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
    "version",
    "editable",
];
const PROVIDER_FILE_KEYS: &[&str] = &["apiVersion", "providers"];
const PROVIDER_KEYS: &[&str] = &[
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "updateIntervalSeconds",
    "allowUiUpdates",
    "options",
];
const PROVIDER_OPTION_KEYS: &[&str] = &["path", "foldersFromFilesStructure"];

/// `jsonData` keys of Grafana's HTTP client settings, shared by the HTTP-based datasources.
const HTTP_JSON_DATA: &[&str] = &[
    "timeout",
    "keepCookies",
    "oauthPassThru",
    "tlsAuth",
    "tlsAuthWithCACert",
    "tlsSkipVerify",
    "serverName",
    "manageAlerts",
    "alertmanagerUid",
];
const LOKI_JSON_DATA: &[&str] = &["maxLines", "derivedFields"];
const PROMETHEUS_JSON_DATA: &[&str] = &[
    "httpMethod",
    "timeInterval",
    "queryTimeout",
    "defaultEditor",
    "disableMetricsLookup",
    "cacheLevel",
    "incrementalQuerying",
    "incrementalQueryOverlapWindow",
    "disableRecordingRules",
    "customQueryParameters",
    "prometheusType",
    "prometheusVersion",
    "exemplarTraceIdDestinations",
    "seriesEndpoint",
    "seriesLimit",
];
/// SigV4 keys of the Amazon Prometheus plugin (grafana-aws-sdk auth settings).
const SIGV4_JSON_DATA: &[&str] = &[
    "sigV4Auth",
    "sigV4AuthType",
    "sigV4Region",
    "sigV4Profile",
    "sigv4Service",
    "sigV4AssumeRoleArn",
    "sigV4ExternalId",
    "assumeRoleArn",
    "externalId",
];
const SIGV4_AUTH_TYPES: &[&str] = &["default", "keys", "credentials", "ec2_iam_role", "grafana_assume_role"];

const AMAZON_PROMETHEUS: &str = "grafana-amazonprometheus-datasource";

/// A provisioned datasource, as dashboards refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasource {
    pub uid: String,
    pub kind: String,
    pub name: String,
    pub is_default: bool,
    /// `provisioning/datasources/<file>`, for messages.
    pub file: String,
}

/// Checks `dir` (the Docker build context with `Dockerfile`, `provisioning/`, `dashboards/`).
/// Empty when everything is fine.
pub fn check_grafana_dir(dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let copies = match read(dir, "Dockerfile", &mut out) {
        Some(text) => check_dockerfile(&text, dir, &mut out),
        None => Vec::new(),
    };

    let mut datasources = Vec::new();
    for file in files(dir, "provisioning/datasources", &["yaml", "yml"], &mut out) {
        if let Some(text) = read(dir, &file, &mut out) {
            datasources.extend(check_datasource_file(&file, &text, &mut out));
        }
    }
    check_datasources_together(&datasources, &mut out);

    for file in files(dir, "provisioning/dashboards", &["yaml", "yml"], &mut out) {
        if let Some(text) = read(dir, &file, &mut out) {
            for path in check_provider_file(&file, &text, &mut out) {
                check_provider_path(&file, &path, &copies, dir, &mut out);
            }
        }
    }

    let mut uids = BTreeMap::new();
    for file in files(dir, "dashboards", &["json"], &mut out) {
        if let Some(text) = read(dir, &file, &mut out) {
            if let Some(uid) = check_dashboard(&file, &text, &datasources, &mut out) {
                if let Some(first) = uids.insert(uid.clone(), file.clone()) {
                    out.push(at(&file, "uid", format!("dashboard uid `{uid}` is also used by {first}")));
                }
            }
        }
    }
    out
}

/// Grafana's dataproxy timeout, seconds: what a datasource without `jsonData.timeout` waits.
pub const GRAFANA_DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// How long Grafana waits for Loki (`jsonData.timeout` of the `loki` datasource in
/// `provisioning/datasources/loki.yaml`), seconds. The Service Connect proxy and Loki's own
/// timeouts must let a query run at least this long.
pub fn loki_datasource_timeout(dir: &Path) -> Result<u64, String> {
    let file = dir.join("provisioning/datasources/loki.yaml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let ds = docs
        .first()
        .and_then(|d| d["datasources"].as_vec())
        .and_then(|list| list.iter().find(|ds| ds["uid"].as_str() == Some("loki")))
        .ok_or_else(|| format!("{}: no datasource with uid loki", file.display()))?;
    match &ds["jsonData"]["timeout"] {
        Yaml::BadValue => Ok(GRAFANA_DEFAULT_TIMEOUT_SECONDS),
        Yaml::Integer(n) if *n > 0 => Ok(*n as u64),
        other => Err(format!("{}: jsonData.timeout {other:?} is not a number of seconds", file.display())),
    }
}

/// The Grafana version the Dockerfile's final `FROM` pins (`grafana/grafana:<x.y.z>`, optionally
/// with a digest). `cargo xtask build-grafana` tags the image with it.
pub fn grafana_version(dockerfile: &str) -> Result<String, String> {
    let from = instructions(dockerfile).into_iter().rfind(|(name, _)| name == "FROM").ok_or("no FROM instruction")?;
    let image = from_image(&from.1).ok_or("FROM names no image")?;
    let (name, tag, _) = split_image(&image);
    if name != "grafana/grafana" && name != "docker.io/grafana/grafana" {
        return Err(format!(
            "the final FROM is `{image}`; it must be grafana/grafana:<version> (grafana/grafana-oss stopped at 12.4)"
        ));
    }
    match tag {
        Some(tag) if is_version(tag) => Ok(tag.to_string()),
        Some(tag) => Err(format!("`{image}`: tag `{tag}` is not a release version such as 13.2.3")),
        None => Err(format!("`{image}` has no version tag; pin one such as grafana/grafana:13.2.3")),
    }
}

// --- Dockerfile -----------------------------------------------------------------------------------

/// Returns the `(source, destination)` pairs of the `COPY`/`ADD` instructions from the build context.
fn check_dockerfile(text: &str, dir: &Path, out: &mut Vec<Finding>) -> Vec<(String, String)> {
    let file = "Dockerfile";
    let mut copies = Vec::new();
    let mut user = None;
    let before = out.len();
    for (name, args) in instructions(text) {
        match name.as_str() {
            "FROM" => match from_image(&args) {
                Some(image) if image.contains('$') => out.push(at(
                    file,
                    "FROM",
                    format!(
                        "`{image}`: write the base image literally, not through an ARG, so it is pinned in the file"
                    ),
                )),
                Some(image) => {
                    if let Err(why) = pinned(&image) {
                        out.push(at(file, "FROM", why));
                    }
                }
                None => out.push(at(file, "FROM", "names no image")),
            },
            "COPY" | "ADD" => {
                let words = words(&args);
                if words.iter().any(|w| w.starts_with("--from=")) {
                    continue;
                }
                let paths: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
                let Some((dest, sources)) = paths.split_last() else {
                    out.push(at(file, &name, "needs a source and a destination"));
                    continue;
                };
                for source in sources {
                    check_copy_source(source, dir, &name, out);
                    copies.push((source.to_string(), dest.to_string()));
                }
            }
            "ENTRYPOINT" => out.push(at(
                file,
                "ENTRYPOINT",
                "keep the image's /run.sh: Grafana expands $VAR in provisioning files itself, no wrapper is needed",
            )),
            "USER" => user = Some(args.trim().to_string()),
            _ => {}
        }
    }
    let from_findings = out[before..].iter().any(|f| f.path.ends_with(": FROM"));
    if !from_findings {
        if let Err(why) = grafana_version(text) {
            out.push(at(file, "FROM", why));
        }
    }
    match user.as_deref() {
        None => {} // the base image's user (grafana, 472)
        Some(u) if u == "root" || u == "0" || u.starts_with("root:") || u.starts_with("0:") => {
            out.push(at(file, "USER", "the image ends as root; end with `USER 472` (Grafana's own user)"))
        }
        Some(_) => {}
    }
    copies
}

fn check_copy_source(source: &str, dir: &Path, instruction: &str, out: &mut Vec<Finding>) {
    if source.contains("://") {
        out.push(at(
            "Dockerfile",
            instruction,
            format!("`{source}`: no downloads at build time outside a pinned installer"),
        ));
        return;
    }
    let relative = source.trim_start_matches("./");
    if Path::new(relative).components().any(|c| matches!(c, std::path::Component::ParentDir))
        || relative.starts_with('/')
    {
        out.push(at("Dockerfile", instruction, format!("`{source}` is outside the build context ({})", dir.display())));
        return;
    }
    // A wildcard is checked by its directory; Docker fails the build when nothing matches.
    let literal = if relative.contains(['*', '?', '[']) {
        Path::new(relative).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
    } else {
        relative.to_string()
    };
    if !dir.join(&literal).exists() {
        out.push(at("Dockerfile", instruction, format!("source `{source}` does not exist in {}", dir.display())));
    }
}

/// Instructions with continuation lines joined and comments dropped; names upper-cased.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let joined = std::mem::take(&mut current);
                if let Some((name, args)) = joined.trim().split_once(char::is_whitespace) {
                    out.push((name.to_ascii_uppercase(), args.trim().to_string()));
                } else if !joined.trim().is_empty() {
                    out.push((joined.trim().to_ascii_uppercase(), String::new()));
                }
            }
        }
    }
    out
}

/// Shell-form words, or the JSON-array form of COPY/ADD.
fn words(args: &str) -> Vec<String> {
    if args.trim_start().starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(args.trim()) {
            return list;
        }
    }
    args.split_whitespace().map(str::to_string).collect()
}

fn from_image(args: &str) -> Option<String> {
    words(args).into_iter().find(|w| !w.starts_with("--"))
}

/// `(name, tag, digest)` of an image reference; the registry port is not a tag.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

fn pinned(image: &str) -> Result<(), String> {
    match split_image(image) {
        (_, _, Some(digest)) if digest.starts_with("sha256:") && digest.len() == 71 => Ok(()),
        (_, Some("latest"), _) => Err(format!("`{image}`: `latest` is not a version; pin a release tag")),
        (_, Some(tag), _) if !tag.is_empty() => Ok(()),
        _ => Err(format!("`{image}` has no tag; pin a release tag or a digest")),
    }
}

fn is_version(tag: &str) -> bool {
    let core = tag.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

// --- Provisioning: datasources -------------------------------------------------------------------

fn check_datasource_file(file: &str, text: &str, out: &mut Vec<Finding>) -> Vec<Datasource> {
    let Some(doc) = parse_yaml(file, text, out) else {
        return Vec::new();
    };
    check_api_version(file, &doc, out);
    unknown_keys(file, "", &doc, DATASOURCE_FILE_KEYS, out);
    let Some(list) = doc["datasources"].as_vec() else {
        if !doc["datasources"].is_badvalue() {
            out.push(at(file, "datasources", "must be a list"));
        }
        return Vec::new();
    };
    let mut found = Vec::new();
    for (i, ds) in list.iter().enumerate() {
        let path = format!("datasources[{i}]");
        if ds.as_hash().is_none() {
            out.push(at(file, &path, "must be a mapping"));
            continue;
        }
        unknown_keys(file, &path, ds, DATASOURCE_KEYS, out);
        let name = required_str(file, &path, ds, "name", out);
        let kind = required_str(file, &path, ds, "type", out);
        let uid = required_str(file, &path, ds, "uid", out);
        if let Some(uid) = &uid {
            if let Err(why) = check_uid(uid) {
                out.push(at(file, &format!("{path}.uid"), why));
            }
        }
        if let Some(access) = ds["access"].as_str() {
            if access != "proxy" {
                out.push(at(
                    file,
                    &format!("{path}.access"),
                    format!("`{access}`: only `proxy` (server) access is supported"),
                ));
            }
        }
        if let Some(kind) = &kind {
            check_json_data(file, &path, kind, ds, out);
        }
        check_secure_json_data(file, &path, ds, out);
        if let (Some(uid), Some(kind), Some(name)) = (uid, kind, name) {
            found.push(Datasource {
                uid,
                kind,
                name,
                is_default: ds["isDefault"].as_bool() == Some(true),
                file: file.to_string(),
            });
        }
    }
    found
}

fn check_json_data(file: &str, path: &str, kind: &str, ds: &Yaml, out: &mut Vec<Finding>) {
    let json_data = &ds["jsonData"];
    let path = format!("{path}.jsonData");
    let allowed: Vec<&str> = match kind {
        "loki" => [HTTP_JSON_DATA, LOKI_JSON_DATA].concat(),
        "prometheus" => [HTTP_JSON_DATA, PROMETHEUS_JSON_DATA, SIGV4_JSON_DATA].concat(),
        AMAZON_PROMETHEUS => [HTTP_JSON_DATA, PROMETHEUS_JSON_DATA, SIGV4_JSON_DATA].concat(),
        _ => return, // other plugins: their own keys, not checked here
    };
    if ["loki", "prometheus", AMAZON_PROMETHEUS].contains(&kind) && ds["url"].as_str().is_none_or(str::is_empty) {
        out.push(at(file, path.trim_end_matches(".jsonData"), format!("`url` is required for a {kind} datasource")));
    }
    if json_data.is_badvalue() {
        if kind == AMAZON_PROMETHEUS {
            out.push(at(file, &path, "missing: sigV4Auth and sigV4Region are required"));
        }
        return;
    }
    let Some(map) = json_data.as_hash() else {
        out.push(at(file, &path, "must be a mapping"));
        return;
    };
    for key in map.keys() {
        let name = key.as_str().unwrap_or_default();
        // httpHeaderName1, httpHeaderName2, …: custom headers (values in secureJsonData).
        if !allowed.contains(&name) && !name.starts_with("httpHeaderName") {
            out.push(at(
                file,
                &format!("{path}.{name}"),
                format!("unknown jsonData key for type {kind} (Grafana ignores it silently)"),
            ));
        }
    }
    if let Some(v) = positive_number(json_data, "timeout") {
        out.push(at(file, &format!("{path}.timeout"), v));
    }
    if kind == "loki" {
        if let Some(v) = positive_number(json_data, "maxLines") {
            out.push(at(file, &format!("{path}.maxLines"), v));
        }
        return;
    }
    if let Some(method) = json_data["httpMethod"].as_str() {
        if method != "GET" && method != "POST" {
            out.push(at(file, &format!("{path}.httpMethod"), format!("`{method}`: expected GET or POST")));
        }
    }
    let sigv4 = &json_data["sigV4Auth"];
    if !sigv4.is_badvalue() && sigv4.as_bool().is_none() {
        out.push(at(file, &format!("{path}.sigV4Auth"), "must be true or false"));
    }
    if let Some(auth_type) = json_data["sigV4AuthType"].as_str() {
        if !SIGV4_AUTH_TYPES.contains(&auth_type) && !is_env_reference(auth_type) {
            out.push(at(
                file,
                &format!("{path}.sigV4AuthType"),
                format!("`{auth_type}`: expected one of {}", SIGV4_AUTH_TYPES.join(", ")),
            ));
        }
    }
    match kind {
        "prometheus" if sigv4.as_bool() == Some(true) => out.push(at(
            file,
            &format!("{path}.sigV4Auth"),
            format!("core Prometheus has no SigV4 since Grafana 13.1; use type {AMAZON_PROMETHEUS} for AMP"),
        )),
        AMAZON_PROMETHEUS => {
            if sigv4.as_bool() != Some(true) {
                out.push(at(
                    file,
                    &format!("{path}.sigV4Auth"),
                    "must be true: AMP only accepts SigV4-signed requests",
                ));
            }
            if json_data["sigV4Region"].as_str().is_none_or(str::is_empty) {
                out.push(at(file, &format!("{path}.sigV4Region"), "required: the region SigV4 signs for"));
            }
        }
        _ => {}
    }
}

/// Secrets must not be baked into the image: only `$VAR` references in secureJsonData.
fn check_secure_json_data(file: &str, path: &str, ds: &Yaml, out: &mut Vec<Finding>) {
    let Some(map) = ds["secureJsonData"].as_hash() else {
        return;
    };
    for (key, value) in map {
        let literal = match value {
            Yaml::String(s) => !is_env_reference(s),
            Yaml::Null => false,
            _ => true,
        };
        if literal {
            let key = key.as_str().unwrap_or_default();
            out.push(at(
                file,
                &format!("{path}.secureJsonData.{key}"),
                "a literal secret in a file baked into the image; use a $VAR set from Secrets Manager",
            ));
        }
    }
}

fn check_datasources_together(datasources: &[Datasource], out: &mut Vec<Finding>) {
    let mut uids: BTreeMap<&str, &str> = BTreeMap::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for ds in datasources {
        if let Some(first) = uids.insert(&ds.uid, &ds.file) {
            out.push(at(&ds.file, "uid", format!("datasource uid `{}` is also provisioned in {first}", ds.uid)));
        }
        if let Some(first) = names.insert(&ds.name, &ds.file) {
            out.push(at(&ds.file, "name", format!("datasource name `{}` is also provisioned in {first}", ds.name)));
        }
    }
    let defaults: Vec<&str> = datasources.iter().filter(|d| d.is_default).map(|d| d.uid.as_str()).collect();
    if defaults.len() > 1 {
        out.push(at(
            "provisioning/datasources",
            "isDefault",
            format!(
                "{} datasources are marked default ({}); Grafana refuses to start with more than one",
                defaults.len(),
                defaults.join(", ")
            ),
        ));
    }
}

// --- Provisioning: dashboard providers -----------------------------------------------------------

/// Returns each provider's `options.path`.
fn check_provider_file(file: &str, text: &str, out: &mut Vec<Finding>) -> Vec<String> {
    let Some(doc) = parse_yaml(file, text, out) else {
        return Vec::new();
    };
    check_api_version(file, &doc, out);
    unknown_keys(file, "", &doc, PROVIDER_FILE_KEYS, out);
    let Some(list) = doc["providers"].as_vec() else {
        out.push(at(file, "providers", "required: a list of dashboard providers"));
        return Vec::new();
    };
    let mut paths = Vec::new();
    for (i, provider) in list.iter().enumerate() {
        let path = format!("providers[{i}]");
        unknown_keys(file, &path, provider, PROVIDER_KEYS, out);
        required_str(file, &path, provider, "name", out);
        if let Some(kind) = provider["type"].as_str() {
            if kind != "file" {
                out.push(at(file, &format!("{path}.type"), format!("`{kind}`: only `file` providers exist")));
            }
        }
        let options = &provider["options"];
        unknown_keys(file, &format!("{path}.options"), options, PROVIDER_OPTION_KEYS, out);
        match options["path"].as_str() {
            Some(p) if !p.is_empty() => paths.push(p.to_string()),
            _ => out.push(at(
                file,
                &format!("{path}.options.path"),
                "required: the directory holding the dashboard JSON",
            )),
        }
    }
    paths
}

/// The provider's directory must be where the Dockerfile copies this repository's dashboards.
fn check_provider_path(file: &str, path: &str, copies: &[(String, String)], dir: &Path, out: &mut Vec<Finding>) {
    let want = path.trim_end_matches('/');
    let source = copies.iter().find(|(_, dest)| dest.trim_end_matches('/') == want).map(|(src, _)| src);
    match source {
        None => out.push(at(
            file,
            "options.path",
            format!("`{path}` is not a COPY destination in the Dockerfile, so Grafana finds no dashboards there"),
        )),
        Some(src) => {
            let has_json = std::fs::read_dir(dir.join(src.trim_start_matches("./")))
                .map(|entries| {
                    entries.filter_map(Result::ok).any(|e| e.path().extension().is_some_and(|x| x == "json"))
                })
                .unwrap_or(false);
            if !has_json {
                out.push(at(file, "options.path", format!("`{path}` receives `{src}`, which holds no dashboard JSON")));
            }
        }
    }
}

// --- Dashboards ----------------------------------------------------------------------------------

/// Returns the dashboard's uid when it has a usable one.
fn check_dashboard(file: &str, text: &str, datasources: &[Datasource], out: &mut Vec<Finding>) -> Option<String> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.push(at(file, "", format!("not valid JSON: {e}")));
            return None;
        }
    };
    if !doc.is_object() {
        out.push(at(file, "", "a dashboard must be a JSON object"));
        return None;
    }
    if doc["title"].as_str().is_none_or(str::is_empty) {
        out.push(at(file, "title", "required"));
    }
    if !doc["panels"].is_array() {
        out.push(at(file, "panels", "required: a list of panels"));
    }
    let uid = match doc["uid"].as_str() {
        Some(uid) => match check_uid(uid) {
            Ok(()) => Some(uid.to_string()),
            Err(why) => {
                out.push(at(file, "uid", why));
                None
            }
        },
        None => {
            out.push(at(file, "uid", "required: a fixed uid keeps links to the dashboard stable"));
            None
        }
    };
    let variables: BTreeSet<&str> = doc["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "datasource")
        .filter_map(|v| v["name"].as_str())
        .collect();
    let known: BTreeMap<&str, &Datasource> = datasources.iter().map(|d| (d.uid.as_str(), d)).collect();
    walk_references(file, &doc, "", &known, &variables, out);
    uid
}

fn walk_references(
    file: &str,
    node: &Value,
    path: &str,
    known: &BTreeMap<&str, &Datasource>,
    variables: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if key == "datasource" {
                    check_reference(file, &here, value, known, variables, out);
                }
                walk_references(file, value, &here, known, variables, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_references(file, item, &format!("{path}[{i}]"), known, variables, out);
            }
        }
        _ => {}
    }
}

fn check_reference(
    file: &str,
    path: &str,
    value: &Value,
    known: &BTreeMap<&str, &Datasource>,
    variables: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) {
    let uid = match value {
        Value::Null => return, // the default datasource
        Value::String(name) if BUILTIN_UIDS.contains(&name.as_str()) => return,
        Value::String(name) => {
            out.push(at(
                file,
                path,
                format!("refers to a datasource by name (`{name}`); use {{\"type\": …, \"uid\": …}}"),
            ));
            return;
        }
        Value::Object(_) => match value["uid"].as_str() {
            Some(uid) => uid,
            None => {
                out.push(at(file, path, "a datasource reference needs a uid"));
                return;
            }
        },
        _ => {
            out.push(at(file, path, "a datasource reference must be an object with type and uid"));
            return;
        }
    };
    if BUILTIN_UIDS.contains(&uid) {
        return;
    }
    if let Some(variable) = uid.strip_prefix('$') {
        let variable = variable.trim_start_matches('{').trim_end_matches('}');
        if !variables.contains(variable) {
            out.push(at(file, path, format!("`{uid}` is not a datasource variable of this dashboard")));
        }
        return;
    }
    let Some(ds) = known.get(uid) else {
        let provisioned: Vec<&str> = known.keys().copied().collect();
        out.push(at(file, path, format!("uid `{uid}` is not provisioned (provisioned: {})", provisioned.join(", "))));
        return;
    };
    if let Some(kind) = value["type"].as_str() {
        if kind != ds.kind {
            out.push(at(file, path, format!("type `{kind}` but datasource `{uid}` is {} ({})", ds.kind, ds.file)));
        }
    }
}

// --- Helpers -------------------------------------------------------------------------------------

fn at(file: &str, path: &str, message: impl Into<String>) -> Finding {
    let path = if path.is_empty() { file.to_string() } else { format!("{file}: {path}") };
    Finding { path, message: message.into() }
}

fn read(dir: &Path, file: &str, out: &mut Vec<Finding>) -> Option<String> {
    match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => Some(text),
        Err(e) => {
            out.push(at(file, "", format!("cannot read {}: {e}", dir.join(file).display())));
            None
        }
    }
}

/// Files with one of `extensions` directly in `sub`, sorted, as paths relative to `dir`.
fn files(dir: &Path, sub: &str, extensions: &[&str], out: &mut Vec<Finding>) -> Vec<String> {
    let entries = match std::fs::read_dir(dir.join(sub)) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(at(sub, "", format!("cannot list {}: {e}", dir.join(sub).display())));
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(|x| x.to_str()).is_some_and(|x| extensions.contains(&x)))
        .filter_map(|p| p.file_name().map(|n| format!("{sub}/{}", n.to_string_lossy())))
        .collect();
    names.sort();
    if names.is_empty() {
        out.push(at(sub, "", format!("no .{} files", extensions.join("/."))));
    }
    names
}

fn parse_yaml(file: &str, text: &str, out: &mut Vec<Finding>) -> Option<Yaml> {
    match YamlLoader::load_from_str(text) {
        Ok(mut docs) if docs.len() == 1 => Some(docs.remove(0)),
        Ok(docs) => {
            out.push(at(file, "", format!("{} YAML documents; Grafana reads exactly one", docs.len())));
            None
        }
        Err(e) => {
            out.push(at(file, "", format!("not valid YAML: {e}")));
            None
        }
    }
}

fn check_api_version(file: &str, doc: &Yaml, out: &mut Vec<Finding>) {
    if doc["apiVersion"].as_i64() != Some(API_VERSION) {
        out.push(at(file, "apiVersion", format!("must be {API_VERSION}")));
    }
}

fn unknown_keys(file: &str, path: &str, node: &Yaml, allowed: &[&str], out: &mut Vec<Finding>) {
    let Some(map) = node.as_hash() else { return };
    for key in map.keys() {
        let name = key.as_str().unwrap_or_default();
        if !allowed.contains(&name) {
            let here = if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
            out.push(at(
                file,
                &here,
                format!("unknown key (Grafana ignores it silently); known: {}", allowed.join(", ")),
            ));
        }
    }
}

fn required_str(file: &str, path: &str, node: &Yaml, key: &str, out: &mut Vec<Finding>) -> Option<String> {
    match node[key].as_str() {
        Some(value) if !value.is_empty() => Some(value.to_string()),
        _ => {
            out.push(at(file, &format!("{path}.{key}"), "required"));
            None
        }
    }
}

/// Grafana's uid rule: 1-40 letters, digits, `-` and `_`.
fn check_uid(uid: &str) -> Result<(), String> {
    let ok =
        !uid.is_empty() && uid.len() <= 40 && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("`{uid}`: a uid is 1-40 letters, digits, '-' or '_'"))
    }
}

/// `$VAR` or `${VAR}`: resolved by Grafana from the environment.
fn is_env_reference(value: &str) -> bool {
    let name = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')).or_else(|| value.strip_prefix('$'));
    name.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// A positive whole number (or a `$VAR`); the message when it is not.
fn positive_number(map: &Yaml, key: &str) -> Option<String> {
    match &map[key] {
        Yaml::BadValue => None,
        Yaml::Integer(n) if *n > 0 => None,
        Yaml::String(s) if is_env_reference(s) || s.parse::<u64>().is_ok_and(|n| n > 0) => None,
        other => Some(format!("{other:?}: expected a positive whole number")),
    }
}

#[cfg(test)]
mod tests;
