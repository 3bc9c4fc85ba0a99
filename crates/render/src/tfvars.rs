//! The Terraform variables of an environment, as a `.tfvars` file.

use settings::Environment;

/// HCL assignments for every Terraform variable the environment sets.
pub fn tfvars(env: &Environment) -> String {
    let s = &env.settings;
    let p = &s.platform;
    let mut out = Vars::default();
    out.string("aws_region", &s.aws.region);
    out.string("aws_account_id", &s.aws.account_id);
    out.string("project_name", &s.project.name);
    out.string("environment", &env.name);
    out.string("rendered_config_dir", &format!("../rendered/{}", env.name));
    out.blank();
    out.string("vpc_id", &p.vpc_id);
    out.string("vpc_cidr", &p.vpc_cidr);
    out.list("private_subnet_ids", &p.private_subnet_ids);
    out.string("ecs_cluster_name", &p.ecs_cluster_name);
    out.string("capacity_provider_name", &p.capacity_provider_name);
    out.string("instance_security_group_id", &p.instance_security_group_id);
    out.string("service_connect_namespace_arn", &p.service_connect_namespace_arn);
    out.string("s3_prefix_list_id", &p.s3_prefix_list_id);
    out.string("amp_workspace_id", &p.amp_workspace_id);
    out.number("host_log_disk_mb", p.host_log_disk_mb);
    out.blank();
    for (name, image) in &s.versions {
        out.string(name, image);
    }
    out.blank();
    out.raw("loki_enabled", &s.loki.enabled.to_string());
    out.number("loki_cpu", s.loki.cpu);
    out.number("loki_memory", s.loki.memory);
    out.number("loki_count", s.loki.count);
    out.number("loki_retention_days", s.loki.retention_days);
    out.number("loki_ingestion_mb_per_s", s.loki.ingestion_mb_per_s);
    out.number("alloy_memory", s.alloy.memory);
    out.blank();
    let collectors: Vec<(&str, String)> =
        s.services.iter().map(|(name, service)| (name, quote(service.collector.as_str()))).collect();
    out.map("service_collectors", &collectors);
    out.raw("benchmark_worker_enabled", &s.services.benchmark_worker.enabled.to_string());
    out.raw("adot_enabled", &s.adot.enabled.to_string());
    out.raw("cloudwatch_parallel_run", &s.migration.cloudwatch_parallel_run.to_string());
    out.blank();
    let t = &s.temporal;
    out.string("temporal_db_host", &t.db_host);
    out.number("temporal_db_port", u32::from(t.db_port));
    out.string("temporal_db_name", &t.db_name);
    out.string("temporal_visibility_db_name", &t.visibility_db_name);
    out.string("temporal_db_user", &t.db_user);
    out.string("temporal_db_password_secret_arn", &t.db_password_secret_arn);
    out.raw("temporal_db_tls_enabled", &t.db_tls_enabled.to_string());
    out.finish()
}

/// Assignments in order; `None` is a blank line.
#[derive(Default)]
struct Vars(Vec<Option<(String, String)>>);

impl Vars {
    fn raw(&mut self, name: &str, value: &str) {
        self.0.push(Some((name.to_string(), value.to_string())));
    }

    /// Lays the assignments out as `terraform fmt` does: `=` aligned across a run of one-line
    /// assignments; blank lines and multi-line values end a run.
    fn finish(self) -> String {
        let mut out = String::new();
        let mut run: Vec<(String, String)> = Vec::new();
        let flush = |run: &mut Vec<(String, String)>, out: &mut String| {
            let width = run.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, value) in run.drain(..) {
                out.push_str(&format!("{name:width$} = {value}\n"));
            }
        };
        for entry in self.0 {
            match entry {
                None => {
                    flush(&mut run, &mut out);
                    out.push('\n');
                }
                Some((name, value)) if value.contains('\n') => {
                    flush(&mut run, &mut out);
                    out.push_str(&format!("{name} = {value}\n"));
                }
                Some(entry) => run.push(entry),
            }
        }
        flush(&mut run, &mut out);
        out
    }
    fn string(&mut self, name: &str, value: &str) {
        self.raw(name, &quote(value));
    }
    fn number(&mut self, name: &str, value: u32) {
        self.raw(name, &value.to_string());
    }
    fn list(&mut self, name: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
        self.raw(name, &format!("[{}]", items.join(", ")));
    }
    fn map(&mut self, name: &str, entries: &[(&str, String)]) {
        let width = entries.iter().map(|(k, _)| quote(k).len()).max().unwrap_or(0);
        let mut text = String::from("{\n");
        for (key, value) in entries {
            text.push_str(&format!("  {:width$} = {value}\n", quote(key)));
        }
        text.push('}');
        self.raw(name, &text);
    }
    fn blank(&mut self) {
        self.0.push(None);
    }
}

/// An HCL string literal: escapes quotes and backslashes, and template sequences so values are
/// never interpolated.
pub(crate) fn quote(value: &str) -> String {
    let escaped =
        value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace("${", "$${").replace("%{", "%%{");
    format!("\"{escaped}\"")
}
