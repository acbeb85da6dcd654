// Domains: register a hostname, see the DNS record and the file that prove it is yours,
// verify with one click (and see why it failed), revoke.

import { api, isAdmin } from "./api.js";
import { announce, fill, field, h } from "./dom.js";

const STATUS = { pending: "Waiting for verification", verified: "Verified", failed: "Verification failed" };

export async function render(main) {
  const list = h("ul", { class: "domain-list", "aria-label": "Domains" });
  const error = h("p", { class: "error", role: "alert" });
  const hostname = h("input", { type: "text", name: "hostname", required: true, placeholder: "shop.example.com", autocomplete: "off" });
  const add = h("form", { class: "inline-form" }, field("Hostname", hostname, "A site's address; a pasted URL is fine."), h("button", { type: "submit", class: "primary" }, "Add domain"));
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const domain = await api("POST", "/domains", { hostname: hostname.value.trim() });
      hostname.value = "";
      announce(`Domain ${domain.hostname} added`);
      await reload();
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  fill(
    main,
    h(
      "div",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, "Domains")),
      h("p", {}, "The widget runs only on domains you have proved are yours."),
      isAdmin() ? add : null,
      error,
      list,
    ),
  );

  async function reload() {
    let domains;
    try {
      domains = await api("GET", "/domains");
    } catch (problem) {
      error.textContent = problem.message;
      return;
    }
    fill(list, domains.length ? null : h("li", { class: "none" }, "No domains yet."), domains.map(card));
  }

  function card(domain) {
    const outcome = h("p", { class: "error", role: "alert" }, domain.failure_reason ? `Why it failed: ${domain.failure_reason}` : "");
    const verify = h(
      "button",
      {
        type: "button",
        class: "primary",
        onclick: async () => {
          verify.disabled = true;
          verify.textContent = "Checking…";
          try {
            await api("POST", `/domains/${domain.id}/verify`, {});
            announce(`${domain.hostname} is verified`);
          } catch (problem) {
            announce(`${domain.hostname} could not be verified`);
            if (problem.code !== "domain_verification_failed") error.textContent = problem.message;
          }
          await reload();
        },
      },
      "Verify now",
    );
    const revoke = h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!confirm(`Revoke ${domain.hostname}? Widgets stop running on it.`)) return;
          await api("DELETE", `/domains/${domain.id}`);
          announce(`${domain.hostname} revoked`);
          await reload();
        },
      },
      "Revoke",
    );
    const { dns, http } = domain.verification;
    return h(
      "li",
      { class: `card domain ${domain.status}`, "data-hostname": domain.hostname },
      h("h2", {}, domain.hostname),
      h("p", { class: `status status-${domain.status}` }, STATUS[domain.status], domain.verified_by ? ` (by ${domain.verified_by})` : ""),
      domain.status === "verified"
        ? null
        : h(
            "div",
            { class: "proof" },
            h("p", {}, "Publish either of these, then verify:"),
            h("h3", {}, "A DNS record"),
            h("dl", {}, h("dt", {}, "Name"), h("dd", {}, h("code", {}, dns.name)), h("dt", {}, "Type"), h("dd", {}, h("code", {}, dns.type)), h("dt", {}, "Value"), h("dd", {}, h("code", {}, dns.value))),
            h("h3", {}, "Or a file on the site"),
            h("dl", {}, h("dt", {}, "Address"), h("dd", {}, h("code", {}, http.url)), h("dt", {}, "Content"), h("dd", {}, h("code", {}, http.body))),
          ),
      outcome,
      isAdmin() ? h("div", { class: "row" }, domain.status === "verified" ? null : verify, revoke) : null,
    );
  }

  await reload();
}
