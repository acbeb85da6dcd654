// The inbox: views (Mine, Unassigned, All) with live counts, status tabs, filters, search,
// and the conversation list, page by page; the open conversation beside it (on a phone, in
// its place). Every change arrives over the WebSocket and refreshes what it touches.

import { api, query } from "./api.js";
import { agentName, contactName, directory, SOURCES, STATUSES, teamName } from "./directory.js";
import { ago, fill, field, h, keepFocus, select, waited, when } from "./dom.js";
import * as live from "./live.js";
import { openConversation } from "./conversation.js";

const PAGE = 25;
const VIEWS = [
  ["mine", "Mine"],
  ["unassigned", "Unassigned"],
  ["all", "All"],
];

/** What the list shows; kept while the agent moves between pages. */
const filters = { view: "all", status: "open", source: "", team: "", label: "", q: "", sort: "last_activity" };

let state = null;

export async function render(main, params) {
  const list = h("ul", { class: "conversations", "aria-label": "Conversations" });
  const more = h("button", { type: "button", class: "more", hidden: true, onclick: () => load(true) }, "Load more");
  const pane = h("section", { class: "conversation-pane", "aria-label": "Conversation" }, empty());
  const counts = {};
  const views = h(
    "ul",
    { class: "views" },
    VIEWS.map(([view, text]) => {
      counts[view] = h("span", { class: "count", "data-view": view }, "");
      return h(
        "li",
        {},
        h(
          "button",
          { type: "button", "data-view": view, "aria-pressed": String(filters.view === view), onclick: () => setFilter({ view }) },
          h("span", {}, text),
          counts[view],
        ),
      );
    }),
  );
  const unread = h("p", { class: "unread-summary", "aria-live": "polite" });
  const tabs = h(
    "div",
    { class: "tabs", role: "group", "aria-label": "Status" },
    STATUSES.map(([status, text]) =>
      h("button", { type: "button", "data-status": status, "aria-pressed": String(filters.status === status), onclick: () => setFilter({ status }) }, text),
    ),
  );
  const search = h("input", { type: "search", name: "q", value: filters.q, placeholder: "Search messages and contacts", autocomplete: "off" });
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => setFilter({ q: search.value.trim() }), 250);
  });
  const source = select({ name: "source", onchange: (e) => setFilter({ source: e.target.value }) }, [["", "Any source"], ...Object.entries(SOURCES)], filters.source);
  const team = select(
    { name: "team", onchange: (e) => setFilter({ team: e.target.value }) },
    [["", "Any team"], ...directory.teams.map((t) => [t.id, t.name])],
    filters.team,
  );
  const label = h("input", { type: "text", name: "label", value: filters.label, placeholder: "e.g. billing", autocomplete: "off" });
  const setLabel = () => {
    const value = label.value.trim().toLowerCase();
    if (value !== filters.label) setFilter({ label: value });
  };
  label.addEventListener("change", setLabel);
  label.addEventListener("keydown", (event) => event.key === "Enter" && setLabel());
  const sort = select(
    { name: "sort", onchange: (e) => setFilter({ sort: e.target.value }) },
    [
      ["last_activity", "Newest activity"],
      ["waiting_since", "Waiting longest"],
    ],
    filters.sort,
  );
  const error = h("p", { class: "error", role: "alert" });
  const layout = h(
    "div",
    { class: "inbox" },
    h(
      "aside",
      { class: "sidebar", "aria-label": "Views and filters" },
      h("h2", {}, "Inbox"),
      h("nav", { "aria-label": "Views" }, views),
      unread,
      h(
        "details",
        { class: "filters", open: matchMedia("(min-width: 761px)").matches },
        h("summary", {}, "Filters"),
        field("Source", source),
        field("Team", team),
        field("Label", label),
        field("Sort by", sort),
      ),
    ),
    h(
      "section",
      { class: "list-pane", "aria-label": "Conversation list" },
      h("div", { class: "list-tools" }, field("Search", search), tabs),
      error,
      list,
      more,
    ),
    pane,
  );
  main.append(layout);
  state = { layout, list, more, pane, counts, views, tabs, unread, error, rows: [], cursor: null, open: null, position: null, timer: null, generation: 0 };

  const stop = live.listen(onLive);
  const clock = setInterval(() => state.rows.length && paint(), 30000);
  update(main, params);
  await Promise.all([load(false), api("GET", "/unread").then((counts) => onLive({ type: "unread", ...counts }))]);
  return () => {
    stop();
    clearInterval(clock);
    state.open?.close();
    state = null;
  };
}

