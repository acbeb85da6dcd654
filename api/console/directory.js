// The tenant's agents and teams, loaded once per sign-in and refreshed by the pages that
// change them: the inbox and the conversation view show names, not ids.

import { api } from "./api.js";

export const directory = { agents: [], teams: [] };

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
