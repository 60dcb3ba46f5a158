// Chat simulator page. Vanilla JS, no build step. Each identity has its own chat log (kept in
// sessionStorage so a reload keeps the conversation); pushes for everyone come from one poll.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("sim-config").textContent);
  var T = config.texts;
  var POLL_MS = 1500;
  var STORE_KEY = "ztc-sim-v1";

  var $ = function (id) { return document.getElementById(id); };
  var identitySelect = $("identity");
  var safeMode = $("safe-mode");
  var safeModeLabel = $("safe-mode-label");
  var chat = $("chat");
  var sendButton = $("send");
  var kind = "text";

  // --- state ------------------------------------------------------------------------------------
  var state = load() || { logs: {}, unread: {}, cursor: 0, seen: {} , current: null, safe: !!config.safe_mode_default };

  function load() {
    try { return JSON.parse(sessionStorage.getItem(STORE_KEY)); } catch (e) { return null; }
  }
  function save() {
    try { sessionStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function current() { return identitySelect.value; }
  function logOf(openid) { return (state.logs[openid] = state.logs[openid] || []); }

  // --- rendering --------------------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var VIA_LABEL = {
    passive: T.sim_via_passive,
    customer_service: T.sim_via_customer_service,
    template: T.sim_via_template,
    subscribe: T.sim_via_subscribe,
    system: T.sim_via_system
  };

  function renderEntry(entry) {
    var box = el("div", "msg " + entry.side + (entry.via ? " " + entry.via : "") + (entry.level ? " " + entry.level : ""));
    box.setAttribute("data-via", entry.via || "");
    var meta = el("div", "meta");
    if (entry.side === "theirs" && entry.via) {
      meta.appendChild(el("span", "via " + entry.via, VIA_LABEL[entry.via] || entry.via));
    }
    if (entry.side === "mine") {
      if (entry.kindLabel) meta.appendChild(el("span", "badge", entry.kindLabel));
      meta.appendChild(el("span", entry.encrypted ? "badge enc" : "badge", entry.encrypted ? T.sim_encrypted_badge : T.sim_plain_badge));
    }
    if (entry.time) meta.appendChild(el("span", "", entry.time));
    var bubble = el("div", "bubble", entry.text);
    box.appendChild(meta);
    box.appendChild(bubble);
    if (entry.xml) {
      var details = el("details");
      details.appendChild(el("summary", "", T.sim_show_xml));
      details.appendChild(el("pre", "", entry.xml));
      box.appendChild(details);
    }
    return box;
  }

  function render() {
    chat.textContent = "";
    var entries = logOf(current());
    if (!entries.length) chat.appendChild(document.getElementById("empty-hint").content.cloneNode(true));
    entries.forEach(function (entry) { chat.appendChild(renderEntry(entry)); });
    chat.scrollTop = chat.scrollHeight;
    window.scrollTo(0, document.body.scrollHeight);
  }

  function now() {
    var d = new Date();
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function add(openid, entry) {
    entry.time = entry.time || now();
    logOf(openid).push(entry);
    if (openid === current()) {
      var hint = chat.querySelector(".empty-hint");
      if (hint) hint.remove();
      chat.appendChild(renderEntry(entry));
      chat.scrollTop = chat.scrollHeight;
      window.scrollTo(0, document.body.scrollHeight);
    } else if (entry.side === "theirs") {
      state.unread[openid] = (state.unread[openid] || 0) + 1;
      updateUnread();
    }
    save();
  }

  function updateUnread() {
    Array.prototype.forEach.call(identitySelect.options, function (option) {
      var base = option.getAttribute("data-label");
      var count = state.unread[option.value] || 0;
      option.textContent = count ? base + T.sim_unread.replace("{count}", count) : base;
    });
  }

  // --- composer ---------------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (tab) {
    tab.addEventListener("click", function () {
      kind = tab.getAttribute("data-kind");
      Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (t) {
        t.classList.toggle("active", t === tab);
      });
      Array.prototype.forEach.call(document.querySelectorAll(".pane"), function (pane) {
        pane.hidden = pane.getAttribute("data-pane") !== kind;
      });
    });
  });

  function collect() {
    // -> [payload for /sim/send, what the user sees in their own bubble] or null when incomplete
    if (kind === "text") {
      var text = $("text-input").value.trim();
      if (!text) return null;
      return [{ kind: "text", text: text }, text, T.sim_you_sent_text];
    }
    if (kind === "image") return [{ kind: "image" }, T.sim_you_sent_image, T.sim_tab_image];
    if (kind === "voice") {
      var said = $("voice-input").value.trim();
      if (!said) return null;
      return [{ kind: "voice", text: said }, T.sim_you_sent_voice + " " + said, T.sim_tab_voice];
    }
    if (kind === "location") {
      var label = $("location-input").value.trim();
      if (!label) return null;
      return [{ kind: "location", label: label }, T.sim_you_sent_location + " " + label, T.sim_tab_location];
    }
    var scene = $("scene").value;
    var mode = $("subscribe-mode").value;
    if (mode === "scan" && !scene) return null;
    var sceneText = scene ? $("scene").options[$("scene").selectedIndex].textContent : T.sim_subscribe_none;
    var shown = (mode === "scan" ? T.sim_you_sent_scan : T.sim_you_sent_subscribe) + " " + sceneText;
    return [{ kind: mode, scene: scene }, shown, T.sim_tab_subscribe];
  }

  function clearInput() {
    if (kind === "text") $("text-input").value = "";
    if (kind === "voice") $("voice-input").value = "";
    if (kind === "location") $("location-input").value = "";
  }

  function showResult(openid, result) {
    if (result.error) {
      add(openid, { side: "system", via: "system", text: result.error });
    } else if (result.reply) {
      add(openid, { side: "theirs", via: "passive", text: result.reply.text, xml: result.reply.xml });
    } else {
      add(openid, { side: "system", via: "system", level: "info", text: T.sim_no_reply });
    }
  }

  function post(url, payload) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload)
    }).then(function (r) { return r.json(); });
  }

  function send() {
    var openid = current();
    var collected = collect();
    if (!collected) {
      var why = kind === "subscribe" ? T.sim_pick_station : T.sim_empty_text;
      add(openid, { side: "system", via: "system", level: "info", text: why });
      return;
    }
    var payload = collected[0];
    payload.openid = openid;
    payload.safe = safeMode.checked;
    sendButton.disabled = true;
    post(config.urls.send, payload).then(function (result) {
      var req = result.request || {};
      add(openid, { side: "mine", text: collected[1], kindLabel: collected[2], encrypted: !!req.encrypted,
                    xml: req.xml ? req.xml + (req.encrypted ? "\n\n" + req.body : "") : "" });
      clearInput();
      showResult(openid, result);
    }).catch(function (e) {
      add(openid, { side: "system", via: "system", text: T.sim_unreachable.replace("{error}", String(e)) });
    }).then(function () {
      sendButton.disabled = false;
      poll();
    });
  }

  function resend() {
    var openid = current();
    post(config.urls.resend, { openid: openid }).then(function (result) {
      if (!result.request) {
        add(openid, { side: "system", via: "system", level: "info", text: T.sim_empty_text });
        return;
      }
      add(openid, { side: "system", via: "system", level: "info", text: T.sim_resent });
      showResult(openid, result);
    }).then(poll, poll);
  }

  sendButton.addEventListener("click", send);
  $("resend").addEventListener("click", resend);
  $("text-input").addEventListener("keydown", function (e) {
    // Enter sends, Shift+Enter is a new line — as in WeChat on a computer
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $("clear").addEventListener("click", function () {
    state.logs[current()] = [];
    save();
    render();
  });

  // --- header: 更多, the empty page's 去扫码关注, searching the identities ---------------------------
  var moreButton = $("more");
  moreButton.addEventListener("click", function () {
    var panel = $("more-panel");
    panel.hidden = !panel.hidden;
    moreButton.setAttribute("aria-expanded", String(!panel.hidden));
  });
  chat.addEventListener("click", function (event) {
    if (event.target.closest("[data-start-subscribe]")) document.querySelector(".tab[data-kind=subscribe]").click();
  });
  $("identity-search").addEventListener("input", function () {
    // matches name or station (an optgroup's label); the first match is picked when the current one is hidden
    var query = this.value.trim();
    var first = null;
    Array.prototype.forEach.call(identitySelect.querySelectorAll("optgroup"), function (group) {
      var groupMatches = group.label.indexOf(query) >= 0;
      var any = false;
      Array.prototype.forEach.call(group.querySelectorAll("option"), function (option) {
        var show = !query || groupMatches || option.getAttribute("data-label").indexOf(query) >= 0;
        option.hidden = !show;
        if (show) { any = true; first = first || option; }
      });
      group.hidden = !any;
    });
    var selected = identitySelect.options[identitySelect.selectedIndex];
    if (first && selected && selected.hidden) {
      identitySelect.value = first.value;
      identitySelect.dispatchEvent(new Event("change"));
    }
    this.classList.toggle("no-match", !first);
  });

  // --- identity and safe mode -------------------------------------------------------------------
  function setSafeLabel() {
    safeModeLabel.textContent = safeMode.checked ? T.sim_safe_mode : T.sim_safe_mode_off;
  }
  safeMode.addEventListener("change", function () {
    state.safe = safeMode.checked;
    setSafeLabel();
    save();
  });
  identitySelect.addEventListener("change", function () {
    state.current = current();
    delete state.unread[current()];
    updateUnread();
    save();
    render();
  });

  // --- pushes -----------------------------------------------------------------------------------
  var polling = false;
  function poll() {
    if (polling) return;
    polling = true;
    fetch(config.urls.pushes + "?since=" + encodeURIComponent(state.cursor))
      .then(function (r) { return r.json(); })
      .then(function (data) {
        (data.messages || []).forEach(function (m) {
          if (state.seen[m.key]) return; // the cursor is inclusive on some recorders
          state.seen[m.key] = 1;
          add(m.openid, { side: "theirs", via: m.via, text: m.text });
        });
        if (typeof data.next === "number" && data.next > state.cursor) state.cursor = data.next;
        save();
      })
      .catch(function () { /* the fake API may not be up yet: try again next tick */ })
      .then(function () { polling = false; });
  }

  // --- start ------------------------------------------------------------------------------------
  if (state.current && Array.prototype.some.call(identitySelect.options, function (o) { return o.value === state.current; })) {
    identitySelect.value = state.current;
  }
  if (!safeMode.disabled) safeMode.checked = !!state.safe;
  setSafeLabel();
  updateUnread();
  render();
  poll();
  setInterval(poll, POLL_MS);
})();
