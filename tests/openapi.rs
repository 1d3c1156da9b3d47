//! The OpenAPI document at `GET /api/openapi.json`, held against the contract and the real
//! server: every REST call that `docs/protocol.md` names is in it with its method and is
//! answered; every call in it is answered (neither 404 nor 405); its references resolve; the
//! calls that need a token say so; and real answers have the documented shapes.

mod common;

use common::{Client, Server, unique};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `(METHOD, /api/path)` of every call `docs/protocol.md` names, query strings left off.
fn contract_calls() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    let mut calls = BTreeSet::new();
    for method in METHODS {
        let needle = format!("{method} /api/");
        for (at, _) in text.match_indices(&needle) {
            let path: String = text[at + method.len() + 1..]
                .chars()
                .take_while(|c| !matches!(c, '`' | ' ' | '?' | ',' | ')' | ':' | '\n'))
                .collect();
            calls.insert((method.to_owned(), path));
        }
    }
    calls
}

/// `(METHOD, /api/path)` of every operation in the document.
fn documented_calls(doc: &Value) -> BTreeSet<(String, String)> {
    let mut calls = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if METHODS.contains(&method.as_str()) {
                calls.insert((method, path.clone()));
            }
        }
    }
    calls
}

/// The schema a `$ref` points to, or `schema` itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the schemas: {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} points to nothing");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks `value` against `schema`: the JSON types, every required field present, and no
/// field that the schema does not list.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    // OpenAPI 3.1 writes a nullable field as a list of types: `["integer", "null"]`.
    if let Some(kinds) = schema["type"].as_array() {
        let kind = if value.is_null() {
            "null"
        } else {
            kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|k| *k != "null")
                .unwrap_or("null")
        };
        assert!(
            kinds.iter().any(|k| k == kind),
            "{at}: {value} is none of {kinds:?}"
        );
        let mut one = schema.clone();
        one["type"] = json!(kind);
        return conforms(doc, &one, value, at);
    }
    let kind = schema["type"].as_str().unwrap_or("object");
    match kind {
        "object" => {
            let fields = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
            // A map (`reactions`): any keys, each value of one schema.
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object())
                && schema.get("properties").is_none()
            {
                for (name, v) in fields {
                    conforms(doc, values, v, &format!("{at}.{name}"));
                }
                return;
            }
            let properties = schema["properties"].as_object().unwrap();
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                assert!(fields.contains_key(name), "{at}: {name} is missing");
            }
            for (name, v) in fields {
                let property = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}: {name} is not documented"));
                conforms(doc, property, v, &format!("{at}.{name}"));
            }
        }
        "array" => {
            for (i, v) in value.as_array().unwrap().iter().enumerate() {
                conforms(doc, &schema["items"], v, &format!("{at}[{i}]"));
            }
        }
        "string" => assert!(value.is_string(), "{at}: {value} is not a string"),
        "integer" => assert!(value.is_u64() || value.is_i64(), "{at}: {value}"),
        "null" => assert!(value.is_null(), "{at}: {value} is not null"),
        "boolean" => assert!(value.is_boolean(), "{at}: {value} is not a boolean"),
        other => panic!("{at}: a schema of type {other} is not expected here"),
    }
}

/// Checks a real answer against the document's schema for this call and status.
fn answer_conforms(doc: &Value, method: &str, path: &str, a: &common::Answer) {
    let operation = &doc["paths"][path][method.to_lowercase()];
    let response = &operation["responses"][a.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {}, which the document does not list",
        a.status
    );
    let schema = &response["content"]["application/json"]["schema"];
    conforms(
        doc,
        schema,
        &a.body,
        &format!("{method} {path} {}", a.status),
    );
}

fn every_ref(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| every_ref(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| every_ref(v, out)),
        _ => {}
    }
}

async fn the_document(server: &Server) -> Value {
    let anonymous = server.client();
    let a = anonymous.call("GET", "/api/openapi.json", None).await;
    assert_eq!(a.status, 200, "the document needs no token");
    a.body
}

