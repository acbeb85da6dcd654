/*
 * Upzento Chat website widget. Plain JavaScript, no framework, no build step: the server
 * serves this file as it is. Everything renders inside a Shadow DOM, so the host page's CSS
 * cannot break the widget and the widget cannot break the page. Message content is only
 * ever set with textContent: it is shown as text, never parsed as HTML.
 *
 * Embed: <script async src="https://chat.example.com/widget.js" data-upzento-key="pk_..."></script>
 * API: window.Upzento.open(), .close(), .identify({id, hash, name, email}), .on(event, fn)
 * with events "open", "close" and "message". Docs: docs/widget.md.
 */
(function () {
  "use strict";
  if (window.Upzento && window.Upzento.__loaded) return;

  var script = document.currentScript || document.querySelector("script[data-upzento-key]");
  if (!script) return;
  var KEY = script.getAttribute("data-upzento-key");
  var BASE = new URL(script.src, location.href).origin;
  var API = BASE + "/api/v1/widget/" + encodeURIComponent(KEY);
  var STORE = "upzento:" + KEY + ":";
  var TYPING_EVERY_MS = 3000;

  var listeners = { open: [], close: [], message: [] };
  var queued = [];
  var state = {
    session: null, cursor: null, socket: null, retry: 0, open: false, messages: {},
    order: [], lastTypedAt: 0, typingTimer: null, seenUpTo: null, identifyPending: null
  };
  var ui = {};

  function emit(name, detail) {
    listeners[name].forEach(function (fn) { try { fn(detail); } catch (e) { console.error(e); } });
  }

  function store(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(STORE + name);
      if (value === null) localStorage.removeItem(STORE + name);
      else localStorage.setItem(STORE + name, value);
    } catch (e) { return null; }
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function request(method, path, body) {
    var headers = { "content-type": "application/json" };
    if (state.session) headers.authorization = "Bearer " + state.session.token;
    return fetch(API + path, {
      method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
      credentials: "omit", mode: "cors"
    }).then(function (response) {
      if (response.status === 204) return null;
      return response.json().then(function (json) {
        if (!response.ok) { var error = new Error(json.detail || response.statusText); error.problem = json; throw error; }
        return json;
      });
    });
  }

  /* Readable text on the brand colour: WCAG relative luminance, black or white. */
  function textOn(hex) {
    var m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (!m) return "#ffffff";
    var l = [m[1], m[2], m[3]].map(function (c) {
      var v = parseInt(c, 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    return (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) ? "#111111" : "#ffffff";
  }

  var CSS = [
    ":host{all:initial}",
    ".root{--brand:#1f93ff;--on-brand:#fff;--bg:#fff;--fg:#1b1f24;--muted:#5b6470;--bubble:#eef1f4;--border:#d5dae0;",
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg)}",
    ".root.dark{--bg:#16191d;--fg:#eceff3;--muted:#a9b1bb;--bubble:#262b31;--border:#3a4149}",
    ".launcher{position:fixed;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;display:flex;align-items:center;justify-content:center;",
    "background:var(--brand);color:var(--on-brand);box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;font-size:24px}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid var(--fg);outline-offset:2px}",
    ".right .launcher,.right .panel.floating{right:20px}.left .launcher,.left .panel.floating{left:20px}",
    ".panel{display:flex;flex-direction:column;background:var(--bg);color:var(--fg);border:1px solid var(--border);",
    "border-radius:12px;overflow:hidden;box-sizing:border-box}",
    ".panel.floating{position:fixed;bottom:88px;width:360px;height:520px;max-height:calc(100vh - 110px);",
    "box-shadow:0 8px 30px rgba(0,0,0,.25);z-index:2147483001}",
    ".panel.inline{width:100%;height:100%;min-height:420px}",
    ".panel[hidden]{display:none}",
    "header{background:var(--brand);color:var(--on-brand);padding:12px 14px;display:flex;align-items:flex-start;gap:8px}",
    "header h2{font-size:16px;margin:0 0 2px;font-weight:600}header p{margin:0;font-size:13px;opacity:.95}",
    "header .titles{flex:1}.close{background:transparent;border:0;color:var(--on-brand);font-size:22px;cursor:pointer;line-height:1;padding:2px 6px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;list-style:none;margin:0}",
    ".msg{max-width:80%;padding:8px 11px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    ".msg.visitor{align-self:flex-end;background:var(--brand);color:var(--on-brand);border-bottom-right-radius:4px}",
    ".msg.team{align-self:flex-start;background:var(--bubble);border-bottom-left-radius:4px}",
    ".meta{font-size:11px;color:var(--muted);align-self:flex-end;margin-top:-2px}",
    ".notice{font-size:13px;color:var(--muted);text-align:center;padding:4px 8px}",
    ".typing{font-size:12px;color:var(--muted);padding:0 14px 4px;min-height:18px}",
    "form{display:flex;flex-direction:column;gap:6px;border-top:1px solid var(--border);padding:10px}",
    ".prechat{display:flex;gap:6px}.prechat[hidden]{display:none}",
    "input,textarea{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--border);border-radius:8px;padding:8px;box-sizing:border-box;width:100%}",
    ".row{display:flex;gap:6px;align-items:flex-end}textarea{resize:none;height:40px;max-height:120px}",
    ".send{background:var(--brand);color:var(--on-brand);border:0;border-radius:8px;padding:0 14px;height:40px;cursor:pointer;font:inherit;font-weight:600}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.panel.floating{left:0!important;right:0!important;bottom:0;top:0;width:100%;height:100%;max-height:none;border-radius:0}}"
  ].join("");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  /* A speech bubble, drawn: emoji fonts are not on every machine. */
  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  function applyTheme(widget) {
    var dark = widget.theme === "dark" ||
      (widget.theme === "auto" && window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches);
    ui.root.classList.toggle("dark", !!dark);
  }

  function render(widget) {
    var inlineTarget = widget.display_type === "embedded" ? document.querySelector("[data-upzento-widget]") : null;
    var host = el("div", { "data-upzento-host": "" });
    var shadow = host.attachShadow({ mode: "open" });
    shadow.appendChild(el("style", { text: CSS }));
    ui.root = el("div", { "class": "root " + (widget.position === "bottom_left" ? "left" : "right") });
    ui.root.style.setProperty("--brand", widget.brand_color);
    ui.root.style.setProperty("--on-brand", textOn(widget.brand_color));
    applyTheme(widget);
    if (window.matchMedia) {
      var query = matchMedia("(prefers-color-scheme: dark)");
      if (query.addEventListener) query.addEventListener("change", function () { applyTheme(widget); });
    }

    var title = widget.greeting_title || widget.name;
    ui.title = el("h2", { id: "upz-title", text: title });
    var subtitle = state.session.agents_online ? widget.greeting_message : (widget.offline_message || widget.greeting_message);
    ui.subtitle = el("p", { text: subtitle || "" });
    ui.close = el("button", { "class": "close", type: "button", "aria-label": "Close chat", text: "\u00d7" });
    var header = el("header", {}, [el("div", { "class": "titles" }, [ui.title, ui.subtitle])]);
    if (!inlineTarget) header.appendChild(ui.close);
    ui.log = el("ol", { "class": "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    ui.typing = el("div", { "class": "typing", "aria-live": "polite" });
    ui.name = el("input", { type: "text", name: "name", autocomplete: "name", placeholder: "Your name", "aria-label": "Your name" });
    ui.email = el("input", { type: "email", name: "email", autocomplete: "email", placeholder: "Your e-mail", "aria-label": "Your e-mail" });
    ui.prechat = el("div", { "class": "prechat" }, [ui.name, ui.email]);
    ui.prechat.hidden = !(widget.pre_chat_form && !state.session.identified);
    ui.input = el("textarea", { name: "message", rows: "1", placeholder: "Type a message\u2026", "aria-label": "Message", maxlength: "4000" });
    ui.send = el("button", { "class": "send", type: "submit", text: "Send" });
    ui.form = el("form", { "aria-label": "Write a message" }, [ui.prechat, el("div", { "class": "row" }, [ui.input, ui.send])]);
    ui.panel = el("section", {
      "class": "panel " + (inlineTarget ? "inline" : "floating"), role: "dialog", "aria-labelledby": "upz-title"
    }, [header, ui.log, ui.typing, ui.form]);
    ui.root.appendChild(ui.panel);

    if (inlineTarget) {
      inlineTarget.appendChild(host);
      state.open = true;
    } else {
      ui.panel.hidden = true;
      ui.launcher = el("button", { "class": "launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false" }, [chatIcon()]);
      ui.launcher.addEventListener("click", function () { state.open ? close() : open(); });
      ui.root.insertBefore(ui.launcher, ui.panel);
      document.body.appendChild(host);
    }
    shadow.appendChild(ui.root);

    ui.close.addEventListener("click", close);
    ui.panel.addEventListener("keydown", function (e) { if (e.key === "Escape" && !inlineTarget) close(); });
    ui.form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });
    ui.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
    });
    ui.input.addEventListener("input", typed);
    document.addEventListener("visibilitychange", markRead);

    if (widget.display_type === "popup" && widget.popup_delay_seconds != null && !store("closed")) {
      setTimeout(function () { if (!state.open && !store("closed")) open(); }, widget.popup_delay_seconds * 1000);
    }
  }

  function open() {
    if (!ui.panel) { queued.push(open); return; }
    if (state.open && !ui.panel.hidden) return;
    state.open = true;
    ui.panel.hidden = false;
    if (ui.launcher) ui.launcher.setAttribute("aria-expanded", "true");
    ui.input.focus();
    scrollDown();
    markRead();
    emit("open");
  }

  function close() {
    if (!ui.panel || !ui.launcher) return;
    state.open = false;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
    store("closed", "1");
    emit("close");
  }

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  function statusText(message) {
    if (message.from !== "visitor") return "";
    var seen = state.seenUpTo ? state.order.indexOf(state.seenUpTo) : -1;
    /* A marker on a message the widget does not show (a private note) is newer than all it has. */
    if (state.seenUpTo && seen < 0) seen = state.order.length - 1;
    if (seen >= 0 && state.order.indexOf(message.id) <= seen) return "Seen";
    return message.pending ? "Sending\u2026" : "Sent";
  }

  function show(message) {
    var known = state.messages[message.id];
    if (known) {
      known.pending = false;
      known.meta.textContent = statusText(known);
      return;
    }
    var bubble = el("li", { "class": "msg " + message.from });
    bubble.textContent = message.content;
    var meta = el("li", { "class": "meta", "aria-hidden": message.from === "visitor" ? "false" : "true" });
    message.meta = meta;
    state.messages[message.id] = message;
    state.order.push(message.id);
    ui.log.appendChild(bubble);
    if (message.from === "visitor") ui.log.appendChild(meta);
    meta.textContent = statusText(message);
    ui.prechat.hidden = ui.prechat.hidden || state.order.length > 0;
    scrollDown();
    emit("message", { id: message.id, from: message.from, content: message.content });
  }

  function refreshSeen() {
    state.order.forEach(function (id) {
      var m = state.messages[id];
      if (m.from === "visitor") m.meta.textContent = statusText(m);
    });
  }

  function lastTeamMessage() {
    for (var i = state.order.length - 1; i >= 0; i--) {
      if (state.messages[state.order[i]].from === "team") return state.order[i];
    }
    return null;
  }

  function receipt(status) {
    var last = lastTeamMessage();
    if (!last) return Promise.resolve();
    return request("POST", "/receipts", { message_id: last, status: status }).catch(function () {});
  }

  function markRead() {
    if (state.open && document.visibilityState === "visible" && ui.panel && !ui.panel.hidden) receipt("read");
  }

  function typed() {
    var now = Date.now();
    if (state.socket && state.socket.readyState === 1 && now - state.lastTypedAt > TYPING_EVERY_MS && ui.input.value) {
      state.lastTypedAt = now;
      state.socket.send(JSON.stringify({ type: "typing", on: true }));
    }
  }

  function stopTyping() {
    if (state.lastTypedAt && state.socket && state.socket.readyState === 1) {
      state.socket.send(JSON.stringify({ type: "typing", on: false }));
    }
    state.lastTypedAt = 0;
  }

  function submit() {
    var content = ui.input.value.trim();
    if (!content) return;
    var id = uuid();
    var body = { id: id, content: content };
    /* The first message carries who the visitor is: from the pre-chat form or identify(). */
    if (state.order.length === 0) {
      if (ui.name.value.trim()) body.name = ui.name.value.trim();
      if (ui.email.value.trim()) body.email = ui.email.value.trim();
    }
    ui.input.value = "";
    stopTyping();
    show({ id: id, from: "visitor", content: content, pending: true });
    ui.prechat.hidden = true;
    request("POST", "/messages", body).then(function () {
      show({ id: id, from: "visitor", content: content });
    }).catch(function (error) {
      state.messages[id].meta.textContent = "Not sent: " + error.message;
    });
  }

  function showTyping(on) {
    clearTimeout(state.typingTimer);
    ui.typing.textContent = on ? "The team is typing\u2026" : "";
    if (on) state.typingTimer = setTimeout(function () { ui.typing.textContent = ""; }, 8000);
  }

  function onEvent(event) {
    state.cursor = event.cursor;
    var d = event.data;
    if (event.event_type === "MessagePosted") {
      showTyping(false);
      show({ id: d.message_id, from: "team", content: d.content });
      /* One after the other: a read that lands first would make the delivery a no-op. */
      receipt("delivered").then(markRead);
    } else if (event.event_type === "MessageReceived") {
      show({ id: d.message_id, from: "visitor", content: d.content });
    } else if (event.event_type === "ReadMarkerMoved") {
      state.seenUpTo = d.last_read_message_id;
      refreshSeen();
    }
  }

  function connect() {
    var url = API.replace(/^http/, "ws") + "/realtime?token=" + encodeURIComponent(state.session.token) +
      (state.cursor ? "&after=" + encodeURIComponent(state.cursor) : "");
    var socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = function () { state.retry = 0; };
    socket.onmessage = function (frame) {
      var message;
      try { message = JSON.parse(frame.data); } catch (e) { return; }
      if (message.type === "event") onEvent(message);
      else if (message.type === "typing") showTyping(message.on);
      else if (message.type === "ready" && !state.cursor) state.cursor = message.cursor;
    };
    socket.onclose = function () {
      if (state.socket !== socket) return;
      var wait = Math.min(30000, 500 * Math.pow(2, state.retry++)) * (0.5 + Math.random() / 2);
      setTimeout(connect, wait);
    };
  }

  function loadHistory() {
    return request("GET", "/messages?limit=100").then(function (page) {
      page.data.forEach(function (m) { show({ id: m.id, from: m.from, content: m.content }); });
      state.cursor = page.cursor;
      markRead();
    });
  }

  function restart() {
    if (state.socket) { var old = state.socket; state.socket = null; old.close(); }
    state.messages = {}; state.order = [];
    while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    return loadHistory().then(connect);
  }

  function identify(user) {
    if (!state.session) {
      state.identifyPending = user;
      return Promise.resolve();
    }
    return request("POST", "/identify", { user_id: String(user.id), hash: user.hash }).then(function (session) {
      state.session = session;
      store("token", session.token);
      if (user.name) ui.name.value = user.name;
      if (user.email) ui.email.value = user.email;
      ui.prechat.hidden = true;
      return restart();
    });
  }

  function start() {
    request("POST", "/sessions", { token: store("token") || undefined }).then(function (session) {
      state.session = session;
      store("token", session.token);
      render(session.widget);
      queued.splice(0).forEach(function (fn) { fn(); });
      if (state.identifyPending) {
        return identify(state.identifyPending).catch(function (error) {
          console.warn("Upzento chat could not verify this user: " + error.message);
          return loadHistory().then(connect);
        });
      }
      return loadHistory().then(connect);
    }).catch(function (error) {
      /* Not on a verified domain, a disabled widget, or no server: render nothing. */
      console.warn("Upzento chat is not available on this page: " + error.message);
    });
  }

  window.Upzento = {
    __loaded: true,
    open: open,
    close: close,
    identify: identify,
    on: function (name, fn) { if (listeners[name]) listeners[name].push(fn); }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
