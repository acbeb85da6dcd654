//! The WhatsApp rules of a conversation, given/when/then.

use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::actor::Actor;
use crate::conversation::{
    Contact, Conversation, ConversationCommand as C, ConversationError, ConversationEvent as E,
    ConversationStatus, DeliveryStatus, Direction, Source,
};
use crate::ids::{AgentId, ChannelId, MessageId};
use crate::text::MessageContent;

type Given = TestFramework<Conversation>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn text(s: &str) -> MessageContent {
    MessageContent::parse(s).unwrap()
}

fn channel() -> ChannelId {
    ChannelId::parse("0193a8f0-0000-7000-8000-000000000001").unwrap()
}

fn sheena() -> WaId {
    WaId::parse("16505551234").unwrap()
}

fn started() -> Vec<E> {
    vec![
        E::ConversationStarted {
            source: Source::Whatsapp,
            contact: Contact::default(),
            widget_id: None,
        },
        E::WhatsappContactLinked {
            channel_id: channel(),
            wa_id: sheena(),
        },
    ]
}

fn received_at(id: MessageId, at: DateTime<Utc>) -> E {
    E::MessageReceived {
        message_id: id,
        content: text("Does it come in another color?"),
        sent_at: at,
    }
}

fn reply(id: MessageId, at: DateTime<Utc>) -> C {
    C::PostMessage {
        message_id: id,
        content: text("Yes, in blue."),
        author: Actor::Agent(AgentId::new()),
        at,
    }
}

fn history(last_incoming: DateTime<Utc>) -> Vec<E> {
    let mut events = started();
    events.push(received_at(MessageId::new(), last_incoming));
    events
}

#[test]
fn a_whatsapp_conversation_starts_linked_to_its_contact_and_number() {
    let start = C::StartWhatsapp {
        contact: Contact::default(),
        channel_id: channel(),
        wa_id: sheena(),
    };
    Given::with(())
        .given_no_previous_events()
        .when(start.clone())
        .then_expect_events(started());
    Given::with(())
        .given(started())
        .when(start)
        .then_expect_error(ConversationError::AlreadyStarted);
}

#[test]
fn an_incoming_whatsapp_message_is_linked_to_its_wamid_and_reopens_a_resolved_conversation() {
    let id = MessageId::new();
    let mut given = started();
    given.push(E::ConversationStatusChanged {
        status: ConversationStatus::Resolved,
        snoozed_until: None,
        reopened_by_contact: false,
    });
    let details = serde_json::json!({"image": {"id": "1003383421387256"}});
    Given::with(())
        .given(given)
        .when(C::ReceiveWhatsappMessage {
            message_id: id,
            content: text("[image] This one"),
            sent_at: t0(),
            wamid: Wamid::parse("wamid.MEDIA0001").unwrap(),
            kind: "image".into(),
            details: Some(details.clone()),
        })
        .then_expect_events(vec![
            E::MessageReceived {
                message_id: id,
                content: text("[image] This one"),
                sent_at: t0(),
            },
            E::WhatsappMessageLinked {
                message_id: id,
                wamid: Wamid::parse("wamid.MEDIA0001").unwrap(),
                direction: Direction::Incoming,
                kind: "image".into(),
                details: Some(details),
            },
            E::ConversationStatusChanged {
                status: ConversationStatus::Open,
                snoozed_until: None,
                reopened_by_contact: true,
            },
        ]);
}

#[test]
fn a_free_form_reply_is_accepted_within_24_hours_of_the_contacts_last_message() {
    let id = MessageId::new();
    let author = Actor::System;
    Given::with(())
        .given(history(t0()))
        .when(C::PostMessage {
            message_id: id,
            content: text("Yes, in blue."),
            author: author.clone(),
            at: t0() + REPLY_WINDOW - Duration::seconds(1),
        })
        .then_expect_events(vec![E::MessagePosted {
            message_id: id,
            content: text("Yes, in blue."),
            author,
        }]);
}

