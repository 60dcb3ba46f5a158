/* The host's live queue and the presenter view: the questions load once, then every new or
   changed question arrives through the event stream (EventSource reconnects by itself). */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var T = JSON.parse(document.getElementById("live-texts").textContent);
  var id = root.dataset.session, csrf = root.dataset.csrf, mode = root.dataset.mode;
  var base = "/console/live/" + id;
  var questions = new Map(), tab = "open", fresh = new Set();
  var $ = function (sel) { return document.getElementById(sel); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function grams(text) {
    var s = text.toLowerCase().replace(/[\s\p{P}\p{S}]+/gu, ""), g = new Set();
    for (var i = 0; i < s.length - 1; i++) g.add(s.slice(i, i + 2));
    if (!g.size && s) g.add(s);
    return g;
  }
  function jaccard(a, b) {
    var inter = 0;
    a.forEach(function (x) { if (b.has(x)) inter++; });
    var union = a.size + b.size - inter;
    return union ? inter / union : 0;
  }
  function isOpen(q) { return q.state === "new" || q.state === "shown"; }
  function similar(q, open) {
    var mine = grams(q.text), found = [];
    open.forEach(function (o) {
      if (o.id === q.id) return;
      var s = jaccard(mine, grams(o.text));
      if (s >= 0.35) found.push({ q: o, score: s });
    });
    return found.sort(function (a, b) { return b.score - a.score || a.q.id - b.q.id; }).slice(0, 2);
  }
  function short(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function time(q) { return q.asked_at.slice(11, 16); }

  function post(q, action, fields) {
    var body = new URLSearchParams(Object.assign({ csrf: csrf }, fields || {}));
    return fetch(base + "/questions/" + q.id + "/" + action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) { showError(data.message || T.failed); return; }
          $("live-error").hidden = true;
          upsert(data);
        });
      }, function () { showError(T.failed); });
  }
  function showError(text) { var e = $("live-error"); e.textContent = text; e.hidden = false; }

  function button(label, cls, onClick) {
    var b = el("button", cls, label);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }
  function inlineForm(li, placeholder, action, field) {
    var f = el("form", "q-form"), input = el(field === "text" ? "textarea" : "input");
    input.placeholder = placeholder; input.required = true; input.maxLength = field === "text" ? 500 : 100;
    f.appendChild(input);
    f.appendChild(button(T.send, "", function () {
      if (!input.value.trim()) { input.focus(); return; }
      var fields = {}; fields[field] = input.value; post(questions.get(+li.dataset.id), action, fields);
    }));
    f.appendChild(button(T.cancel, "secondary", function () { f.remove(); }));
    li.appendChild(f);
    input.focus();
  }

  function card(q, open, big) {
    var li = el("li", "q s-" + q.state + (fresh.has(q.id) ? " fresh" : ""));
    li.dataset.id = q.id;
    li.appendChild(el("div", "q-text", q.text));
    var meta = "#" + q.id + " · " + time(q) + " · " + T.askers.replace("{n}", q.askers);
    if (q.photos) meta += " · " + T.photos.replace("{n}", q.photos);
    if (q.starred) meta += " · ★" + T.starred;
    if (!big) meta += " · " + T["state_" + q.state];
    if (q.state === "merged") meta += " · " + T.merged_into.replace("{n}", q.merged_into);
    if (q.ticket_number) meta += " · " + T.ticket.replace("{n}", q.ticket_number);
    li.appendChild(el("div", "q-meta", meta));
    if (q.answer) li.appendChild(el("div", "q-answer", T.answer_label + q.answer));
    if (q.hide_reason && q.state === "hidden") li.appendChild(el("div", "q-answer", T.hide_label + q.hide_reason));
    if (mode !== "host" || root.dataset.running !== "yes") return li;
    var acts = el("div", "q-actions");
    if (q.state === "new") acts.appendChild(button(T.show, "secondary", function () { post(q, "show"); }));
    if (isOpen(q)) acts.appendChild(button(T.pin, "secondary", function () { post(q, "pin"); }));
    if (isOpen(q) || q.state === "answering" || q.state === "hidden")
      acts.appendChild(button(T.answer, "", function () { inlineForm(li, T.answer_hint, "answer", "text"); }));
    if (q.state !== "answered" && q.state !== "merged" && q.state !== "hidden")
      acts.appendChild(button(T.hide, "secondary", function () { inlineForm(li, T.hide_hint, "hide", "reason"); }));
    if (q.state !== "merged")
      acts.appendChild(button(q.starred ? T.unstar : T.star, "secondary", function () { post(q, "star"); }));
    li.appendChild(acts);
    if (isOpen(q)) {
      similar(q, open).forEach(function (s) {
        var row = el("div", "q-similar", T.similar.replace("{n}", s.q.id).replace("{text}", short(s.q.text, 24)));
        row.appendChild(button(T.merge.replace("{n}", s.q.id), "secondary", function () { post(q, "merge", { into: s.q.id }); }));
        li.appendChild(row);
      });
    }
    return li;
  }

  function inTab(q) {
    if (tab === "open") return isOpen(q);
    if (tab === "starred") return q.starred;
    return q.state === tab;
  }
  function render() {
    var all = Array.from(questions.values()).sort(function (a, b) { return a.id - b.id; });
    var open = all.filter(isOpen), now = all.filter(function (q) { return q.state === "answering"; })[0];
    var nowBox = $("live-now");
    nowBox.textContent = "";
    if (now) nowBox.appendChild(card(now, open, true)); else nowBox.textContent = T.none_now;
    var list = mode === "host" ? all.filter(inTab)
      : (open.filter(function (q) { return q.state === "shown"; }).length
        ? open.filter(function (q) { return q.state === "shown"; }) : open).slice(0, 5);
    var queue = $("live-queue");
    queue.textContent = "";
    list.forEach(function (q) { queue.appendChild(card(q, open, mode !== "host")); });
    if (!list.length) queue.appendChild(el("li", "empty", T.empty));
    document.querySelectorAll("[data-count]").forEach(function (b) {
      var k = b.dataset.count;
      b.textContent = all.filter(function (q) { return k === "open" ? isOpen(q) : k === "starred" ? q.starred : q.state === k; }).length;
    });
  }
  var summaryDue = null;
  function refresh(all) {  /* all: after (re)connecting, take every question as stored */
    return fetch(base + "/questions.json", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        data.items.forEach(function (q) { if (all || !questions.has(q.id)) questions.set(q.id, q); });
        var s = $("live-summary"); if (s) s.textContent = data.summary;
        render();
      });
  }
  function upsert(q) {
    if (!summaryDue) summaryDue = setTimeout(function () { summaryDue = null; refresh(); }, 3000);
    if (!questions.has(q.id)) { fresh.add(q.id); setTimeout(function () { fresh.delete(q.id); render(); }, 4000); }
    questions.set(q.id, q);
    render();
  }

  document.querySelectorAll("#live-tabs a").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      tab = a.dataset.tab;
      document.querySelectorAll("#live-tabs a").forEach(function (x) { x.classList.toggle("here", x === a); });
      render();
    });
  });

  var source = new EventSource(base + "/stream");
  source.onopen = function () {
    $("live-conn").textContent = T.connected;
    refresh(true);
  };
  source.onerror = function () { $("live-conn").textContent = T.reconnecting; };
  source.addEventListener("question", function (e) { upsert(JSON.parse(e.data)); });
  source.addEventListener("ended", function () { $("live-conn").textContent = T.ended; source.close(); });
  render();
})();
