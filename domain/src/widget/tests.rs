use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::test::TestFramework;

use super::*;
use crate::text::{BrandColor, Name, WidgetText};
use crate::widget::{DisplayType, Position, Theme, WidgetEvent, WidgetEvent as E, WidgetPatch};

/// A directory that knows one verified domain.
struct Directory(DomainId);

#[async_trait]
impl WidgetServices for Directory {
    async fn unverified(
        &self,
        _tenant: TenantId,
        domains: &[DomainId],
    ) -> Result<Vec<DomainId>, String> {
        Ok(domains.iter().copied().filter(|d| *d != self.0).collect())
    }
}

fn given(verified: DomainId) -> TestFramework<Widget> {
    TestFramework::with(Arc::new(Directory(verified)) as Arc<dyn WidgetServices>)
}

fn settings(domains: Vec<DomainId>) -> WidgetSettings {
    WidgetSettings {
        name: Name::parse("Support").unwrap(),
        display_type: DisplayType::FloatingButton,
        theme: Theme::Auto,
        position: Position::BottomRight,
        brand_color: BrandColor::parse("#1f93ff").unwrap(),
        greeting_title: Some(WidgetText::parse("Hi there").unwrap()),
        greeting_message: None,
        offline_message: None,
        pre_chat_form: false,
        popup_delay_seconds: None,
        allowed_domains: domains,
    }
}

fn created(tenant_id: TenantId, domains: Vec<DomainId>) -> E {
    E::WidgetCreated {
        tenant_id,
        settings: settings(domains),
        public_key: "pk".into(),
    }
}

#[test]
fn a_widget_may_list_verified_domains_only() {
    let (tenant_id, verified, other) = (TenantId::new(), DomainId::new(), DomainId::new());
    given(verified)
        .given_no_previous_events()
        .when(WidgetCommand::Create {
            tenant_id,
            settings: settings(vec![verified]),
            public_key: "pk".into(),
        })
        .then_expect_events(vec![created(tenant_id, vec![verified])]);
    given(verified)
        .given_no_previous_events()
        .when(WidgetCommand::Create {
            tenant_id,
            settings: settings(vec![verified, other]),
            public_key: "pk".into(),
        })
        .then_expect_error(WidgetError::DomainNotVerified(other));
    given(verified)
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: WidgetPatch {
                allowed_domains: Some(vec![other]),
                ..Default::default()
            },
            enabled: None,
        })
        .then_expect_error(WidgetError::DomainNotVerified(other));
}

#[test]
fn an_update_records_only_real_changes() {
    let tenant_id = TenantId::new();
    let changes = WidgetPatch {
        theme: Some(Theme::Dark),
        greeting_title: Some(None),
        ..Default::default()
    };
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: changes.clone(),
            enabled: None,
        })
        .then_expect_events(vec![E::WidgetSettingsUpdated { changes }]);
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: WidgetPatch {
                theme: Some(Theme::Auto),
                ..Default::default()
            },
            enabled: Some(true),
        })
        .then_expect_events(vec![]);
}

#[test]
fn settings_and_enabling_change_together_and_only_when_they_differ() {
    let tenant_id = TenantId::new();
    let changes = WidgetPatch {
        theme: Some(Theme::Dark),
        ..Default::default()
    };
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: changes.clone(),
            enabled: Some(false),
        })
        .then_expect_events(vec![
            E::WidgetSettingsUpdated { changes },
            E::WidgetDisabled {},
        ]);
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: WidgetPatch::default(),
            enabled: Some(true),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_refused_change_disables_nothing() {
    let (tenant_id, unverified) = (TenantId::new(), DomainId::new());
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![])])
        .when(WidgetCommand::Update {
            changes: WidgetPatch {
                allowed_domains: Some(vec![unverified]),
                ..Default::default()
            },
            enabled: Some(false),
        })
        .then_expect_error(WidgetError::DomainNotVerified(unverified));
}

#[test]
fn a_deleted_widget_is_gone() {
    let tenant_id = TenantId::new();
    given(DomainId::new())
        .given(vec![created(tenant_id, vec![]), E::WidgetDeleted {}])
        .when(WidgetCommand::Update {
            changes: WidgetPatch::default(),
            enabled: Some(true),
        })
        .then_expect_error(WidgetError::NotFound);
    given(DomainId::new())
        .given_no_previous_events()
        .when(WidgetCommand::Delete)
        .then_expect_error(WidgetError::NotFound);
}

#[test]
fn a_cleared_text_stays_cleared_when_the_event_is_read_back() {
    let changes = WidgetPatch {
        greeting_title: Some(None),
        ..Default::default()
    };
    let stored = serde_json::to_value(WidgetEvent::WidgetSettingsUpdated {
        changes: changes.clone(),
    })
    .unwrap();
    let read: WidgetEvent = serde_json::from_value(stored).unwrap();
    assert_eq!(read, WidgetEvent::WidgetSettingsUpdated { changes });
}

#[test]
fn a_stored_patch_that_cleared_the_popup_delay_reads_back_as_cleared() {
    let patch = WidgetPatch {
        popup_delay_seconds: Some(None),
        ..WidgetPatch::default()
    };
    let stored = serde_json::to_string(&patch).unwrap();
    let read: WidgetPatch = serde_json::from_str(&stored).unwrap();
    assert_eq!(read, patch, "stored as {stored}");
}
