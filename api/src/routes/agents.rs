//! Agents of the caller's tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use commands::sign_in;
use commands::tenancy::{self, Agent, AgentChanges, Role};
use domain::ids::AgentId;
use domain::text::{Email, Name, Password};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/agents", post(create_agent).get(list_agents))
        .route("/agents/{id}", patch(update_agent))
        .route("/agents/{id}/password", put(set_password))
        .route("/agents/{id}/invitation", post(invite))
}

/// A new agent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAgent {
    /// Display name.
    name: String,
    /// E-mail address, unique in the tenant.
    email: String,
    /// `admin`, `agent` or `auditor` (read-only: histories, past states, the event feed).
    #[schema(value_type = String, example = "agent")]
    role: RoleBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RoleBody {
    Admin,
    Agent,
    Auditor,
}

impl From<RoleBody> for Role {
    fn from(role: RoleBody) -> Self {
        match role {
            RoleBody::Admin => Role::Admin,
            RoleBody::Agent => Role::Agent,
            RoleBody::Auditor => Role::Auditor,
        }
    }
}

/// Changes to an agent; an absent field is kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentPatch {
    /// `admin`, `agent` or `auditor`. The tenant's last admin cannot be demoted.
    #[schema(value_type = Option<String>, example = "admin")]
    role: Option<RoleBody>,
    /// Display name.
    name: Option<String>,
}

/// A password an admin sets for an agent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    /// 8 to 1,024 characters.
    password: String,
}

/// An invitation to set a password: the link to hand to the agent, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvitationView {
    /// The invitation's secret; only its hash is stored.
    token: String,
    /// The console's page that accepts it, relative to this server.
    url: String,
    /// When it stops working (7 days).
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// An agent with the API token it acts with; the token is shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentWithToken {
    #[serde(flatten)]
    agent: AgentView,
    /// Bearer token for the API. Store it now: it cannot be shown again.
    token: String,
}

/// An agent.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentView {
    id: uuid::Uuid,
    name: String,
    email: String,
    /// `admin`, `agent` or `auditor`.
    #[schema(value_type = String, example = "agent")]
    role: Role,
    created_at: chrono::DateTime<chrono::Utc>,
    /// Whether the agent has a password to sign in to the console with; `false` for an
    /// agent invited but not yet signed up, or one that works with its API token only.
    has_password: bool,
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        Self {
            id: agent.id,
            name: agent.name,
            email: agent.email,
            role: agent.role,
            created_at: agent.created_at,
            has_password: agent.has_password,
        }
    }
}

/// Adds an agent (admins only) and answers its token.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = NewAgent,
    security(("bearer" = [])),
    responses((status = 201, body = AgentWithToken),
              (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    AppJson(body): AppJson<NewAgent>,
) -> Result<(StatusCode, Json<AgentWithToken>), ApiError> {
    auth.require_admin()?;
    let name = Name::parse(&body.name).map_err(|e| ApiError::invalid("name", &e))?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid("email", &e))?;
    let (agent, token) = tenancy::create_agent(
        &state.pool,
        auth.principal.tenant_id,
        name.as_str(),
        email.as_str(),
        body.role.into(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentWithToken {
            agent: agent.into(),
            token,
        }),
    ))
}

/// The tenant's agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = [AgentView])))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    let agents = tenancy::list_agents(&state.pool, auth.principal.tenant_id).await?;
    Ok(Json(agents.into_iter().map(AgentView::from).collect()))
}

/// Changes an agent's role or name (admins only). A new role applies at once to the agent's
/// sessions and within 10 s to its API token (the token cache).
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", request_body = AgentPatch,
    params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 200, body = AgentView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn update_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<AgentPatch>,
) -> Result<Json<AgentView>, ApiError> {
    auth.require_admin()?;
    let agent = path_id("id", &id, AgentId::parse)?;
    let name = body
        .name
        .as_deref()
        .map(Name::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("name", &e))?;
    let changes = AgentChanges {
        role: body.role.map(Role::from),
        name: name.as_ref().map(Name::as_str),
    };
    let agent =
        tenancy::update_agent(&state.pool, auth.principal.tenant_id, agent, changes).await?;
    Ok(Json(agent.into()))
}

/// Sets an agent's password (admins only) and ends the agent's sessions.
#[utoipa::path(put, path = "/api/v1/agents/{id}/password", tag = "agents", request_body = NewPassword,
    params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 204, description = "Set; the agent's sessions have ended"),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let agent = path_id("id", &id, AgentId::parse)?;
    let password =
        Password::parse(&body.password).map_err(|e| ApiError::invalid("password", &e))?;
    sign_in::set_password(&state.pool, auth.principal.tenant_id, agent, &password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invites an agent to set a password (admins only); a previous invitation of the agent
/// stops working. Hand the link to the agent: it is shown this once.
#[utoipa::path(post, path = "/api/v1/agents/{id}/invitation", tag = "agents",
    params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 201, body = InvitationView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub(crate) async fn invite(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    auth.require_admin()?;
    let agent = path_id("id", &id, AgentId::parse)?;
    let invitation = sign_in::invite(&state.pool, auth.principal.tenant_id, agent).await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            url: format!("/app/#/invite/{}", invitation.token),
            token: invitation.token,
            expires_at: invitation.expires_at,
        }),
    ))
}
