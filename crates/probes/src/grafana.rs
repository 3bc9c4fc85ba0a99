//! Grafana's HTTP API: health, a datasource by uid, and a query through a datasource.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::http::{url, Http};

/// Basic-auth credentials; Debug never shows the password.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ user: {:?}, password: *** }}", self.user)
    }
}

impl Login {
    /// A Secrets Manager `SecretString`: `{"username"|"user": …, "password": …}` or the bare
    /// password of `admin`.
    pub fn from_secret_string(secret: &str) -> anyhow::Result<Login> {
        let trimmed = secret.trim();
        if trimmed.starts_with('{') {
            let value: Value = serde_json::from_str(trimmed).context("the Grafana admin secret is not valid JSON")?;
            let password = value["password"].as_str().context("the Grafana admin secret has no `password` key")?;
            let user = value["username"].as_str().or(value["user"].as_str()).unwrap_or("admin");
            return Ok(Login { user: user.to_string(), password: password.to_string() });
        }
        if trimmed.is_empty() {
            bail!("the Grafana admin secret is empty");
        }
        Ok(Login { user: "admin".to_string(), password: trimmed.to_string() })
    }

    fn header(&self) -> String {
        format!("Basic {}", base64(format!("{}:{}", self.user, self.password).as_bytes()))
    }
}

pub struct Grafana {
    base: String,
    http: Http,
    login: Option<Login>,
}

impl Grafana {
    pub fn new(base: &str, http: Http, login: Option<Login>) -> Grafana {
        Grafana { base: base.trim_end_matches('/').to_string(), http, login }
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        self.login.iter().map(|l| ("Authorization", l.header())).collect()
    }

    /// `GET /api/health` (no auth): the version when the database is "ok".
    pub fn health(&self) -> anyhow::Result<String> {
        let answer = self.http.get(&url(&self.base, "/api/health", &[]), &[])?.expect(200, "Grafana /api/health")?;
        let health = answer.json("Grafana /api/health")?;
        if health["database"] != "ok" {
            bail!("Grafana's database is {} rather than \"ok\"", health["database"]);
        }
        Ok(health["version"].as_str().unwrap_or("unknown version").to_string())
    }

    /// `GET /api/datasources/uid/<uid>`: the datasource's JSON (404 means not provisioned).
    pub fn datasource(&self, uid: &str) -> anyhow::Result<Value> {
        let auth = self.auth();
        let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self.http.get(&url(&self.base, &format!("/api/datasources/uid/{uid}"), &[]), &headers)?;
        if answer.status == 404 {
            bail!("Grafana has no datasource with uid `{uid}` (404): the provisioning file was not loaded");
        }
        answer.expect(200, &format!("Grafana datasource `{uid}`"))?.json("Grafana datasource")
    }

    /// `POST /api/ds/query` with one LogQL range query over the last `minutes`: the number of lines.
    pub fn loki_query_lines(&self, uid: &str, expr: &str, minutes: u32, max_lines: u32) -> anyhow::Result<usize> {
        let body = json!({
            "from": format!("now-{minutes}m"),
            "to": "now",
            "queries": [{"refId": "A", "datasource": {"type": "loki", "uid": uid}, "expr": expr, "queryType": "range", "maxLines": max_lines}],
        });
        let auth = self.auth();
        let mut headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("Content-Type", "application/json"));
        let answer = self
            .http
            .post(&url(&self.base, "/api/ds/query", &[]), &headers, body.to_string().as_bytes())?
            .expect(200, "Grafana /api/ds/query")?;
        count_frame_lines(&answer.json("Grafana /api/ds/query")?, "A")
    }
}

/// Lines in the data frames of `results.<ref_id>`: the length of each frame's `Line` field (Loki
/// log frames), or of its first field when there is none named so.
pub fn count_frame_lines(answer: &Value, ref_id: &str) -> anyhow::Result<usize> {
    let result = &answer["results"][ref_id];
    if let Some(error) = result["error"].as_str() {
        bail!("the query failed in Grafana: {error}");
    }
    let frames = result["frames"].as_array().with_context(|| format!("results.{ref_id}.frames is missing"))?;
    let mut lines = 0;
    for frame in frames {
        let fields = frame["schema"]["fields"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let index = fields.iter().position(|f| f["name"] == "Line").unwrap_or(0);
        lines += frame["data"]["values"][index].as_array().map_or(0, Vec::len);
    }
    Ok(lines)
}

/// Standard base64 with padding (basic auth only; a dependency for 20 lines is not worth it).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(input.as_bytes()), output);
        }
        assert_eq!(Login { user: "admin".into(), password: "s3cret".into() }.header(), "Basic YWRtaW46czNjcmV0");
    }

    #[test]
    fn secrets_are_json_or_a_bare_password_and_never_debug_printed() {
        let login = Login::from_secret_string(r#"{"username":"ops","password":"p"}"#).unwrap();
        assert_eq!((login.user.as_str(), login.password.as_str()), ("ops", "p"));
        let login = Login::from_secret_string("bare\n").unwrap();
        assert_eq!((login.user.as_str(), login.password.as_str()), ("admin", "bare"));
        assert!(!format!("{login:?}").contains("bare"));
        assert!(Login::from_secret_string(r#"{"user":"x"}"#).is_err());
    }

    #[test]
    fn counts_lines_in_loki_frames() {
        let answer = json!({"results": {"A": {"status": 200, "frames": [
            {"schema": {"fields": [{"name": "labels"}, {"name": "Time"}, {"name": "Line"}]},
             "data": {"values": [[{}, {}], [1, 2], ["a", "b"]]}},
            {"schema": {"fields": [{"name": "Line"}]}, "data": {"values": [["c"]]}}
        ]}}});
        assert_eq!(count_frame_lines(&answer, "A").unwrap(), 3);
        let failed = json!({"results": {"A": {"error": "parse error at line 1", "status": 400}}});
        assert!(format!("{:#}", count_frame_lines(&failed, "A").unwrap_err()).contains("parse error"));
    }
}
