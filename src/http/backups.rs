//! Online backups (admins): take one of the running store, and list them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Caller, Json, Path};
use super::openapi::{AdminOnly, BadBody, Invalid};
use super::{private_json, AppState};
use crate::service::backup::{BackupStatus, Manifest};
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_backup, list_backups))
        .routes(routes!(get_backup))
}

/// What to call a backup (`{}` for the default name).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupInput {
    /// Folder name under `[backup] dir`: 1-64 letters, digits, `-`, `_` or `.` (default: the
    /// time, `20261201T223000Z`).
    pub name: Option<String>,
    /// Write the backup into this folder on the server instead (absolute; new or empty). The
    /// name then defaults to its last part.
    #[schema(value_type = Option<String>)]
    pub to: Option<std::path::PathBuf>,
}

/// Take a backup of the running store (admins).
///
/// A RocksDB checkpoint (every write acknowledged before it) and a manifest with each file's
/// size and SHA-256, in `[backup] dir`/`name`. Writes go on meanwhile. The search index is
/// rebuilt from the store when a backup is restored (`storefront restore`). One backup at a
/// time; `GET /admin/backups` shows its progress.
#[utoipa::path(post, path = "/admin/backups", tag = "operations", request_body = BackupInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The backup's manifest", body = Manifest),
               BadBody,
               AdminOnly,
               (status = 409, description = "`backup_running` or `backup_exists`", body = ErrorBody),
               Invalid))]
async fn create_backup(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<BackupInput>,
) -> Result<Response, ApiError> {
    let manifest = state.backups.create(actor, input.name, input.to).await?;
    Ok(private_json(StatusCode::CREATED, &manifest))
}

/// The backups in `[backup] dir` by name, and the one being written (`state: running`, with
/// `files_done` of `files_total` checksummed).
#[utoipa::path(get, path = "/admin/backups", tag = "operations",
    security(("bearer" = [])),
    responses((status = 200, description = "The backups", body = Items<BackupStatus>), AdminOnly))]
async fn list_backups(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.backups.list(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// One backup by name: its progress while it is written (`state: running`), then its
/// manifest.
#[utoipa::path(get, path = "/admin/backups/{name}", tag = "operations",
    params(("name" = String, Path, description = "The backup's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The backup", body = BackupStatus), AdminOnly,
               (status = 404, description = "No such backup", body = ErrorBody)))]
async fn get_backup(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let status = state.backups.get(actor, name).await?;
    Ok(private_json(StatusCode::OK, &status))
}
