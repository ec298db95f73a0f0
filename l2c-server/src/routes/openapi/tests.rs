use super::*;

/// The committed `openapi.json` must match the generated document.
/// `UPDATE_OPENAPI=1 cargo test -p l2c-server openapi` rewrites it.
#[test]
fn committed_openapi_json_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let generated = document_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p l2c-server openapi`"
    );
}

#[test]
fn document_is_openapi_3_1_with_every_route() {
    let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/mobile/leads/hook",
        "/api/mobile/customers/{id}",
        "/api/mobile/orders/sync",
        "/api/mobile/orders/{id}/status",
        "/api/mobile/showroom/items",
        "/api/mobile/reports/orders/export",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        v["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(v["components"]["schemas"]["Problem"].is_object());
}

#[test]
fn webhook_routes_and_events_are_documented() {
    let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    for (path, method) in [
        ("/api/mobile/webhooks", "post"),
        ("/api/mobile/webhooks", "get"),
        ("/api/mobile/webhooks/{id}", "delete"),
        ("/api/mobile/webhooks/{id}/rotate-secret", "post"),
        ("/api/mobile/webhooks/{id}/promote-secret", "post"),
        ("/api/mobile/webhooks/{id}/deliveries", "get"),
        (
            "/api/mobile/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            "post",
        ),
    ] {
        let op = &v["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert_eq!(
            op["security"][0]["bearer"][0], "webhooks:manage",
            "{method} {path}"
        );
        assert!(op["responses"]["403"].is_object(), "{method} {path}");
    }
    for name in [
        "CreateWebhook",
        "CreatedWebhook",
        "Page_Webhook",
        "RotatedSecret",
        "RotateWebhookSecret",
        "SecretRotation",
        "RotationStage",
        "Page_Delivery",
        "Delivery",
        "WebhookEvent",
        "EventData",
        "OrderCreated",
        "OrderStatusChanged",
        "PaymentReceived",
    ] {
        assert!(
            v["components"]["schemas"][name].is_object(),
            "schema {name} missing"
        );
    }
    let link = &v["paths"]["/api/mobile/webhooks"]["post"]["responses"]["201"]["links"]["RotateWebhookSecret"];
    assert_eq!(link["operationId"], "rotateWebhookSecret", "{link}");
    assert_eq!(link["parameters"]["id"], "$response.body#/id", "{link}");
    for event in ["orderCreated", "orderStatusChanged", "paymentReceived"] {
        assert!(
            v["webhooks"][event]["post"]["requestBody"].is_object(),
            "webhook {event} missing"
        );
    }
}

/// Every write under `/api/mobile` declares both idempotency key headers and the
/// idempotency answers; every response of every route declares `X-Request-Id`; 2xx answers
/// declare the rate-limit headers and 429 sends `Retry-After`.
#[test]
fn writes_declare_idempotency_and_rate_limit_headers() {
    let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    let resolve = |r: &serde_json::Value| -> serde_json::Value {
        match r["$ref"].as_str() {
            Some(name) => {
                let name = name.trim_start_matches("#/components/responses/");
                v["components"]["responses"][name].clone()
            }
            None => r.clone(),
        }
    };
    let mut writes = 0;
    for (path, item) in v["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (status, r) in responses {
                let r = resolve(r);
                assert!(
                    r["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status} lacks X-Request-Id"
                );
            }
            if !path.starts_with("/api/mobile/") {
                continue;
            }
            let too_many = resolve(&op["responses"]["429"]);
            assert!(too_many["headers"]["Retry-After"].is_object(), "{path}");
            let ok = responses
                .iter()
                .find(|(s, _)| s.starts_with('2'))
                .map(|(_, r)| resolve(r))
                .unwrap();
            assert!(ok["headers"]["RateLimit"].is_object(), "{method} {path}");
            assert!(ok["headers"]["RateLimit-Policy"].is_object(), "{path}");
            if method == "post" || method == "put" {
                writes += 1;
                // `X-Request-Id` is required (400 `idempotency_key_missing` without a key);
                // `Idempotency-Key` is accepted in its place and described there, not declared,
                // since OpenAPI cannot say "one of two headers".
                let key = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["in"] == "header" && p["name"] == "X-Request-Id")
                    .unwrap_or_else(|| panic!("{path}: no X-Request-Id"));
                assert_eq!(key["required"], true, "{path}");
                assert_eq!(key["schema"]["pattern"], KEY_PATTERN, "{path}");
                assert!(
                    key["description"]
                        .as_str()
                        .unwrap()
                        .contains("Idempotency-Key"),
                    "{path}"
                );
                let conflict = resolve(&op["responses"]["409"]);
                assert!(
                    conflict["description"]
                        .as_str()
                        .unwrap()
                        .contains("idempotency_key_in_use"),
                    "{path}"
                );
                let reused = resolve(&op["responses"]["422"]);
                assert!(
                    reused["description"]
                        .as_str()
                        .unwrap()
                        .contains("idempotency_key_reused"),
                    "{path}"
                );
            }
        }
    }
    // leads, orders, create webhook, rotate and promote secret, redeliver, test event, recover,
    // create / update / rotate lead source
    assert_eq!(writes, 11);
}

/// The error body is l2c-core's `Problem`, derived there; every route declares each status once
/// (a layer's set is listed only where the route has no row of its own), and the layers' answers
/// are there: 401/403 with the RFC 6750 challenge, 429 with `Retry-After`, 503 with
/// `Retry-After` where the database is used.
#[test]
fn problem_comes_from_core_and_layers_declare_their_answers() {
    let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    let problem = &v["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == member),
            "Problem.{member} not required: {problem}"
        );
    }
    assert!(problem["properties"]["requestId"].is_object(), "{problem}");
    let customer = &v["paths"]["/api/mobile/customers/{id}"]["get"]["responses"];
    for (status, header) in [
        ("401", "WWW-Authenticate"),
        ("403", "WWW-Authenticate"),
        ("429", "Retry-After"),
        ("503", "Retry-After"),
    ] {
        assert!(
            customer[status]["headers"][header].is_object(),
            "{status}: {}",
            customer[status]
        );
        assert_eq!(
            customer[status]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
    let export = &v["paths"]["/api/mobile/reports/orders/export"]["get"]["responses"];
    assert!(
        export["429"]["description"]
            .as_str()
            .unwrap()
            .contains("long-running"),
        "{}",
        export["429"]
    );
    assert!(
        export["503"]["description"]
            .as_str()
            .unwrap()
            .contains("database_unavailable"),
        "{}",
        export["503"]
    );
}
