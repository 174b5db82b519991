//! The authorization matrix: every operation in `openapi.json`, called by each kind of caller,
//! answers as the contract allows. An operation missing from the table fails the test, so a new
//! one cannot be left out.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, exchange, spawn_app_with};

/// Who the contract lets call an operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Anyone,
    /// Any logged-in user.
    User,
    /// Only the user named in the path: a superuser gets 403 too, as in the original (README,
    /// "API behaviour worth knowing").
    OwnerOnly,
    Superuser,
}

fn contract(operation_id: &str) -> Option<Access> {
    use Access::*;
    Some(match operation_id {
        "login"
        | "refresh_access_token"
        | "create_user"
        | "read_users"
        | "read_user"
        | "read_posts"
        | "read_post"
        | "read_tiers"
        | "read_tier"
        | "read_rate_limits"
        | "read_rate_limit"
        | "create_task"
        | "read_task"
        | "health"
        | "ready" => Anyone,
        "logout" | "read_users_me" => User,
        "patch_user" | "erase_user" | "create_post" | "patch_post" | "erase_post" => OwnerOnly,
        "erase_db_user"
        | "read_user_rate_limits"
        | "patch_user_tier"
        | "erase_db_post"
        | "create_tier"
        | "patch_tier"
        | "erase_tier"
        | "create_rate_limit"
        | "patch_rate_limit"
        | "erase_rate_limit" => Superuser,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    OtherUser,
    /// The user named in the path.
    Owner,
    Superuser,
}

/// What `caller` must get: `Some(status)` for a refusal, `None` for "let through" (any answer
/// but 401 and 403).
fn expected(access: Access, caller: Caller) -> Option<StatusCode> {
    use {Access as A, Caller as C};
    match (access, caller) {
        (A::Anyone, _) => None,
        (_, C::Anonymous) => Some(StatusCode::UNAUTHORIZED),
        (A::User, _) => None,
        (A::OwnerOnly, C::Owner) => None,
        (A::OwnerOnly, _) => Some(StatusCode::FORBIDDEN),
        (A::Superuser, C::Superuser) => None,
        (A::Superuser, _) => Some(StatusCode::FORBIDDEN),
    }
}

/// The resources one operation's calls point at, made fresh for each operation so that one
/// call's deletion or logout cannot change another's answer.
struct Fixture {
    owner: String,
    owner_refresh_token: String,
    post_id: i64,
    tier: String,
    rule_id: i64,
    tokens: Vec<(Caller, Option<String>)>,
}

async fn fixture(app: &TestApp, n: usize) -> Fixture {
    let owner = app.fx_user(&format!("owner{n}")).await;
    let other = app.fx_user(&format!("other{n}")).await;
    let admin = app.login("admin", PASSWORD).await.access_token;
    let post = created(
        app,
        &format!("/api/v1/owner{n}/post"),
        &owner.token.access_token,
        serde_json::json!({"title": "A post", "text": "Its text"}),
    )
    .await;
    let tier = format!("tier{n}");
    created(
        app,
        "/api/v1/tier",
        &admin,
        serde_json::json!({ "name": tier }),
    )
    .await;
    let rule = created(
        app,
        &format!("/api/v1/tier/{tier}/rate_limit"),
        &admin,
        serde_json::json!({"path": format!("matrix/{n}"), "limit": 5, "period": 60}),
    )
    .await;
    Fixture {
        owner: owner.user.username.clone(),
        owner_refresh_token: owner.token.refresh_token.clone(),
        post_id: post["id"].as_i64().expect("a post id"),
        rule_id: rule["id"].as_i64().expect("a rule id"),
        tier,
        tokens: vec![
            (Caller::Anonymous, None),
            (Caller::OtherUser, Some(other.token.access_token.clone())),
            (Caller::Owner, Some(owner.token.access_token.clone())),
            (Caller::Superuser, Some(admin)),
        ],
    }
}

/// POSTs `body` as the holder of `token`; the created resource.
async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let request = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body);
    let (status, created) = exchange(request).await;
    assert_eq!(status, StatusCode::CREATED, "{path}");
    created
}

/// The operation's path with its parameters filled from the fixture.
fn concrete_path(template: &str, fixture: &Fixture) -> String {
    let path = template.replace("{username}", &fixture.owner);
    let path = if path.contains("rate_limit/{id}") {
        path.replace("{id}", &fixture.rule_id.to_string())
    } else {
        path.replace("{id}", &fixture.post_id.to_string())
    };
    path.replace("{tier_name}", &fixture.tier)
        .replace("{name}", &fixture.tier)
        .replace("{task_id}", "0123456789abcdef0123456789abcdef")
}

/// The body the spec shows as the example of the operation's request schema; for login and
/// refresh, the owner's real credentials (the examples' would be refused for what they are).
fn example_body(spec: &Value, operation: &Value, fixture: &Fixture) -> Option<(String, Value)> {
    let content = operation["requestBody"]["content"].as_object()?;
    let (content_type, media) = content.iter().next()?;
    let name = media["schema"]["$ref"]
        .as_str()?
        .trim_start_matches("#/components/schemas/");
    let example = match operation["operationId"].as_str() {
        Some("login") => serde_json::json!({"username": fixture.owner, "password": PASSWORD}),
        Some("refresh_access_token") => {
            serde_json::json!({"refresh_token": fixture.owner_refresh_token})
        }
        _ => spec["components"]["schemas"][name]["example"].clone(),
    };
    Some((content_type.clone(), example))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_lets_in_exactly_the_callers_the_contract_allows() {
    let spec: Value =
        serde_json::from_str(include_str!("../../../openapi.json")).expect("openapi.json");
    let app = spawn_app_with(&[("DEFAULT_RATE_LIMIT_LIMIT", "1000")]).await;
    app.fx_superuser().await;
    let http = reqwest::Client::new();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let operations = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, operation)| (path.clone(), method.clone(), operation.clone()))
        });
    for (n, (template, method, operation)) in operations.enumerate() {
        let id = operation["operationId"].as_str().unwrap().to_string();
        let access = contract(&id)
            .unwrap_or_else(|| panic!("{id} is not in the authorization table: add it"));
        let declared_public = operation["security"] == serde_json::json!([]);
        assert_eq!(
            declared_public,
            access == Access::Anyone,
            "{id}: the spec's security does not match the contract"
        );
        let fixture = fixture(&app, n).await;
        let path = concrete_path(&template, &fixture);
        let method: Method = method.to_uppercase().parse().unwrap();
        let body = example_body(&spec, &operation, &fixture);
        // Refusals first: they change nothing, while an allowed call may delete what the
        // others point at.
        let mut callers = fixture.tokens.clone();
        callers.sort_by_key(|(caller, _)| expected(access, *caller).is_none());
        for (caller, token) in &callers {
            let mut request = http
                .request(method.clone(), app.url(&path))
                .query(&[("message", "hello")]);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request = match &body {
                Some((content_type, example)) if content_type.starts_with("application/json") => {
                    request.json(example)
                }
                Some((_, example)) => request.form(example),
                None => request,
            };
            let status = request.send().await.unwrap().status();
            let refused = [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status);
            let right = match expected(access, *caller) {
                Some(refusal) => status == refusal,
                None => !refused,
            };
            if !right {
                wrong.push(format!("{id} as {caller:?}: {status}"));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "not as the contract allows: {wrong:#?}");
    assert_eq!(checked, 32 * 4, "every operation, every caller");
}