#[tokio::test]
async fn the_document_lists_every_call_and_every_call_in_it_is_answered() {
    let server = Server::start(&[]);
    let doc = the_document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let documented = documented_calls(&doc);
    let contract = contract_calls();
    assert!(
        contract.len() >= 10,
        "docs/protocol.md names the REST calls: {contract:?}"
    );
    let missing: Vec<_> = contract.difference(&documented).collect();
    assert!(missing.is_empty(), "not in the document: {missing:?}");

    let mut refs = Vec::new();
    every_ref(&doc, &mut refs);
    for r in refs {
        resolve(&doc, &json!({ "$ref": r }));
    }

    let anonymous = server.client();
    // The yardsticks: what the server says to a path it does not serve, and to a wrong method.
    assert_eq!(anonymous.call("GET", "/api/nope", None).await.status, 404);
    assert_eq!(
        anonymous.call("GET", "/api/register", None).await.status,
        405
    );
    let open: BTreeSet<&str> = ["/api/register", "/api/login", "/api/openapi.json"].into();
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method.to_lowercase()];
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == name && p["in"] == "path");
            assert!(
                declared,
                "{method} {path}: path parameter {name} is not described"
            );
        }
        let needs_token = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        assert_eq!(
            needs_token,
            !open.contains(path.as_str()),
            "{method} {path}: the bearer requirement"
        );
        let concrete = path.replace("{roomId}", "00000000-0000-0000-0000-000000000000");
        let body = (method == "POST").then(|| json!({}));
        let a = anonymous.call(method, &concrete, body).await;
        assert!(
            a.status != 404 && a.status != 405,
            "{method} {concrete} is in the document but answered {}: {}",
            a.status,
            a.body
        );
        if needs_token {
            assert_eq!(a.status, 401, "{method} {path} without a token");
        }
        if path != "/api/openapi.json" {
            answer_conforms(&doc, method, path, &a);
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn real_answers_have_the_documented_shapes() {
    let server = Server::start(&[]);
    let doc = the_document(&server).await;
    let mut alice = server.client();
    let name = unique("alice");
    let register = json!({"username": name, "password": "password123"});
    let a = alice.call("POST", "/api/register", Some(register)).await;
    answer_conforms(&doc, "POST", "/api/register", &a);
    alice.token = Some(a.data()["token"].as_str().unwrap().to_owned());
    let again = json!({"username": name, "password": "password123"});
    let a = alice
        .call("POST", "/api/register", Some(again.clone()))
        .await;
    assert_eq!(a.status, 409);
    answer_conforms(&doc, "POST", "/api/register", &a);
    let a = alice.call("POST", "/api/login", Some(again)).await;
    answer_conforms(&doc, "POST", "/api/login", &a);
    let a = alice.call("GET", "/api/user/info", None).await;
    answer_conforms(&doc, "GET", "/api/user/info", &a);
    let room = alice.create_room("documented").await;
    let a = alice.call("GET", "/api/room/list", None).await;
    assert_eq!(a.data()["roomList"].as_array().unwrap().len(), 1);
    answer_conforms(&doc, "GET", "/api/room/list", &a);

    let mut bob: Client = server.client();
    bob.register(&unique("bob")).await;
    let join = json!({"roomIdHash": room["room_hash_id"]});
    let a = bob.call("POST", "/api/room/join", Some(join)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    answer_conforms(&doc, "POST", "/api/room/join", &a);
    let id = room["id"].as_str().unwrap();
    // A message answered and edited, so that history and search show every field of one.
    let post = |body: Value| {
        let bob = &bob;
        let path = format!("/api/room/{id}/messages");
        async move { bob.call("POST", &path, Some(body)).await }
    };
    let first = post(json!({"id": "doc-1", "message": "hello documented"})).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let seq = first.data()["message"]["seq"].as_u64().unwrap();
    let answer = post(json!({"id": "doc-2", "message": "hello again", "replyTo": seq})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let edit = json!({"message": "hello edited"});
    let a = bob
        .call(
            "PATCH",
            &format!("/api/room/{id}/messages/{seq}"),
            Some(edit),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    for path in [
        format!("/api/room/{id}/messages?limit=10"),
        format!("/api/room/{id}/search?q=hello"),
        format!("/api/room/{id}/messages?limit=0"),
    ] {
        let a = bob.call("GET", &path, None).await;
        let template = if path.contains("/search") {
            "/api/room/{roomId}/search"
        } else {
            "/api/room/{roomId}/messages"
        };
        answer_conforms(&doc, "GET", template, &a);
        if !path.ends_with("limit=0") {
            let shown = &a.data()["messages"];
            assert!(
                shown
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["editedAt"].is_string() && m["reactions"] == json!({})),
                "{path}: {shown}"
            );
        }
    }
    let a = bob.call("POST", "/api/logout", None).await;
    answer_conforms(&doc, "POST", "/api/logout", &a);
}
