// The subject as it will be, shown under the text box of a new message while the customer
// types. The rule is the server's (board/markup.py, subject_from): the plain text without
// markdown markup, whitespace runs folded to one space, the first 100 user-perceived
// characters (grapheme clusters), an ellipsis when it was cut. The server decides; this
// only shows it early, and the page works without it.
(function () {
  "use strict";

  var LENGTH = 100;
  var box = document.getElementById("field-body");
  var line = document.getElementById("subject-preview");
  var shown = document.getElementById("subject-preview-text");
  if (!box || !line || !shown) return;

  var ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

  function inline(text) {
    return text
      .replace(/`+([^`]*?)`+/g, function (_m, code) { return "\u0000" + code + "\u0001"; })
      .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")            // an image: its alt text
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")             // a link: its text
      .replace(/<((?:https?|mailto):[^>\s]*)>/g, "$1")     // an autolink: the address
      .replace(/(\*\*|__|~~)(?=\S)([\s\S]*?\S)\1/g, "$2")  // strong, strikethrough
      .replace(/\*(?=\S)([^*]*?\S)\*/g, "$1")              // emphasis with *
      .replace(/(^|[^\w])_(?=\S)([^_]*?\S)_(?=[^\w]|$)/g, "$1$2") // emphasis with _
      .replace(/\\([!-\/:-@\[-`{-~])/g, "$1")              // backslash escapes
      .replace(/&(amp|lt|gt|quot|apos|nbsp);/g, function (_m, name) { return ENTITIES[name]; })
      .replace(/[\u0000\u0001]/g, "");
  }

  function plainText(markdown) {
    var pieces = [];
    var fence = null;
    markdown.replace(/\r\n?/g, "\n").split("\n").forEach(function (row) {
      var opening = /^ {0,3}(`{3,}|~{3,})/.exec(row);
      if (fence) {
        if (opening && opening[1].charAt(0) === fence.charAt(0) && opening[1].length >= fence.length) {
          fence = null;
        } else {
          pieces.push(row);
        }
        return;
      }
      if (opening) {
        fence = opening[1];
        return;
      }
      if (/^ {0,3}([-*_])( *\1){2,} *$/.test(row)) return;       // a rule
      if (/^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/.test(row) && row.indexOf("-") >= 0 && row.indexOf("|") >= 0) return; // a table's separator
      row = row
        .replace(/^ {0,3}(> ?)+/, "")                             // quotes
        .replace(/^ {0,3}#{1,6}(?=\s|$)/, "").replace(/\s#+\s*$/, "") // headings
        .replace(/^\s*([-*+]|\d{1,9}[.)])\s+/, "")                // list items
        .replace(/\|/g, " ");                                      // table cells
      pieces.push(inline(row));
    });
    return pieces.join(" ").replace(/\s+/g, " ").trim();
  }

  var segmenter = window.Intl && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function clusters(text) {
    if (!segmenter) return Array.from(text);
    var found = [];
    for (var piece of segmenter.segment(text)) found.push(piece.segment);
    return found;
  }

  function subjectFrom(markdown) {
    var text = plainText(markdown);
    var parts = clusters(text);
    if (parts.length <= LENGTH) return text;
    return parts.slice(0, LENGTH).join("").replace(/\s+$/, "") + "…";
  }

  function update() {
    var subject = subjectFrom(box.value);
    shown.textContent = subject;
    line.hidden = subject === "";
  }

  box.addEventListener("input", update);
  update();
})();
