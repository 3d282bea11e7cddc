// Drag and drop onto a message form: dropped files join the form's file input.
// Without JavaScript the file picker works the same; this only adds the drop target.
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
