// One conversation: the timeline (messages, replies, private notes set apart, system lines),
// delivery ticks, who is typing or viewing, the composer, and the actions beside it.

import { api, isAdmin, isAuditor, query, session } from "./api.js";
import { actorName, agentName, contactName, directory, SOURCES, STATUSES, teamName } from "./directory.js";
import { announce, fill, field, h, keepFocus, select, when } from "./dom.js";
import * as live from "./live.js";

const WINDOW_MS = 24 * 60 * 60 * 1000;
const TYPING_MS = 6000;
/** The server renews viewing every 15 s; one not renewed for 45 s ended with its instance. */
const VIEWING_MS = 45000;
/** The events that are activity lines (docs/realtime.md): only they make the lines stale. */
const LINE_EVENTS = new Set([
  "ConversationStarted",
  "WhatsappContactLinked",
  "ConversationAssigned",
  "ConversationUnassigned",
  "ConversationStatusChanged",
  "LabelAdded",
  "LabelRemoved",
]);
const TICKS = {
  pending: ["…", "Sending"],
  sent: ["✓", "Sent"],
  delivered: ["✓✓", "Delivered"],
  read: ["✓✓", "Read"],
  failed: ["!", "Failed"],
};

/**
 * Shows conversation `id` in `pane`. `back` returns to the list (phones); `changed` tells the
 * list that this view changed something. Answers `{id, close, onLive}`.
 */
