/*! chat-widget.js: Threadline's web chat widget. Apache-2.0.
 * One tag: <script src="https://HOST/static/chat-widget.js" data-write-key="WRITE_KEY"></script>
 * Optional: data-email, data-name (a known visitor), data-title, data-placeholder, data-send, data-open.
 * API: threadlineChat.identify({email, name}), threadlineChat.open(). Docs: docs/service.md "Web chat".
 * Endpoints: api/chat.py. The visitor is the web tracker's anonymous id (threadline.js: the same
 * localStorage key and cookie, "tl_anon"), and the email from the tracker's identify traits. */
(function (w, d) {
  "use strict";
  if (w.threadlineChat && w.threadlineChat.__threadline) return; // loaded twice
  const me = d.currentScript;
  if (!me) return;
  const host = new URL(me.src).origin;
  const data = me.dataset;
  const writeKey = data.writeKey;
  if (!writeKey) return;
  const ANON = "tl_anon", TRAITS = "tl_traits", SESSION = "tl_chat:" + writeKey; // ANON, TRAITS: threadline.js

  const ls = {
    get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { v == null ? w.localStorage.removeItem(k) : w.localStorage.setItem(k, v); } catch (e) { /* blocked */ } },
  };
  const json = (s, dflt) => { try { return s ? JSON.parse(s) : dflt; } catch (e) { return dflt; } };
  const uuid = () => (w.crypto && w.crypto.randomUUID ? w.crypto.randomUUID()
    : "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, (c) => {
      const r = (Math.random() * 16) | 0; return (c === "x" ? r : (r & 3) | 8).toString(16);
    }));

  function cookie(name) {
    const m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  // The tracker's anonymous id, so the chat lands on the profile of the same browsing; made here (and
  // stored where the tracker looks) when the page has no tracker.
  function anonymousId() {
    let anon = (w.threadline && typeof w.threadline.anonymousId === "function" && w.threadline.anonymousId())
      || ls.get(ANON) || cookie(ANON);
    if (!anon) {
      anon = uuid();
      ls.set(ANON, anon);
      d.cookie = `${ANON}=${encodeURIComponent(anon)}; Path=/; SameSite=Lax; Max-Age=31536000`;
    }
    return anon;
  }

  const known = { email: data.email || null, name: data.name || null };
  function identity() {
    const traits = json(ls.get(TRAITS), {}); // what threadline.js's identify kept
    return { email: known.email || traits.email || null, name: known.name || traits.name || null };
  }

  let session = json(ls.get(SESSION), null), source = null, box = null, list = null, input = null;
  const shown = new Set();
  const pendingRows = []; // lines drawn when sent, until the server has them

  async function post(path, body) {
    // text/plain: a simple request, no CORS preflight (the server reads JSON whatever the type).
    const response = await fetch(host + path, {
      method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ writeKey, ...body }),
    });
    return { status: response.status, body: await response.json().catch(() => ({})) };
  }

  // Opening the box and sending at once must not open two sessions (the stream would listen to one
  // and the message go to the other): callers share the request in flight.
  let opening = null;
  function ensureSession(fresh) {
    if (session && !fresh) return Promise.resolve(session);
    if (!opening) {
      opening = post("/chat/sessions", {})
        .then((answer) => {
          if (answer.status !== 201) throw new Error("chat: the write key was refused");
          session = answer.body;
          ls.set(SESSION, JSON.stringify(session));
          return session;
        })
        .finally(() => { opening = null; });
    }
    return opening;
  }

  function line(item) {
    if (item.id != null && shown.has(item.id)) return;
    if (item.id != null) shown.add(item.id);
    // The stream may announce the visitor's own line before the POST that stored it answers: take
    // over the line drawn when it was sent instead of drawing it twice.
    if (item.id != null && item.direction !== "out") {
      const waiting = pendingRows.findIndex((p) => p.text === item.text);
      if (waiting >= 0) {
        const row = pendingRows.splice(waiting, 1)[0].row;
        list.appendChild(row); // back in place if the history had cleared the list
        return row;
      }
    }
    const row = d.createElement("div");
    row.className = "tl-chat-line tl-chat-" + (item.direction === "out" ? "agent" : "visitor");
    row.textContent = item.text; // text, never HTML: an agent's words cannot run script here
    list.appendChild(row);
    list.scrollTop = list.scrollHeight;
    return row;
  }

  function listen() {
    if (source) source.close();
    const q = `writeKey=${encodeURIComponent(writeKey)}&secret=${encodeURIComponent(session.secret)}`;
    source = new EventSource(`${host}/chat/sessions/${encodeURIComponent(session.session_id)}/events?${q}`);
    source.addEventListener("history", (e) => {
      list.textContent = "";
      shown.clear();
      json(e.data, []).forEach(line);
      // Lines sent but not stored yet when the history was read stay, after it.
      pendingRows.forEach((p) => list.appendChild(p.row));
    });
    source.addEventListener("message", (e) => line(json(e.data, {})));
  }

  async function send(text) {
    const pending = line({ id: null, direction: "in", text });
    pendingRows.push({ row: pending, text });
    const who = identity();
    const body = { anonymousId: anonymousId(), email: who.email, name: who.name, text, clientMessageId: uuid() };
    let answer = await post(`/chat/sessions/${encodeURIComponent(session.session_id)}/messages`, { ...body, secret: session.secret });
    if (answer.status === 403) { // the server's key changed: a new session, once
      await ensureSession(true);
      listen();
      answer = await post(`/chat/sessions/${encodeURIComponent(session.session_id)}/messages`, { ...body, secret: session.secret });
    }
    const mine = pendingRows.findIndex((p) => p.row === pending);
    if (mine >= 0) pendingRows.splice(mine, 1);
    if (answer.status === 201 && answer.body.id != null) shown.add(answer.body.id);
    else if (answer.status !== 201 && pending) pending.classList.add("tl-chat-failed");
  }

  function style() {
    const css = d.createElement("style");
    css.textContent = `
.tl-chat-button{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:#2b6cb0;color:#fff;font:14px sans-serif;cursor:pointer}
.tl-chat-box{position:fixed;right:20px;bottom:72px;z-index:2147483000;width:320px;height:420px;display:flex;flex-direction:column;background:#fff;border:1px solid #ccd;border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.15);font:14px sans-serif}
.tl-chat-box[hidden]{display:none}
.tl-chat-title{padding:10px 12px;background:#2b6cb0;color:#fff;border-radius:8px 8px 0 0}
.tl-chat-list{flex:1;overflow-y:auto;padding:8px;display:flex;flex-direction:column;gap:6px}
.tl-chat-line{max-width:80%;padding:6px 10px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.tl-chat-visitor{align-self:flex-end;background:#e2ecf8}
.tl-chat-agent{align-self:flex-start;background:#f1f1f1}
.tl-chat-failed{opacity:.5;text-decoration:line-through}
.tl-chat-form{display:flex;border-top:1px solid #ddd}
.tl-chat-form input{flex:1;border:0;padding:10px;font:inherit}
.tl-chat-form button{border:0;background:none;color:#2b6cb0;padding:0 12px;font:inherit;cursor:pointer}`;
    d.head.appendChild(css);
  }

  async function open() {
    box.hidden = false;
    input.focus();
    await ensureSession(false);
    if (!source) listen();
  }

  function build() {
    style();
    const button = d.createElement("button");
    button.type = "button";
    button.className = "tl-chat-button";
    button.textContent = data.open || "Chat with us";
    box = d.createElement("div");
    box.className = "tl-chat-box";
    box.hidden = true;
    const title = d.createElement("div");
    title.className = "tl-chat-title";
    title.textContent = data.title || "Chat";
    list = d.createElement("div");
    list.className = "tl-chat-list";
    list.setAttribute("aria-live", "polite");
    const form = d.createElement("form");
    form.className = "tl-chat-form";
    input = d.createElement("input");
    input.placeholder = data.placeholder || "Write a message";
    input.setAttribute("aria-label", input.placeholder);
    const submit = d.createElement("button");
    submit.type = "submit";
    submit.textContent = data.send || "Send";
    form.append(input, submit);
    box.append(title, list, form);
    d.body.append(box, button);
    button.addEventListener("click", () => (box.hidden ? open() : (box.hidden = true)));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      await ensureSession(false);
      if (!source) listen();
      await send(text);
    });
  }

  w.threadlineChat = {
    __threadline: true,
    identify(who) { who = who || {}; known.email = who.email || known.email; known.name = who.name || known.name; },
    open: () => open(),
  };
  if (d.body) build(); else d.addEventListener("DOMContentLoaded", build);
})(window, document);
