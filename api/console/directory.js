// The tenant's agents and teams, loaded once per sign-in and refreshed by the pages that
// change them: the inbox and the conversation view show names, not ids. Also the names the
// console gives channels, statuses and contacts, so every page says them the same way.

import { api } from "./api.js";

export const directory = { agents: [], teams: [] };

/** A conversation's channel, by its `source`. */
export const SOURCES = { web: "Website", whatsapp: "WhatsApp", api: "API" };

/** The workflow statuses, in the order the console offers them. */
export const STATUSES = [
  ["open", "Open"],
  ["pending", "Pending"],
  ["resolved", "Resolved"],
  ["snoozed", "Snoozed"],
];

/** What to call a conversation's contact: the best of what they told us. */
export function contactName(row) {
  return row.contact_name || row.contact_email || row.contact_phone || "Anonymous visitor";
}

/** Loads (or reloads) the agents and teams. */
export async function loadDirectory() {
  const [agents, teams] = await Promise.all([api("GET", "/agents"), api("GET", "/teams")]);
  directory.agents = agents;
  directory.teams = teams;
  return directory;
}

/** An agent's name, or a short form of an unknown id. */
export function agentName(id) {
  if (!id) return null;
  return directory.agents.find((a) => a.id === id)?.name ?? `agent ${id.slice(0, 8)}`;
}

/** A team's name, or a short form of an unknown id. */
export function teamName(id) {
  if (!id) return null;
  return directory.teams.find((t) => t.id === id)?.name ?? `team ${id.slice(0, 8)}`;
}

/** Who an event's actor string (`agent:<id>`, `visitor:<id>`, `contact:<wa_id>`, `system`) stands for. */
export function actorName(actor) {
  if (!actor) return "Someone";
  if (actor.startsWith("agent:")) return agentName(actor.slice(6));
  if (actor.startsWith("visitor") || actor.startsWith("contact")) return "The contact";
  return actor.charAt(0).toUpperCase() + actor.slice(1);
}
