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

// Keyboard shortcuts (the list is in the page: press ?). A shortcut moves
// the focus or the selection, or opens a page; it never decides: approving
// or denying stays an Enter on the form's own field or button.
(function () {
  var help = document.getElementById("shortcuts");
  if (!help) return;
  var selected = -1;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue-rows tr[data-id]")); }

  function select(step) {
    var list = rows();
    if (list.length === 0) return;
    var cur = list.findIndex(function (tr) { return tr.classList.contains("selected"); });
    selected = cur < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(Math.max(cur + step, 0), list.length - 1);
    list.forEach(function (tr, i) {
      tr.classList.toggle("selected", i === selected);
      if (i === selected) tr.setAttribute("aria-selected", "true"); else tr.removeAttribute("aria-selected");
    });
    list[selected].scrollIntoView({ block: "nearest" });
  }

  function open() {
    var tr = document.querySelector("#queue-rows tr.selected a[href]");
    if (tr) location.href = tr.getAttribute("href");
  }

  function focus(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    el.focus();
    return true;
  }

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (typing) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && t.tagName === "TEXTAREA" && t.form) {
        ev.preventDefault();
        t.form.requestSubmit();
      } else if (ev.key === "Escape") {
        t.blur();
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    switch (ev.key) {
      case "?": help.hidden = !help.hidden; if (!help.hidden) help.scrollIntoView({ block: "nearest" }); break;
      case "Escape": help.hidden = true; break;
      case "j": select(1); break;
      case "k": select(-1); break;
      case "o": case "Enter":
        if ((ev.key === "Enter" && t !== document.body) || !document.querySelector("#queue-rows tr.selected")) return;
        open();
        break;
      case "a": if (!focus("approve-reason")) return; break;
      case "d": if (!focus("deny-reason")) return; break;
      case "u": location.href = "/approvals/"; break;
      default: return;
    }
    ev.preventDefault();
  });
})();