/** Follows the hash: `#/inbox` or `#/inbox/c/<conversation id>`. */
export function update(_main, params) {
  if (!state) return;
  const [kind, id] = params;
  const wanted = kind === "c" && id ? id : null;
  if (state.open?.id === wanted) return;
  state.open?.close();
  state.open = null;
  state.layout.classList.toggle("has-selection", Boolean(wanted));
  if (!wanted) {
    fill(state.pane, empty());
  } else {
    state.open = openConversation(state.pane, wanted, {
      back: () => (location.hash = "#/inbox"),
      changed: () => schedule(),
    });
  }
  paint();
}

function empty() {
  return h("div", { class: "empty" }, h("p", {}, "Choose a conversation from the list."));
}

function setFilter(change) {
  Object.assign(filters, change);
  for (const button of state.views.querySelectorAll("button")) button.setAttribute("aria-pressed", String(button.dataset.view === filters.view));
  for (const button of state.tabs.querySelectorAll("button")) button.setAttribute("aria-pressed", String(button.dataset.status === filters.status));
  load(false);
}

function listQuery(cursor, limit) {
  return query({
    status: filters.status,
    assignee: filters.view === "all" ? "" : filters.view,
    source: filters.source,
    team: filters.team,
    label: filters.label,
    q: filters.q,
    sort: filters.sort,
    cursor,
    limit,
    min_position: state.position,
  });
}

/** Loads the first page (or, with `more`, the next one). */
async function load(more) {
  const current = state;
  const generation = ++current.generation;
  try {
    const limit = more ? PAGE : Math.min(100, Math.max(PAGE, current.rows.length));
    const page = await api("GET", `/conversations${listQuery(more ? current.cursor : null, limit)}`);
    if (state !== current || generation !== current.generation) return;
    current.error.textContent = "";
    current.rows = more ? [...current.rows, ...page.data] : page.data;
    current.cursor = page.meta.next_cursor;
    for (const [view] of VIEWS) current.counts[view].textContent = String(page.meta.counts[view]);
    paint();
  } catch (problem) {
    if (state === current) current.error.textContent = `The list could not be loaded: ${problem.message}`;
  }
}

function paint() {
  const { list, rows, more } = state;
  const openId = state.open?.id;
  keepFocus(list, () =>
    fill(
      list,
      rows.length === 0 ? h("li", { class: "none" }, "No conversations here.") : null,
      rows.map((row) => h("li", {}, conversationButton(row, row.id === openId))),
    ),
  );
  more.hidden = !state.cursor;
}

function conversationButton(row, current) {
  const assignee = row.assignee_id ? agentName(row.assignee_id) : row.team_id ? teamName(row.team_id) : "Unassigned";
  return h(
    "a",
    {
      class: `conv${row.unread_count ? " unread" : ""}`,
      href: `#/inbox/c/${row.id}`,
      "data-id": row.id,
      "aria-current": current ? "true" : false,
    },
    h("span", { class: `source source-${row.source}`, title: SOURCES[row.source] }, h("span", { class: "sr-only" }, `${SOURCES[row.source]}: `), row.source === "whatsapp" ? "WA" : row.source === "web" ? "Web" : "API"),
    h("span", { class: "contact" }, contactName(row)),
    h("time", { class: "time", datetime: row.last_activity_at, title: when(row.last_activity_at) }, ago(row.last_activity_at)),
    h("span", { class: "preview" }, row.last_message_preview ?? "No messages yet"),
    h(
      "span",
      { class: "facts" },
      h("span", { class: "assignee" }, assignee),
      row.waiting_since ? h("span", { class: "waiting", title: `Waiting since ${when(row.waiting_since)}` }, `waiting ${waited(row.waiting_since)}`) : null,
      row.labels.map((l) => h("span", { class: "label" }, l)),
    ),
    row.unread_count ? h("span", { class: "badge" }, String(row.unread_count), h("span", { class: "sr-only" }, " unread")) : null,
  );
}

function onLive(message) {
  if (!state) return;
  if (message.type === "event") {
    state.position = Math.max(state.position ?? 0, message.position);
    schedule();
  } else if (message.type === "unread") {
    state.unread.textContent = `Unread: ${message.mine} mine, ${message.unassigned} unassigned, ${message.all} in all`;
  } else if (message.type === "ready" && message.resumed) {
    schedule();
  }
  state.open?.onLive(message);
}

/** Refreshes the list soon, once for a burst of events. */
function schedule() {
  if (!state || state.timer) return;
  state.timer = setTimeout(() => {
    if (!state) return;
    state.timer = null;
    load(false);
  }, 150);
}
