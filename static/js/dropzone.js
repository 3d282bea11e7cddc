// Message forms: dropped files join the form's file input, and Ctrl+Enter (Cmd+Enter on
// a Mac) in the text box sends. Without JavaScript the file picker and the send button
// work the same; this only adds the drop target and the shortcut.
(function () {
  "use strict";

  function listFiles(input, list) {
    list.replaceChildren();
    Array.from(input.files).forEach(function (file) {
      var item = document.createElement("li");
      item.textContent = file.name + " (" + Math.ceil(file.size / 1024) + " KB)";
      list.appendChild(item);
    });
  }

  document.querySelectorAll("form[data-dropzone]").forEach(function (form) {
    var text = form.querySelector("textarea");
    if (text && form.requestSubmit) {
      text.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
        event.preventDefault();
        form.requestSubmit();  // as the first send button: validation and submit events run
      });
    }
    var input = form.querySelector('input[type="file"]');
    var list = form.querySelector(".chosen-files");
    var target = form.querySelector("textarea") || form;
    if (!input || typeof DataTransfer === "undefined") return;

    input.addEventListener("change", function () { listFiles(input, list); });

    ["dragenter", "dragover"].forEach(function (name) {
      target.addEventListener(name, function (event) {
        if (!event.dataTransfer || Array.from(event.dataTransfer.types).indexOf("Files") < 0) return;
        event.preventDefault();
        form.classList.add("is-dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      target.addEventListener(name, function () { form.classList.remove("is-dragging"); });
    });
    target.addEventListener("drop", function (event) {
      if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
      event.preventDefault();
      form.classList.remove("is-dragging");
      var combined = new DataTransfer();
      Array.from(input.files).forEach(function (file) { combined.items.add(file); });
      Array.from(event.dataTransfer.files).forEach(function (file) { combined.items.add(file); });
      input.files = combined.files;
      listFiles(input, list);
    });
  });
})();
