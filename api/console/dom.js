// Building the page without HTML strings: every piece of text goes in as a text node, so
// message content, names and labels are always shown as text, never parsed as markup.

/**
 * An element: `h("button", {class: "primary", onclick: send}, "Send")`.
 * Attributes whose value is false, null or undefined are left out; `true` sets them empty.
 * Children may be strings, numbers, nodes, arrays of them, or null (skipped).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `parent` with `children`. */
export function fill(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

/** A labelled form control: the label names it for screen readers and clicks focus it. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const hintNode = hint ? h("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintNode);
}

/** A `<select>` of `[value, text]` pairs with `selected` chosen. */
export function select(attributes, options, selected) {
  return h(
    "select",
    attributes,
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "narrow" });

/** "5 min ago" for recent times, a date for older ones. */
export function ago(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const steps = [
    [60, "second"],
    [3600, "minute", 60],
    [86400, "hour", 3600],
    [604800, "day", 86400],
  ];
  if (Math.abs(seconds) < 45) return "now";
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(seconds) < limit) return relative.format(Math.round(seconds / size), unit);
  }
  return new Date(iso).toLocaleDateString();
}

/** How long since `iso`, short: "3m", "2h", "4d". */
export function waited(iso, now = Date.now()) {
  if (!iso) return "";
  const minutes = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 60000));
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 1440) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}

/** A full local date and time, for titles and tooltips. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** Announces `text` to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = text;
}

const focusable = "a, button, input, select, textarea, [tabindex]";

/** What names a control across repaints: its id in a list, its name or its label. */
function focusKey(element) {
  return element.dataset?.id || element.getAttribute("name") || element.getAttribute("aria-label") || element.textContent;
}

/**
 * Runs `repaint`, which rebuilds what is inside `container`, and puts the keyboard focus back
 * on the control that had it, with what was being typed there: live updates must not throw
 * a keyboard user out of the list or the form they are in, nor lose their words.
 */
export function keepFocus(container, repaint) {
  const active = document.activeElement;
  const key = active && active !== container && container.contains(active) ? focusKey(active) : null;
  const typed = key !== null && (active.tagName === "TEXTAREA" || ["text", "search", "email", "password"].includes(active.type)) ? active.value : null;
  repaint();
  if (key === null) return;
  const again = [...container.querySelectorAll(focusable)].find((element) => focusKey(element) === key);
  if (again && typed !== null) again.value = typed;
  again?.focus();
}
