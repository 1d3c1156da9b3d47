//! The HTTP side: the REST API under `/api`, uploaded media under `/media`, the web page at
//! `/`, and `/healthz`.

mod error;
mod extract;
mod rooms;
mod users;

pub use error::ApiError;

use crate::app::Shared;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::path::Path;
use tower_http::services::{ServeDir, ServeFile};

/// Largest request body: an avatar of 1 MiB as base64 inside JSON fits.
pub const MAX_BODY: usize = 1536 * 1024;

/// The REST API and static files.
pub fn router(app: Shared, web_dir: &Path, media_dir: &Path) -> Router {
    let api = Router::new()
        .route("/register", post(users::register))
        .route("/login", post(users::login))
        .route("/logout", post(users::logout))
        .route("/user/info", get(users::info))
        .route("/room/create", post(rooms::create))
        .route("/room/list", get(rooms::list))
        .route("/room/join", post(rooms::join))
        .route("/room/{room_id}/messages", get(rooms::messages))
        .route("/room/{room_id}/search", get(rooms::search))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API call") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this API call does not take that HTTP method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app.clone());
    let index = web_dir.join("index.html");
    let web = ServeDir::new(web_dir).fallback(ServeFile::new(index));
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(healthz))
        .nest_service("/media", ServeDir::new(media_dir))
        .fallback_service(web)
        .with_state(app)
}

async fn healthz(axum::extract::State(app): axum::extract::State<Shared>) -> impl IntoResponse {
    let head = *app.store.head().borrow();
    let applied = app.workers.low_water();
    axum::Json(serde_json::json!({
        "status": "ok",
        "log_position": head,
        "projections_position": applied,
        "active_rooms": app.rooms.active(),
        "sockets": app.sockets.len(),
    }))
}
