//! Domains: register a hostname, publish the proof, verify, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::context::stream_id;
use domain::ids::{DomainId, TenantId};
use domain::web_domain::{
    Domain, DomainCommand, DomainState, Hostname, ProofMethod, VerificationToken,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/domains", post(register_domain).get(list_domains))
        .route("/domains/{id}", get(get_domain).delete(revoke_domain))
        .route("/domains/{id}/verify", post(verify_domain))
}

/// A hostname to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDomain {
    /// The hostname; a pasted URL is reduced to its hostname.
    #[schema(example = "shop.example.com")]
    hostname: String,
}

/// The DNS record that proves ownership.
#[derive(Serialize, ToSchema)]
pub(crate) struct DnsProof {
    /// Record name.
    name: String,
    /// Always `TXT`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Record value.
    value: String,
}

/// The file that proves ownership.
#[derive(Serialize, ToSchema)]
pub(crate) struct HttpProof {
    /// Where to serve it (HTTPS, or plain HTTP).
    url: String,
    /// Its exact content.
    body: String,
}

/// The two ways to prove ownership; either is enough.
#[derive(Serialize, ToSchema)]
pub(crate) struct Verification {
    dns: DnsProof,
    http: HttpProof,
}

/// A registered domain.
#[derive(Serialize, ToSchema)]
pub struct DomainView {
    #[schema(value_type = String)]
    id: DomainId,
    hostname: String,
    /// `pending`, `verified` or `failed`.
    #[schema(value_type = String, example = "pending")]
    status: DomainState,
    /// The proof that verified it.
    #[schema(value_type = Option<String>, example = "dns")]
    verified_by: Option<ProofMethod>,
    /// Why the last verification failed.
    failure_reason: Option<String>,
    /// What to publish.
    verification: Verification,
    /// Version of the domain's event stream.
    version: usize,
}

impl DomainView {
    fn of(id: DomainId, domain: &Domain, version: usize) -> Option<Self> {
        let (Some(hostname), Some(token)) = (&domain.hostname, &domain.token) else {
            return None;
        };
        if domain.state == DomainState::Revoked {
            return None;
        }
        Some(Self {
            id,
            hostname: hostname.to_string(),
            status: domain.state,
            verified_by: domain.method,
            failure_reason: domain.failure.clone(),
            verification: Verification {
                dns: DnsProof {
                    name: VerificationToken::dns_name(hostname),
                    kind: "TXT",
                    value: token.dns_value(),
                },
                http: HttpProof {
                    url: format!("https://{hostname}{}", VerificationToken::HTTP_PATH),
                    body: token.as_str().to_owned(),
                },
            },
            version,
        })
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("domain_not_found", "domain not found")
}

async fn load(state: &AppState, tenant: TenantId, id: DomainId) -> Result<DomainView, ApiError> {
    let loaded = state
        .domains
        .store()
        .load::<Domain>(&stream_id(tenant, id))
        .await?;
    DomainView::of(id, &loaded.aggregate, loaded.version).ok_or_else(not_found)
}

fn new_token() -> VerificationToken {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    VerificationToken::new(hex::encode(bytes))
}

/// Registers a hostname (admins only) and answers what to publish to prove ownership.
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = NewDomain,
    security(("bearer" = [])),
    responses((status = 201, body = DomainView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn register_domain(
    State(state): State<AppState>,
    auth: Auth,
    AppJson(body): AppJson<NewDomain>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    auth.require_admin()?;
    let hostname =
        Hostname::parse(&body.hostname).map_err(|e| ApiError::invalid("hostname", &e))?;
    let tenant = auth.principal.tenant_id;
    let registered = list(&state, tenant).await?;
    if registered.iter().any(|d| d.hostname == hostname.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "domain_exists",
            format!("{hostname} is already registered"),
        )
        .at("hostname"));
    }
    let id = DomainId::new();
    let command = DomainCommand::Register {
        hostname,
        token: new_token(),
    };
    let outcome = state
        .domains
        .execute(&stream_id(tenant, id), command, &auth.context())
        .await?;
    let view = DomainView::of(id, &outcome.aggregate, outcome.version).ok_or_else(not_found)?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(state: &AppState, tenant: TenantId) -> Result<Vec<DomainView>, ApiError> {
    let ids = state
        .domains
        .store()
        .resource_ids::<Domain, DomainId>(tenant)
        .await?;
    let views = super::live(ids, move |id| load(state, tenant, id)).await?;
    Ok(views)
}

/// The tenant's domains, revoked ones left out.
#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", security(("bearer" = [])),
    responses((status = 200, body = [DomainView])))]
pub(crate) async fn list_domains(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<DomainView>>, ApiError> {
    Ok(Json(list(&state, auth.principal.tenant_id).await?))
}

/// One domain.
#[utoipa::path(get, path = "/api/v1/domains/{id}", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Domain id")),
    responses((status = 200, body = DomainView), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn get_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    let id = path_id("id", &id, DomainId::parse)?;
    Ok(Json(load(&state, auth.principal.tenant_id, id).await?))
}

/// Looks for the proof now (admins only). A failed attempt is recorded, with its reason, and
/// answered 422 with that reason.
#[utoipa::path(post, path = "/api/v1/domains/{id}/verify", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Domain id")),
    responses((status = 200, body = DomainView), (status = 404, body = crate::error::Problem),
              (status = 422, description = "No proof was found; `detail` says what was seen", body = crate::error::Problem)))]
pub(crate) async fn verify_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, DomainId::parse)?;
    let outcome = state
        .domains
        .execute(
            &stream_id(auth.principal.tenant_id, id),
            DomainCommand::Verify,
            &auth.context(),
        )
        .await?;
    let domain = &outcome.aggregate;
    if domain.state == DomainState::Failed {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "domain_verification_failed",
            domain.failure.clone().unwrap_or_default(),
        ));
    }
    DomainView::of(id, domain, outcome.version)
        .map(Json)
        .ok_or_else(not_found)
}

/// Revokes a domain (admins only): it is no longer verified, so widgets can no longer be
/// pointed at it.
#[utoipa::path(delete, path = "/api/v1/domains/{id}", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Domain id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn revoke_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, DomainId::parse)?;
    state
        .domains
        .execute(
            &stream_id(auth.principal.tenant_id, id),
            DomainCommand::Revoke,
            &auth.context(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
