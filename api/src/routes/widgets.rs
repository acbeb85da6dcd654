//! Widgets: create, configure, enable/disable, delete, and the embed snippet.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::context::stream_id;
use domain::ids::{DomainId, TenantId, WidgetId};
use domain::text::{BrandColor, Name, WidgetText};
use domain::widget::{
    DisplayType, Position, Theme, Widget, WidgetCommand, WidgetPatch, WidgetSettings,
};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/widgets", post(create_widget).get(list_widgets))
        .route(
            "/widgets/{id}",
            get(get_widget).patch(update_widget).delete(delete_widget),
        )
        .route("/widgets/{id}/embed-code", get(embed_code))
        .route("/widgets/{id}/identity-secret", get(identity_secret))
}

/// A new widget. Only `name` is required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWidget {
    name: String,
    /// `floating_button` (default), `embedded` or `popup`.
    #[schema(value_type = Option<String>, example = "floating_button")]
    display_type: Option<DisplayType>,
    /// `light`, `dark` or `auto` (default).
    #[schema(value_type = Option<String>, example = "auto")]
    theme: Option<Theme>,
    /// `bottom_right` (default) or `bottom_left`.
    #[schema(value_type = Option<String>, example = "bottom_right")]
    position: Option<Position>,
    /// Hex colour, default `#1f93ff`.
    #[schema(example = "#1f93ff")]
    brand_color: Option<String>,
    greeting_title: Option<String>,
    greeting_message: Option<String>,
    offline_message: Option<String>,
    /// Verified domains of this tenant the widget may run on.
    #[serde(default)]
    allowed_domains: Vec<String>,
    /// Ask for name and e-mail before the first message (default false).
    #[serde(default)]
    pre_chat_form: bool,
    /// For `popup`: seconds until it opens by itself; absent waits for `Upzento.open()`.
    popup_delay_seconds: Option<u16>,
}

/// Changes to a widget; absent fields stay as they are, `null` clears an optional text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WidgetChanges {
    name: Option<String>,
    #[schema(value_type = Option<String>)]
    display_type: Option<DisplayType>,
    #[schema(value_type = Option<String>)]
    theme: Option<Theme>,
    #[schema(value_type = Option<String>)]
    position: Option<Position>,
    brand_color: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    greeting_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    greeting_message: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    offline_message: Option<Option<String>>,
    allowed_domains: Option<Vec<String>>,
    pre_chat_form: Option<bool>,
    /// `null` makes the popup wait for `Upzento.open()`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u16>)]
    popup_delay_seconds: Option<Option<u16>>,
    /// Enable or disable the widget on sites.
    enabled: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// How a widget looks and what it says: what admins set, and what the widget script is given.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Appearance {
    name: String,
    #[schema(value_type = String)]
    display_type: DisplayType,
    #[schema(value_type = String)]
    theme: Theme,
    #[schema(value_type = String)]
    position: Position,
    brand_color: String,
    greeting_title: Option<String>,
    greeting_message: Option<String>,
    offline_message: Option<String>,
    pre_chat_form: bool,
    popup_delay_seconds: Option<u16>,
}

impl From<&WidgetSettings> for Appearance {
    fn from(settings: &WidgetSettings) -> Self {
        let text = |t: &Option<WidgetText>| t.as_ref().map(|t| t.as_str().to_owned());
        Self {
            name: settings.name.as_str().to_owned(),
            display_type: settings.display_type,
            theme: settings.theme,
            position: settings.position,
            brand_color: settings.brand_color.as_str().to_owned(),
            greeting_title: text(&settings.greeting_title),
            greeting_message: text(&settings.greeting_message),
            offline_message: text(&settings.offline_message),
            pre_chat_form: settings.pre_chat_form,
            popup_delay_seconds: settings.popup_delay_seconds,
        }
    }
}

/// A widget.
#[derive(Serialize, ToSchema)]
pub struct WidgetView {
    #[schema(value_type = String)]
    id: WidgetId,
    #[serde(flatten)]
    appearance: Appearance,
    #[schema(value_type = Vec<String>)]
    allowed_domains: Vec<DomainId>,
    /// The key the embed snippet carries; public, not a secret.
    public_key: String,
    /// Whether it renders on sites.
    enabled: bool,
    /// Version of the widget's event stream.
    version: usize,
}

