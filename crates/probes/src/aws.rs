//! AWS API calls signed with SigV4: one HTTPS request each, where the AWS CLI starts a Python
//! process per call (about half a second). Used for the read-only lookups of the phases,
//! `verify` and `logs`, and the calls that open SSM sessions and ECS Exec sessions (xtask then
//! starts the Session Manager plugin itself, with [`AwsApi::endpoint_url`]). The CLI stays for
//! what needs it: resolving credentials (profiles, SSO, roles) and ECR logins.
//!
//! Every call is retried as the SDKs' standard retry mode retries it ([`crate::retry`]).
//!
//! Endpoints follow the SDKs' rules: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else
//! `https://<service>.<region>.amazonaws.com` (`.com.cn` in China).

use std::time::SystemTime;

use anyhow::Context;
use serde_json::Value;

use crate::amp::{sign_request, Credentials};
use crate::http::{snippet, transport_failure, url, Http};
use crate::retry::{classify, Retry, Retryable};

/// How to reach one AWS service.
#[derive(Debug)]
pub struct Service {
    /// The SigV4 signing name and endpoint prefix.
    pub name: &'static str,
    /// How the service is called in messages.
    pub title: &'static str,
    /// The service's `AWS_ENDPOINT_URL_<…>` variable (its SDK service id, upper snake case).
    pub endpoint_env: &'static str,
    /// `X-Amz-Target` prefix for JSON-protocol services; empty for the others.
    target: &'static str,
}

pub const ECS: Service = Service {
    name: "ecs",
    title: "ECS",
    endpoint_env: "AWS_ENDPOINT_URL_ECS",
    target: "AmazonEC2ContainerServiceV20141113",
};
pub const LOGS: Service = Service {
    name: "logs",
    title: "CloudWatch Logs",
    endpoint_env: "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    target: "Logs_20140328",
};
pub const SECRETS_MANAGER: Service = Service {
    name: "secretsmanager",
    title: "Secrets Manager",
    endpoint_env: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    target: "secretsmanager",
};
pub const SSM: Service =
    Service { name: "ssm", title: "SSM", endpoint_env: "AWS_ENDPOINT_URL_SSM", target: "AmazonSSM" };
pub const STS: Service = Service { name: "sts", title: "STS", endpoint_env: "AWS_ENDPOINT_URL_STS", target: "" };
pub const S3: Service = Service { name: "s3", title: "S3", endpoint_env: "AWS_ENDPOINT_URL_S3", target: "" };
pub const ECR: Service = Service {
    name: "ecr",
    title: "ECR",
    endpoint_env: "AWS_ENDPOINT_URL_ECR",
    target: "AmazonEC2ContainerRegistry_V20150921",
};
pub const EC2: Service = Service { name: "ec2", title: "EC2", endpoint_env: "AWS_ENDPOINT_URL_EC2", target: "" };

/// An action AWS refused, with the error's kind (`ImageNotFoundException`, `AccessDenied`, …)
/// for callers that treat some kinds as answers.
#[derive(Debug)]
pub struct Refused {
    pub what: String,
    pub status: u16,
    pub kind: String,
    pub message: String,
    /// How many attempts were refused (the SDKs' standard retries).
    pub attempts: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tries = if self.attempts > 1 { format!(" {} times", self.attempts) } else { String::new() };
        write!(f, "{} was refused{tries}: HTTP {}: {}: {}", self.what, self.status, self.kind, self.message)
    }
}

impl std::error::Error for Refused {}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

#[derive(Clone)]
pub struct AwsApi {
    pub region: String,
    credentials: Credentials,
    http: Http,
    /// One base URL for every service (an emulator), instead of the environment's endpoints.
    endpoint: Option<String>,
    retry: Retry,
}

/// The base URL of `service` in `region`: the override `var` returns (the process environment
/// in [`AwsApi`]) for `AWS_ENDPOINT_URL_<SERVICE>` or else `AWS_ENDPOINT_URL`, else AWS's host.
pub fn endpoint(service: &Service, region: &str, var: impl Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(url) = set(service.endpoint_env).or_else(|| set("AWS_ENDPOINT_URL")) {
        return url.trim_end_matches('/').to_string();
    }
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://{}.{region}.{suffix}", service.name)
}

