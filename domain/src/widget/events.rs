//! Widget events and the settings they carry. Stored names and versions: never rename.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{DomainId, TenantId};
use crate::text::{BrandColor, Name, WidgetText};

/// How the widget appears on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayType {
    /// A launcher button in a corner that opens a chat panel.
    FloatingButton,
    /// Rendered inline into an element the host page names.
    Embedded,
    /// Opens by itself after a delay, or when the page asks.
    Popup,
}

/// Colour scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Light background.
    Light,
    /// Dark background.
    Dark,
    /// Follows the visitor's `prefers-color-scheme`.
    Auto,
}

/// Corner of the launcher and panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Bottom right corner.
    BottomRight,
    /// Bottom left corner.
    BottomLeft,
}

/// Everything an admin configures on a widget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetSettings {
    /// Name shown to the team (and as the panel's title when no greeting title is set).
    pub name: Name,
    /// How it appears.
    pub display_type: DisplayType,
    /// Colour scheme.
    pub theme: Theme,
    /// Corner.
    pub position: Position,
    /// Colour of the launcher and the visitor's bubbles.
    pub brand_color: BrandColor,
    /// Heading of the open panel.
    pub greeting_title: Option<WidgetText>,
    /// First line shown to a visitor.
    pub greeting_message: Option<WidgetText>,
    /// Shown when no agent is online.
    pub offline_message: Option<WidgetText>,
    /// Verified domains of the same tenant the widget may run on.
    pub allowed_domains: Vec<DomainId>,
    /// Ask for the visitor's name and e-mail address before the first message. Added after
    /// v1 with a default, so events written before it read as `false`.
    #[serde(default)]
    pub pre_chat_form: bool,
    /// For `popup`: seconds before it opens by itself; `None` opens it only when the page
    /// calls `Upzento.open()`. Added after v1 with a default.
    #[serde(default)]
    pub popup_delay_seconds: Option<u16>,
}

/// A partial update: `None` leaves a setting as it was; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// New display type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_type: Option<DisplayType>,
    /// New theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    /// New corner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Turn the pre-chat form on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_chat_form: Option<bool>,
    /// New popup delay; `Some(None)` makes the popup wait for `Upzento.open()`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleared_or_set"
    )]
    pub popup_delay_seconds: Option<Option<u16>>,
    /// New colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<BrandColor>,
    /// New greeting title, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleared_or_set"
    )]
    pub greeting_title: Option<Option<WidgetText>>,
    /// New greeting message, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleared_or_set"
    )]
    pub greeting_message: Option<Option<WidgetText>>,
    /// New offline message, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleared_or_set"
    )]
    pub offline_message: Option<Option<WidgetText>>,
    /// New list of allowed domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<Vec<DomainId>>,
}

/// Reads a present field as `Some`, so a stored `null` (cleared) is told from an absent
/// field (unchanged) on replay.
fn cleared_or_set<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl WidgetPatch {
    /// True when the patch changes nothing in `settings`.
    pub fn is_noop_for(&self, settings: &WidgetSettings) -> bool {
        let mut patched = settings.clone();
        self.clone().apply_to(&mut patched);
        &patched == settings
    }

    /// Writes the patch's changes into `settings`.
    pub fn apply_to(self, settings: &mut WidgetSettings) {
        fn set<T>(target: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *target = value;
            }
        }
        set(&mut settings.name, self.name);
        set(&mut settings.display_type, self.display_type);
        set(&mut settings.theme, self.theme);
        set(&mut settings.position, self.position);
        set(&mut settings.brand_color, self.brand_color);
        set(&mut settings.greeting_title, self.greeting_title);
        set(&mut settings.greeting_message, self.greeting_message);
        set(&mut settings.offline_message, self.offline_message);
        set(&mut settings.allowed_domains, self.allowed_domains);
        set(&mut settings.pre_chat_form, self.pre_chat_form);
        set(&mut settings.popup_delay_seconds, self.popup_delay_seconds);
    }
}

/// Everything that can happen to a widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WidgetEvent {
    /// v1. A widget was created, enabled.
    WidgetCreated {
        /// Its tenant, so rules that look outside the widget know whose domains to ask for.
        tenant_id: TenantId,
        /// Its settings.
        settings: WidgetSettings,
        /// The public key the embed snippet carries; not a secret.
        public_key: String,
    },
    /// v1. Some settings changed; only the changed ones are present.
    WidgetSettingsUpdated {
        /// The changes.
        changes: WidgetPatch,
    },
    /// v1. The widget runs again.
    WidgetEnabled {},
    /// v1. The widget stops rendering on sites, without losing its settings.
    WidgetDisabled {},
    /// v1. The widget is gone.
    WidgetDeleted {},
}

impl DomainEvent for WidgetEvent {
    fn event_type(&self) -> String {
        match self {
            Self::WidgetCreated { .. } => "WidgetCreated",
            Self::WidgetSettingsUpdated { .. } => "WidgetSettingsUpdated",
            Self::WidgetEnabled { .. } => "WidgetEnabled",
            Self::WidgetDisabled { .. } => "WidgetDisabled",
            Self::WidgetDeleted { .. } => "WidgetDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