export function openConversation(pane, id, { back, changed }) {
  const view = {
    id,
    row: null,
    messages: new Map(),
    activity: null,
    hasEarlier: false,
    position: null,
    typing: new Map(),
    viewers: new Map(),
    timer: null,
    closed: false,
  };
  const writer = !isAuditor();
  const title = h("h2", { class: "conv-title", id: `title-${id}` }, "Loading…");
  const subtitle = h("p", { class: "conv-subtitle" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Timeline", tabindex: "0" });
  const earlier = h("button", { type: "button", class: "more", hidden: true, onclick: loadEarlier }, "Load earlier messages");
  const presence = h("p", { class: "presence", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const windowNotice = h("div", { class: "window-notice", hidden: true });
  const details = h("aside", { class: "details", "aria-label": "Contact and actions" });
  const composer = writer ? buildComposer() : null;
  fill(
    pane,
    h(
      "section",
      { class: "conversation", "aria-labelledby": title.id },
      h(
        "header",
        { class: "conv-header" },
        h("button", { type: "button", class: "back ghost", onclick: back }, "‹ Conversations"),
        h("div", {}, title, subtitle),
      ),
      h("div", { class: "conv-body" }, h("div", { class: "conv-main" }, earlier, timeline, presence, error, windowNotice, composer?.form), details),
    ),
  );
  live.setViewing(id, true);
  const expiry = setInterval(() => view.row && paintPresence(), VIEWING_MS / 3);
  refresh({ markRead: true });

  async function refresh({ markRead = false } = {}) {
    const at = query({ min_position: view.position });
    try {
      const [row, page, activity] = await Promise.all([
        api("GET", `/conversations/${id}${at}`),
        api("GET", `/conversations/${id}/messages${query({ limit: 50, min_position: view.position })}`),
        view.activity ? null : api("GET", `/conversations/${id}/activity`),
      ]);
      if (view.closed) return;
      const fresh = page.data.filter((m) => !view.messages.has(m.id));
      if (view.messages.size === 0) view.hasEarlier = page.data.length === 50;
      for (const message of page.data) view.messages.set(message.id, message);
      view.row = row;
      view.activity = activity?.data ?? view.activity;
      error.textContent = "";
      paint();
      const incoming = fresh.filter((m) => m.direction === "incoming");
      if (incoming.length && !markRead) announce(`New message from ${contactName(row)}`);
      if (writer && (markRead || incoming.length) && row.unread_count > 0) {
        await api("POST", `/conversations/${id}/read`, {});
        changed();
      }
    } catch (problem) {
      if (view.closed) return;
      if (problem.status === 404) fill(pane, h("div", { class: "empty" }, h("p", {}, "This conversation does not exist.")));
      else error.textContent = `Could not load the conversation: ${problem.message}`;
    }
  }

  async function loadEarlier() {
    const first = sorted()[0];
    if (!first) return;
    const page = await api("GET", `/conversations/${id}/messages${query({ before: first.id, limit: 50 })}`);
    for (const message of page.data) view.messages.set(message.id, message);
    view.hasEarlier = page.data.length === 50;
    paint();
  }

  function sorted() {
    return [...view.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  function paint() {
    const row = view.row;
    title.textContent = contactName(row);
    subtitle.textContent = `${SOURCES[row.source]} · ${row.status}${row.snoozed_until ? ` until ${when(row.snoozed_until)}` : ""}`;
    const messages = sorted();
    const oldest = view.hasEarlier ? (messages[0]?.seq ?? 0) : 0;
    const lines = view.activity.filter((line) => line.seq >= oldest && line.kind !== "started");
    const items = [...messages.map((m) => ({ seq: m.seq, node: messageItem(m) })), ...lines.map((l) => ({ seq: l.seq, node: systemLine(l) }))];
    items.sort((a, b) => a.seq - b.seq);
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
    fill(timeline, items.length ? items.map((i) => i.node) : h("li", { class: "system" }, "No messages yet."));
    if (atBottom || !timeline.dataset.painted) timeline.scrollTop = timeline.scrollHeight;
    timeline.dataset.painted = "1";
    earlier.hidden = !view.hasEarlier;
    paintPresence();
    paintWindow(messages);
    paintDetails();
  }

  function paintPresence() {
    const now = Date.now();
    const typing = [...view.typing.entries()].filter(([, until]) => until > now).map(([who]) => (who === "visitor" ? "The contact" : agentName(who)));
    const viewers = [...view.viewers.entries()]
      .filter(([agent, seen]) => agent !== session.agent.id && now - seen < VIEWING_MS)
      .map(([agent]) => agentName(agent));
    presence.textContent = [
      typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : "",
      viewers.length ? `Also viewing: ${viewers.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join(" · ");
    presence.classList.toggle("active", typing.length > 0);
  }

  function paintWindow(messages) {
    if (view.row.source !== "whatsapp") {
      windowNotice.hidden = true;
      composer?.allowReply(true);
      return;
    }
    const lastIncoming = messages.filter((m) => m.direction === "incoming").at(-1);
    const closes = lastIncoming ? new Date(lastIncoming.created_at).getTime() + WINDOW_MS : 0;
    const open = closes > Date.now();
    windowNotice.hidden = false;
    composer?.allowReply(open);
    if (!view.windowText) {
      // Built once: a repaint must not lose a template being typed.
      view.windowText = h("p", {});
      view.template = writer ? templateForm() : null;
      fill(windowNotice, view.windowText, view.template);
    }
    view.windowText.textContent = open
      ? `WhatsApp's 24-hour window is open until ${new Date(closes).toLocaleString()}.`
      : "WhatsApp's 24-hour window is closed: the contact can only be reached with an approved template.";
    if (view.template) view.template.hidden = open;
  }

  function templateForm() {
    const name = h("input", { type: "text", name: "template", required: true, placeholder: "order_follow_up" });
    const language = h("input", { type: "text", name: "language", value: "en_US", required: true });
    const parameters = h("textarea", { name: "parameters", rows: 2, placeholder: "One per line" });
    const form = h("form", { class: "template" }, field("Template name", name), field("Language", language), field("Parameters", parameters, "One per line, in order: {{1}}, {{2}}, …"), h("button", { type: "submit" }, "Send template"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), language: language.value.trim(), parameters: parameters.value.split("\n").map((p) => p.trim()).filter(Boolean) };
      act(`/conversations/${id}/whatsapp/templates`, body, "Template sent").then(() => error.textContent || form.reset());
    });
    return form;
  }

  function paintDetails() {
    const row = view.row;
    const contact = h(
      "dl",
      { class: "contact-details" },
      [
        ["Name", row.contact_name],
        ["E-mail", row.contact_email],
        ["Phone", row.contact_phone],
        ["Channel", SOURCES[row.source]],
        ["Started", when(row.created_at)],
        ["Messages", String(row.message_count)],
      ]
        .filter(([, value]) => value)
        .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    );
    const sections = [h("h3", {}, "Contact"), contact];
    if (writer) sections.push(...actions(row));
    else sections.push(h("h3", {}, "Labels"), h("p", {}, row.labels.join(", ") || "None"));
    if (isAdmin() || isAuditor()) sections.push(h("p", {}, h("a", { href: `#/history/${id}` }, "Event history")));
    keepFocus(details, () => fill(details, sections));
  }

  function actions(row) {
    const agents = directory.agents.filter((a) => a.role !== "auditor");
    const agent = select({ name: "assignee" }, [["", "Nobody"], ...agents.map((a) => [a.id, a.name])], row.assignee_id ?? "");
    const team = select({ name: "team" }, [["", "No team"], ...directory.teams.map((t) => [t.id, t.name])], row.team_id ?? "");
    const assign = () => act(`/conversations/${id}/assignment`, { agent_id: agent.value || null, team_id: team.value || null }, "Assignment changed");
    agent.addEventListener("change", assign);
    team.addEventListener("change", assign);
    const mine = h("button", { type: "button", disabled: row.assignee_id === session.agent.id, onclick: () => { agent.value = session.agent.id; assign(); } }, "Assign to me");

    const status = select({ name: "status" }, STATUSES, row.status);
    const until = h("input", { type: "datetime-local", name: "snoozed_until", value: localInput(row.snoozed_until ?? new Date(Date.now() + 3600000).toISOString()) });
    const snooze = h("div", { class: "snooze", hidden: status.value !== "snoozed" }, field("Snooze until", until), h("button", { type: "button", onclick: () => act(`/conversations/${id}/status`, { status: "snoozed", snoozed_until: new Date(until.value).toISOString() }, "Snoozed") }, "Snooze"));
    status.addEventListener("change", () => {
      snooze.hidden = status.value !== "snoozed";
      if (status.value !== "snoozed") act(`/conversations/${id}/status`, { status: status.value }, `Status: ${status.value}`);
    });
    const resolve =
      row.status === "resolved"
        ? h("button", { type: "button", onclick: () => act(`/conversations/${id}/status`, { status: "open" }, "Reopened") }, "Reopen")
        : h("button", { type: "button", class: "primary", onclick: () => act(`/conversations/${id}/status`, { status: "resolved" }, "Resolved") }, "Resolve");

    const newLabel = h("input", { type: "text", name: "new_label", placeholder: "add a label", autocomplete: "off" });
    const addLabel = h("form", { class: "add-label" }, field("New label", newLabel), h("button", { type: "submit" }, "Add"));
    addLabel.addEventListener("submit", (event) => {
      event.preventDefault();
      const label = newLabel.value.trim();
      newLabel.value = "";
      if (label) act(`/conversations/${id}/labels`, { label }, `Label ${label} added`);
    });
    const labels = h(
      "ul",
      { class: "labels", "aria-label": "Labels" },
      row.labels.map((label) =>
        h("li", { class: "label" }, label, h("button", { type: "button", class: "ghost", "aria-label": `Remove label ${label}`, onclick: () => act(`/conversations/${id}/labels/${encodeURIComponent(label)}`, undefined, `Label ${label} removed`, "DELETE") }, "×")),
      ),
    );
    return [
      h("h3", {}, "Assignment"),
      field("Agent", agent),
      field("Team", team),
      mine,
      h("h3", {}, "Status"),
      resolve,
      field("Status", status),
      snooze,
      h("h3", {}, "Labels"),
      labels,
      addLabel,
    ];
  }

  /** Sends a command; on success the live event (or the answer's position) refreshes the view. */
  async function act(path, body, done, method = "POST") {
    try {
      const answer = await api(method, path, body);
      if (answer?.position) view.position = Math.max(view.position ?? 0, answer.position);
      announce(done);
      changed();
      await refresh();
    } catch (problem) {
      error.textContent = problem.field ? `${problem.message} (${problem.field})` : problem.message;
    }
  }

  function buildComposer() {
    const text = h("textarea", { name: "content", rows: 3, placeholder: "Write a reply… (Enter sends, Shift+Enter for a new line)" });
    const reply = h("input", { type: "radio", name: `mode-${id}`, value: "reply", checked: true });
    const note = h("input", { type: "radio", name: `mode-${id}`, value: "note" });
    const send = h("button", { type: "submit", class: "primary" }, "Send");
    const form = h(
      "form",
      { class: "composer" },
      h("fieldset", { class: "mode" }, h("legend", { class: "sr-only" }, "Send as"), h("label", {}, reply, " Reply"), h("label", {}, note, " Private note")),
      field("Message", text),
      send,
    );
    let typingSince = 0;
    let idle = null;
    const stopTyping = () => {
      if (typingSince) live.setTyping(id, false);
      typingSince = 0;
    };
    const modeChanged = () => {
      form.classList.toggle("note-mode", note.checked);
      text.placeholder = note.checked ? "Write a private note… only your team sees it" : "Write a reply… (Enter sends, Shift+Enter for a new line)";
      send.textContent = note.checked ? "Add note" : "Send";
    };
    reply.addEventListener("change", modeChanged);
    note.addEventListener("change", modeChanged);
    text.addEventListener("input", () => {
      if (!note.checked && Date.now() - typingSince > 3000) {
        typingSince = Date.now();
        live.setTyping(id, true);
      }
      clearTimeout(idle);
      idle = setTimeout(stopTyping, 4000);
    });
    text.addEventListener("blur", stopTyping);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const content = text.value.trim();
      if (!content) return;
      stopTyping();
      send.disabled = true;
      const body = { content, message_type: "outgoing", private: note.checked, id: crypto.randomUUID() };
      try {
        await act(`/conversations/${id}/messages`, body, note.checked ? "Note added" : "Reply sent");
        if (!error.textContent) text.value = "";
      } finally {
        send.disabled = false;
        text.focus();
      }
    });
    return {
      form,
      allowReply(open) {
        reply.disabled = !open;
        if (!open && reply.checked) {
          note.checked = true;
          modeChanged();
        }
      },
    };
  }

  function onLive(message) {
    if (message.conversation_id !== id) return;
    if (message.type === "event") {
      view.position = Math.max(view.position ?? 0, message.position);
      if (LINE_EVENTS.has(message.event_type)) view.activity = null;
      if (view.timer) return;
      view.timer = setTimeout(() => {
        view.timer = null;
        if (!view.closed) refresh();
      }, 100);
    } else if (message.type === "typing") {
      const who = message.who === "visitor" ? "visitor" : message.who.agent;
      if (message.on) {
        view.typing.set(who, Date.now() + TYPING_MS);
        setTimeout(() => !view.closed && paintPresence(), TYPING_MS + 50);
      } else view.typing.delete(who);
      if (view.row) paintPresence();
    } else if (message.type === "viewing") {
      if (message.on) view.viewers.set(message.agent_id, Date.now());
      else view.viewers.delete(message.agent_id);
      if (view.row) paintPresence();
    }
  }

  return {
    id,
    onLive,
    close() {
      view.closed = true;
      clearTimeout(view.timer);
      clearInterval(expiry);
      live.setViewing(id, false);
    },
  };
}

function localInput(iso) {
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function messageItem(message) {
  const author = message.author ? actorName(message.author) : null;
  const kind = { incoming: "Contact", outgoing: author ?? "Reply", note: `Private note by ${author ?? "an agent"}` }[message.direction];
  return h(
    "li",
    { class: `msg ${message.direction}`, "data-id": message.id },
    h("p", { class: "msg-author" }, kind),
    h("p", { class: "msg-text" }, message.content),
    h(
      "p",
      { class: "msg-meta" },
      h("time", { datetime: message.created_at, title: when(message.created_at) }, new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      message.direction === "outgoing" ? ticks(message) : null,
    ),
  );
}

function ticks(message) {
  const [mark, text] = TICKS[message.status] ?? ["", message.status];
  const at = message[`${message.status}_at`];
  const detail = message.status === "failed" && message.error ? `${text}: ${message.error}` : text;
  return h(
    "span",
    { class: `ticks ${message.status}`, "data-status": message.status, title: at ? `${detail} · ${when(at)}` : detail },
    h("span", { "aria-hidden": "true" }, mark),
    h("span", { class: message.status === "failed" ? "" : "sr-only" }, ` ${detail}`),
  );
}

/** A system line: what changed, who did it, when. */
function systemLine(line) {
  const who = actorName(line.actor);
  return h("li", { class: "system", "data-kind": line.kind }, h("span", {}, `${who} ${describe(line)}`), " · ", h("time", { datetime: line.at, title: when(line.at) }, new Date(line.at).toLocaleString()));
}

function describe(line) {
  switch (line.kind) {
    case "status_changed":
      if (line.reopened_by_contact) return "wrote again, which reopened it";
      return line.status === "snoozed" && line.snoozed_until ? `snoozed it until ${when(line.snoozed_until)}` : `set the status to ${line.status}`;
    case "assigned": {
      const parts = [line.agent_id ? agentName(line.agent_id) : null, line.team_id ? `team ${teamName(line.team_id)}` : null].filter(Boolean);
      return parts.length ? `assigned it to ${parts.join(" and ")}` : "unassigned it";
    }
    case "label_added":
      return `added the label ${line.label}`;
    case "label_removed":
      return `removed the label ${line.label}`;
    case "whatsapp_contact_linked":
      return `linked the WhatsApp contact ${line.wa_id}`;
    default:
      return line.kind.replaceAll("_", " ");
  }
}
