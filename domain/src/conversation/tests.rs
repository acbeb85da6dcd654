use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;

use super::*;
use crate::actor::Actor;
use crate::conversation::{ConversationCommand as C, ConversationEvent as E};
use crate::text::{Label, MessageContent};

type Given = TestFramework<Conversation>;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn text(s: &str) -> MessageContent {
    MessageContent::parse(s).unwrap()
}

fn started() -> E {
    E::ConversationStarted {
        source: Source::Api,
        contact: Contact::default(),
        widget_id: None,
    }
}

fn received(id: MessageId) -> E {
    E::MessageReceived {
        message_id: id,
        content: text("hello"),
        sent_at: t0(),
    }
}

fn posted(id: MessageId, author: Actor) -> E {
    E::MessagePosted {
        message_id: id,
        content: text("hi, how can we help?"),
        author,
    }
}

fn status_changed(id: MessageId, status: DeliveryStatus) -> E {
    E::MessageStatusChanged {
        message_id: id,
        status,
        error: None,
        at: t0(),
    }
}

fn update_status(id: MessageId, status: DeliveryStatus) -> C {
    C::UpdateMessageStatus {
        message_id: id,
        status,
        error: None,
        at: t0(),
    }
}

fn set_status(status: ConversationStatus) -> E {
    E::ConversationStatusChanged {
        status,
        snoozed_until: None,
        reopened_by_contact: false,
    }
}

#[test]
fn a_conversation_starts_once() {
    let start = C::Start {
        source: Source::Api,
        contact: Contact::default(),
        widget_id: None,
    };
    Given::with(())
        .given_no_previous_events()
        .when(start.clone())
        .then_expect_events(vec![started()]);
    Given::with(())
        .given(vec![started()])
        .when(start)
        .then_expect_error(ConversationError::AlreadyStarted);
}

#[test]
fn a_web_conversation_needs_its_widget() {
    Given::with(())
        .given_no_previous_events()
        .when(C::Start {
            source: Source::Web,
            contact: Contact::default(),
            widget_id: None,
        })
        .then_expect_error(ConversationError::WidgetMismatch);
}

#[test]
fn commands_on_a_conversation_that_never_started_are_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(C::MarkRead {
            agent_id: AgentId::new(),
        })
        .then_expect_error(ConversationError::NotFound);
}

#[test]
fn message_ids_are_unique_within_a_conversation() {
    let id = MessageId::new();
    Given::with(())
        .given(vec![started(), received(id)])
        .when(C::PostMessage {
            message_id: id,
            content: text("again"),
            author: Actor::System,
            at: t0(),
        })
        .then_expect_error(ConversationError::DuplicateMessage(id));
}

#[test]
fn an_incoming_message_reopens_a_resolved_or_snoozed_conversation() {
    for status in [ConversationStatus::Resolved, ConversationStatus::Snoozed] {
        let id = MessageId::new();
        Given::with(())
            .given(vec![started(), set_status(status)])
            .when(C::ReceiveMessage {
                message_id: id,
                content: text("hello"),
                sent_at: t0(),
            })
            .then_expect_events(vec![
                received(id),
                E::ConversationStatusChanged {
                    status: ConversationStatus::Open,
                    snoozed_until: None,
                    reopened_by_contact: true,
                },
            ]);
    }
}

#[test]
fn an_incoming_message_leaves_a_pending_conversation_pending() {
    let id = MessageId::new();
    Given::with(())
        .given(vec![started(), set_status(ConversationStatus::Pending)])
        .when(C::ReceiveMessage {
            message_id: id,
            content: text("hello"),
            sent_at: t0(),
        })
        .then_expect_events(vec![received(id)]);
}

#[test]
fn the_team_cannot_reply_in_a_resolved_conversation_but_can_leave_notes() {
    let given = vec![started(), set_status(ConversationStatus::Resolved)];
    let id = MessageId::new();
    Given::with(())
        .given(given.clone())
        .when(C::PostMessage {
            message_id: id,
            content: text("hi"),
            author: Actor::System,
            at: t0(),
        })
        .then_expect_error(ConversationError::Resolved);
    Given::with(())
        .given(given)
        .when(C::AddNote {
            message_id: id,
            content: text("customer is happy"),
            author: Actor::System,
        })
        .then_expect_events(vec![E::NoteAdded {
            message_id: id,
            content: text("customer is happy"),
            author: Actor::System,
        }]);
}

