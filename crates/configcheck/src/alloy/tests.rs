use super::*;

/// A small config in the shape the template renders: every check passes.
const GOOD: &str = r#"
// comment
remote.http "ecs_task" {
  url            = sys.env("ECS_CONTAINER_METADATA_URI_V4") + "/task"
  poll_frequency = "1h"
}

discovery.docker "own_task" {
  host = "unix:///var/run/docker.sock"
  filter {
    name   = "label"
    values = ["com.amazonaws.ecs.task-arn=" + encoding.from_json(remote.http.ecs_task.content)["TaskARN"]]
  }
}

discovery.relabel "own_task" {
  targets = discovery.docker.own_task.targets
  rule {
    source_labels = ["__meta_docker_container_label_com_amazonaws_ecs_container_name"]
    regex         = `alloy|~internal~ecs~pause`
    action        = "drop"
  }
}

loki.source.docker "own_task" {
  host       = "unix:///var/run/docker.sock"
  targets    = discovery.relabel.own_task.output
  labels     = {service_name = "history", "cluster" = "c"}
  forward_to = [loki.process.own_task.receiver]
}

loki.process "own_task" {
  forward_to = [loki.write.loki.receiver]
  stage.structured_metadata {
    values = {task_id = ""}
  }
}

loki.write "loki" {
  endpoint {
    url                 = "http://loki:3100/loki/api/v1/push"
    max_backoff_retries = 2 * 10
  }
}

prometheus.scrape "main" {
  targets = [{
    "__address__" = "localhost:9090",
    "task_id"     = string.split(encoding.from_json(remote.http.ecs_task.content)["TaskARN"], "/")[2],
  }]
  forward_to = [prometheus.remote_write.amp.receiver]
}

prometheus.remote_write "amp" {
  endpoint {
    url = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
    sigv4 {
      region = "eu-west-1"
    }
  }
}
"#;

fn messages(src: &str, env: &[&str]) -> Vec<String> {
    check_alloy_config(src, env).into_iter().map(|f| f.to_string()).collect()
}

fn assert_one(src: &str, env: &[&str], needle: &str) {
    let found = messages(src, env);
    assert!(
        found.len() == 1 && found[0].contains(needle),
        "expected one finding containing {needle:?}, got {found:#?}"
    );
}

#[test]
fn good_config_passes() {
    assert_eq!(messages(GOOD, &[]), Vec::<String>::new());
}