impl WidgetView {
    fn of(id: WidgetId, widget: &Widget, version: usize) -> Option<Self> {
        let settings = widget.settings.as_ref().filter(|_| widget.is_live())?;
        Some(Self {
            id,
            appearance: settings.into(),
            allowed_domains: settings.allowed_domains.clone(),
            public_key: widget.public_key.clone(),
            enabled: widget.enabled,
            version,
        })
    }
}

/// The embed snippet.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbedCode {
    /// One `<script>` tag to paste into the site's HTML.
    html: String,
}

fn not_found() -> ApiError {
    ApiError::not_found("widget_not_found", "widget not found")
}

fn optional_text(field: &str, raw: Option<String>) -> Result<Option<WidgetText>, ApiError> {
    raw.map(|t| WidgetText::parse(&t).map_err(|e| ApiError::invalid(field, &e)))
        .transpose()
}

fn domain_ids(raw: &[String]) -> Result<Vec<DomainId>, ApiError> {
    raw.iter()
        .enumerate()
        .map(|(i, id)| {
            DomainId::parse(id).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_id",
                    e.to_string(),
                )
                .at(format!("allowed_domains[{i}]"))
            })
        })
        .collect()
}

/// The snippet's key: the widget's id, so a session can find the widget without a lookup
/// table, and a random part, so keys cannot be guessed from ids seen elsewhere.
fn public_key(id: WidgetId) -> String {
    let mut random = [0u8; 12];
    rand::rng().fill_bytes(&mut random);
    format!("pk_{}{}", id.as_uuid().simple(), hex::encode(random))
}

async fn load(state: &AppState, tenant: TenantId, id: WidgetId) -> Result<WidgetView, ApiError> {
    let loaded = state
        .widgets
        .store()
        .load::<Widget>(&stream_id(tenant, id))
        .await?;
    WidgetView::of(id, &loaded.aggregate, loaded.version).ok_or_else(not_found)
}

