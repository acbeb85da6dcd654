// Agents and teams (admins): invite agents, change roles, set passwords, build teams.

import { api, session } from "./api.js";
import { loadDirectory } from "./directory.js";
import { announce, fill, field, h, select } from "./dom.js";

const ROLES = [
  ["agent", "Agent"],
  ["admin", "Admin"],
  ["auditor", "Auditor (read-only)"],
];

export async function render(main) {
  const error = h("p", { class: "error", role: "alert" });
  const people = h("tbody");
  const teams = h("ul", { class: "cards", "aria-label": "Teams" });
  const shown = h("div", { class: "shown", "aria-live": "polite" });

  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const role = select({ name: "role" }, ROLES, "agent");
  const add = h("form", { class: "inline-form" }, field("Name", name), field("E-mail", email), field("Role", role), h("button", { type: "submit", class: "primary" }, "Add and invite"));
  add.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const agent = await api("POST", "/agents", { name: name.value.trim(), email: email.value.trim(), role: role.value });
      name.value = "";
      email.value = "";
      await invite(agent, agent.token);
    });
  });

  const teamName = h("input", { type: "text", name: "team_name", required: true, autocomplete: "off" });
  const addTeam = h("form", { class: "inline-form" }, field("Team name", teamName), h("button", { type: "submit" }, "Create team"));
  addTeam.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", "/teams", { name: teamName.value.trim() });
      teamName.value = "";
      announce("Team created");
    });
  });

  fill(
    main,
    h(
      "div",
      { class: "page" },
      h("h1", {}, "Agents"),
      error,
      h("h2", {}, "Invite an agent"),
      add,
      shown,
      h(
        "table",
        { class: "agents" },
        h("caption", { class: "sr-only" }, "Agents"),
        h("thead", {}, h("tr", {}, ["Name", "E-mail", "Role", "Account", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        people,
      ),
      h("h2", {}, "Teams"),
      addTeam,
      teams,
    ),
  );

  async function run(action) {
    error.textContent = "";
    try {
      await action();
    } catch (problem) {
      error.textContent = problem.field ? `${problem.message} (${problem.field})` : problem.message;
    }
    await reload();
  }

  async function invite(agent, token) {
    const invitation = await api("POST", `/agents/${agent.id}/invitation`, {});
    const link = new URL(invitation.url, location.origin).href;
    fill(
      shown,
      h("h3", {}, `Invitation for ${agent.name}`),
      h("p", {}, "Send this link to the agent; it works once, until ", new Date(invitation.expires_at).toLocaleString(), "."),
      field("Invitation link", h("input", { type: "text", readonly: true, value: link, name: "invitation_link" })),
      token ? field("API token (shown once, for integrations)", h("input", { type: "text", readonly: true, value: token, name: "api_token" })) : null,
    );
    announce(`Invitation ready for ${agent.name}`);
  }

  async function reload() {
    const directory = await loadDirectory();
    fill(
      people,
      directory.agents.map((agent) => {
        const roleSelect = select({ name: "role", "aria-label": `Role of ${agent.name}` }, ROLES, agent.role);
        roleSelect.addEventListener("change", () => run(() => api("PATCH", `/agents/${agent.id}`, { role: roleSelect.value })));
        const password = h("input", { type: "password", name: "new_password", autocomplete: "new-password", minlength: 8, "aria-label": `New password for ${agent.name}` });
        const setPassword = h("form", { class: "compact" }, password, h("button", { type: "submit" }, "Set password"));
        setPassword.addEventListener("submit", (event) => {
          event.preventDefault();
          run(async () => {
            await api("PUT", `/agents/${agent.id}/password`, { password: password.value });
            announce(`Password set for ${agent.name}`);
          });
        });
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, agent.name, agent.id === session.agent.id ? " (you)" : ""),
          h("td", {}, agent.email),
          h("td", {}, roleSelect),
          h("td", {}, agent.has_password ? "Active" : "Invited"),
          h("td", {}, h("button", { type: "button", onclick: () => run(() => invite(agent)) }, agent.has_password ? "New sign-in link" : "Invite link"), setPassword),
        );
      }),
    );
    fill(
      teams,
      directory.teams.length ? null : h("li", { class: "none" }, "No teams yet."),
      directory.teams.map((team) =>
        h(
          "li",
          { class: "card" },
          h("h3", {}, team.name),
          h(
            "fieldset",
            {},
            h("legend", {}, `Members of ${team.name}`),
            directory.agents.map((agent) => {
              const member = team.member_ids.includes(agent.id);
              const box = h("input", { type: "checkbox", checked: member, name: `member-${team.id}`, value: agent.id });
              box.addEventListener("change", () =>
                run(() => (box.checked ? api("POST", `/teams/${team.id}/members`, { agent_id: agent.id }) : api("DELETE", `/teams/${team.id}/members/${agent.id}`))),
              );
              return h("label", { class: "check" }, box, ` ${agent.name}`);
            }),
          ),
        ),
      ),
    );
  }

  await reload();
}