impl AwsApi {
    pub fn new(region: &str, credentials: Credentials, http: Http) -> AwsApi {
        AwsApi { region: region.to_string(), credentials, http, endpoint: None, retry: Retry::default() }
    }

    /// Retries as `retry` says (attempts, backoff unit) instead of the SDKs' defaults.
    pub fn with_retry(mut self, retry: Retry) -> AwsApi {
        self.retry = retry;
        self
    }

    /// Sends every call to `url` (path-style for S3).
    pub fn with_endpoint(mut self, url: &str) -> AwsApi {
        self.endpoint = Some(url.trim_end_matches('/').to_string());
        self
    }

    /// The base URL this client sends `service`'s calls to: [`AwsApi::with_endpoint`]'s, else
    /// [`endpoint`] from the process environment. A Session Manager plugin connecting to a
    /// session this client opened is given the same URL, as the AWS CLI gives it its client's.
    pub fn endpoint_url(&self, service: &Service) -> String {
        match &self.endpoint {
            Some(url) => url.clone(),
            None => endpoint(service, &self.region, |name| std::env::var(name).ok()),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A JSON-protocol action (ECS, CloudWatch Logs, Secrets Manager, SSM); its JSON answer.
    pub fn json(&self, service: &Service, action: &str, input: &Value) -> anyhow::Result<Value> {
        let target = format!("{}.{action}", service.target);
        let base = self.endpoint_url(service);
        let body = input.to_string();
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let what = format!("{} {action}", service.title);
        let answer = self.send(&what, "POST", &format!("{base}/"), service, &headers, body.as_bytes())?.ok(|| what)?;
        if answer.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&answer.body)
            .with_context(|| format!("{} {action} did not answer JSON: {}", service.title, snippet(&answer.body)))
    }

    /// Like [`AwsApi::json`] for a paginated list action: follows `nextToken`/`NextToken` and
    /// joins the `list` arrays of every page.
    pub fn json_all(&self, service: &Service, action: &str, input: &Value, list: &str) -> anyhow::Result<Value> {
        let mut input = input.clone();
        let mut items = Vec::new();
        loop {
            let page = self.json(service, action, &input)?;
            items.extend(page[list].as_array().cloned().unwrap_or_default());
            let token = ["nextToken", "NextToken"].into_iter().find_map(|key| Some((key, page[key].as_str()?)));
            match token {
                Some((key, token)) if !token.is_empty() => input[key] = Value::from(token),
                _ => break,
            }
        }
        Ok(serde_json::json!({ list: items }))
    }

    /// A query-protocol action (STS, EC2); its XML answer.
    pub fn query(
        &self,
        service: &Service,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let mut form = vec![("Action", action), ("Version", version)];
        form.extend_from_slice(params);
        // A form body is encoded as a query string is, without the `?`.
        let body = url("", "", &form).trim_start_matches('?').to_string();
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let what = format!("{} {action}", service.title);
        let target = format!("{}/", self.endpoint_url(service));
        let answer = self.send(&what, "POST", &target, service, &headers, body.as_bytes())?.ok(|| what)?;
        Ok(answer.body)
    }

    /// `sts:GetCallerIdentity`.
    pub fn caller_identity(&self) -> anyhow::Result<CallerIdentity> {
        let answer = self.query(&STS, "GetCallerIdentity", "2011-06-15", &[])?;
        let field =
            |tag: &str| xml_values(&answer, tag).into_iter().next().with_context(|| format!("STS answered no <{tag}>"));
        Ok(CallerIdentity { account: field("Account")?, arn: field("Arn")? })
    }

    /// An S3 PUT of `path` (`/bucket` or `/bucket/key`, path-style).
    pub fn s3_put(&self, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let target = format!("{}{path}", self.endpoint_url(&S3));
        let what = format!("S3 PUT {path}");
        self.send(&what, "PUT", &target, &S3, &[], body)?.ok(|| what)?;
        Ok(())
    }

    /// The first `max_keys` object keys under `prefix` in `bucket` (S3 ListObjectsV2).
    pub fn s3_keys(&self, bucket: &str, prefix: &str, max_keys: u32) -> anyhow::Result<Vec<String>> {
        // Virtual-hosted style on AWS; path style on an endpoint override (emulators, proxies).
        let base = self.endpoint_url(&S3);
        let (base, path) = match base.strip_prefix("https://s3.") {
            Some(rest) if rest.contains(".amazonaws.com") => (format!("https://{bucket}.s3.{rest}"), "/".to_string()),
            _ => (base, format!("/{bucket}")),
        };
        let max_keys = max_keys.to_string();
        let target = url(&base, &path, &[("list-type", "2"), ("max-keys", &max_keys), ("prefix", prefix)]);
        let what = format!("S3 ListObjectsV2 of s3://{bucket}/{prefix}");
        let answer = self.send(&what, "GET", &target, &S3, &[], &[])?.ok(|| what)?;
        Ok(xml_values(&answer.body, "Key"))
    }

    /// One call, retried as the SDKs' standard mode retries it (see [`crate::retry`]): the
    /// last answer and how many attempts it took.
    fn send(
        &self,
        what: &str,
        method: &str,
        target: &str,
        service: &Service,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let mut attempt = 1;
        let mut retry_cost = None;
        loop {
            let clock = self.retry.signing_clock();
            let result = self.send_once(method, target, service, headers, body, clock.at);
            let (why, reason) = match &result {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    self.retry.release(retry_cost);
                    return Ok(Answer { response: result?, attempts: attempt });
                }
                Ok(answer) => {
                    let error = refused(String::new(), answer.status, &answer.body);
                    let why = match self.retry.classify(answer.status, &error.kind) {
                        Some(Retryable::ClockSkew) if !self.retry.correct_clock(clock, answer.date.as_deref()) => None,
                        why => why,
                    };
                    (why, format!("HTTP {} {}", answer.status, error.kind))
                }
                Err(err) => match transport_failure(err) {
                    Some((timed_out, cause)) => {
                        (Some(if timed_out { Retryable::Timeout } else { Retryable::Transient }), cause)
                    }
                    None => (None, String::new()),
                },
            };
            let retry = why.and_then(|why| Some((why, self.retry.acquire(attempt, why)?)));
            let Some((why, cost)) = retry else {
                return result.map(|response| Answer { response, attempts: attempt });
            };
            retry_cost = Some(cost);
            let delay = self.retry.delay(attempt, why);
            let fix = if why == Retryable::ClockSkew { "; signing with the server's clock" } else { "" };
            eprintln!(
                "  … {what}: {}{fix}; attempt {} of {} in {:.1}s",
                reason.trim(),
                attempt + 1,
                self.retry.max_attempts,
                delay.as_secs_f64()
            );
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        method: &str,
        target: &str,
        service: &Service,
        headers: &[(&str, &str)],
        body: &[u8],
        signed_at: SystemTime,
    ) -> anyhow::Result<crate::http::Response> {
        let host = target.split("://").nth(1).and_then(|rest| rest.split(['/', '?']).next()).unwrap_or_default();
        let mut to_sign = vec![("host", host)];
        to_sign.extend_from_slice(headers);
        let signed =
            sign_request(method, target, &to_sign, body, &self.credentials, &self.region, service.name, signed_at)?;
        let mut sent: Vec<(&str, &str)> = headers.to_vec();
        sent.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match method {
            "GET" => self.http.get(target, &sent),
            "PUT" => self.http.put(target, &sent, body),
            _ => self.http.post(target, &sent, body),
        }
    }
}

/// An answer and the attempts it took.
struct Answer {
    response: crate::http::Response,
    attempts: u32,
}

impl Answer {
    /// The answer, or AWS's refusal of `what` when it is not a 200.
    fn ok(self, what: impl FnOnce() -> String) -> anyhow::Result<crate::http::Response> {
        if self.response.status != 200 {
            let mut error = refused(what(), self.response.status, &self.response.body);
            error.attempts = self.attempts;
            return Err(error.into());
        }
        Ok(self.response)
    }
}

/// Whether `err` is one a later call may not meet: throttling or a transient failure (after
/// its retries). A poll takes it as "no answer yet", not as the end of a phase.
pub fn is_retryable(err: &anyhow::Error) -> bool {
    let refused = err
        .chain()
        .filter_map(|e| e.downcast_ref::<Refused>())
        .any(|r| matches!(classify(r.status, &r.kind), Some(Retryable::Throttling | Retryable::Transient)));
    refused || transport_failure(err).is_some()
}

/// The kind and message of a JSON or XML error body (`AccessDeniedException: User … is not …`).
fn refused(what: String, status: u16, body: &str) -> Refused {
    let (kind, message) = match serde_json::from_str::<Value>(body) {
        Ok(value) => {
            let kind = value["__type"].as_str().unwrap_or_default();
            let kind = kind.rsplit('#').next().unwrap_or(kind).to_string();
            (kind, value["message"].as_str().or(value["Message"].as_str()).unwrap_or_default().to_string())
        }
        Err(_) => {
            let code = xml_values(body, "Code").into_iter().next();
            let message = xml_values(body, "Message").into_iter().next();
            match code {
                Some(code) => (code, message.unwrap_or_default()),
                None => (String::new(), snippet(body)),
            }
        }
    };
    Refused { what, status, kind, message, attempts: 1 }
}

/// The texts of every `<tag>…</tag>` in an XML answer, in order (AWS's answers name each field
/// once per item, so no full parser is needed for the few fields read here).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    found
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_are_found_in_order_and_unescaped() {
        let xml = "<r><Key>fake/a&amp;b</Key><x/><Key>index/c</Key></r>";
        assert_eq!(xml_values(xml, "Key"), vec!["fake/a&b", "index/c"]);
        assert!(xml_values(xml, "Missing").is_empty());
    }

