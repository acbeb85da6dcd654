// Widgets: list, create, edit and delete, with a live preview of the settings, the embed
// snippet with a copy button, and (for admins) the identity-verification secret.

import { api, isAdmin } from "./api.js";
import { announce, fill, field, h, select } from "./dom.js";

const DISPLAY = [
  ["floating_button", "Floating button"],
  ["embedded", "Embedded in the page"],
  ["popup", "Popup"],
];
const THEMES = [
  ["auto", "Follow the visitor's system"],
  ["light", "Light"],
  ["dark", "Dark"],
];
const POSITIONS = [
  ["bottom_right", "Bottom right"],
  ["bottom_left", "Bottom left"],
];

export async function render(main) {
  const list = h("ul", { class: "cards", "aria-label": "Widgets" });
  const editor = h("section", { class: "editor", "aria-label": "Widget settings" });
  const error = h("p", { class: "error", role: "alert" });
  fill(
    main,
    h(
      "div",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, "Widgets"), isAdmin() ? h("button", { type: "button", class: "primary", onclick: () => edit(null) }, "New widget") : null),
      error,
      h("div", { class: "split" }, list, editor),
    ),
  );
  let widgets = [];
  let domains = [];

  async function reload(selected) {
    try {
      [widgets, domains] = await Promise.all([api("GET", "/widgets"), api("GET", "/domains")]);
    } catch (problem) {
      error.textContent = problem.message;
      return;
    }
    fill(
      list,
      widgets.length ? null : h("li", { class: "none" }, "No widgets yet."),
      widgets.map((w) =>
        h(
          "li",
          { class: "card" },
          h("h2", {}, w.name),
          h("p", {}, `${DISPLAY.find(([v]) => v === w.display_type)[1]} · ${w.enabled ? "enabled" : "disabled"}`),
          h("button", { type: "button", onclick: () => edit(w), "aria-label": `Open widget ${w.name}` }, "Open"),
        ),
      ),
    );
    const current = selected && widgets.find((w) => w.id === selected);
    if (current) edit(current);
  }

  async function edit(widget) {
    const admin = isAdmin();
    const v = widget ?? { name: "", display_type: "floating_button", theme: "auto", position: "bottom_right", brand_color: "#1f93ff", greeting_title: null, greeting_message: null, offline_message: null, pre_chat_form: false, popup_delay_seconds: null, allowed_domains: [], enabled: true };
    const input = (name, value, attributes = {}) => h("input", { name, value: value ?? "", disabled: !admin, ...attributes });
    const controls = {
      name: input("name", v.name, { type: "text", required: true, maxlength: 200 }),
      display_type: select({ name: "display_type", disabled: !admin }, DISPLAY, v.display_type),
      theme: select({ name: "theme", disabled: !admin }, THEMES, v.theme),
      position: select({ name: "position", disabled: !admin }, POSITIONS, v.position),
      brand_color: input("brand_color", v.brand_color, { type: "color" }),
      greeting_title: input("greeting_title", v.greeting_title, { type: "text", maxlength: 500 }),
      greeting_message: h("textarea", { name: "greeting_message", rows: 2, maxlength: 500, disabled: !admin }, v.greeting_message ?? ""),
      offline_message: h("textarea", { name: "offline_message", rows: 2, maxlength: 500, disabled: !admin }, v.offline_message ?? ""),
      pre_chat_form: h("input", { type: "checkbox", name: "pre_chat_form", checked: v.pre_chat_form, disabled: !admin }),
      popup_delay_seconds: input("popup_delay_seconds", v.popup_delay_seconds, { type: "number", min: 0, max: 65535 }),
      enabled: h("input", { type: "checkbox", name: "enabled", checked: v.enabled, disabled: !admin }),
    };
    const verified = domains.filter((d) => d.status === "verified");
    const domainBoxes = verified.map((d) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "allowed_domains", value: d.id, checked: v.allowed_domains.includes(d.id), disabled: !admin }), ` ${d.hostname}`));
    const preview = h("div", { class: "widget-preview", role: "img", "aria-label": "Preview of the widget" });
    const status = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "widget-form" },
      h("h2", {}, widget ? `Widget: ${widget.name}` : "New widget"),
      field("Name", controls.name),
      field("Display type", controls.display_type),
      field("Theme", controls.theme),
      field("Position", controls.position),
      field("Brand colour", controls.brand_color),
      field("Greeting title", controls.greeting_title),
      field("Greeting message", controls.greeting_message),
      field("Offline message", controls.offline_message),
      h("label", { class: "check" }, controls.pre_chat_form, " Ask for name and e-mail before the first message"),
      field("Popup opens after (seconds)", controls.popup_delay_seconds, "Popup only. Empty: it waits for the visitor."),
      h("fieldset", {}, h("legend", {}, "Verified domains it runs on"), domainBoxes.length ? domainBoxes : h("p", {}, "No verified domain yet: verify one on the Domains page.")),
      widget ? h("label", { class: "check" }, controls.enabled, " Enabled") : null,
      status,
      admin ? h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, widget ? "Save" : "Create widget"), widget ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete") : null) : null,
    );
    const paintPreview = () => drawPreview(preview, settings());
    form.addEventListener("input", paintPreview);
    form.addEventListener("change", paintPreview);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      try {
        const body = settings();
        if (!widget) delete body.enabled;
        const saved = widget ? await api("PATCH", `/widgets/${widget.id}`, body) : await api("POST", "/widgets", body);
        announce(widget ? "Widget saved" : "Widget created");
        await reload(saved.id);
      } catch (problem) {
        status.textContent = problem.field ? `${problem.message} (${problem.field})` : problem.message;
      }
    });

    function settings() {
      const text = (control) => (control.value.trim() === "" ? null : control.value.trim());
      const delay = controls.popup_delay_seconds.value;
      return {
        name: controls.name.value.trim(),
        display_type: controls.display_type.value,
        theme: controls.theme.value,
        position: controls.position.value,
        brand_color: controls.brand_color.value,
        greeting_title: text(controls.greeting_title),
        greeting_message: text(controls.greeting_message),
        offline_message: text(controls.offline_message),
        pre_chat_form: controls.pre_chat_form.checked,
        popup_delay_seconds: delay === "" ? null : Number(delay),
        allowed_domains: [...form.querySelectorAll("input[name=allowed_domains]:checked")].map((box) => box.value),
        enabled: controls.enabled.checked,
      };
    }

    async function remove() {
      if (!confirm(`Delete the widget ${widget.name}? Sites that embed it stop showing it.`)) return;
      try {
        await api("DELETE", `/widgets/${widget.id}`);
        announce("Widget deleted");
        fill(editor);
        await reload();
      } catch (problem) {
        status.textContent = problem.message;
      }
    }

    fill(
      editor,
      h("div", { class: "editor-grid" }, form, h("div", { class: "editor-side" }, h("h3", {}, "Preview"), preview, widget ? await installation(widget, admin) : null)),
    );
    paintPreview();
    if (!widget) controls.name.focus();
  }

  await reload();
}

