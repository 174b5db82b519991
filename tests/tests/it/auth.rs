//! Login, logout, refresh, and every way a token can be refused.

use client::types;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{PASSWORD, exchange, failure, login_form, spawn_app};

pub const BAD_CREDENTIALS: &str = "Incorrect email, username or password";

#[tokio::test]
async fn login_by_username_or_email_returns_both_tokens() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let token = app.login("alice", PASSWORD).await;
    assert_eq!(token.token_type, "bearer");
    assert_ne!(token.access_token, token.refresh_token);
    // Email, with the domain in another case.
    let by_email = app.login("alice@EXAMPLE.com", PASSWORD).await;
    let me = app
        .authed(&by_email.access_token)
        .read_users_me()
        .send()
        .await
        .expect("me")
        .into_inner();
    assert_eq!(me.username, "alice");
}

#[tokio::test]
async fn login_accepts_the_full_oauth2_password_form() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let mut form = login_form("alice", PASSWORD);
    form.grant_type = Some("password".try_into().unwrap());
    form.scope = Some("".into());
    form.client_id = Some("swagger".into());
    form.client_secret = Some("x".into());
    app.api.login().body(form).send().await.expect("login");

    // The typed client refuses another grant type itself; the server does too.
    let (status, body) = exchange(
        reqwest::Client::new()
            .post(app.url("/api/v1/login"))
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("grant_type", "client_credentials"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "grant_type"]));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    app.signup("alice").await;
    for (username, password) in [
        ("alice", "wrong-password"),
        ("nobody", PASSWORD),
        ("x@y.z", PASSWORD),
    ] {
        let f = failure(
            app.api
                .login()
                .body(login_form(username, password))
                .send()
                .await,
        );
        assert_eq!(f.status, StatusCode::UNAUTHORIZED, "{username}");
        assert_eq!(f.message(), BAD_CREDENTIALS);
        assert_eq!(f.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
}

#[tokio::test]
async fn login_form_problems_are_422_with_locations() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let (status, body) = exchange(
        http.post(app.url("/api/v1/login"))
            .form(&[("username", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "password"]));
    assert_eq!(body["detail"][0]["type"], "missing");

    // JSON is not the login form's content type.
    let (status, body) = exchange(
        http.post(app.url("/api/v1/login"))
            .json(&json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));
}

#[tokio::test]
async fn missing_token_is_not_authenticated() {
    let app = spawn_app().await;
    let f = failure(app.api.read_users_me().send().await);
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.message(), "Not authenticated");
    assert_eq!(f.headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let http = reqwest::Client::new();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = exchange(http.get(app.url("/api/v1/user/me")).header(
            header::AUTHORIZATION,
            format!("{scheme} {}", alice.token.access_token),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
        assert_eq!(body["username"], "alice");
    }
}

fn forge(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn b64(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn tampered_expired_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let secret = app.state.settings.secret_key.expose().to_string();
    let now = chrono::Utc::now().timestamp();
    let id = alice.user.id.to_string();
    let claims = |exp: i64, kind: &str| json!({"sub": id, "exp": exp, "iat": now, "jti": uuid::Uuid::new_v4().to_string(), "token_type": kind});

    // A correctly forged token works: the checks below fail for the reason they name.
    let valid = forge(claims(now + 600, "access"), &secret);
    app.authed(&valid)
        .read_users_me()
        .send()
        .await
        .expect("a valid token");

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(now + 600, "access"))
    );
    let cases = [
        ("alg none", alg_none),
        (
            "wrong key",
            forge(claims(now + 600, "access"), "another-secret"),
        ),
        ("expired", forge(claims(now - 10, "access"), &secret)),
        ("refresh as access", alice.token.refresh_token.clone()),
        ("garbage", "not.a.jwt".to_string()),
        (
            "unknown user",
            forge(
                json!({"sub": "999999", "exp": now + 600, "iat": now, "jti": "x", "token_type": "access"}),
                &secret,
            ),
        ),
        (
            "missing kind",
            forge(
                json!({"sub": id, "exp": now + 600, "iat": now, "jti": "y"}),
                &secret,
            ),
        ),
    ];
    for (case, token) in cases {
        let f = failure(app.authed(&token).read_users_me().send().await);
        assert_eq!(f.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(f.message(), BAD_CREDENTIALS, "{case}");
        assert_eq!(f.headers[header::WWW_AUTHENTICATE], "Bearer", "{case}");
    }
}

#[tokio::test]
async fn logout_revokes_the_access_token() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let message = alice
        .api
        .logout()
        .send()
        .await
        .expect("logout")
        .into_inner();
    assert_eq!(message.message, "Logged out successfully");
    let f = failure(alice.api.read_users_me().send().await);
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.message(), BAD_CREDENTIALS);
    // The refresh token was not sent, so it still works; a new login works too.
    app.api
        .refresh_access_token()
        .body(types::RefreshRequest {
            refresh_token: alice.token.refresh_token.clone(),
        })
        .send()
        .await
        .expect("refresh still valid");
    let again = app.login("alice", PASSWORD).await;
    app.authed(&again.access_token)
        .read_users_me()
        .send()
        .await
        .expect("new login works");
}

