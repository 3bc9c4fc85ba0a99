//! A small blocking HTTP client: every call bounded in time, statuses returned rather than thrown,
//! and errors that name the method and URL (never a header: they may carry credentials).

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

/// One answer: status, body text and the server's clock (its `Date` header).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    pub date: Option<String>,
}

impl Response {
    /// The body as JSON, or an error quoting the start of what came instead.
    pub fn json(&self, what: &str) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("{what} did not answer JSON: {}", snippet(&self.body)))
    }

    /// Fails unless the status is `expected`, quoting the body (the server's reason).
    pub fn expect(self, expected: u16, what: &str) -> anyhow::Result<Response> {
        if self.status != expected {
            bail!("{what} answered HTTP {} (expected {expected}): {}", self.status, snippet(&self.body));
        }
        Ok(self)
    }
}

#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Http {
        Http::new(Duration::from_secs(30))
    }
}

impl Http {
    /// A client whose every request finishes (or fails) within `timeout`.
    pub fn new(timeout: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(5)))
            // A 4xx/5xx is an answer to report, not a transport failure.
            .http_status_as_error(false)
            .build();
        Http { agent: config.into() }
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        finish(request.call(), "GET", url)
    }

    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Response> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        finish(request.send(body), "POST", url)
    }

    pub fn put(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Response> {
        let mut request = self.agent.put(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        finish(request.send(body), "PUT", url)
    }
}

fn finish(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    method: &str,
    url: &str,
) -> anyhow::Result<Response> {
    let mut response = result.with_context(|| format!("{method} {} failed", without_query(url)))?;
    let status = response.status().as_u16();
    let date = response.headers().get("date").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer to {method} {}", without_query(url)))?;
    Ok(Response { status, body, date })
}

/// Whether `err` is a transport failure a retry may mend, and whether it was a timeout.
pub fn transport_failure(err: &anyhow::Error) -> Option<(bool, String)> {
    err.chain().find_map(|cause| match cause.downcast_ref::<ureq::Error>()? {
        ureq::Error::Timeout(_) => Some((true, cause.to_string())),
        // botocore retries its ConnectionError family, SSLError and ProxyConnectionError included.
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::BodyStalled
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::ConnectProxyFailed(_) => Some((false, cause.to_string())),
        _ => None,
    })
}

/// The URL without its query string, for messages (queries can be long).
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The first 300 characters of a body, on one line.
pub fn snippet(body: &str) -> String {
    let one_line = body.trim().replace('\n', " ");
    match one_line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None if one_line.is_empty() => "(empty body)".to_string(),
        None => one_line,
    }
}

/// `base` + `path` + `?k=v&…`, every value percent-encoded the way SigV4 canonicalises it
/// (unreserved characters kept, everything else `%XX`), so the signed and the sent URL agree.
pub fn url(base: &str, path: &str, query: &[(&str, &str)]) -> String {
    let mut out = format!("{}{path}", base.trim_end_matches('/'));
    for (i, (key, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&encode(key));
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_proxy_failures_are_retried_as_botocore_retries_them() {
        let failed =
            |e: ureq::Error| anyhow::Error::from(e).context("POST https://ecs.eu-west-1.amazonaws.com/ failed");
        assert_eq!(transport_failure(&failed(ureq::Error::Tls("handshake failed"))).map(|f| f.0), Some(false));
        let proxy = ureq::Error::ConnectProxyFailed("407".into());
        assert_eq!(transport_failure(&failed(proxy)).map(|f| f.0), Some(false));
        assert_eq!(transport_failure(&failed(ureq::Error::StatusCode(403))), None);
        assert_eq!(transport_failure(&failed(ureq::Error::BadUri("x".into()))), None);
    }

    #[test]
    fn urls_encode_every_reserved_character() {
        assert_eq!(
            url("http://127.0.0.1:3100/", "/loki/api/v1/query_range", &[("query", r#"{service_name="worker"} |~ "(?i)error""#), ("limit", "5")]),
            "http://127.0.0.1:3100/loki/api/v1/query_range?query=%7Bservice_name%3D%22worker%22%7D%20%7C~%20%22%28%3Fi%29error%22&limit=5"
        );
        assert_eq!(url("http://h", "/ready", &[]), "http://h/ready");
    }

    #[test]
    fn snippets_are_short_and_single_line() {
        assert_eq!(snippet(""), "(empty body)");
        assert_eq!(snippet("a\nb"), "a b");
        assert_eq!(snippet(&"x".repeat(400)).chars().count(), 301);
    }
}
