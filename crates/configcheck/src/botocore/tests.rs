//! The checker against the real models of the pinned botocore (never a copy): each rule once.

use std::sync::OnceLock;

use serde_json::json;

use super::*;

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv");
    MODELS.get_or_init(|| Models::in_venv(&venv).unwrap_or_else(|err| panic!("{err:#}")))
}

const SIGNED: &str =
    "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=00";

fn json_request(target: &str, body: serde_json::Value, service: &str) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: Vec::new(),
        headers: [
            ("x-amz-target".to_string(), target.to_string()),
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("authorization".to_string(), SIGNED.replace("/ecs/", &format!("/{service}/"))),
        ]
        .into(),
        body: body.to_string().into_bytes(),
    }
}

fn problems(request: &HttpRequest) -> Vec<String> {
    models().check_request(request, &["eu-west-1"]).unwrap().1
}

#[test]
fn a_valid_json_request_names_its_operation_and_passes() {
    let request = json_request(
        "AmazonEC2ContainerServiceV20141113.ListTasks",
        json!({"cluster": "c", "serviceName": "s", "desiredStatus": "RUNNING"}),
        "ecs",
    );
    let (operation, found) = models().check_request(&request, &["eu-west-1"]).unwrap();
    assert_eq!(operation.to_string(), "ecs ListTasks");
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_misspelt_member_is_named_with_the_right_one() {
    let request = json_request(
        "Logs_20140328.FilterLogEvents",
        json!({"logGroupName": "/g", "logStreamNamePrefx": "ecs/"}),
        "logs",
    );
    assert_eq!(
        problems(&request),
        ["FilterLogEvents: unknown member `logStreamNamePrefx` (shape FilterLogEventsRequest), did you mean `logStreamNamePrefix`?"]
    );
}

#[test]
fn required_members_types_enums_and_bounds_are_checked() {
    // DescribeTasks needs `tasks`; desiredStatus is an enum; maxResults is 1..=100.
    let request = json_request(
        "AmazonEC2ContainerServiceV20141113.DescribeTasks",
        json!({"cluster": 3, "include": ["TAG", "TAGS"]}),
        "ecs",
    );
    let found = problems(&request).join("\n");
    assert!(found.contains("required member `tasks` is missing"), "{found}");
    assert!(found.contains("DescribeTasks.cluster: 3 is not a string"), "{found}");
    assert!(found.contains("`TAG` is not one of [\"TAGS\"]"), "{found}");
    let request = json_request("Logs_20140328.FilterLogEvents", json!({"logGroupName": "/g", "limit": 10001}), "logs");
    assert!(
        problems(&request).join("\n").contains("value 10001 is above the maximum 10000"),
        "{:?}",
        problems(&request)
    );
    let request = json_request("secretsmanager.GetSecretValue", json!({"SecretId": ""}), "secretsmanager");
    assert!(problems(&request).join("\n").contains("length 0 is below the minimum 1"), "{:?}", problems(&request));
}

#[test]
fn an_unknown_operation_or_service_is_an_error() {
    let request = json_request("AmazonEC2ContainerServiceV20141113.ListTask", json!({}), "ecs");
    let err = models().check_request(&request, &["eu-west-1"]).unwrap_err().to_string();
    assert!(err.contains("`ListTask` is no operation of ecs's model"), "{err}");
    let request = json_request("AWSCognitoIdentityService.ListPools", json!({}), "cognito-identity");
    let err = models().check_request(&request, &["eu-west-1"]).unwrap_err().to_string();
    assert!(err.contains("X-Amz-Target prefix `AWSCognitoIdentityService`"), "{err}");
}

#[test]
fn the_signing_name_and_region_must_be_the_models() {
    // ECR's endpoint prefix is `api.ecr`; it signs as `ecr`.
    let ok = json_request(
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
        json!({"repositoryName": "temporal-dev-grafana"}),
        "ecr",
    );
    assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));
    let wrong = json_request(
        "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
        json!({"repositoryName": "temporal-dev-grafana"}),
        "api.ecr",
    );
    assert_eq!(problems(&wrong), ["signed for service `api.ecr`, the model's signing name is `ecr`"]);
    let elsewhere = models().check_request(&ok, &["us-east-1"]).unwrap().1;
    assert_eq!(elsewhere, ["signed for region `eu-west-1`, the env's region is one of [\"us-east-1\"]"]);
    let mut unsigned = ok.clone();
    unsigned.headers.remove("authorization");
    assert!(problems(&unsigned)[0].starts_with("no SigV4 Authorization header"));
}

#[test]
fn query_requests_are_decoded_by_the_model() {
    let form = |body: &str| HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: Vec::new(),
        headers: [
            ("content-type".to_string(), "application/x-www-form-urlencoded; charset=utf-8".to_string()),
            ("authorization".to_string(), SIGNED.replace("/ecs/", "/sts/")),
        ]
        .into(),
        body: body.as_bytes().to_vec(),
    };
    let (operation, found) = models()
        .check_request(&form("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=xtask&DurationSeconds=900"), &["eu-west-1"])
        .unwrap();
    assert_eq!(operation.to_string(), "sts AssumeRole");
    assert!(found.is_empty(), "{found:?}");
    let mut found = problems(&form("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSesionName=xtask&DurationSeconds=x"));
    found.sort();
    assert_eq!(
        found,
        [
            "AssumeRole.DurationSeconds: \"x\" is not an integer (shape roleDurationSecondsType)",
            "AssumeRole: required member `RoleSessionName` is missing (shape AssumeRoleRequest)",
            "AssumeRole: unknown parameter `RoleSesionName`",
        ]
    );
}

#[test]
fn rest_xml_requests_are_matched_by_method_and_uri() {
    let get = |path: &str, query: &str| HttpRequest {
        method: "GET".into(),
        path: path.into(),
        query: parse_query(query),
        headers: [("authorization".to_string(), SIGNED.replace("/ecs/", "/s3/"))].into(),
        body: Vec::new(),
    };
    let (operation, found) =
        models().check_request(&get("/bucket", "list-type=2&max-keys=10&prefix=index%2F"), &["eu-west-1"]).unwrap();
    assert_eq!(operation.to_string(), "s3 ListObjectsV2");
    assert!(found.is_empty(), "{found:?}");
    let (operation, found) = models().check_request(&get("/bucket", "max-keys=10"), &["eu-west-1"]).unwrap();
    assert_eq!(operation.to_string(), "s3 ListObjects");
    assert!(found.is_empty(), "{found:?}");
    let found = problems(&get("/bucket", "list-type=2&max-keys=ten&prefx=a"));
    assert_eq!(
        found,
        [
            "ListObjectsV2: unknown query parameter `prefx`",
            "ListObjectsV2.MaxKeys: \"ten\" is not an integer (shape MaxKeys)",
        ]
    );
    let mut copy = get("/bucket/a/b", "");
    copy.method = "PUT".into();
    assert_eq!(models().check_request(&copy, &["eu-west-1"]).unwrap().0.name, "PutObject");
    copy.headers.insert("x-amz-copy-source".into(), "other/key".into());
    assert_eq!(models().check_request(&copy, &["eu-west-1"]).unwrap().0.name, "CopyObject");
}
