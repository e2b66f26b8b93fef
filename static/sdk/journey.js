/**
 * Journey Engine browser SDK v1 (README, "Browser SDK"): window.journey.
 * At-least-once delivery with fixed ids (the engine makes it exactly-once); a failure
 * never breaks the page, which keeps its default content.
 */
(() => {
  "use strict";
  const W = window, D = document, N = navigator, C = console;
  if (W.journey && W.journey.version) return; // loaded twice
  const tag = D.currentScript || D.querySelector("script[data-site-key]");
  const attr = (name, fallback) => tag?.getAttribute("data-" + name) || fallback;
  const KEY = attr("site-key");
  if (!KEY) return C.error("journey: the script tag needs data-site-key");
  const API = attr("api-host", tag.src ? new URL(tag.src, location.href).origin : location.origin).replace(/\/+$/, "");
  const BATCH = +attr("batch-size", 20), INTERVAL = +attr("flush-interval", 5000);
  const MAX_QUEUE = 1000, EVENT_BYTES = 32000, BEACON_BYTES = 60000, FETCH_BYTES = 500000;
  const P = "je:" + KEY + ":", QUERY = "?site_key=" + encodeURIComponent(KEY), TEXT = "text/plain;charset=UTF-8";
  const FIELDS = /^(page_url|page_title|interaction_type|interaction_data|engagement_score|duration_seconds|scroll_depth|click_count|conversion_value|device_context)$/;
  const URL_ATTR = /^(href|src)$/, SAFE_ATTR = /^(href|src|alt|title|aria-label)$/;
  const noop = () => {};
  const now = () => Date.now();
  const enc = encodeURIComponent;

  // Anti-flicker, by the SDK itself: a script that fails to load hides nothing.
  const style = D.createElement("style");
  style.textContent = "[data-journey-slot]{visibility:hidden!important}";
  (D.head || D.documentElement).append(style);
  const reveal = () => style.remove();
  setTimeout(reveal, +attr("slot-timeout", 400));

  // One key per item: no lost update between tabs.
  let store;
  try {
    store = W.localStorage;
    store.setItem(P + "t", "1");
    store.removeItem(P + "t");
  } catch {
    const m = new Map();
    store = { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), key: (i) => [...m.keys()][i], get length() { return m.size; } };
  }
  const get = (k) => { try { return JSON.parse(store.getItem(P + k)); } catch { return null; } };
  const set = (k, v) => { try { store.setItem(P + k, json(v)); } catch (e) { C.warn("journey: storage full", e); } };
  const del = (k) => store.removeItem(P + k);
  const keys = (prefix) => {
    const out = [];
    for (let i = 0; i < store.length; i++) {
      const k = store.key(i);
      if (k && k.startsWith(P + prefix)) out.push(k.slice(P.length));
    }
    return out;
  };
  // No NUL, no lone surrogate: PostgreSQL refuses them.
  const json = (v) => JSON.stringify(v, (k, x) => typeof x == "string" ? x.replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]|\0/g, (m) => (m.length > 1 ? m : "")) : x);
  const bytes = (s) => new Blob([s]).size;
  const uuid = () => crypto.randomUUID ? crypto.randomUUID() : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

  // Consent: a consent() choice, else denied by GPC or data-consent, else granted.
  const gpc = N.globalPrivacyControl === true;
  const cons = Object.assign({ personalization: !gpc && attr("consent") != "denied", cross_device: false }, get("k"));

  let visitorId = get("v");
  if (!visitorId) set("v", (visitorId = uuid()));
  let sess = get("s");
  let prev = !!sess; // this browser had a session before: "returning"
  const expired = () => !sess || now() - sess.t > sess.i * 1000;
  // Re-read: another tab may have started a newer session.
  const touch = () => { sess = get("s") || sess; sess.t = now(); set("s", sess); };
  const newSession = () => { sess = { id: uuid(), t: now(), i: (sess && sess.i) || 1800 }; set("s", sess); };
  const rotate = (slots) => { newSession(); set("p:" + sess.id, startBody(slots, prev)); prev = true; return sess.id; };
  let myStart = null; // this page's session start: its decision fills the page
  const fresh = expired();
  if (fresh) newSession();

  let slots = [], booted, boot, ready = false, readyFns = [], told = false, todo = false, late = false;
  booted = new Promise((r) => (boot = r));
  let stopped = false, fails = 0, timer = 0, sendP = null, again = false, startP = null, skew = 0;
  let waiters = [], conv = {}, beaconed = new Set();

  function deviceType() {
    const ua = N.userAgent;
    if (/iPad|Tablet|PlayBook|Silk|Android(?!.*Mobile)/i.test(ua) || (/Macintosh/.test(ua) && N.maxTouchPoints > 1)) return "tablet";
    if (/Mobi|iPhone|iPod|Android|Windows Phone/i.test(ua)) return "mobile";
    return N.maxTouchPoints > 0 && Math.min(screen.width, screen.height) < 500 ? "mobile" : "desktop";
  }

  const SOURCES = "google bing yahoo duckduckgo baidu yandex ecosia tiktok instagram youtube facebook twitter linkedin pinterest reddit snapchat".split(" ");
  const ALIASES = { "t.co": "twitter", "x.com": "twitter", "youtu.be": "youtube", "fb.com": "facebook", "lnkd.in": "linkedin" };
  function sourceOf(host) {
    if (!host || host == location.hostname) return "direct";
    host = host.replace(/^www\./, "");
    return ALIASES[host] || SOURCES.find((s) => host.split(".").includes(s)) || "referral";
  }

  // Without personalization consent: only what the control content needs.
  function startBody(slotKeys, returning) {
    const url = new URL(location.href), utm = {};
    for (const [k, v] of url.searchParams) if (/^utm_/.test(k)) utm[k] = v.slice(0, 200);
    let host = "";
    try { host = new URL(D.referrer).hostname; } catch {}
    const entry = { source: (utm.utm_source || sourceOf(host)).toLowerCase().slice(0, 50), url: url.origin + url.pathname };
    if (utm.utm_campaign) entry.campaign = utm.utm_campaign;
    const body = { session_id: sess.id, visitor_id: visitorId, device: { type: deviceType(), ...(N.webdriver && { webdriver: true }) }, entry_point: entry, consent: { ...cons }, slots: slotKeys };
    if (cons.personalization) {
      body.device.screen = screen.width + "x" + screen.height;
      entry.url = location.href;
      body.utm = utm;
      body.referrer = D.referrer ? { url: D.referrer } : {};
      body.returning = returning;
    }
    return body;
  }

  // A simple request (no preflight); keepalive lets a small call finish after unload.
  // Retry-After (429, 503) holds all calls until then.
  async function post(path, body) {
    if (get("h") > now()) return { ok: false, status: 429, data: null };
    body = json(body);
    const r = await fetch(API + path + QUERY, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": TEXT },
      body,
      keepalive: bytes(body) < BEACON_BYTES,
      signal: AbortSignal.timeout?.(15000),
    });
    let data = null, wait = r.headers.get("Retry-After");
    if (wait && !r.ok) set("h", now() + 1000 * wait);
    try { data = await r.json(); } catch {}
    return { ok: r.ok, status: r.status, data };
  }
  const failure = (path, r) => Object.assign(new Error("journey: " + path + " answered " + r.status), { status: r.status, body: r.data });
  // A 4xx but 408/429 is final (refused or quarantined).
  const final = (r) => r.status < 500 && r.status != 408 && r.status != 429;
  function stop(r) {
    if (!stopped) C.error("journey: key or origin refused (" + r.status + "), sending stopped", r.data);
    stopped = true;
  }
  const refused = (r) => (r.status == 401 || r.status == 403) && (stop(r), true);

  // Sends stored session starts (the identical body each time).
  function started() {
    return startP || (startP = (async () => {
      try {
        await booted;
        for (const k of keys("p:")) {
          const body = get(k);
          if (!body) continue;
          const r = await post("/api/v1/sessions", body);
          if (r.ok) {
            const data = r.data || {};
            del(k);
            if (body.session_id == sess.id) {
              sess.i = data.session_idle_seconds || sess.i;
              set("s", sess);
            }
            if (body.session_id == myStart) {
              myStart = null;
              render(data.decision);
            }
          } else if (refused(r) || !final(r)) throw failure("/api/v1/sessions", r);
          else {
            C.error("journey: session start refused", r.data);
            del(k);
          }
        }
        if (!ready && !get("p:" + sess.id)) {
          ready = true;
          readyFns.splice(0).forEach(run);
        }
        if (late) decidePage().catch(noop); // this page's slots, when its first attempt failed
      } finally {
        startP = null;
      }
    })());
  }
  const run = (fn) => { try { fn(journey); } catch (e) { C.error(e); } };

  async function call(path, body) {
    await started();
    const r = await post(path, body);
    if (!r.ok) throw failure(path, r);
    return r.data;
  }

  const pending = (sid) => get("p:" + sid) != null;
  // Events whose session is known, oldest first.
  const queued = () => keys("e:").map((k) => [k, get(k)]).filter((x) => x[1] && !pending(x[1].e.session_id)).sort((a, b) => a[1].n - b[1].n);
  function chunks(list, max) {
    const out = [];
    let cur = [], size = 12;
    for (const x of list) {
      const n = bytes(json(x[1].e)) + 1;
      if (cur.length && size + n > max) out.push(cur), (cur = []), (size = 12);
      cur.push(x);
      size += n;
    }
    if (cur.length) out.push(cur);
    return out;
  }
  const schedule = (ms) => { if (!timer) timer = setTimeout(() => { timer = 0; send(); }, ms); };

  // One run at a time. Never rejects.
  function send() {
    if (sendP) {
      again = true;
      return sendP;
    }
    return (sendP = deliver().finally(() => {
      sendP = null;
      settle();
      if (again && !fails && !stopped) {
        again = false;
        send();
      }
    }));
  }

  async function deliver() {
    clearTimeout(timer);
    timer = 0;
    if (stopped) return;
    try {
      await started();
      for (const k of keys("c:")) {
        const c = get(k);
        if (!c || pending(c.s)) continue;
        const r = await post("/api/v1/sessions/" + enc(c.s) + "/conversions", c.b);
        if (r.ok || (final(r) && !refused(r))) {
          if (!r.ok) C.error("journey: conversion refused", r.data);
          del(k);
          const id = k.slice(2);
          if (conv[id]) conv[id][r.ok ? 0 : 1](r.ok ? r.data : failure("conversion", r));
          delete conv[id];
        } else throw 0;
      }
      for (const batch of chunks(queued(), FETCH_BYTES)) {
        const r = await post("/api/v1/events", { events: batch.map((x) => x[1].e) });
        if (r.ok) {
          if (r.data?.rejected?.length) C.warn("journey: events quarantined", r.data.rejected);
        } else if (refused(r) || !final(r)) throw 0;
        else C.error("journey: batch refused", r.data);
        batch.forEach((x) => del(x[0]));
      }
      fails = 0;
      if (keys("e:").length) schedule(INTERVAL);
    } catch {
      for (const id in conv) conv[id][1](new Error(stopped ? "journey: sending stopped" : "journey: engine unreachable, conversion queued"));
      conv = {};
      if (stopped) return;
      fails++;
      timer = setTimeout(() => { timer = 0; send(); }, Math.max(get("h") - now(), Math.min(60000, 1000 * 2 ** fails) * (0.5 + Math.random() / 2)));
    }
  }

  function settle() {
    const left = new Set([...keys("e:"), ...keys("c:"), ...keys("p:")]);
    waiters = waiters.filter((w) => {
      if (stopped) w[2](new Error("journey: sending stopped"));
      else if ([...w[0]].some((k) => left.has(k))) return true;
      else w[1]();
    });
  }

  // Kept until a fetch acknowledges it: a resend is a duplicate.
  function beacon() {
    if (stopped || !N.sendBeacon || get("h") > now()) return;
    const blob = (v) => new Blob([json(v)], { type: TEXT });
    for (const k of keys("c:")) {
      const c = get(k);
      if (c && !pending(c.s) && !beaconed.has(k) && N.sendBeacon(API + "/api/v1/sessions/" + enc(c.s) + "/conversions" + QUERY, blob(c.b))) beaconed.add(k);
    }
    for (const batch of chunks(queued().filter((x) => !beaconed.has(x[0])), BEACON_BYTES)) {
      if (!N.sendBeacon(API + "/api/v1/events" + QUERY, blob({ events: batch.map((x) => x[1].e) }))) break;
      batch.forEach((x) => beaconed.add(x[0]));
    }
  }

  // Rendering: text only, never HTML.
  const safeUrl = (u) => {
    try {
      const x = new URL(u, location.href);
      return /^https?:$/.test(x.protocol) ? x.href : null;
    } catch {
      return null;
    }
  };
  const pick = (o, path) => path.split(".").reduce((x, k) => (x == null ? x : x[k]), o);

  function fill(el, entry) {
    for (const t of [el, ...el.querySelectorAll("[data-journey-field]")]) {
      if (t.closest("[data-journey-slot]") != el) continue; // a nested slot fills itself
      for (const spec of (t.getAttribute("data-journey-field") || "").split(",")) {
        let [name, field] = spec.includes(":") ? spec.split(":") : [t.tagName == "IMG" ? "src" : "", spec];
        name = name.trim();
        let value = field.trim() && pick(entry.content, field.trim());
        if (value == null || value === "" || typeof value == "object") continue;
        value = String(value);
        if (!name) t.textContent = value;
        else if (SAFE_ATTR.test(name) && (!URL_ATTR.test(name) || (value = safeUrl(value)))) t.setAttribute(name, value);
      }
    }
    el.setAttribute("data-journey-variant", entry.variant);
  }

  function render(dec) {
    if (!dec) return;
    const t = Date.parse(dec.server_time);
    if (t) skew = t - now();
    for (const el of D.querySelectorAll("[data-journey-slot]")) {
      const entry = dec.slots?.[el.getAttribute("data-journey-slot")];
      if (entry?.variant) fill(el, entry);
    }
    cues(dec.scarcity);
  }

  const pad = (n) => String(Math.floor(n)).padStart(2, "0");
  const hms = (s) => (s >= 86400 ? Math.floor(s / 86400) + "d " : "") + pad((s / 3600) % 24) + ":" + pad((s / 60) % 60) + ":" + pad(s % 60);
  const restore = (el) => { if (el && !el.querySelector("[data-journey-rule]")) el.replaceChildren(...el._journeyDefault); };

  function cues(list) {
    if (!Array.isArray(list)) return;
    for (const el of D.querySelectorAll("[data-journey-cue]")) {
      el._journeyDefault = el._journeyDefault || [...el.childNodes];
      const type = el.getAttribute("data-journey-cue"), sku = el.getAttribute("data-journey-offer");
      const items = list.filter((c) => c?.message && (!type || c.trigger_type == type) && (!sku || c.offer == sku)).map(cue).filter(Boolean);
      el.replaceChildren(...(items.length ? items : el._journeyDefault));
    }
  }

  // A countdown runs on the server's clock, removed at its end.
  function cue(c) {
    const item = D.createElement("span");
    item.setAttribute("data-journey-rule", c.rule);
    item.setAttribute("data-journey-trigger", c.trigger_type);
    item.textContent = c.message;
    const end = Date.parse(c.ends_at);
    if (!end) return item;
    const clock = D.createElement("span");
    clock.setAttribute("data-journey-countdown", "");
    item.append(" ", clock);
    const tick = () => {
      const left = end - now() - skew;
      if (left <= 0) {
        const parent = item.parentNode;
        item.remove();
        return restore(parent);
      }
      clock.textContent = hms(Math.ceil(left / 1000));
      setTimeout(() => item.isConnected && tick(), left % 1000 || 1000);
    };
    return end - now() - skew > 0 && (tick(), item);
  }

  const pageSlots = () => [...new Set([...D.querySelectorAll("[data-journey-slot]")].map((e) => e.getAttribute("data-journey-slot")))];

  // Once per page; an unknown slot key is dropped and the rest retried.
  async function decidePage() {
    if (!todo) return;
    todo = false;
    try {
      await journey.decide(slots);
    } catch (e) {
      const unknown = e.status == 400 && e.body?.slots;
      if (unknown) {
        const rest = slots.filter((s) => !unknown.includes("Unknown slot: " + s + "."));
        if (rest.length) await journey.decide(rest);
      } else if (e.status == 404) {
        myStart = rotate(slots); // unknown to the engine (erased): a new session
        await started();
      } else throw ((todo = !e.status), e);
    }
  }

  async function load() {
    slots = pageSlots();
    if (fresh) set("p:" + (myStart = sess.id), startBody(slots, prev));
    else touch();
    prev = true;
    boot();
    if (cons.personalization) journey.track("page_view");
    todo = !fresh && slots.length > 0;
    try {
      await started();
      await decidePage();
    } catch {
      // engine unreachable: the page keeps its default content
    } finally {
      reveal();
      late = true;
      schedule(INTERVAL);
    }
  }

  const journey = {
    /** The SDK's version. */
    version: "1",
    /** @type {string} first-party random visitor id */
    get visitorId() { return visitorId; },
    /** @type {string} current session id */
    get sessionId() { return sess.id; },

    /**
     * Calls fn(journey) once the session is known to the engine (at once if it is).
     * @param {function(object): void} fn
     */
    ready(fn) {
      ready ? run(fn) : readyFns.push(fn);
    },

    /**
     * Queues a touchpoint (other props go into interaction_data); a no-op without consent.
     * @param {string} type
     * @param {Object} [props]
     * @returns {string|null} event_id
     */
    track(type, props) {
      if (!cons.personalization) {
        if (!told) C.info("journey: no personalization consent, track() sends nothing");
        told = true;
        return null;
      }
      sess = get("s") || sess;
      expired() ? rotate([]) : touch();
      const e = { event_id: uuid(), session_id: sess.id, type: String(type).slice(0, 50), timestamp: new Date().toISOString(), page_url: location.href, page_title: D.title.slice(0, 255) };
      const extra = {};
      for (const k in props) (FIELDS.test(k) ? e : extra)[k] = props[k];
      if (Object.keys(extra).length) e.interaction_data = { ...e.interaction_data, ...extra };
      if (bytes(json(e)) > EVENT_BYTES) return C.error("journey: event too large", e), null;
      const count = keys("e:").length;
      if (count >= MAX_QUEUE) {
        const old = keys("e:").map((k) => [k, get(k)]).sort((a, b) => (a[1]?.n || 0) - (b[1]?.n || 0)).slice(0, count - MAX_QUEUE + 1);
        old.forEach((x) => del(x[0]));
        C.warn("journey: queue full, dropped " + old.length + " oldest events");
      }
      set("e:" + e.event_id, { n: now() * 1000 + (count % 1000), e });
      if (!fails && count + 1 >= BATCH) send();
      else schedule(INTERVAL);
      return e.event_id;
    },

    /**
     * Sends now; resolves once all queued at call time is acknowledged.
     * @returns {Promise<void>}
     */
    flush() {
      const items = new Set([...keys("e:"), ...keys("c:"), ...keys("p:")]);
      return new Promise((resolve, reject) => {
        waiters.push([items, resolve, reject]);
        fails = 0;
        send();
      });
    },

    /**
     * Moves the session to a stage and shows the answer's cues; null without consent.
     * @param {string} newStage
     * @param {Object} [engagement] time_on_page, scroll_depth, interaction_count, engagement_score
     * @param {Object} [options] trigger_event, context
     * @returns {Promise<Object|null>}
     */
    async stage(newStage, engagement, options) {
      if (!cons.personalization) return null;
      touch();
      const answer = await call("/api/v1/sessions/" + enc(sess.id) + "/stage", { new_stage: newStage, engagement: engagement || {}, ...options });
      cues(answer.scarcity_triggers);
      return answer;
    },

    /**
     * Decides slots and fills the page's matching slot and cue elements.
     * @param {string[]} slotKeys
     * @param {Object} [context]
     * @returns {Promise<Object>} the decision
     */
    async decide(slotKeys, context) {
      touch();
      const dec = await call("/api/v1/decide", { session_id: sess.id, slots: slotKeys, context: context || {} });
      render(dec);
      return dec;
    },

    /**
     * Records a conversion (kept until acknowledged; rejects if unreachable now).
     * @param {Object} c type, value, currency, product, funnel_step
     * @returns {Promise<Object>} conversion_id, duplicate, attribution
     */
    convert(c) {
      c = c || {};
      const id = uuid(), b = { event_id: id, type: c.type || "purchase" };
      if (c.value != null) b.value = typeof c.value == "number" ? c.value.toFixed(2) : String(c.value);
      for (const k of ["currency", "product", "funnel_step"]) if (c[k] != null) b[k] = c[k];
      touch();
      set("c:" + id, { s: sess.id, b });
      return new Promise((resolve, reject) => {
        conv[id] = [resolve, reject];
        stopped ? reject(new Error("journey: sending stopped")) : send();
      });
    },

    /**
     * Sets consent, remembered here over GPC and data-consent.
     * @param {Object} choice personalization, cross_device (booleans)
     * @returns {Promise<Object>}
     */
    async consent(choice) {
      const had = cons.personalization, body = { visitor_id: visitorId };
      for (const k of ["personalization", "cross_device"]) if (typeof (choice || {})[k] == "boolean") cons[k] = body[k] = choice[k];
      set("k", cons);
      if (!cons.personalization) keys("e:").forEach(del);
      const answer = await call("/api/v1/consent", body);
      if (!had && cons.personalization && slots.length) (todo = true), decidePage().catch(noop);
      return answer;
    },

    /**
     * Links the session to a person across devices (needs cross-device consent).
     * @param {string} identifier
     * @param {string} [method] email (default), phone, user_id
     * @returns {Promise<Object>}
     */
    identify(identifier, method) {
      return call("/api/v1/identify", { session_id: sess.id, identifier, method: method || "email" });
    },

    /**
     * Runs ["method", ...args], as queued in a `window.journey = []` stub.
     * @param {Array} args
     */
    push(args) {
      return journey[args[0]](...args.slice(1));
    },
  };

  const stub = W.journey;
  W.journey = journey;
  D.addEventListener("visibilitychange", () => (D.visibilityState == "hidden" ? beacon() : beaconed.clear()));
  W.addEventListener("pagehide", beacon);
  W.addEventListener("online", () => { fails = 0; send(); });
  const start = () => {
    load().catch(noop);
    if (Array.isArray(stub)) stub.forEach((c) => { try { Promise.resolve(journey.push(c)).catch(noop); } catch (e) { C.error(e); } });
  };
  D.readyState == "loading" ? D.addEventListener("DOMContentLoaded", start) : start();
})();