#[tokio::test]
async fn logout_with_the_refresh_token_revokes_both() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    alice
        .api
        .logout()
        .body(types::LogoutRequest {
            refresh_token: Some(alice.token.refresh_token.clone()),
        })
        .send()
        .await
        .expect("logout");
    let f = failure(
        app.api
            .refresh_access_token()
            .body(types::RefreshRequest {
                refresh_token: alice.token.refresh_token.clone(),
            })
            .send()
            .await,
    );
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    // Logging out twice with the same token: it is already refused.
    assert_eq!(
        failure(alice.api.logout().send().await).status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    let app = spawn_app().await;
    let f = failure(app.api.logout().send().await);
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.message(), "Not authenticated");
}

#[tokio::test]
async fn refresh_issues_a_working_access_token() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let fresh = app
        .api
        .refresh_access_token()
        .body(types::RefreshRequest {
            refresh_token: alice.token.refresh_token.clone(),
        })
        .send()
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(fresh.token_type, "bearer");
    let me = app
        .authed(&fresh.access_token)
        .read_users_me()
        .send()
        .await
        .expect("me");
    assert_eq!(me.into_inner().id, alice.user.id);
}

#[tokio::test]
async fn refresh_refuses_access_tokens_and_garbage() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    for token in [alice.token.access_token.clone(), "garbage".to_string()] {
        let f = failure(
            app.api
                .refresh_access_token()
                .body(types::RefreshRequest {
                    refresh_token: token,
                })
                .send()
                .await,
        );
        assert_eq!(f.status, StatusCode::UNAUTHORIZED);
        assert_eq!(f.message(), BAD_CREDENTIALS);
    }
    let http = reqwest::Client::new();
    let (status, body) = exchange(http.post(app.url("/api/v1/refresh")).json(&json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "refresh_token"]));
}

#[tokio::test]
async fn tokens_of_a_soft_deleted_user_are_refused() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let second = app.login("alice", PASSWORD).await;
    alice
        .api
        .erase_user()
        .username("alice")
        .send()
        .await
        .expect("self delete");
    // The token used for the delete is revoked; another of the user's tokens is refused
    // because the user is gone; so is their refresh token and a new login.
    for token in [&alice.token.access_token, &second.access_token] {
        let f = failure(app.authed(token).read_users_me().send().await);
        assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    }
    let f = failure(
        app.api
            .refresh_access_token()
            .body(types::RefreshRequest {
                refresh_token: second.refresh_token.clone(),
            })
            .send()
            .await,
    );
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    let f = failure(
        app.api
            .login()
            .body(login_form("alice", PASSWORD))
            .send()
            .await,
    );
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
}

/// What Swagger UI's Authorize does with a username and password: the OAuth2 password grant,
/// with the scope it declares, then the token as a bearer.
#[tokio::test]
async fn the_oauth2_password_flow_gets_a_usable_token() {
    let app = crate::helpers::spawn_app().await;
    app.signup("ada").await;
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/login"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada"),
            ("password", crate::helpers::PASSWORD),
            ("scope", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let token: serde_json::Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "bearer");
    let me = app.authed(token["access_token"].as_str().unwrap());
    assert_eq!(
        me.read_users_me()
            .send()
            .await
            .unwrap()
            .into_inner()
            .username,
        "ada"
    );
}
