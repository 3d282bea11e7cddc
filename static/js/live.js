// Live updates from /events (board/live.py): new messages appear in an open conversation,
// the unread and notification badges count, the staff queue refreshes itself, staff see
// a colleague answering, and customers see that support is writing. Every page shows the
// same after a reload without this file.
(function () {
  "use strict";

  var body = document.body;
  var url = body.getAttribute("data-events");
  if (!url || !window.EventSource) return;

  function byId(id) {
    return document.getElementById(id);
  }

  function data(event) {
    try {
      return JSON.parse(event.data);
    } catch (error) {
      return {};
    }
  }

  var thread = byId("thread");
  var conversation = thread ? thread.getAttribute("data-conversation") : null;

  function here(payload) {
    return conversation !== null && String(payload.conversation) === conversation;
  }

  function show(element, text) {
    if (!element) return;
    if (text !== undefined) element.textContent = text;
    element.hidden = false;
  }

  function draft() {
    var box = byId("field-body");
    return box && box.value.trim() !== "" ? box : null;
  }

  // --- an open conversation -------------------------------------------------------------
  var source = new EventSource(url);

  source.addEventListener("message", function (event) {
    var payload = data(event);
    // The status line of the customer's page follows the conversation's status.
    var status = byId("conversation-status");
    if (here(payload) && status && payload.status_html) status.outerHTML = payload.status_html;
    if (here(payload) && !byId("m" + payload.id)) {
      thread.insertAdjacentHTML("beforeend", payload.html);
      var hint = byId("typing-hint");
      if (hint) hint.hidden = true;
      var answering = byId("answering-hint");
      if (answering && !payload.from_me) answering.hidden = true;
      var seen = byId("seen-hint");
      if (seen && !payload.from_me) seen.hidden = true;
      if (!payload.from_me) readNow();
      // The reply form names the newest message its page shows; now it shows this one too,
      // so the server need not hold the answer back (board/staff/routes.py, "seen").
      var shownUpTo = document.querySelector("form input[name=seen]");
      if (shownUpTo && Number(payload.id) > Number(shownUpTo.value)) shownUpTo.value = payload.id;
      // Someone else answered while this person writes: read it before sending.
      var warning = byId("collision-warning");
      if (warning && !payload.from_me && draft()) {
        show(warning.querySelector(".collision-text"),
             (warning.getAttribute("data-text") || "").replace("%(name)s", payload.author));
        warning.hidden = false;
      }
    }
    queueChanged();
  });

  function setUnread(count) {
    var badge = byId("unread-count");
    if (!badge) return;
    badge.textContent = count;
    badge.classList.toggle("is-zero", count === 0);
  }

  function setBell(count) {
    var badge = byId("bell-count");
    if (!badge) return;
    badge.textContent = count ? count : "";
    badge.hidden = !count;
  }

  // An answer that appears while the customer looks at the page is read; one that
  // arrives in a background tab is read when the tab is shown.
  var unseen = false;
  function readNow() {
    var form = byId("read-now");
    if (!form) return;
    if (document.visibilityState !== "visible") {
      unseen = true;
      return;
    }
    unseen = false;
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) { if (counts) applyCounts(counts); })
      .catch(function () {});
  }
  document.addEventListener("visibilitychange", function () {
    if (unseen && document.visibilityState === "visible") readNow();
  });

  source.addEventListener("unread", function (event) {
    setUnread(data(event).count || 0);
  });

  // Header badges as board/live.py's header_counts gives them. Read in another tab: the
  // counts of this one follow.
  function applyCounts(counts) {
    if (counts.unread !== undefined) setUnread(counts.unread);
    setBell(counts.notifications || 0);
  }
  source.addEventListener("counts", function (event) { applyCounts(data(event)); });

  source.addEventListener("notification", function (event) {
    var payload = data(event);
    setBell(payload.unread || 0);
    var list = byId("bell-list");
    var shown = payload.html && /data-notification="(\d+)"/.exec(payload.html);
    if (shown && list && list.querySelector('[data-notification="' + shown[1] + '"]')) return;
    if (list && payload.html) {
      var empty = list.querySelector(".bell-empty");
      if (empty) empty.remove();
      list.insertAdjacentHTML("afterbegin", payload.html);
      while (list.children.length > 5) list.lastElementChild.remove();
    }
  });

  var typingTimer = null;
  source.addEventListener("typing", function (event) {
    var payload = data(event);
    var hint = byId("typing-hint");
    if (!hint || !here(payload)) return;
    show(hint, (hint.getAttribute("data-text") || "").replace("%(name)s", payload.name));
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { hint.hidden = true; }, 8000);
  });

  // Staff write an answer: the customer's (or guest's) page says so for a few seconds
  // after the last sign; staff send one every few seconds while they type.
  var answeringTimer = null;
  source.addEventListener("answering", function (event) {
    var hint = byId("answering-hint");
    if (!hint || !here(data(event))) return;
    hint.hidden = false;
    clearTimeout(answeringTimer);
    answeringTimer = setTimeout(function () { hint.hidden = true; }, 7000);
  });

  source.addEventListener("seen", function (event) {
    if (here(data(event))) show(byId("seen-hint"));
  });

  source.addEventListener("queue", queueChanged);

  source.addEventListener("reload", function () {
    show(byId("live-stale"));
  });

  // --- the staff queue: its parts fetched again and swapped in, a moment after a change ---
  // /staff/queue/live answers 304 while this view shows the same (the ETag), else the
  // parts alone; every tab with the queue open asks, so it must stay cheap.
  var queueTimer = null;
  function queueChanged() {
    var list = byId("queue-list");
    if (!list) return;
    clearTimeout(queueTimer);
    queueTimer = setTimeout(function () {
      var current = byId("queue-list");
      fetch(current.dataset.live + window.location.search, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "If-None-Match": current.dataset.tag }
      })
        .then(function (response) { return response.status === 200 ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          ["queue-tabs", "queue-filters", "queue-list"].forEach(function (id) {
            var old = byId(id);
            var replacement = fresh.getElementById(id);
            if (old && replacement) old.replaceWith(replacement);
          });
          document.dispatchEvent(new CustomEvent("board:queue-replaced"));
        })
        .catch(function () {});
    }, 400);
  }

  // --- staff writing an answer: colleagues see it -----------------------------------------
  var form = document.querySelector("form[data-typing-url]");
  if (form) {
    var lastSent = 0;
    form.addEventListener("input", function (event) {
      if (event.target.name !== "body" || Date.now() - lastSent < 4000) return;
      lastSent = Date.now();
      var token = form.querySelector("input[name=csrf_token]");
      var internal = form.querySelector("input[name=internal]");
      var sent = new FormData();
      sent.append("csrf_token", token ? token.value : "");
      // An internal note: colleagues see it, the customer never does.
      sent.append("internal", internal && internal.checked ? "1" : "0");
      fetch(form.getAttribute("data-typing-url"), {
        method: "POST", body: sent, credentials: "same-origin",
      }).catch(function () {});
    });
  }
})();