#[test]
fn a_free_form_reply_outside_the_window_or_before_any_message_is_refused() {
    Given::with(())
        .given(history(t0()))
        .when(reply(MessageId::new(), t0() + REPLY_WINDOW))
        .then_expect_error(ConversationError::ReplyWindowClosed);
    Given::with(())
        .given(started())
        .when(reply(MessageId::new(), t0()))
        .then_expect_error(ConversationError::ReplyWindowClosed);
}

#[test]
fn the_window_runs_from_the_newest_message_even_when_an_older_one_arrives_late() {
    let mut given = history(t0());
    given.push(received_at(MessageId::new(), t0() - Duration::hours(30)));
    let result = Given::with(())
        .given(given)
        .when(reply(MessageId::new(), t0() + Duration::hours(23)))
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn whatsapp_replies_fit_in_4096_characters() {
    Given::with(())
        .given(history(t0()))
        .when(C::PostMessage {
            message_id: MessageId::new(),
            content: text(&"x".repeat(MAX_TEXT_CHARS + 1)),
            author: Actor::System,
            at: t0(),
        })
        .then_expect_error(ConversationError::WhatsappTextTooLong);
}

#[test]
fn a_template_goes_out_whatever_the_window_but_only_in_whatsapp_conversations() {
    let id = MessageId::new();
    let template = Template::parse("order_follow_up", "en_US", vec!["Sheena".into()]).unwrap();
    let author = Actor::System;
    Given::with(())
        .given(history(t0() - Duration::days(30)))
        .when(C::PostTemplate {
            message_id: id,
            template: template.clone(),
            author: author.clone(),
        })
        .then_expect_events(vec![E::WhatsappTemplatePosted {
            message_id: id,
            template: template.clone(),
            content: text("[template order_follow_up (en_US)] Sheena"),
            author: author.clone(),
        }]);
    Given::with(())
        .given(vec![E::ConversationStarted {
            source: Source::Api,
            contact: Contact::default(),
            widget_id: None,
        }])
        .when(C::PostTemplate {
            message_id: id,
            template,
            author,
        })
        .then_expect_error(ConversationError::NotWhatsapp);
}

#[test]
fn a_sent_message_is_linked_and_marked_sent_unless_a_status_overtook_it() {
    let id = MessageId::new();
    let mut given = history(t0());
    given.push(E::MessagePosted {
        message_id: id,
        content: text("Yes, in blue."),
        author: Actor::System,
    });
    let link = C::LinkWhatsappMessage {
        message_id: id,
        wamid: Wamid::parse("wamid.OUT1").unwrap(),
        kind: "text".into(),
        at: t0(),
    };
    let linked = E::WhatsappMessageLinked {
        message_id: id,
        wamid: Wamid::parse("wamid.OUT1").unwrap(),
        direction: Direction::Outgoing,
        kind: "text".into(),
        details: None,
    };
    Given::with(())
        .given(given.clone())
        .when(link.clone())
        .then_expect_events(vec![
            linked.clone(),
            E::MessageStatusChanged {
                message_id: id,
                status: DeliveryStatus::Sent,
                error: None,
                at: t0(),
            },
        ]);
    given.push(E::MessageStatusChanged {
        message_id: id,
        status: DeliveryStatus::Read,
        error: None,
        at: t0(),
    });
    Given::with(())
        .given(given)
        .when(link)
        .then_expect_events(vec![linked]);
}

#[test]
fn a_snapshot_from_before_the_window_existed_still_reads() {
    let mut state = serde_json::to_value(Conversation::default()).unwrap();
    state.as_object_mut().unwrap().remove("last_incoming_at");
    let conversation: Conversation = serde_json::from_value(state).unwrap();
    assert_eq!(conversation.last_incoming_at, None);
}

#[test]
fn template_names_languages_and_parameters_are_checked() {
    assert!(Template::parse("order_follow_up", "en_US", vec![]).is_ok());
    let cases = [
        ("Order Follow-Up", "en_US", vec![], "name"),
        ("ok", "", vec![], "language"),
        ("ok", "en", vec![" ".into()], "parameters"),
        ("ok", "en", vec!["p".into(); 21], "parameters"),
    ];
    for (name, language, parameters, field) in cases {
        let (got, _) = Template::parse(name, language, parameters).unwrap_err();
        assert_eq!(got, field, "{name} {language}");
    }
}
