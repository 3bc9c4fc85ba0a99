//! Start order of the ECS services in one Terraform module, read from its source: a service whose
//! tasks start before their roles' policies exist fails its first tasks (secrets that cannot be
//! resolved, an image that cannot be pulled, AMP writes refused) and, with the circuit breaker,
//! can roll back a good deployment. Terraform orders by references only, and the task definition
//! references the role, not its policies, so every policy on the roles of a service's task
//! definition must be in the service's `depends_on` (or referenced by it).

use std::collections::BTreeMap;

/// One `resource "type" "name" { … }` block.
struct Resource<'a> {
    address: String,
    body: &'a str,
}

/// The resource blocks of the module's files (`(file name, text)`), in order.
fn resources<'a>(files: &'a [(String, String)]) -> Vec<Resource<'a>> {
    let mut out = Vec::new();
    for (_, text) in files {
        let mut rest = text.as_str();
        while let Some(at) =
            rest.find("\nresource \"").map(|i| i + 1).or_else(|| rest.starts_with("resource \"").then_some(0))
        {
            let block = &rest[at..];
            let header_end = block.find('{').unwrap_or(block.len());
            let labels: Vec<&str> = block[..header_end].split('"').skip(1).step_by(2).collect();
            let body = crate::loki::balanced(&block[header_end..]).unwrap_or(&block[header_end..]);
            if let [kind, name] = labels[..] {
                out.push(Resource { address: format!("{kind}.{name}"), body });
            }
            rest = &block[header_end + body.len().max(1)..];
        }
    }
    out
}

/// The resource addresses (`type.name`) an expression text refers to, without index or attribute.
fn references(text: &str, kind: &str) -> Vec<String> {
    let prefix = format!("{kind}.");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&prefix) {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + prefix.len()..];
        let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') && !name.is_empty() {
            out.push(format!("{prefix}{name}"));
        }
        rest = &tail[name.len()..];
    }
    out
}

/// The value text of `key = …` at the top level of a block body (one line, or a bracketed list).
fn attribute<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let at = body.find(&format!("\n  {key} "))?;
    let line = &body[at + 1..];
    let eq = line.find('=')?;
    let value = line[eq + 1..].trim_start();
    if value.starts_with('[') {
        return crate::loki::balanced(value);
    }
    Some(value.lines().next().unwrap_or_default())
}

/// Problems, one per service and missing policy, naming the fix.
pub fn service_start_order(module: &str, files: &[(String, String)]) -> Vec<String> {
    let all = resources(files);
    let by_address: BTreeMap<&str, &Resource> = all.iter().map(|r| (r.address.as_str(), r)).collect();
    let policies_of_role = |role: &str| -> Vec<&str> {
        all.iter()
            .filter(|r| r.address.starts_with("aws_iam_role_policy"))
            .filter(|r| {
                attribute(r.body, "role").is_some_and(|v| references(v, "aws_iam_role").iter().any(|x| x == role))
            })
            .map(|r| r.address.as_str())
            .collect()
    };
    let mut problems = Vec::new();
    for service in all.iter().filter(|r| r.address.starts_with("aws_ecs_service.")) {
        let waits_for: Vec<String> = ["depends_on", "task_definition"]
            .iter()
            .filter_map(|key| attribute(service.body, key))
            .flat_map(|v| ["aws_iam_role_policy", "aws_iam_role_policy_attachment"].map(|k| references(v, k)))
            .flatten()
            .collect();
        let Some(task_definition) = attribute(service.body, "task_definition")
            .and_then(|v| references(v, "aws_ecs_task_definition").into_iter().next())
            .and_then(|td| by_address.get(td.as_str()))
        else {
            continue;
        };
        let roles: Vec<String> = ["execution_role_arn", "task_role_arn"]
            .iter()
            .filter_map(|key| attribute(task_definition.body, key))
            .flat_map(|v| references(v, "aws_iam_role"))
            .collect();
        for role in &roles {
            for policy in policies_of_role(role) {
                if !waits_for.iter().any(|w| w == policy) {
                    problems.push(format!(
                        "{module}: {} starts tasks with {role} before {policy} exists; add {policy} to its depends_on",
                        service.address
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"
resource "aws_iam_role" "execution" {
  name = "x"
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "task_amp" {
  role = aws_iam_role.task[0].id
}

resource "aws_iam_role_policy" "other" {
  role = aws_iam_role.other_task.id
}

resource "aws_ecs_task_definition" "this" {
  execution_role_arn = aws_iam_role.execution.arn
  task_role_arn      = aws_iam_role.task[0].arn
}

resource "aws_ecs_service" "this" {
  task_definition = aws_ecs_task_definition.this.arn

  depends_on = [
    aws_iam_role_policy_attachment.execution,
  ]
}
"#;

    fn files(text: &str) -> Vec<(String, String)> {
        vec![("main.tf".to_string(), text.to_string())]
    }

    #[test]
    fn a_service_must_wait_for_every_policy_on_its_task_roles() {
        let problems = service_start_order("m", &files(MODULE));
        assert_eq!(
            problems,
            ["m: aws_ecs_service.this starts tasks with aws_iam_role.task before aws_iam_role_policy.task_amp exists; add aws_iam_role_policy.task_amp to its depends_on"]
        );
        let fixed = MODULE.replace(
            "    aws_iam_role_policy_attachment.execution,\n",
            "    aws_iam_role_policy_attachment.execution,\n    aws_iam_role_policy.task_amp,\n",
        );
        assert_eq!(service_start_order("m", &files(&fixed)), Vec::<String>::new());
    }

    #[test]
    fn references_need_a_whole_name() {
        assert_eq!(
            references("[aws_iam_role.a[0].arn, xaws_iam_role.b, module.aws_iam_role.c]", "aws_iam_role"),
            ["aws_iam_role.a"]
        );
    }
}
