//! The HTTP side: the REST API under `/api`, uploaded media under `/media`, the web page at
//! `/`, and `/healthz`.

mod account;
mod dm;
mod error;
mod extract;
mod governance;
mod invites;
mod linger;
mod messages;
mod openapi;
mod rooms;
mod users;

pub use dm::ReadBlocks;
pub use error::ApiError;

use crate::app::Shared;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::path::Path;
use std::sync::atomic::Ordering;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body: an avatar of 1 MiB as base64 inside JSON fits.
pub const MAX_BODY: usize = 1536 * 1024;

/// The REST API and static files.
pub fn router(app: Shared, web_dir: &Path, media_dir: &Path) -> Router {
    let (api, doc) = OpenApiRouter::new()
        .routes(routes!(users::register))
        .routes(routes!(users::login))
        .routes(routes!(users::logout))
        .routes(routes!(users::info, account::patch_info))
        .routes(routes!(account::change_password))
        .routes(routes!(account::export))
        .routes(routes!(account::delete))
        .routes(routes!(rooms::create))
        .routes(routes!(rooms::list))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::messages, messages::send))
        .routes(routes!(messages::edit, messages::delete))
        .routes(routes!(rooms::search))
        .routes(routes!(rooms::mark_read))
        .routes(routes!(governance::patch_room))
        .routes(routes!(governance::leave))
        .routes(routes!(governance::members))
        .routes(routes!(governance::set_role))
        .routes(routes!(governance::kick))
        .routes(routes!(governance::ban, governance::unban))
        .routes(routes!(governance::mute, governance::unmute))
        .routes(routes!(invites::rotate))
        .routes(routes!(invites::create_invite, invites::invites))
        .routes(routes!(invites::revoke_invite))
        .routes(routes!(dm::open))
        .routes(routes!(dm::blocks))
        .routes(routes!(dm::block, dm::unblock))
        .split_for_parts();
    let doc = openapi::document_of(doc)
        .to_json()
        .expect("the OpenAPI document is plain data");
    let api = api
        .route(
            "/openapi.json",
            get(openapi::document).with_state(axum::body::Bytes::from(doc)),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API call") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this API call does not take that HTTP method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(linger::drain_unread))
        .with_state(app.clone());
    let index = web_dir.join("index.html");
    let web = ServeDir::new(web_dir).fallback(ServeFile::new(index));
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest_service(
            "/media",
            tower::ServiceBuilder::new()
                // Uploaded files are images by their bytes; no browser may guess otherwise.
                .layer(SetResponseHeaderLayer::overriding(
                    axum::http::header::X_CONTENT_TYPE_OPTIONS,
                    axum::http::HeaderValue::from_static("nosniff"),
                ))
                .service(ServeDir::new(media_dir)),
        )
        .fallback_service(web)
        .with_state(app)
}

/// `GET /healthz`: always 200 while the process is up; `status` is `degraded` while events
/// are parked (dead letters), and `parked_events` is `null` when the read database does not
/// answer.
async fn healthz(axum::extract::State(app): axum::extract::State<Shared>) -> impl IntoResponse {
    let head = *app.store.head().borrow();
    let applied = app.workers.low_water();
    let parked = projections::dead::counts(&app.read)
        .await
        .ok()
        .map(|c| c.iter().map(|(_, n)| n).sum::<u64>());
    let status = if parked.unwrap_or(0) > 0 {
        "degraded"
    } else {
        "ok"
    };
    axum::Json(serde_json::json!({
        "status": status,
        "parked_events": parked,
        "log_position": head,
        "projections_position": applied,
        "active_rooms": app.rooms.active(),
        "sockets": app.sockets.len(),
    }))
}

/// Lag (in events) past which the server says it is not ready.
const READY_LAG: u64 = 10_000;

/// `GET /readyz`: 200 when the log answers and the projections are close to its end, 503
/// with the reason otherwise.
async fn readyz(
    axum::extract::State(app): axum::extract::State<Shared>,
) -> axum::response::Response {
    let store_ok = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        app.store.stream_version("readyz-probe"),
    )
    .await;
    let head = *app.store.head().borrow();
    let lag = head.saturating_sub(app.workers.low_water());
    let (ready, why) = match store_ok {
        Ok(Ok(_)) if lag <= READY_LAG => (true, "ready".to_owned()),
        Ok(Ok(_)) => (
            false,
            format!("projections are {lag} events behind the log"),
        ),
        Ok(Err(e)) => (false, format!("the log is unavailable: {e}")),
        Err(_) => (false, "the log did not answer within 2 s".to_owned()),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"ready": ready, "reason": why, "projection_lag": lag})),
    )
        .into_response()
}

/// `GET /metrics` in the Prometheus text format.
async fn metrics(axum::extract::State(app): axum::extract::State<Shared>) -> impl IntoResponse {
    // Left out when the read database does not answer, rather than shown as none.
    let parked = projections::dead::counts(&app.read).await.ok();
    let gauges = crate::metrics::Gauges {
        sockets: app.sockets.len(),
        active_rooms: app.rooms.active(),
        mailbox_depth: app.rooms.mailbox_depth(),
        log_head: *app.store.head().borrow(),
        projections: app
            .workers
            .positions()
            .into_iter()
            .map(|(p, at)| (p.name(), at))
            .collect(),
        room_starts: (
            app.rooms.starts().from_snapshot.load(Ordering::Relaxed),
            app.rooms.starts().from_log.load(Ordering::Relaxed),
        ),
        room_start_events: app.rooms.starts().events_read.load(Ordering::Relaxed),
        parked,
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::render(&gauges),
    )
}