/** The embed snippet with a copy button, and the identity secret for admins. */
async function installation(widget, admin) {
  const code = (await api("GET", `/widgets/${widget.id}/embed-code`)).html;
  const snippet = h("textarea", { class: "snippet", readonly: true, rows: 3, name: "embed_code" }, code);
  const copied = h("span", { class: "copied", "aria-live": "polite" });
  const copy = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(code);
        } catch {
          snippet.select();
          document.execCommand("copy");
        }
        copied.textContent = "Copied";
      },
    },
    "Copy snippet",
  );
  const section = h(
    "section",
    { class: "install" },
    h("h3", {}, "Install"),
    h("p", {}, "Paste this before </body> on every page of a verified domain."),
    field("Embed snippet", snippet),
    copy,
    copied,
  );
  if (admin) {
    const secret = h("output", { class: "secret" });
    section.append(
      h("h3", {}, "Identity verification"),
      h("p", {}, "Your site's server signs a logged-in user's id with this secret (HMAC-SHA256). Keep it on the server."),
      h(
        "button",
        {
          type: "button",
          onclick: async (event) => {
            secret.textContent = (await api("GET", `/widgets/${widget.id}/identity-secret`)).secret;
            event.currentTarget.remove();
          },
        },
        "Show secret",
      ),
      secret,
    );
  }
  return section;
}

/** A drawing of the widget as visitors will see it, from the settings in the form. */
function drawPreview(preview, s) {
  const dark = s.theme === "dark" || (s.theme === "auto" && matchMedia("(prefers-color-scheme: dark)").matches);
  preview.className = `widget-preview ${dark ? "dark" : "light"} ${s.position === "bottom_left" ? "left" : "right"} ${s.display_type}`;
  preview.style.setProperty("--brand", s.brand_color);
  preview.style.setProperty("--on-brand", readableOn(s.brand_color));
  const panel = h(
    "div",
    { class: "preview-panel" },
    h("div", { class: "preview-header" }, h("strong", {}, s.greeting_title ?? "Chat with us"), h("span", {}, s.greeting_message ?? "We usually reply in a few minutes.")),
    h("div", { class: "preview-log" }, h("p", { class: "preview-msg" }, "Hello! How can we help?")),
    s.pre_chat_form ? h("div", { class: "preview-form" }, "Name · E-mail") : null,
    h("div", { class: "preview-input" }, "Type a message…"),
  );
  const launcher = h("div", { class: "preview-launcher" }, h("span", { class: "preview-bubble" }));
  const page = h("div", { class: "preview-page" }, h("div", { class: "preview-line" }), h("div", { class: "preview-line short" }), h("div", { class: "preview-line" }));
  fill(preview, page, panel, s.display_type === "embedded" ? null : launcher);
}

/** Black or white, whichever reads better on `hex`. */
function readableOn(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.179 ? "#000000" : "#ffffff";
}