/// Creates a widget (admins only).
#[utoipa::path(post, path = "/api/v1/widgets", tag = "widgets", request_body = NewWidget,
    security(("bearer" = [])),
    responses((status = 201, body = WidgetView), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn create_widget(
    State(state): State<AppState>,
    auth: Auth,
    AppJson(body): AppJson<NewWidget>,
) -> Result<(StatusCode, Json<WidgetView>), ApiError> {
    auth.require_admin()?;
    let settings = WidgetSettings {
        name: Name::parse(&body.name).map_err(|e| ApiError::invalid("name", &e))?,
        display_type: body.display_type.unwrap_or(DisplayType::FloatingButton),
        theme: body.theme.unwrap_or(Theme::Auto),
        position: body.position.unwrap_or(Position::BottomRight),
        brand_color: BrandColor::parse(body.brand_color.as_deref().unwrap_or("#1f93ff"))
            .map_err(|e| ApiError::invalid("brand_color", &e))?,
        greeting_title: optional_text("greeting_title", body.greeting_title)?,
        greeting_message: optional_text("greeting_message", body.greeting_message)?,
        offline_message: optional_text("offline_message", body.offline_message)?,
        allowed_domains: domain_ids(&body.allowed_domains)?,
        pre_chat_form: body.pre_chat_form,
        popup_delay_seconds: body.popup_delay_seconds,
    };
    let id = WidgetId::new();
    let tenant_id = auth.principal.tenant_id;
    let command = WidgetCommand::Create {
        tenant_id,
        settings,
        public_key: public_key(id),
    };
    let outcome = state
        .widgets
        .execute(&stream_id(tenant_id, id), command, &auth.context())
        .await?;
    let view = WidgetView::of(id, &outcome.aggregate, outcome.version).ok_or_else(not_found)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a widget's settings, or enables or disables it (admins only).
#[utoipa::path(patch, path = "/api/v1/widgets/{id}", tag = "widgets", request_body = WidgetChanges,
    params(("id" = String, Path, description = "Widget id")), security(("bearer" = [])),
    responses((status = 200, body = WidgetView), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn update_widget(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<WidgetChanges>,
) -> Result<Json<WidgetView>, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, WidgetId::parse)?;
    let changes = WidgetPatch {
        name: body
            .name
            .map(|n| Name::parse(&n).map_err(|e| ApiError::invalid("name", &e)))
            .transpose()?,
        display_type: body.display_type,
        theme: body.theme,
        position: body.position,
        brand_color: body
            .brand_color
            .map(|c| BrandColor::parse(&c).map_err(|e| ApiError::invalid("brand_color", &e)))
            .transpose()?,
        greeting_title: body
            .greeting_title
            .map(|t| optional_text("greeting_title", t))
            .transpose()?,
        greeting_message: body
            .greeting_message
            .map(|t| optional_text("greeting_message", t))
            .transpose()?,
        offline_message: body
            .offline_message
            .map(|t| optional_text("offline_message", t))
            .transpose()?,
        allowed_domains: body
            .allowed_domains
            .as_deref()
            .map(domain_ids)
            .transpose()?,
        pre_chat_form: body.pre_chat_form,
        popup_delay_seconds: body.popup_delay_seconds,
    };
    let command = WidgetCommand::Update {
        changes,
        enabled: body.enabled,
    };
    let outcome = state
        .widgets
        .execute(
            &stream_id(auth.principal.tenant_id, id),
            command,
            &auth.context(),
        )
        .await?;
    WidgetView::of(id, &outcome.aggregate, outcome.version)
        .map(Json)
        .ok_or_else(not_found)
}

/// Deletes a widget (admins only); its snippet stops working.
#[utoipa::path(delete, path = "/api/v1/widgets/{id}", tag = "widgets",
    params(("id" = String, Path, description = "Widget id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn delete_widget(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, WidgetId::parse)?;
    state
        .widgets
        .execute(
            &stream_id(auth.principal.tenant_id, id),
            WidgetCommand::Delete,
            &auth.context(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's widgets, deleted ones left out.
#[utoipa::path(get, path = "/api/v1/widgets", tag = "widgets", security(("bearer" = [])),
    responses((status = 200, body = [WidgetView])))]
pub(crate) async fn list_widgets(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<WidgetView>>, ApiError> {
    let tenant = auth.principal.tenant_id;
    let ids = state
        .widgets
        .store()
        .resource_ids::<Widget, WidgetId>(tenant)
        .await?;
    let state = &state;
    let views = super::live(ids, move |id| load(state, tenant, id)).await?;
    Ok(Json(views))
}

/// One widget.
#[utoipa::path(get, path = "/api/v1/widgets/{id}", tag = "widgets",
    params(("id" = String, Path, description = "Widget id")), security(("bearer" = [])),
    responses((status = 200, body = WidgetView), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn get_widget(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<WidgetView>, ApiError> {
    let id = path_id("id", &id, WidgetId::parse)?;
    Ok(Json(load(&state, auth.principal.tenant_id, id).await?))
}

/// The snippet that embeds the widget: one async script tag with the widget's public key.
#[utoipa::path(get, path = "/api/v1/widgets/{id}/embed-code", tag = "widgets",
    params(("id" = String, Path, description = "Widget id")), security(("bearer" = [])),
    responses((status = 200, body = EmbedCode), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn embed_code(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<EmbedCode>, ApiError> {
    let id = path_id("id", &id, WidgetId::parse)?;
    let widget = load(&state, auth.principal.tenant_id, id).await?;
    let html = format!(
        r#"<script async src="{}/widget.js" data-upzento-key="{}"></script>"#,
        state.public_url, widget.public_key
    );
    Ok(Json(EmbedCode { html }))
}

/// The widget's identity-verification secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct IdentitySecret {
    /// Keep it on the site's server: it computes `hex(HMAC-SHA256(secret, user_id))` for a
    /// logged-in user and passes that to `Upzento.identify` (docs/widget.md).
    secret: String,
}

/// The secret a site's server signs its logged-in users' ids with (admins only).
#[utoipa::path(get, path = "/api/v1/widgets/{id}/identity-secret", tag = "widgets",
    params(("id" = String, Path, description = "Widget id")), security(("bearer" = [])),
    responses((status = 200, body = IdentitySecret), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub(crate) async fn identity_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<IdentitySecret>, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, WidgetId::parse)?;
    load(&state, auth.principal.tenant_id, id).await?;
    Ok(Json(IdentitySecret {
        secret: state.keys.get().await?.identity_secret(id),
    }))
}
