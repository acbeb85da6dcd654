// A conversation's event history, for admins and auditors: every event in order, with its
// actor and time, read from the event store (docs/audit.md).

import { api } from "./api.js";
import { actorName } from "./directory.js";
import { fill, field, h, when } from "./dom.js";

export async function render(main, params) {
  const id = h("input", { type: "text", name: "conversation_id", value: params[0] ?? "", placeholder: "Conversation id", autocomplete: "off", required: true });
  const form = h("form", { class: "inline-form" }, field("Conversation", id), h("button", { type: "submit", class: "primary" }, "Show history"));
  const result = h("div", { class: "history" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/history/${id.value.trim()}`;
  });
  fill(main, h("div", { class: "page" }, h("h1", {}, "History"), h("p", {}, "Every event of a conversation, as recorded, with who did it and when."), form, result));
  if (params[0]) await show(result, params[0]);
}

export function update(main, params) {
  main.querySelector("input[name=conversation_id]").value = params[0] ?? "";
  return show(main.querySelector(".history"), params[0]);
}

async function show(result, id) {
  if (!id) return fill(result);
  fill(result, h("p", {}, "Loading…"));
  let events;
  try {
    events = (await api("GET", `/conversations/${encodeURIComponent(id)}/history`)).data;
  } catch (problem) {
    return fill(result, h("p", { class: "error", role: "alert" }, problem.status === 404 ? "No conversation has this id." : problem.message));
  }
  fill(
    result,
    h(
      "table",
      {},
      h("caption", {}, `${events.length} events`),
      h("thead", {}, h("tr", {}, ["#", "Event", "Who", "When", "Data"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        events.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, String(e.sequence)),
            h("td", {}, e.event_type),
            h("td", {}, actorName(e.metadata.actor)),
            h("td", {}, h("time", { datetime: e.recorded_at }, when(e.recorded_at))),
            h("td", {}, h("code", {}, JSON.stringify(e.data))),
          ),
        ),
      ),
    ),
  );
}
