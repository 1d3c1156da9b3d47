//! The OpenAPI 3.1 document of the REST API, served at `GET /api/openapi.json`.
//!
//! Built from the handlers' `#[utoipa::path]` annotations and the types the answers are
//! serialized from, and the routes are registered from the same annotations
//! (`utoipa_axum::routes!`), so a call cannot be served without being described.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// What the routes do not say: the title, the tags, the bearer scheme, and this document's
/// own path.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatroom",
        description = "The REST API of chatroom. Every answer is the envelope \
            `{\"status\", \"message\", \"data\"}` with `status` equal to the HTTP status; errors \
            carry `data: null`. Socket.IO is described in docs/protocol.md.",
    ),
    paths(document),
    modifiers(&BearerAuth),
    tags(
        (name = "users", description = "Registration, login, sessions"),
        (name = "rooms", description = "Rooms and their history"),
        (name = "governance", description = "Roles, moderation, room settings and invites"),
        (name = "messages", description = "Sending, editing and deleting messages, for bots and scripts"),
        (name = "direct", description = "Direct rooms of two people, and blocks"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The token from register or login, as `Authorization: Bearer <token>`",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The name of the bearer scheme, as the handlers' `security(...)` spell it.
const BEARER: &str = "bearer";

/// The contract's envelope around every answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<'a, T> {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What happened, for a person to read.
    pub message: &'a str,
    /// The answer's data; `null` for errors.
    pub data: T,
    /// On errors, the contract's error code (`bad_request`, `forbidden`, `gone`, ...), the same
    /// as the socket's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

/// JSON `null`: the `data` of an error, and of logout.
#[derive(Debug, Clone, Copy)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl PartialSchema for Null {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for Null {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Null")
    }
}

/// The whole document: [`ApiDoc`] with the routes of `api` under `/api`.
pub fn document_of(api: Document) -> Document {
    ApiDoc::openapi().nest("/api", api)
}

/// This document (`GET /api/openapi.json`).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json")),
)]
pub async fn document(State(json): State<Bytes>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
}
