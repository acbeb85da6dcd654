// The agent WebSocket: committed events, typing, viewing and unread counts, live. The
// browser sends the session cookie with the upgrade. On a drop it reconnects with the last
// cursor it handled, so no event is missed or seen twice (docs/realtime.md).

const handlers = new Set();
let socket = null;
let cursor = null;
let retry = 500;
let stopped = true;
let pending = [];
const viewing = new Set();

/** Calls `handler(message)` for every server message; answers a function that stops it. */
export function listen(handler) {
  handlers.add(handler);
  return () => handlers.delete(handler);
}

/** Opens the connection (once) and keeps it open until `disconnect`. */
export function connect() {
  if (!stopped) return;
  stopped = false;
  open();
}

/** Closes the connection for good (sign-out). */
export function disconnect() {
  stopped = true;
  cursor = null;
  viewing.clear();
  socket?.close();
  socket = null;
}

function open() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const after = cursor ? `?after=${encodeURIComponent(cursor)}` : "";
  const current = new WebSocket(`${scheme}://${location.host}/api/v1/realtime${after}`);
  socket = current;
  current.onopen = () => {
    retry = 500;
    for (const id of viewing) current.send(JSON.stringify({ type: "viewing", conversation_id: id, on: true }));
    for (const frame of pending) current.send(frame);
    pending = [];
  };
  current.onmessage = (frame) => {
    const message = JSON.parse(frame.data);
    if (message.type === "event" || message.type === "ready") cursor = message.cursor;
    if (message.type === "ready") message.resumed = Boolean(after);
    for (const handler of handlers) handler(message);
  };
  current.onclose = () => {
    if (socket === current) socket = null;
    if (stopped) return;
    for (const handler of handlers) handler({ type: "disconnected" });
    setTimeout(() => !stopped && !socket && open(), retry);
    retry = Math.min(retry * 2, 10000);
  };
}

function send(message) {
  const frame = JSON.stringify(message);
  if (socket?.readyState === WebSocket.OPEN) socket.send(frame);
  else if (message.type === "viewing") pending.push(frame);
}

/** Tells the other agents this one opened (`on`) or left a conversation. */
export function setViewing(conversationId, on) {
  if (on) viewing.add(conversationId);
  else viewing.delete(conversationId);
  send({ type: "viewing", conversation_id: conversationId, on });
}

/** Tells the others this agent is (or stopped) typing in a conversation. */
export function setTyping(conversationId, on) {
  send({ type: "typing", conversation_id: conversationId, on });
}
