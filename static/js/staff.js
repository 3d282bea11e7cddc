// Staff pages: keyboard moves through the queue and #shortcut suggestions in the reply
// box. Every page works without this file: links open conversations, the server expands
// #shortcuts and fills their placeholders; the canned replies this file offers come filled.
(function () {
  "use strict";

  function typing(event) {
    var target = event.target;
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  // --- the queue: j / k move, Enter opens (the focused link does it) ---------------------
  var rows = [];
  var current = -1;

  function select(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0) rows[current].classList.remove("is-selected");
    current = index;
    rows[current].classList.add("is-selected");
    rows[current].querySelector("a.queue-link").focus();
  }

  // Again after live.js swapped in a fresh queue: the selection stays on its ticket.
  function collectRows() {
    var selected = current >= 0 ? rows[current].querySelector("a.queue-link").href : null;
    rows = Array.prototype.slice.call(document.querySelectorAll("#queue .queue-row"));
    current = -1;
    rows.forEach(function (row, index) {
      var link = row.querySelector("a.queue-link");
      if (link.href === selected) {
        current = index;
        row.classList.add("is-selected");
      }
      link.addEventListener("focus", function () {
        if (current !== index) {
          if (current >= 0) rows[current].classList.remove("is-selected");
          current = index;
          row.classList.add("is-selected");
        }
      });
    });
  }
  collectRows();
  document.addEventListener("board:queue-replaced", collectRows);

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event)) return;
    if (rows.length && (event.key === "j" || event.key === "k")) {
      event.preventDefault();
      select(current + (event.key === "j" ? 1 : -1));
    } else if (event.key === "r") {
      var reply = document.getElementById("field-body");
      if (reply) {
        event.preventDefault();
        reply.focus();
      }
    }
  });

  // --- the reply box: #shortcut offers canned replies ----------------------------------
  var data = document.getElementById("canned-data");
  var box = document.getElementById("field-body");
  if (data && box) {
    var replies = JSON.parse(data.textContent || "[]");
    var menu = document.createElement("ul");
    menu.className = "canned-menu";
    menu.id = "canned-menu";
    menu.setAttribute("role", "listbox");
    menu.setAttribute("aria-label", data.dataset.label || "Canned replies");
    menu.hidden = true;
    box.insertAdjacentElement("afterend", menu);
    box.setAttribute("aria-controls", "canned-menu");
    var matches = [];
    var chosen = 0;
    var token = null;

    var tokenBeforeCaret = function () {
      var before = box.value.slice(0, box.selectionStart);
      var found = /(^|[^\w#/&])#([A-Za-z][\w-]*)?$/.exec(before);
      if (!found) return null;
      var word = found[2] || "";
      return { start: before.length - word.length - 1, word: word.toLowerCase() };
    };

    var render = function () {
      menu.replaceChildren();
      matches.forEach(function (reply, index) {
        var item = document.createElement("li");
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", index === chosen ? "true" : "false");
        var code = document.createElement("code");
        code.textContent = "#" + reply.shortcut;
        item.appendChild(code);
        item.appendChild(document.createTextNode(" " + reply.title));
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          insert(reply);
        });
        menu.appendChild(item);
      });
      menu.hidden = matches.length === 0;
    };

    var insert = function (reply) {
      var end = token.start + 1 + token.word.length;
      box.value = box.value.slice(0, token.start) + reply.body + box.value.slice(end);
      var caret = token.start + reply.body.length;
      // Placeholders come filled in by the page; an order number nobody named is left as
      // {order}, selected so that typing the number replaces it.
      var unfilled = reply.body.indexOf("{order}");
      if (unfilled >= 0) {
        box.setSelectionRange(token.start + unfilled, token.start + unfilled + 7);
      } else {
        box.setSelectionRange(caret, caret);
      }
      matches = [];
      render();
      box.focus();
    };

    box.addEventListener("input", function () {
      token = tokenBeforeCaret();
      matches = token ? replies.filter(function (reply) {
        return reply.shortcut.indexOf(token.word) === 0;
      }).slice(0, 8) : [];
      chosen = 0;
      render();
    });

    box.addEventListener("keydown", function (event) {
      if (menu.hidden) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        chosen = (chosen + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
        render();
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        insert(matches[chosen]);
      } else if (event.key === "Escape") {
        matches = [];
        render();
      }
    });
    box.addEventListener("blur", function () { matches = []; render(); });
  }
})();