#[test]
fn parses_expressions() {
    let body = parse(r#"a = -1 + 2 * 3 ^ 2 ^ 1 == 19 && !false || null != "x\t\u00e9\101""#).expect("parses");
    let Statement::Attribute(a) = &body.statements[0] else { panic!("attribute") };
    assert!(matches!(a.value, Expr::Binary("||", ..)), "{:?}", a.value);
    let body = parse("o = {\n  a = [1, 2.5e3,\n  ],\n  \"b-c\" = x.y[\"k\"](1),\n}\n").expect("parses");
    let Statement::Attribute(a) = &body.statements[0] else { panic!("attribute") };
    let Expr::Object(fields, _) = &a.value else { panic!("object") };
    assert_eq!(fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a", "b-c"]);
}

#[test]
fn syntax_errors_have_positions() {
    let found = messages("loki.write \"x\" {\n  endpoint {\n    url = \n  }\n}\n", &[]);
    assert!(found.len() == 1 && found[0].starts_with("3:11: syntax error: expected an expression"), "{found:?}");
    let found = messages("a = \"unterminated\n", &[]);
    assert!(found[0].contains("newline in string"), "{found:?}");
    // One statement per line; a one-line block body is fine.
    let found = messages("loki.write \"x\" { endpoint { url = \"u\" max_streams = 1 } }", &[]);
    assert!(found[0].contains("expected a new line"), "{found:?}");
    assert!(parse("loki.write \"x\" { endpoint { url = \"u\" } }").is_ok());
}

#[test]
fn typo_in_argument_fails() {
    let src = GOOD.replace("max_backoff_retries", "max_retries");
    assert_one(&src, &[], "loki.write > endpoint: unknown argument `max_retries` for Alloy v1.21");
    let src = GOOD.replace("poll_frequency", "poll_frequncy");
    assert_one(&src, &[], "did you mean `poll_frequency`?");
    let src = GOOD.replace("sigv4 {", "sigv5 {");
    assert_one(&src, &[], "unknown block `sigv5`");
}

#[test]
fn missing_required_argument_fails() {
    let src = GOOD.replace("url                 = \"http://loki:3100/loki/api/v1/push\"", "");
    assert_one(&src, &[], "loki.write > endpoint: required argument `url` is missing");
}

#[test]
fn dangling_reference_fails() {
    let src = GOOD.replace("[loki.write.loki.receiver]", "[loki.write.default.receiver]");
    let found = messages(&src, &[]);
    assert!(found.iter().any(|f| f.contains("dangling reference `loki.write.default.receiver`")), "{found:#?}");
    // The unfed loki.write "loki" is now an orphan too.
    assert!(found.iter().any(|f| f.contains("orphan component loki.write \"loki\"")), "{found:#?}");
    let src = GOOD.replace("discovery.docker.own_task.targets", "discovery.docker.own_task.target");
    assert_one(&src, &[], "has no export `target` (it exports targets)");
}

#[test]
fn forward_to_must_be_receiver_of_the_same_signal() {
    let src =
        GOOD.replace("forward_to = [prometheus.remote_write.amp.receiver]", "forward_to = [loki.write.loki.receiver]");
    let found = messages(&src, &[]);
    assert!(found.iter().any(|f| f.contains("receives logs, but this component sends metrics")), "{found:#?}");
    let src =
        GOOD.replace("forward_to = [loki.write.loki.receiver]", "forward_to = [discovery.relabel.own_task.rules]");
    let found = messages(&src, &[]);
    assert!(found.iter().any(|f| f.contains("is not a receiver")), "{found:#?}");
}

#[test]
fn orphan_component_fails() {
    let src = format!("{GOOD}\nloki.write \"spare\" {{\n  endpoint {{\n    url = \"http://x\"\n  }}\n}}\n");
    assert_one(&src, &[], "orphan component loki.write \"spare\": nothing uses its receiver");
}

#[test]
fn unset_sys_env_fails() {
    let src = GOOD.replace("region = \"eu-west-1\"", "region = sys.env(\"AWS_REGION\")");
    assert_one(&src, &[], "sys.env(\"AWS_REGION\") is read but the task definition does not set AWS_REGION");
    assert_eq!(messages(&src, &["AWS_REGION"]), Vec::<String>::new());
    let src = GOOD.replace("sys.env(\"ECS_CONTAINER_METADATA_URI_V4\")", "env(\"ECS_CONTAINER_METADATA_URI_V4\")");
    assert_one(&src, &[], "`env` is a deprecated alias; use `sys.env`");
}

#[test]
fn unknown_component_and_labels() {
    let src = format!("{GOOD}\nloki.wirte \"x\" {{}}\n");
    assert_one(&src, &[], "unknown component `loki.wirte` for Alloy v1.21, did you mean `loki.write`?");
    let src = GOOD.replace("loki.write \"loki\" {", "loki.write {");
    let found = messages(&src, &[]);
    assert!(found.iter().any(|f| f.contains("needs a label")), "{found:#?}");
}

#[test]
fn env_names_from_container_definitions_reads_env_and_secrets() {
    let json = r#"[{"name":"temporal-history","environment":[{"name":"A","value":"1"}]},
        {"name":"alloy","environment":[{"name":"GOMEMLIMIT","value":"300MiB"}],
         "secrets":[{"name":"ALLOY_CONFIG","valueFrom":"arn:aws:ssm:eu-west-1:1:parameter/x"}]}]"#;
    assert_eq!(env_names_from_container_definitions(json, "alloy").unwrap(), ["ALLOY_CONFIG", "GOMEMLIMIT"]);
    assert!(env_names_from_container_definitions(json, "adot").unwrap_err().contains("no container named `adot`"));
}

/// Every rendered Alloy config in the repository passes with the sidecar's environment
/// (infra/alloy-sidecar.tf sets GOMEMLIMIT and ALLOY_CONFIG; the rest comes from the ECS agent).
#[test]
fn rendered_configs_in_repo_pass() {
    let mut checked = 0;
    for path in crate::rendered_files(|name| name.starts_with("alloy-") && name.ends_with(".alloy")) {
        let src = std::fs::read_to_string(&path).expect("readable");
        let found = messages(&src, &["GOMEMLIMIT", "ALLOY_CONFIG"]);
        assert!(found.is_empty(), "{}:\n{}", path.display(), found.join("\n"));
        checked += 1;
    }
    assert!(checked > 0, "no rendered/*/alloy-*.alloy found");
}

/// The shortest time `loki.write` keeps retrying one batch before dropping it, in seconds; `None`
/// when it never gives up (`max_backoff_retries = 0`). Alloy's client sleeps dskit's backoff
/// between attempts: a jittered delay in [lo, hi), both doubling (capped at `max`) while hi is
/// below `max`, starting at [min, 2·min); the retry that reaches the limit does not sleep.
fn min_retry_window_secs(min: f64, max: f64, retries: u32) -> Option<f64> {
    if retries == 0 {
        return None;
    }
    let (mut lo, mut hi) = (min, (2.0 * min).min(max));
    let mut total = 0.0;
    for _ in 1..retries {
        total += lo;
        if lo < hi && hi < max {
            lo = (2.0 * lo).min(max);
            hi = (2.0 * hi).min(max);
        }
    }
    Some(total)
}

/// A Go duration as Alloy reads it: `500ms`, `5m`, `1h30m`.
fn go_duration_secs(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        total += n * match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit..];
    }
    (!s.is_empty()).then_some(total)
}

