// The console's shell: sign-in, the top navigation, the hash router and the theme.
// Pages are modules with `render(main, params)`, which may answer a cleanup function.

import { api, isAdmin, isAuditor, onSignedOut, Problem, resume, session, signIn, signOut } from "./api.js";
import { loadDirectory } from "./directory.js";
import { announce, field, fill, h } from "./dom.js";
import * as live from "./live.js";

const pages = {
  inbox: () => import("./inbox.js"),
  widgets: () => import("./widgets.js"),
  domains: () => import("./domains.js"),
  agents: () => import("./agents.js"),
  history: () => import("./history.js"),
};

const root = document.getElementById("app");
let cleanup = null;

const systemDark = matchMedia("(prefers-color-scheme: dark)");
systemDark.addEventListener("change", () => applyTheme(document.documentElement.dataset.theme));
applyTheme(localStorage.getItem("upzento-theme") ?? "auto");
window.addEventListener("hashchange", route);
onSignedOut(() => {
  live.disconnect();
  showSignIn("Your session has ended. Sign in again.");
});
start();

async function start() {
  try {
    if (location.hash.startsWith("#/invite/")) return showInvitation(location.hash.slice(9));
    if (await resume()) return enter();
    showSignIn();
  } catch (error) {
    fill(root, h("p", { class: "error", role: "alert" }, `The console could not start: ${error.message}`));
  }
}

function showSignIn(notice) {
  cleanup?.();
  cleanup = null;
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Upzento Chat"),
    notice ? h("p", { class: "notice" }, notice) : null,
    field("E-mail", email),
    field("Password", password),
    error,
    h("button", { class: "primary", type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      signIn(await api("POST", "/auth/login", { email: email.value, password: password.value }));
      enter();
    } catch (problem) {
      error.textContent = signInError(problem);
      password.select();
    }
  });
  fill(root, h("main", { id: "main", class: "signin-page" }, form));
  email.focus();
}

function signInError(problem) {
  if (!(problem instanceof Problem)) return problem.message;
  if (problem.code === "invalid_credentials") return "The e-mail or the password is not right.";
  if (problem.code === "rate_limited") return "Too many attempts. Wait a few minutes and try again.";
  return problem.message;
}

function showInvitation(token) {
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", minlength: 8, required: true });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "invite-title" },
    h("h1", { id: "invite-title" }, "Welcome to Upzento Chat"),
    h("p", {}, "Choose a password to finish setting up your account."),
    field("New password", password, "At least 8 characters."),
    error,
    h("button", { class: "primary", type: "submit" }, "Set password and sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      signIn(await api("POST", "/auth/invitations/accept", { token, password: password.value }));
      history.replaceState(null, "", "#/inbox");
      enter();
    } catch (problem) {
      error.textContent =
        problem.code === "invitation_not_found" ? "This invitation link is no longer valid. Ask an admin for a new one." : problem.message;
    }
  });
  fill(root, h("main", { id: "main", class: "signin-page" }, form));
  password.focus();
}

async function enter() {
  await loadDirectory();
  live.connect();
  const links = [
    ["inbox", "Inbox"],
    ["widgets", "Widgets"],
    ["domains", "Domains"],
    isAdmin() ? ["agents", "Agents"] : null,
    isAdmin() || isAuditor() ? ["history", "History"] : null,
  ].filter(Boolean);
  const nav = h(
    "nav",
    { class: "topnav", "aria-label": "Console" },
    h("ul", {}, links.map(([page, text]) => h("li", {}, h("a", { href: `#/${page}`, "data-page": page }, text)))),
  );
  const theme = h(
    "button",
    { class: "ghost theme", type: "button", title: "Change the colour theme", onclick: cycleTheme },
    themeLabel(),
  );
  const out = h("button", { class: "ghost", type: "button", onclick: leave }, "Sign out");
  fill(
    root,
    h("a", { class: "skip", href: "#main", onclick: skipToMain }, "Skip to content"),
    h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, "Upzento"),
      nav,
      h("span", { class: "whoami" }, `${session.agent.name} · ${session.tenant.name}`),
      theme,
      out,
    ),
    h("main", { id: "main", tabindex: "-1" }),
    h("div", { id: "announcer", class: "sr-only", "aria-live": "polite" }),
  );
  if (!location.hash || location.hash === "#/") history.replaceState(null, "", "#/inbox");
  route();
}

function skipToMain(event) {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

async function leave() {
  live.disconnect();
  await signOut().catch(() => {});
  history.replaceState(null, "", "#/");
  showSignIn("You are signed out.");
}

async function route() {
  const main = document.getElementById("main");
  if (!session.agent || !main) return;
  const [page = "inbox", ...params] = location.hash.replace(/^#\/?/, "").split("/");
  const load = pages[page] ?? pages.inbox;
  for (const link of document.querySelectorAll(".topnav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const module = await load();
  const next = location.hash.replace(/^#\/?/, "").split("/")[0] || "inbox";
  if (next !== page) return;
  if (main.dataset.page !== page) {
    cleanup?.();
    cleanup = null;
    main.dataset.page = page;
    fill(main);
    cleanup = (await module.render(main, params)) ?? null;
    document.title = `${page.charAt(0).toUpperCase()}${page.slice(1)} · Upzento Chat`;
  } else {
    module.update?.(main, params);
  }
}

function themeLabel() {
  const theme = document.documentElement.dataset.theme;
  return { auto: "Theme: auto", light: "Theme: light", dark: "Theme: dark" }[theme];
}

function cycleTheme(event) {
  const order = ["auto", "light", "dark"];
  const next = order[(order.indexOf(document.documentElement.dataset.theme) + 1) % order.length];
  applyTheme(next);
  localStorage.setItem("upzento-theme", next);
  event.currentTarget.textContent = themeLabel();
  announce(themeLabel());
}

/** Chooses the theme; `auto` follows the system's light or dark setting, live. */
function applyTheme(theme) {
  const root = document.documentElement;
  root.dataset.theme = theme;
  root.dataset.scheme = theme === "auto" ? (systemDark.matches ? "dark" : "light") : theme;
}
