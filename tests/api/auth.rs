//! Registration, login, token rotation and reuse detection, profile, addresses, rate limits.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_fields, spawn_app, spawn_with};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

#[tokio::test]
async fn register_refresh_rotation_reuse_and_logout() {
    let app = spawn_app().await;
    let s = app.register("Alice@Example.com").await;
    let (status, me) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "alice@example.com", "emails are normalised");
    assert_eq!(me["role"], "customer");
    assert!(me.get("password_hash").is_none());

    // Rotation: each refresh returns a new refresh token.
    let (status, t1) = app.refresh_session(&s.refresh).await;
    assert_eq!(status, StatusCode::OK, "{t1}");
    let r1 = t1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, s.refresh);
    assert_eq!(t1["expires_in"], 900);
    let (status, _) = app
        .call(
            Method::GET,
            "/api/v1/me",
            Some(t1["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Reusing the rotated token is treated as theft: the whole family dies.
    let (status, body) = app.refresh_session(&s.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "refresh_token_reused");
    let (status, body) = app.refresh_session(&r1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_refresh_token");

    // Logout revokes the session; other sessions live on.
    let a = app.login("alice@example.com").await;
    let b = app.login("ALICE@example.com").await;
    let (status, _) = app.logout_session(&a.refresh).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.refresh_session(&a.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.refresh_session(&b.refresh).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn registration_is_validated_and_emails_are_unique_under_races() {
    let app = spawn_app().await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({ "email": "not-an-email", "password": "short", "name": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&body);
    assert_eq!(fields, vec!["email", "name", "password"]);
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({ "email": "bob@example.com", "password": "bob@example.com", "name": "Bob" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["code"], "matches_email");

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/register"));
        tasks.push(tokio::spawn(async move {
            let email = if i % 2 == 0 {
                "race@example.com"
            } else {
                " RACE@example.com "
            };
            client
                .post(url)
                .json(&json!({ "email": email, "password": "correct horse battery", "name": "Racer" }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn login_failures_do_not_reveal_whether_an_account_exists() {
    let app = spawn_app().await;
    app.register("carol@example.com").await;
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "nobody@example.com", "password": "correct horse battery" })),
        )
        .await;
    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "carol@example.com", "password": "wrong password!" })),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, wrong);
    assert_eq!(wrong.1["error"]["code"], "invalid_credentials");
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn token(secret: &str, kid: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn expired_tampered_foreign_and_unsigned_tokens_are_rejected() {
    let app = spawn_with(None, |c| {
        c.auth.jwt_secret = SECRET.into();
        c.auth.jwt_previous_secret = "an-older-secret-that-is-long-enough!!".into();
        c.auth.jwt_previous_key_id = "k0".into();
    })
    .await;
    let s = app.register("dave@example.com").await;
    let claims = |exp: i64, iss: &str| json!({ "sub": s.id, "role": "admin", "jti": "x", "iss": iss, "iat": now() - 10, "nbf": now() - 10, "exp": exp });

    let expired = token(SECRET, "k1", claims(now() - 60, "storefront"));
    let (status, body) = app.call(Method::GET, "/api/v1/me", Some(&expired), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );

    let wrong_issuer = token(SECRET, "k1", claims(now() + 60, "evil"));
    let (status, _) = app.call(Method::GET, "/api/v1/me", Some(&wrong_issuer), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let foreign = token(
        "some-other-secret-of-sufficient-size",
        "k1",
        claims(now() + 60, "storefront"),
    );
    let (status, body) = app.call(Method::GET, "/api/v1/me", Some(&foreign), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    let mut tampered = s.access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = app.call(Method::GET, "/api/v1/me", Some(&tampered), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // alg=none with the payload of a valid token.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = s.access.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        payload
    );
    let (status, _) = app.call(Method::GET, "/api/v1/me", Some(&none), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A token signed with the previous key (kid k0) is still accepted during rotation.
    let rotated = token(
        "an-older-secret-that-is-long-enough!!",
        "k0",
        json!({ "sub": s.id, "role": "customer", "jti": "y", "iss": "storefront", "iat": now(), "nbf": now(), "exp": now() + 60 }),
    );
    let (status, _) = app.call(Method::GET, "/api/v1/me", Some(&rotated), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn admins_change_roles_and_revoke_sessions() {
    let app = spawn_app().await;
    let (_, seller) = app
        .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": "Erin's Shop" }))
        .await;
    let erin = app.register("erin@example.com").await;
    let erin = app
        .promote(&erin, "seller", Some(seller["slug"].as_str().unwrap()))
        .await;
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(&erin.access), None).await;
    assert_eq!(me["role"], "seller");
    assert_eq!(me["seller_id"], seller["id"]);

    let (status, body) = app
        .admin_json(
            Method::POST,
            &format!("/api/v1/admin/users/{}/role", erin.id),
            json!({ "role": "seller" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .admin_json(
            Method::POST,
            &format!("/api/v1/admin/users/{}/role", erin.id),
            json!({ "role": "emperor" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let other = app.login("erin@example.com").await;
    let res = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/admin/users/{}/sessions", erin.id),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["revoked_sessions"].as_u64().unwrap() >= 2);
    for refresh in [&erin.refresh, &other.refresh] {
        let (status, _) = app.refresh_session(&refresh).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn passwords_are_rehashed_when_the_parameters_change() {
    let app = spawn_app().await;
    app.register("frank@example.com").await;
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |c| c.auth.argon2_memory_kib = 2048).await;
    let s = app.login("frank@example.com").await;
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
    assert_eq!(me["version"], 2, "the hash was upgraded at login");
    let s = app.login("frank@example.com").await;
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
    assert_eq!(me["version"], 2, "an up-to-date hash is left alone");
}

#[tokio::test]
async fn profile_and_password_changes() {
    let app = spawn_app().await;
    let s = app.register("gina@example.com").await;
    let (status, me) = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&s.access),
            Some(json!({ "name": "Gina G" })),
        )
        .await;
    assert_eq!((status, me["name"].as_str()), (StatusCode::OK, Some("Gina G")));
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&s.access),
            Some(json!({ "new_password": "another long password", "current_password": "wrong wrong wrong" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&s.access),
            Some(json!({ "new_password": "another long password", "current_password": "correct horse battery" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "gina@example.com", "password": "another long password" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn addresses_belong_to_their_owner() {
    let app = spawn_app().await;
    let h = app.register("hank@example.com").await;
    let i = app.register("ida@example.com").await;
    let home =
        json!({ "name": "Hank", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us" });
    let (status, first) = app
        .call(
            Method::POST,
            "/api/v1/me/addresses",
            Some(&h.access),
            Some(home.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["country"], "US");
    assert_eq!(first["is_default"], true, "the first address becomes the default");
    let mut work = home.clone();
    work["line1"] = json!("99 Office Rd");
    work["is_default"] = json!(true);
    let (_, second) = app
        .call(Method::POST, "/api/v1/me/addresses", Some(&h.access), Some(work))
        .await;
    assert_eq!(second["is_default"], true);
    let (_, list) = app
        .call(Method::GET, "/api/v1/me/addresses", Some(&h.access), None)
        .await;
    let defaults: Vec<bool> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["is_default"].as_bool().unwrap())
        .collect();
    assert_eq!(defaults, vec![false, true]);

    let path = format!("/api/v1/me/addresses/{}", first["id"].as_str().unwrap());
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(&h.access),
            Some(json!({ "city": "Shelbyville" })),
        )
        .await;
    assert_eq!(
        (status, patched["city"].as_str()),
        (StatusCode::OK, Some("Shelbyville"))
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&h.access),
            Some(json!({ "country": "Narnia" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Another user can neither read, change nor delete it.
    let (_, theirs) = app
        .call(Method::GET, "/api/v1/me/addresses", Some(&i.access), None)
        .await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(
        app.call(Method::PATCH, &path, Some(&i.access), Some(json!({ "city": "X" })))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&i.access), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&h.access), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = app
        .call(Method::GET, "/api/v1/me/addresses", Some(&h.access), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn login_and_api_rate_limits_answer_429_with_retry_after() {
    let app = spawn_with(None, |c| {
        c.rate_limit.auth_per_minute_per_ip = 3;
        c.rate_limit.api_per_second = 1;
        c.rate_limit.api_burst = 20;
    })
    .await;
    let mut last = None;
    for _ in 0..4 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": "x@example.com", "password": "whatever123" }))
            .send()
            .await
            .unwrap();
        last = Some(res);
    }
    let res = last.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        res.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");

    let mut limited = false;
    for _ in 0..40 {
        if app.get("/api/v1/categories").await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the general per-IP limit applies");
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "probes are not limited with the API"
    );
}

#[tokio::test]
async fn a_wildcard_cors_origin_allows_any_origin() {
    // `["*"]` used to panic while the server was being built.
    let app = spawn_with(None, |c| c.server.cors_allowed_origins = vec!["*".into()]).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/cart"))
        .header(header::ORIGIN, "https://anywhere.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_for_configured_origins() {
    let app = spawn_with(None, |c| {
        c.server.cors_allowed_origins = vec!["https://shop.example.com".into()]
    })
    .await;
    let res = app.get("/api/v1/products").await;
    assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/cart"))
        .header(header::ORIGIN, "https://shop.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.com"
    );
    let other = app
        .client
        .get(app.url("/api/v1/products"))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let s = app.register("ivy@example.com").await;
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CACHE_CONTROL], "private, no-store");
}

#[tokio::test]
async fn access_and_refresh_tokens_expire_on_the_server_clock() {
    let app = spawn_app().await;
    let s = app.register("clock@example.com").await;
    // 15 minutes (plus the 5 s leeway) later the access token is refused as expired.
    app.advance(std::time::Duration::from_secs(14 * 60));
    let (status, _) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
    assert_eq!(status, StatusCode::OK);
    app.advance(std::time::Duration::from_secs(70));
    let (status, body) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );
    // The refresh token still works until its week is up, then it is refused.
    let (status, pair) = app.refresh_session(&s.refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    app.advance(std::time::Duration::from_secs(7 * 24 * 3600 + 1));
    let (status, body) = app.refresh_session(pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token"))
    );
}

/// Ending a session ends its access tokens at once, not when they expire: logout (the access
/// token sent with it), an admin's revoke-all, and a password change (every session, this one
/// too); and a restart remembers it.
#[tokio::test]
async fn access_tokens_are_refused_as_soon_as_their_session_ends() {
    let app = crate::helpers::spawn_app().await;
    let me = |token: String| {
        let app = &app;
        async move { app.call(Method::GET, "/api/v1/me", Some(&token), None).await }
    };
    let tick = || app.advance(std::time::Duration::from_millis(5));
    let first = app.register("hal@example.com").await;
    let second = app.login("hal@example.com").await;
    tick();

    // Logout with the access token: that one is refused, the other session lives on.
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&first.access)
        .json(&json!({ "refresh_token": first.refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = me(first.access.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked")),
        "{body}"
    );
    assert_eq!(me(second.access.clone()).await.0, StatusCode::OK);

    // An admin's revoke-all ends every access token issued so far; a new sign-in works.
    let r = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/admin/users/{}/sessions", second.id),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me(second.access.clone()).await.0, StatusCode::UNAUTHORIZED);
    tick();
    let third = app.login("hal@example.com").await;
    tick();
    assert_eq!(me(third.access.clone()).await.0, StatusCode::OK);

    // A password change ends every session, the one that made it too.
    let (status, _) = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&third.access),
            Some(json!({ "new_password": "a brand new password", "current_password": "correct horse battery" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me(third.access.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh_session(&third.refresh).await.0, StatusCode::UNAUTHORIZED);
    tick();
    let (status, fresh) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "hal@example.com", "password": "a brand new password" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(fresh.clone()).await.0, StatusCode::OK);

    // After a restart the revoked tokens stay refused and the new one works.
    let dir = app.stop().await;
    let app = crate::helpers::spawn_with(Some(dir), |_| {}).await;
    for (token, want) in [
        (&first.access, StatusCode::UNAUTHORIZED),
        (&third.access, StatusCode::UNAUTHORIZED),
        (&fresh, StatusCode::OK),
    ] {
        assert_eq!(app.call(Method::GET, "/api/v1/me", Some(token), None).await.0, want);
    }
}

#[tokio::test]
async fn admins_list_and_find_users_a_page_at_a_time() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.register(&format!("shopper{i}@example.com")).await;
    }
    let other = app.register("someone@else.org").await;
    let admin = app.register("boss@example.com").await;
    let admin = app.promote(&admin, "admin", None).await;

    let (status, _) = app.call(Method::GET, "/api/v1/admin/users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/users", Some(&other.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every account, two at a time, in creation order, each once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/users?limit=2".to_owned();
    loop {
        let (status, page) = app.call(Method::GET, &path, Some(&admin.access), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        for user in page["items"].as_array().unwrap() {
            assert!(user.get("password_hash").is_none());
            seen.push(user["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/admin/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..5).map(|i| format!("shopper{i}@example.com")).collect();
    expected.extend(["someone@else.org".to_owned(), "boss@example.com".to_owned()]);
    assert_eq!(seen, expected);

    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/admin/users?email=ELSE.org",
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["id"], other.id.as_str());
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = app
        .call(Method::GET, "/api/v1/admin/users?role=admin", Some(&admin.access), None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["email"], "boss@example.com");
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/admin/users?role=owner&limit=0&cursor=x",
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["limit", "role", "cursor"]);
}

/// The first admin comes from the command line, on a stopped store: it signs in with the
/// printed password and has admin rights; a second run on the same email keeps the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_makes_the_first_admin_on_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
            .args(["admin", "create", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["--email", "Owner@Shop.example"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let password = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        password.len(),
        24,
        "the generated password is printed alone: {password:?}"
    );
    let out = run(
        &["--email", "owner@shop.example", "--password-stdin"],
        "ignored-because-it-exists\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unchanged"));
    let out = run(&["--email", "short@shop.example", "--password-stdin"], "abc\n");
    assert!(!out.status.success(), "a too-short password is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    let app = spawn_with(Some(dir), |c| c.auth.admin_api_key.clear()).await;
    let (status, tokens) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "owner@shop.example", "password": password })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(access), None).await;
    assert_eq!(me["role"], "admin");
    let (status, page) = app.call(Method::GET, "/api/v1/admin/users", Some(access), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}
