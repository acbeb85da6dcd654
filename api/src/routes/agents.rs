//! Agents of the caller's tenant.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use commands::tenancy::{self, Agent, Role};
use domain::text::{Email, Name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/agents", post(create_agent).get(list_agents))
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
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        Self {
            id: agent.id,
            name: agent.name,
            email: agent.email,
            role: agent.role,
            created_at: agent.created_at,
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
    let role = match body.role {
        RoleBody::Admin => Role::Admin,
        RoleBody::Agent => Role::Agent,
        RoleBody::Auditor => Role::Auditor,
    };
    let (agent, token) = tenancy::create_agent(
        &state.pool,
        auth.principal.tenant_id,
        name.as_str(),
        email.as_str(),
        role,
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