#[test]
fn delivery_status_moves_forward_and_skips_steps() {
    let id = MessageId::new();
    Given::with(())
        .given(vec![started(), posted(id, Actor::System)])
        .when(update_status(id, DeliveryStatus::Read))
        .then_expect_events(vec![status_changed(id, DeliveryStatus::Read)]);
}

#[test]
fn delivery_status_never_goes_backwards() {
    let id = MessageId::new();
    let given = vec![
        started(),
        posted(id, Actor::System),
        status_changed(id, DeliveryStatus::Read),
    ];
    Given::with(())
        .given(given)
        .when(update_status(id, DeliveryStatus::Delivered))
        .then_expect_error(ConversationError::StatusRegression {
            from: DeliveryStatus::Read,
            to: DeliveryStatus::Delivered,
        });
}

#[test]
fn a_repeated_status_changes_nothing() {
    let id = MessageId::new();
    let given = vec![
        started(),
        posted(id, Actor::System),
        status_changed(id, DeliveryStatus::Delivered),
    ];
    Given::with(())
        .given(given)
        .when(update_status(id, DeliveryStatus::Delivered))
        .then_expect_events(vec![]);
}

#[test]
fn a_failed_message_keeps_its_reason_and_stays_failed() {
    let id = MessageId::new();
    Given::with(())
        .given(vec![started(), posted(id, Actor::System)])
        .when(C::UpdateMessageStatus {
            message_id: id,
            status: DeliveryStatus::Failed,
            error: Some("131047: re-engagement message".into()),
            at: t0(),
        })
        .then_expect_events(vec![E::MessageStatusChanged {
            message_id: id,
            status: DeliveryStatus::Failed,
            error: Some("131047: re-engagement message".into()),
            at: t0(),
        }]);
    Given::with(())
        .given(vec![
            started(),
            posted(id, Actor::System),
            status_changed(id, DeliveryStatus::Failed),
        ])
        .when(update_status(id, DeliveryStatus::Delivered))
        .then_expect_error(ConversationError::StatusRegression {
            from: DeliveryStatus::Failed,
            to: DeliveryStatus::Delivered,
        });
}

#[test]
fn only_outgoing_messages_have_a_delivery_status() {
    let id = MessageId::new();
    Given::with(())
        .given(vec![started(), received(id)])
        .when(update_status(id, DeliveryStatus::Read))
        .then_expect_error(ConversationError::NotOutgoing(id));
    let unknown = MessageId::new();
    Given::with(())
        .given(vec![started()])
        .when(update_status(unknown, DeliveryStatus::Read))
        .then_expect_error(ConversationError::MessageNotFound(unknown));
}

#[test]
fn the_read_marker_moves_to_the_newest_message_once() {
    let agent_id = AgentId::new();
    let (first, second) = (MessageId::new(), MessageId::new());
    Given::with(())
        .given(vec![started(), received(first), received(second)])
        .when(C::MarkRead { agent_id })
        .then_expect_events(vec![E::ReadMarkerMoved {
            agent_id,
            last_read_message_id: second,
        }]);
    Given::with(())
        .given(vec![
            started(),
            received(first),
            E::ReadMarkerMoved {
                agent_id,
                last_read_message_id: first,
            },
        ])
        .when(C::MarkRead { agent_id })
        .then_expect_events(vec![]);
}

#[test]
fn assigning_nobody_unassigns_and_repeats_change_nothing() {
    let agent_id = Some(AgentId::new());
    let team_id = Some(TeamId::new());
    let assigned = E::ConversationAssigned { agent_id, team_id };
    Given::with(())
        .given(vec![started()])
        .when(C::Assign { agent_id, team_id })
        .then_expect_events(vec![assigned.clone()]);
    Given::with(())
        .given(vec![started(), assigned.clone()])
        .when(C::Assign { agent_id, team_id })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![started(), assigned])
        .when(C::Assign {
            agent_id: None,
            team_id: None,
        })
        .then_expect_events(vec![E::ConversationUnassigned {}]);
}

