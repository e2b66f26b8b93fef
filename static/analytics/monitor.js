/*
 * The live monitor page: a websocket feed over a snapshot from the database.
 *
 * Every event message carries its stream's epoch and sequence number (analytics/monitor.py).
 * The page applies events in sequence order. An event that arrives early (several web
 * processes publish to one stream) waits up to REORDER_MS for the ones before it; if they
 * do not come, that is a gap, and the page reloads the snapshot (GET snapshot_url), which
 * holds the counters, the latest events and the stream's head. It does the same on every
 * (re)connect and when the epoch changes (Redis restarted). Messages that arrive while the
 * snapshot loads are kept and applied after it, those up to the snapshot's head dropped;
 * events are also de-duplicated by id. Counters messages carry the stream's head: a page
 * behind it also waits REORDER_MS, then resyncs.
 *
 * Closed with 4401 (not logged in) or 4403 (not staff), the page stops and says so;
 * otherwise it reconnects with a backoff of 1 s doubling to 15 s.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("monitor-config").textContent);
  var REORDER_MS = 1500;
  var MAX_FEED = 200;
  var MAX_BACKOFF_MS = 15000;

  var root = document.getElementById("monitor");
  var statusEl = document.getElementById("monitor-status");
  var feedEl = document.getElementById("monitor-feed");
  var emptyEl = document.getElementById("monitor-empty");
  var noteEl = document.getElementById("monitor-note");
  var siteEl = document.getElementById("monitor-site");

  var state = {
    site: String(config.site),
    socket: null,
    stream: null,
    epoch: null,
    lastSeq: null, // null until a snapshot was applied
    headSeen: 0,
    early: new Map(), // seq -> message that arrived before its predecessors
    gapTimer: null,
    resyncing: false,
    held: [], // messages received while the snapshot loads
    seen: new Set(),
    seenOrder: [],
    backoff: 1000,
    refused: false,
    resyncs: 0,
    gaps: 0,
    generation: 0, // bumps when the subscription changes; late snapshot answers are ignored
  };

  function setStatus(name, text) {
    statusEl.dataset.state = name;
    root.dataset.state = name;
    statusEl.textContent = text;
  }

  function note(text) {
    noteEl.hidden = !text;
    noteEl.textContent = text || "";
  }

  function showSeq() {
    root.dataset.lastSeq = state.lastSeq === null ? "" : String(state.lastSeq);
    root.dataset.resyncs = String(state.resyncs);
    root.dataset.gaps = String(state.gaps);
    document.getElementById("monitor-seq").textContent = state.lastSeq === null ? "–" : String(state.lastSeq);
    document.getElementById("monitor-stream").textContent = state.stream || "–";
    document.getElementById("monitor-resyncs").textContent = String(state.resyncs);
  }

  // --- socket ---------------------------------------------------------------------

  function connect() {
    if (state.refused) return;
    setStatus("connecting", "connecting…");
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + config.socket_path);
    state.socket = socket;
    socket.onopen = function () {
      state.backoff = 1000;
      subscribe();
    };
    socket.onmessage = function (frame) {
      var message;
      try {
        message = JSON.parse(frame.data);
      } catch (error) {
        return;
      }
      receive(message);
    };
    socket.onclose = function (event) {
      if (state.socket !== socket) return;
      state.socket = null;
      clearGapTimer();
      if (event.code === config.close_codes.not_authenticated || event.code === config.close_codes.not_staff) {
        state.refused = true;
        setStatus("refused", "refused");
        note(
          event.code === config.close_codes.not_staff
            ? "The live monitor is for staff only."
            : "Your session has ended; log in again to watch the monitor."
        );
        return;
      }
      var wait = state.backoff;
      state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
      setStatus("disconnected", "disconnected, retrying in " + Math.round(wait / 1000) + " s");
      window.setTimeout(connect, wait);
    };
  }

  function subscribe() {
    state.generation += 1;
    state.stream = null;
    state.epoch = null;
    state.lastSeq = null;
    state.headSeen = 0;
    state.early.clear();
    state.held = [];
    state.resyncing = true; // until the snapshot is in, messages are held
    clearGapTimer();
    setStatus("connecting", "subscribing…");
    var site = state.site === "all" ? "all" : Number(state.site);
    state.socket.send(JSON.stringify({ action: "subscribe", site: site }));
  }

  function receive(message) {
    if (message.type === "subscribed") {
      state.stream = message.stream;
      resync("connected");
      return;
    }
    if (message.type === "error") {
      note("The server refused the request: " + message.detail);
      return;
    }
    if (message.type !== "event" && message.type !== "counters") return;
    if (state.stream !== null && message.stream !== state.stream) return;
    if (state.resyncing) {
      state.held.push(message);
      return;
    }
    handle(message);
  }

  // --- sequence, gaps, snapshot ---------------------------------------------------

  function handle(message) {
    if (message.epoch !== state.epoch) {
      state.held.push(message);
      resync("the stream restarted");
      return;
    }
    if (message.type === "counters") {
      renderCounters(message.data, message.at);
      state.headSeen = Math.max(state.headSeen, message.seq);
      if (message.seq > state.lastSeq) armGapTimer();
      return;
    }
    state.headSeen = Math.max(state.headSeen, message.seq);
    if (message.seq <= state.lastSeq) return; // in the snapshot already, or a repeat
    if (message.seq !== state.lastSeq + 1) {
      state.early.set(message.seq, message);
      armGapTimer();
      return;
    }
    apply(message);
    state.lastSeq = message.seq;
    while (state.early.has(state.lastSeq + 1)) {
      var next = state.early.get(state.lastSeq + 1);
      state.early.delete(state.lastSeq + 1);
      apply(next);
      state.lastSeq = next.seq;
    }
    if (state.early.size === 0 && state.headSeen <= state.lastSeq) clearGapTimer();
    showSeq();
  }

  function armGapTimer() {
    if (state.gapTimer !== null) return;
    state.gapTimer = window.setTimeout(function () {
      state.gapTimer = null;
      if (state.resyncing) return;
      if (state.early.size > 0 || state.headSeen > state.lastSeq) {
        state.gaps += 1;
        resync("missed events after #" + state.lastSeq);
      }
    }, REORDER_MS);
  }

  function clearGapTimer() {
    if (state.gapTimer !== null) {
      window.clearTimeout(state.gapTimer);
      state.gapTimer = null;
    }
  }

  function resync(reason) {
    var generation = state.generation;
    state.resyncing = true;
    clearGapTimer();
    state.held = state.held.concat(Array.from(state.early.values()));
    state.early.clear();
    setStatus("resyncing", "loading snapshot…");
    var site = encodeURIComponent(state.site);
    fetch(config.snapshot_url + "?site=" + site, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (snapshot) {
        if (generation !== state.generation) return;
        applySnapshot(snapshot, reason);
      })
      .catch(function (error) {
        if (generation !== state.generation) return;
        setStatus("resyncing", "snapshot failed (" + error.message + "), retrying…");
        window.setTimeout(function () {
          if (generation === state.generation && state.socket) resync(reason);
        }, 2000);
      });
  }

  function applySnapshot(snapshot, reason) {
    state.stream = snapshot.stream;
    state.epoch = snapshot.epoch;
    state.lastSeq = snapshot.seq;
    state.headSeen = snapshot.seq;
    state.resyncs += 1;
    state.seen = new Set();
    state.seenOrder = [];
    feedEl.textContent = "";
    // Oldest first, so the newest ends on top.
    snapshot.events
      .slice()
      .reverse()
      .forEach(function (event) {
        addRow(event, null);
      });
    renderCounters(snapshot.counters, snapshot.at);
    state.resyncing = false;
    var held = state.held;
    state.held = [];
    held.sort(function (a, b) {
      return (a.seq || 0) - (b.seq || 0);
    });
    held.forEach(function (message) {
      if (message.epoch === state.epoch) handle(message);
    });
    setStatus("live", "live");
    root.dataset.lastResync = reason;
    showSeq();
  }

  // --- rendering ------------------------------------------------------------------

  function apply(message) {
    addRow(message, message.seq);
    if (message.published_at) {
      var latency = Date.now() - message.published_at * 1000;
      document.getElementById("monitor-latency").textContent = Math.max(0, Math.round(latency)) + " ms";
    }
  }

  function summary(event) {
    var d = event.data || {};
    switch (event.kind) {
      case "session_started":
        return d.session_id + " · " + d.device_type + " from " + (d.source || "direct") + " · " + d.journey_path;
      case "stage_changed":
        return d.session_id + " · " + (d.from_stage || "start") + " → " + d.to_stage + (d.trigger ? " (" + d.trigger + ")" : "");
      case "conversion":
        return d.session_id + " · " + d.type + " " + d.value + " " + d.currency + (d.sku ? " · " + d.sku : "");
      case "cue_shown":
        return d.session_id + " · " + d.rule + ": “" + d.text + "”";
      case "optimizer_reweight_applied":
        return d.experiment + " · weights " + (d.weights || []).map(function (w) {
          return w.key + " " + Number(w.to).toFixed(2);
        }).join(", ");
      case "proposal_created":
        return d.experiment + " · " + d.proposal_kind + " proposed (#" + d.proposal + ")";
      case "proposal_decided":
        return d.experiment + " · " + d.proposal_kind + " " + d.status + (d.by ? " by " + d.by : "");
      case "approval_decided":
        return d.object_type + " " + d.object + " v" + d.version + " " + d.status + (d.by ? " by " + d.by : "");
      default:
        return JSON.stringify(d);
    }
  }

  function addRow(event, seq) {
    if (state.seen.has(event.id)) return;
    state.seen.add(event.id);
    state.seenOrder.push(event.id);
    if (state.seenOrder.length > 4 * MAX_FEED) state.seen.delete(state.seenOrder.shift());
    var item = document.createElement("li");
    item.dataset.id = event.id;
    item.dataset.kind = event.kind;
    item.dataset.site = String(event.site);
    if (seq !== null) item.dataset.seq = String(seq);
    var time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date(event.at).toLocaleTimeString();
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = event.kind.replace(/_/g, " ");
    var site = document.createElement("span");
    site.className = "site";
    site.textContent = "site " + event.site;
    var text = document.createElement("span");
    text.className = "summary";
    text.textContent = summary(event);
    item.append(time, kind, site, text);
    feedEl.insertBefore(item, feedEl.firstChild);
    while (feedEl.children.length > MAX_FEED) feedEl.removeChild(feedEl.lastChild);
    emptyEl.hidden = feedEl.children.length > 0;
  }

  function renderCounters(counters, at) {
    if (!counters) return;
    ["recent", "today"].forEach(function (window_) {
      var values = counters[window_] || {};
      Object.keys(values).forEach(function (name) {
        var cell = document.querySelector('#monitor-counters tr[data-counter="' + name + '"] td[data-window="' + window_ + '"]');
        if (cell) cell.textContent = String(values[name]);
      });
    });
    document.getElementById("monitor-counters-at").textContent = at ? new Date(at).toLocaleTimeString() : "–";
  }

  siteEl.addEventListener("change", function () {
    state.site = siteEl.value;
    var url = new URL(window.location.href);
    url.searchParams.set("site", state.site);
    window.history.replaceState(null, "", url);
    feedEl.textContent = "";
    emptyEl.hidden = false;
    if (state.socket && state.socket.readyState === WebSocket.OPEN) subscribe();
  });

  connect();
})();
