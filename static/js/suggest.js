// Search before writing: while a customer types a new message, forum topics that may
// already answer it appear below the text (GET /search/suggest). The links open in a new
// tab, so the draft is never lost. Without JavaScript, or when the server cannot be
// reached, the form works exactly as before.
(function () {
  "use strict";

  var MIN_LENGTH = 15; // board/search/routes.py SUGGEST_MIN
  var MAX_LENGTH = 1000; // enough for the telling words, short enough for a URL
  var WAIT_MS = 400;

  var box = document.getElementById("suggestions");
  var textarea = document.getElementById("field-body");
  if (!box || !textarea || !window.fetch || !window.AbortController || !window.DOMParser) return;
  var list = box.querySelector("ul");
  var endpoint = box.getAttribute("data-suggest-url");
  var timer = null;
  var pending = null;
  var lastAsked = "";

  // The snippet is escaped text with <mark> around the words found: only those two
  // kinds of node are copied over, whatever else the string might hold.
  function snippetNodes(html) {
    var parsed = new DOMParser().parseFromString("<p>" + html + "</p>", "text/html");
    var paragraph = document.createElement("p");
    paragraph.className = "hit-snippet";
    parsed.body.firstChild.childNodes.forEach(function (node) {
      if (node.nodeType === Node.ELEMENT_NODE && node.nodeName === "MARK") {
        var mark = document.createElement("mark");
        mark.textContent = node.textContent;
        paragraph.appendChild(mark);
      } else {
        paragraph.appendChild(document.createTextNode(node.textContent));
      }
    });
    return paragraph;
  }

  // Category, date, replies and "Solved": what tells two topics of the same title apart.
  function factsLine(topic) {
    var line = document.createElement("p");
    line.className = "hit-facts meta";
    if (topic.solved) {
      var badge = document.createElement("span");
      badge.className = "badge badge-solved";
      badge.textContent = topic.solved_label;
      line.appendChild(badge);
      line.appendChild(document.createTextNode(" "));
    }
    var parts = [topic.category, topic.date, topic.replies_label].filter(Boolean);
    line.appendChild(document.createTextNode(parts.join(" · ")));
    return line;
  }

  function show(topics) {
    list.replaceChildren();
    topics.forEach(function (topic) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = topic.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = topic.title;
      item.appendChild(link);
      item.appendChild(factsLine(topic));
      if (topic.snippet) item.appendChild(snippetNodes(topic.snippet));
      list.appendChild(item);
    });
    box.hidden = topics.length === 0;
  }

  function ask() {
    var draft = textarea.value.trim().slice(0, MAX_LENGTH);
    if (draft.length < MIN_LENGTH || draft === lastAsked) return;
    lastAsked = draft;
    if (pending) pending.abort(); // an older answer must not replace a newer one
    var controller = (pending = new AbortController());
    fetch(endpoint + "?q=" + encodeURIComponent(draft), {
      signal: controller.signal,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("suggest answered " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (pending === controller) pending = null;
        show(Array.isArray(data.topics) ? data.topics : []);
      })
      .catch(function () {
        // Aborted, offline or refused: keep what is shown, and ask again on the next change.
        if (pending === controller) {
          pending = null;
          lastAsked = "";
        }
      });
  }

  textarea.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, WAIT_MS);
  });
  if (textarea.value.trim().length >= MIN_LENGTH) ask(); // a draft sent back with an error
})();
