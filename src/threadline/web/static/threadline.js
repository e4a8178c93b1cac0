/*! threadline.js: Threadline's first-party web tracker (Segment Spec messages). Apache-2.0.
 * Usage and the pre-load stub: docs/tracking.md. Posts to `${host}/v1/batch` as text/plain (no preflight). */
(function (w, d) {
  "use strict";
  const VERSION = "0.1.0";
  const stub = w.threadline;
  if (stub && stub.__threadline) return; // loaded twice
  const nav = w.navigator;
  const ANON = "tl_anon", USER = "tl_user", TRAITS = "tl_traits";
  const MAX_STORED = 1000, MAX_BODY = 450000, MAX_KEEPALIVE = 60000, MAX_BACKOFF = 60000;
  const me = d.currentScript && d.currentScript.src;

  let cfg = null, storeKey = "", queue = [], inflight = new Set(), pending = [];
  let timer = 0, attempts = 0, user = null, traits = {}, anon = null, sending = Promise.resolve();

  const ls = {
    get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { v == null ? w.localStorage.removeItem(k) : w.localStorage.setItem(k, v); } catch (e) { /* full or blocked */ } },
  };
  const utf8 = w.TextEncoder ? new TextEncoder() : null;
  const bytes = (s) => (utf8 ? utf8.encode(s).length : s.length * 3); // the server's limits are in bytes
  const obj = (x) => (x && typeof x === "object" && !Array.isArray(x) ? x : {});
  const json = (s, dflt) => { try { return s ? JSON.parse(s) : dflt; } catch (e) { return dflt; } };

  function uuid() {
    const c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b); else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function cookie(name, value) {
    if (value === undefined) {
      const m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    }
    let c = `${name}=${encodeURIComponent(value || "")}; Path=/; SameSite=Lax; Max-Age=${value ? 31536000 : 0}`;
    if (cfg && cfg.cookieDomain) c += `; Domain=${cfg.cookieDomain}`;
    if (w.location.protocol === "https:") c += "; Secure";
    d.cookie = c;
  }

  // Kept in both places so clearing either one does not split the visitor into two profiles.
  function anonymousId(id) {
    if (id) anon = String(id);
    anon = anon || ls.get(ANON) || cookie(ANON) || uuid();
    if (ls.get(ANON) !== anon) ls.set(ANON, anon);
    if (cookie(ANON) !== anon) cookie(ANON, anon);
    return anon;
  }

  function pageInfo() {
    const l = w.location;
    return { path: l.pathname, url: l.href, title: d.title, referrer: d.referrer, search: l.search };
  }

  function enqueue(type, fields) {
    const msg = Object.assign({
      type, messageId: uuid(), anonymousId: anonymousId(), timestamp: new Date().toISOString(),
      context: {
        library: { name: "threadline.js", version: VERSION }, page: pageInfo(),
        userAgent: nav.userAgent, locale: nav.language,
      },
    }, fields);
    if (user) msg.userId = user;
    queue.push(msg);
    if (queue.length > MAX_STORED) queue.splice(0, queue.length - MAX_STORED);
    save();
    if (queue.length - inflight.size >= cfg.maxBatch && !attempts) send(false); else schedule(cfg.flushInterval);
  }

  const save = () => ls.set(storeKey, queue.length ? JSON.stringify(queue) : null);

  function schedule(delay) {
    if (!timer && queue.length) timer = setTimeout(() => { timer = 0; send(false); }, delay);
  }

  function take(limit, budget) {
    const batch = [];
    let size = 0;
    for (const m of queue) {
      if (inflight.has(m.messageId)) continue;
      const n = bytes(JSON.stringify(m)) + 1;
      if (batch.length && (batch.length >= limit || size + n > budget)) break;
      batch.push(m); size += n;
    }
    return batch;
  }

  function settle(batch) {
    const ids = new Set(batch.map((m) => m.messageId));
    queue = queue.filter((m) => !ids.has(m.messageId));
    save();
  }

  // Delivery is at least once: messageId makes a resend harmless (the server counts it as a duplicate).
  function send(leaving) {
    if (!cfg) return Promise.resolve();
    if (!leaving && inflight.size) return sending;
    clearTimeout(timer); timer = 0;
    const batch = take(leaving ? 500 : cfg.maxBatch, leaving ? MAX_KEEPALIVE : MAX_BODY);
    if (!batch.length) return Promise.resolve();
    batch.forEach((m) => inflight.add(m.messageId));
    const body = JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey: cfg.writeKey });
    const url = `${cfg.host}/v1/batch`;
    const done = () => batch.forEach((m) => inflight.delete(m.messageId));
    if (!w.fetch) {
      done();
      if (nav.sendBeacon && nav.sendBeacon(url, body)) settle(batch);
      return Promise.resolve();
    }
    const headers = { "Content-Type": "text/plain" };
    const request = w.fetch(url, { method: "POST", body, headers, keepalive: leaving, credentials: "omit" })
      .then((res) => (res.status >= 500 || res.status === 429 ? Promise.reject(res.status) : res))
      .then(() => { done(); attempts = 0; settle(batch); if (queue.length) return send(false); }, () => {
        // Any other 4xx counts as delivered: the server kept the valid messages and quarantined the rest.
        done(); attempts++;
        clearTimeout(timer); timer = 0;
        schedule(Math.min(MAX_BACKOFF, cfg.flushInterval * 2 ** attempts) * (0.75 + Math.random() / 2));
      });
    if (!leaving) sending = request;
    return request;
  }

  const api = {
    __threadline: VERSION,
    init(writeKey, options) {
      const o = options || {};
      const host = (o.host || (me ? new URL(me).origin : w.location.origin)).replace(/\/+$/, "");
      cfg = {
        writeKey, host, flushInterval: o.flushInterval || 1000, maxBatch: o.maxBatch || 20, cookieDomain: o.cookieDomain,
      };
      storeKey = "tl_queue:" + writeKey;
      user = ls.get(USER); traits = json(ls.get(TRAITS), {});
      queue = json(ls.get(storeKey), []).concat(queue); // a previous page's undelivered messages go first
      anonymousId();
      const calls = pending; pending = [];
      calls.forEach(([name, args]) => api[name].apply(api, args));
      schedule(0);
      return api;
    },
    identify(userId, newTraits) {
      if (userId && typeof userId === "object") { newTraits = userId; userId = null; }
      if (userId != null && userId !== "") { user = String(userId); ls.set(USER, user); }
      traits = Object.assign({}, traits, obj(newTraits));
      ls.set(TRAITS, JSON.stringify(traits));
      enqueue("identify", { traits: Object.assign({}, traits) });
    },
    track(event, properties) { enqueue("track", { event, properties: obj(properties) }); },
    page(category, name, properties) { // page([category,] [name,] [properties]) as in analytics.js
      if (typeof name !== "string") { properties = name; name = category; category = null; }
      if (name && typeof name === "object") { properties = name; name = null; }
      const fields = { properties: Object.assign(pageInfo(), obj(properties)) };
      if (name) fields.name = fields.properties.name = name;
      if (category) fields.category = fields.properties.category = category;
      enqueue("page", fields);
    },
    reset() {
      user = null; traits = {}; anon = null;
      [USER, TRAITS, ANON].forEach((k) => ls.set(k, null));
      cookie(ANON, null);
      anonymousId();
    },
    anonymousId,
    flush() { return send(false); },
  };
  // Before init, calls wait (in order) and run once init has a write key.
  ["identify", "track", "page", "reset", "flush"].forEach((name) => {
    const real = api[name];
    api[name] = function () {
      if (cfg) return real.apply(api, arguments);
      pending.push([name, Array.from(arguments)]);
      return name === "flush" ? Promise.resolve() : undefined;
    };
  });
  api.push = (call) => { const [name, ...args] = call; if (typeof api[name] === "function") api[name].apply(api, args); };

  const leave = () => { if (cfg && queue.length) send(true); };
  d.addEventListener("visibilitychange", () => { if (d.visibilityState === "hidden") leave(); });
  w.addEventListener("pagehide", leave);
  w.addEventListener("online", () => { if (cfg) send(false); });

  w.threadline = api;
  if (Array.isArray(stub)) stub.forEach(api.push);
})(window, document);
