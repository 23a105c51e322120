// MCP Mediator approvals: the live queue. No inline script anywhere (the
// page's Content-Security-Policy forbids it); this file only swaps in
// server-rendered, server-escaped HTML and sets text.
"use strict";
(function () {
  var live = document.getElementById("live");
  var liveText = document.getElementById("live-text");
  var rows = document.getElementById("queue-rows");
  var table = document.getElementById("queue");
  var count = document.getElementById("queue-count");
  var detail = document.getElementById("approval-id");
  var changed = document.getElementById("changed");
  if (!window.EventSource || (!rows && !detail && !count)) return;

  function setLive(state, text) {
    if (!live) return;
    live.setAttribute("data-state", state);
    liveText.textContent = text;
  }

  function known() {
    var ids = {};
    if (!rows) return ids;
    rows.querySelectorAll("tr[data-id]").forEach(function (tr) { ids[tr.getAttribute("data-id")] = true; });
    return ids;
  }

  function refreshRows() {
    var before = known();
    return fetch("/approvals/queue/rows", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var tmp = document.createElement("tbody");
        tmp.innerHTML = html;
        var n = tmp.querySelectorAll("tr[data-id]").length;
        if (count) count.textContent = n > 0 ? String(n) : "";
        if (!rows) return;
        rows.replaceChildren.apply(rows, Array.prototype.slice.call(tmp.childNodes));
        rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
          if (!before[tr.getAttribute("data-id")]) tr.classList.add("fresh");
        });
        table.setAttribute("data-loaded", String(Date.now()));
      });
  }

  function checkDetail() {
    if (!detail || !changed) return;
    fetch(location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var now = doc.getElementById("approval-id");
        if (now && now.getAttribute("data-rev") !== detail.getAttribute("data-rev")) changed.hidden = false;
      });
  }

  var es = new EventSource("/approvals/events");
  es.addEventListener("open", function () { setLive("live", "live"); });
  es.addEventListener("error", function () { setLive("down", "reconnecting…"); });
  es.addEventListener("queue", function () {
    setLive("live", "live");
    refreshRows().catch(function () { setLive("down", "refresh failed"); });
    checkDetail();
  });
})();
