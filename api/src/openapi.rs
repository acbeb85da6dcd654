//! The OpenAPI 3.1 document, generated from the handlers' annotations so it cannot drift
//! from the routes.

use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::realtime;
use crate::routes::{
    agents, auth, conversations, domains, events, health, history, inbox, teams, visitor, whatsapp,
    widgets,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Upzento Chat API", description = "The unified inbox: website chat and WhatsApp. Errors are application/problem+json (RFC 9457)."),
    paths(
        health::healthz, health::readyz,
        auth::login, auth::current_session, auth::logout, auth::accept_invitation,
        agents::create_agent, agents::list_agents, agents::update_agent, agents::set_password,
        agents::invite,
        teams::create_team, teams::list_teams, teams::add_member, teams::remove_member,
        domains::register_domain, domains::list_domains, domains::get_domain,
        domains::verify_domain, domains::revoke_domain,
        widgets::create_widget, widgets::list_widgets, widgets::get_widget,
        widgets::update_widget, widgets::delete_widget, widgets::embed_code,
        widgets::identity_secret,
        conversations::start_conversation, conversations::post_message,
        conversations::update_message_status, conversations::mark_read, conversations::assign,
        conversations::change_status, conversations::add_label, conversations::remove_label,
        inbox::list_conversations, inbox::get_conversation, inbox::list_messages,
        inbox::list_activity, inbox::unread,
        realtime::agent_socket,
        visitor::start_session, visitor::identify, visitor::history, visitor::send_message,
        visitor::acknowledge, visitor::visitor_socket,
        whatsapp::create_channel, whatsapp::list_channels, whatsapp::get_channel,
        whatsapp::delete_channel, whatsapp::send_template, whatsapp::verify_webhook,
        whatsapp::receive_webhook,
        history::conversation_history, history::widget_history, history::domain_history,
        history::conversation_state,
        events::list_events, events::stream_events,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session::COOKIE,
                "The console's session cookie (POST /api/v1/auth/login). Requests other than \
                 GET/HEAD/OPTIONS also need the session's `csrf_token` as `X-CSRF-Token`.",
            ))),
        );
        // Every endpoint that takes an API token takes the session cookie instead: the `Auth`
        // extractor accepts both. Listed here once rather than on each handler.
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        let session = SecurityRequirement::new("session", Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if let Some(security) = &mut operation.security
                    && security.contains(&bearer)
                {
                    security.push(session.clone());
                }
            }
        }
        components.add_security_scheme(
            "visitor",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The visitor token a widget session answers"))
                    .build(),
            ),
        );
    }
}

/// The document served at `/api/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
