//! Teams of the caller's tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use commands::tenancy::{self, Team};
use domain::ids::{AgentId, TeamId};
use domain::text::Name;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", post(create_team).get(list_teams))
        .route("/teams/{id}/members", post(add_member))
        .route("/teams/{id}/members/{agent_id}", delete(remove_member))
}

/// A new team.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTeam {
    /// Name, unique in the tenant.
    name: String,
}

/// An agent to add to a team.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    /// The agent.
    agent_id: String,
}

/// A team and its members.
#[derive(Serialize, ToSchema)]
pub(crate) struct TeamView {
    id: uuid::Uuid,
    name: String,
    member_ids: Vec<uuid::Uuid>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Team> for TeamView {
    fn from(team: Team) -> Self {
        Self {
            id: team.id,
            name: team.name,
            member_ids: team.member_ids,
            created_at: team.created_at,
        }
    }
}

/// Creates a team (admins only).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = NewTeam,
    security(("bearer" = [])),
    responses((status = 201, body = TeamView), (status = 409, body = crate::error::Problem)))]
pub(crate) async fn create_team(
    State(state): State<AppState>,
    auth: Auth,
    AppJson(body): AppJson<NewTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    auth.require_admin()?;
    let name = Name::parse(&body.name).map_err(|e| ApiError::invalid("name", &e))?;
    let team = tenancy::create_team(&state.pool, auth.principal.tenant_id, name.as_str()).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

/// Adds an agent to a team (admins only); adding a member twice is harmless.
#[utoipa::path(post, path = "/api/v1/teams/{id}/members", tag = "teams", request_body = NewMember,
    params(("id" = String, Path, description = "Team id")), security(("bearer" = [])),
    responses((status = 200, body = TeamView), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewMember>,
) -> Result<Json<TeamView>, ApiError> {
    auth.require_admin()?;
    let team = path_id("id", &id, TeamId::parse)?;
    let agent = AgentId::parse(&body.agent_id).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            e.to_string(),
        )
        .at("agent_id")
    })?;
    let team = tenancy::add_team_member(&state.pool, auth.principal.tenant_id, team, agent).await?;
    Ok(Json(team.into()))
}

/// Takes an agent off a team (admins only); removing an agent that is not a member is
/// harmless.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{agent_id}", tag = "teams",
    params(("id" = String, Path, description = "Team id"),
           ("agent_id" = String, Path, description = "Agent id")),
    security(("bearer" = [])),
    responses((status = 200, body = TeamView), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, agent_id)): Path<(String, String)>,
) -> Result<Json<TeamView>, ApiError> {
    auth.require_admin()?;
    let team = path_id("id", &id, TeamId::parse)?;
    let agent = path_id("agent_id", &agent_id, AgentId::parse)?;
    let team =
        tenancy::remove_team_member(&state.pool, auth.principal.tenant_id, team, agent).await?;
    Ok(Json(team.into()))
}

/// The tenant's teams.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", security(("bearer" = [])),
    responses((status = 200, body = [TeamView])))]
pub(crate) async fn list_teams(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<TeamView>>, ApiError> {
    let teams = tenancy::list_teams(&state.pool, auth.principal.tenant_id).await?;
    Ok(Json(teams.into_iter().map(TeamView::from).collect()))
}