#[test]
fn snoozing_needs_a_time_in_the_future() {
    let snooze = |until| C::ChangeStatus {
        status: ConversationStatus::Snoozed,
        snoozed_until: until,
        now: t0(),
    };
    Given::with(())
        .given(vec![started()])
        .when(snooze(None))
        .then_expect_error(ConversationError::SnoozeNeedsFutureTime);
    Given::with(())
        .given(vec![started()])
        .when(snooze(Some(t0() - Duration::hours(1))))
        .then_expect_error(ConversationError::SnoozeNeedsFutureTime);
    let until = t0() + Duration::hours(1);
    Given::with(())
        .given(vec![started()])
        .when(snooze(Some(until)))
        .then_expect_events(vec![E::ConversationStatusChanged {
            status: ConversationStatus::Snoozed,
            snoozed_until: Some(until),
            reopened_by_contact: false,
        }]);
    Given::with(())
        .given(vec![started()])
        .when(C::ChangeStatus {
            status: ConversationStatus::Pending,
            snoozed_until: Some(until),
            now: t0(),
        })
        .then_expect_error(ConversationError::SnoozeTimeWithoutSnooze);
}

#[test]
fn labels_are_added_and_removed_once() {
    let vip = Label::parse("vip").unwrap();
    Given::with(())
        .given(vec![started()])
        .when(C::AddLabel { label: vip.clone() })
        .then_expect_events(vec![E::LabelAdded { label: vip.clone() }]);
    Given::with(())
        .given(vec![started(), E::LabelAdded { label: vip.clone() }])
        .when(C::AddLabel { label: vip.clone() })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![started()])
        .when(C::RemoveLabel { label: vip })
        .then_expect_events(vec![]);
}

/// Builds a command from a small random description; ids are drawn from a small pool so
/// that duplicates, unknown messages and repeats all happen.
fn command_from(choice: u8, id: u8, agent: u8, ids: &[MessageId], agents: &[AgentId]) -> C {
    let message_id = ids[id as usize % ids.len()];
    let agent_id = agents[agent as usize % agents.len()];
    let status = [
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Failed,
    ][id as usize % 4];
    let conversation_status = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Resolved,
    ][agent as usize % 3];
    match choice % 10 {
        0 => C::ReceiveMessage {
            message_id,
            content: text("in"),
            sent_at: t0(),
        },
        1 => C::PostMessage {
            message_id,
            content: text("out"),
            author: Actor::Agent(agent_id),
            at: t0(),
        },
        2 => C::AddNote {
            message_id,
            content: text("note"),
            author: Actor::Agent(agent_id),
        },
        3 => update_status(message_id, status),
        4 => C::MarkRead { agent_id },
        5 => C::Assign {
            agent_id: Some(agent_id),
            team_id: None,
        },
        6 => C::Assign {
            agent_id: None,
            team_id: None,
        },
        7 => C::ChangeStatus {
            status: conversation_status,
            snoozed_until: None,
            now: t0(),
        },
        8 => C::ChangeStatus {
            status: ConversationStatus::Snoozed,
            snoozed_until: Some(t0() + Duration::minutes(i64::from(id) + 1)),
            now: t0(),
        },
        _ => C::AddLabel {
            label: Label::parse(&format!("l{}", id % 3)).unwrap(),
        },
    }
}

fn replay(events: &[E]) -> Conversation {
    events
        .iter()
        .cloned()
        .fold(Conversation::default(), |mut state, event| {
            state.apply(event);
            state
        })
}

proptest! {
    /// A snapshot is the aggregate serialised after some events; loading it and applying the
    /// later events must give exactly the state a replay from the first event gives.
    #[test]
    fn a_snapshot_plus_later_events_equals_a_full_replay(
        steps in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..120),
        cut in any::<proptest::sample::Index>(),
    ) {
        let ids: Vec<MessageId> = (0..8).map(|_| MessageId::new()).collect();
        let agents: Vec<AgentId> = (0..3).map(|_| AgentId::new()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut state = Conversation::default();
        let mut events = Vec::new();
        let start = C::Start { source: Source::Api, contact: Contact::default(), widget_id: None };
        for command in std::iter::once(start).chain(
            steps.iter().map(|&(c, i, a)| command_from(c, i, a, &ids, &agents)),
        ) {
            let sink = EventSink::default();
            if runtime.block_on(state.handle(command, &(), &sink)).is_ok() {
                events.extend(runtime.block_on(sink.collect()));
            } else {
                state = replay(&events);
            }
        }
        prop_assert_eq!(&replay(&events), &state);

        let cut = cut.index(events.len() + 1);
        let snapshot = serde_json::to_value(replay(&events[..cut])).unwrap();
        let mut restored: Conversation = serde_json::from_value(snapshot).unwrap();
        for event in events[cut..].iter().cloned() {
            restored.apply(event);
        }
        prop_assert_eq!(restored, state);
    }
}
