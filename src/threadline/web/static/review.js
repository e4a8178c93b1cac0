// Keyboard shortcuts of the review queue (/duplicates) and of one pair (/duplicates/{id}).
// Queue: j/k move, x select, Enter open, a merge selected, r reject selected.
// Pair: a merge, r reject, n skip. Keys typed into a form field are left alone.
(function () {
  "use strict";
  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) && t.type !== "checkbox";
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  var current = -1;
  function focusRow(i) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (row, n) { row.classList.toggle("current", n === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }
  var all = document.querySelector("[data-select-all]");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  function submitQueue(action) {
    var form = document.getElementById("queue");
    if (!form || !form.querySelector('input[name="ids"]:checked')) return;
    var button = form.querySelector('button[name="action"][value="' + action + '"]');
    if (button) button.click();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var key = event.key;
    var pair = document.querySelector("[data-decide]");
    if (pair) {
      var target = pair.querySelector('[data-key="' + key + '"]');
      if (target) { event.preventDefault(); target.click(); }
      return;
    }
    if (key === "j") { focusRow(current + 1); }
    else if (key === "k") { focusRow(current - 1); }
    else if (key === "x" && current >= 0) {
      var box = rows[current].querySelector('input[name="ids"]');
      if (box) box.checked = !box.checked;
    }
    else if (key === "Enter" && current >= 0) { window.location = rows[current].getAttribute("data-href"); }
    else if (key === "a") { submitQueue("approve"); }
    else if (key === "r") { submitQueue("reject"); }
    else { return; }
    event.preventDefault();
  });
})();