/// A Loki task replacement takes at most its stopTimeout (120 s, infra/loki.tf) plus the health
/// check's grace and retries (300 s + 3 × 30 s) before ECS gives up on it; the collectors must
/// hold their logs well beyond that.
const LOKI_OUTAGE_TO_OUTLAST_SECS: f64 = 15.0 * 60.0;

/// Collectors buffer while Loki is down (NF5): every rendered sidecar that ships logs keeps
/// retrying a batch (backoff, 429s included) for longer than a Loki replacement takes. While it
/// retries, the pipeline does not take new lines, so they wait in Docker's log and the read
/// positions (on the task volume, req 3.10) do not move past them.
#[test]
fn req_nf5_req_3_10_log_shipping_retries_outlast_a_loki_replacement() {
    // Alloy's defaults (500ms, 5m, 10 retries) give up after about 4 minutes: too short.
    let defaults = min_retry_window_secs(0.5, 300.0, 10).unwrap();
    assert!(defaults < LOKI_OUTAGE_TO_OUTLAST_SECS, "{defaults}");
    assert_eq!(min_retry_window_secs(0.5, 300.0, 0), None);
    assert_eq!(go_duration_secs("1h30m"), Some(5400.0));
    assert_eq!(go_duration_secs("500ms"), Some(0.5));

    let mut shipping = 0;
    for path in crate::rendered_files(|name| name.starts_with("alloy-") && name.ends_with(".alloy")) {
        let src = std::fs::read_to_string(&path).expect("readable");
        let body = parse(&src).unwrap_or_else(|f| panic!("{}: {f}", path.display()));
        let blocks = |body: &Body, name: &str| -> Vec<Block> {
            body.statements
                .iter()
                .filter_map(|s| match s {
                    Statement::Block(b) if b.name == name => Some(b.clone()),
                    _ => None,
                })
                .collect()
        };
        if blocks(&body, "loki.source.docker").is_empty() {
            continue;
        }
        let writers = blocks(&body, "loki.write");
        let endpoints: Vec<Block> = writers.iter().flat_map(|w| blocks(&w.body, "endpoint")).collect();
        assert!(!endpoints.is_empty(), "{}: ships logs but has no loki.write endpoint", path.display());
        for endpoint in endpoints {
            let attr = |name: &str| {
                endpoint.body.statements.iter().find_map(|s| match s {
                    Statement::Attribute(a) if a.name == name => Some(a.value.clone()),
                    _ => None,
                })
            };
            let duration = |name: &str, default: f64| match attr(name) {
                None => default,
                Some(Expr::String(s, _)) => {
                    go_duration_secs(&s).unwrap_or_else(|| panic!("{}: {name} = {s:?}", path.display()))
                }
                Some(other) => panic!("{}: {name} is not a literal: {other:?}", path.display()),
            };
            let min = duration("min_backoff_period", 0.5);
            let max = duration("max_backoff_period", 300.0);
            let retries = match attr("max_backoff_retries") {
                None => 10,
                Some(Expr::Number(n, _)) => n.parse().expect("a whole number"),
                Some(other) => panic!("{}: max_backoff_retries is not a literal: {other:?}", path.display()),
            };
            if let Some(window) = min_retry_window_secs(min, max, retries) {
                assert!(
                    window >= LOKI_OUTAGE_TO_OUTLAST_SECS,
                    "{}: loki.write gives up after {window:.0} s ({min} s .. {max} s, {retries} retries); it must hold a batch for at least {LOKI_OUTAGE_TO_OUTLAST_SECS} s",
                    path.display()
                );
            }
            assert!(
                !matches!(attr("retry_on_http_429"), Some(Expr::Bool(false, _))),
                "{}: a Loki shedding load (429) must be retried, not dropped",
                path.display()
            );
        }
        shipping += 1;
    }
    assert!(shipping > 0, "no rendered/*/alloy-*.alloy ships logs");
}