    #[test]
    fn errors_name_the_kind_and_the_message() {
        let json = r#"{"__type":"com.amazon.coral#AccessDeniedException","message":"not allowed"}"#;
        let error = refused("ECS ListTasks".into(), 400, json);
        assert_eq!(error.kind, "AccessDeniedException");
        assert_eq!(error.to_string(), "ECS ListTasks was refused: HTTP 400: AccessDeniedException: not allowed");
        let retried = Refused { attempts: 3, ..refused("ECS ListTasks".into(), 400, json) };
        assert!(retried.to_string().starts_with("ECS ListTasks was refused 3 times: HTTP 400"), "{retried}");
        let xml = "<ErrorResponse><Error><Code>ExpiredToken</Code><Message>expired</Message></Error></ErrorResponse>";
        assert_eq!(refused("STS GetCallerIdentity".into(), 403, xml).kind, "ExpiredToken");
    }

    #[test]
    fn endpoints_follow_the_sdk_overrides_then_the_regional_hosts() {
        let none = |_: &str| None;
        assert_eq!(endpoint(&ECS, "eu-west-1", none), "https://ecs.eu-west-1.amazonaws.com");
        assert_eq!(endpoint(&LOGS, "cn-north-1", none), "https://logs.cn-north-1.amazonaws.com.cn");
        let all = |name: &str| (name == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000/".to_string());
        assert_eq!(endpoint(&ECS, "eu-west-1", all), "http://127.0.0.1:5000");
        let both = |name: &str| match name {
            "AWS_ENDPOINT_URL_ECS" => Some("http://127.0.0.1:6000".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:5000".to_string()),
            _ => None,
        };
        assert_eq!(endpoint(&ECS, "eu-west-1", both), "http://127.0.0.1:6000");
        assert_eq!(endpoint(&S3, "eu-west-1", both), "http://127.0.0.1:5000");
    }

    #[test]
    fn a_client_reports_the_endpoint_it_calls() {
        let credentials = Credentials { access_key_id: "a".into(), secret_access_key: "s".into(), session_token: None };
        let api = AwsApi::new("eu-west-1", credentials, Http::default()).with_endpoint("http://127.0.0.1:7000/");
        assert_eq!(api.endpoint_url(&SSM), "http://127.0.0.1:7000");
        assert_eq!(api.endpoint_url(&ECS), "http://127.0.0.1:7000");
    }
}
