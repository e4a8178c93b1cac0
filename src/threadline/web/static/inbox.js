// The inbox's collision warning (web/inbox_pages.py): the typing poll posts typing=1 while the agent has
// typed in the reply box within the last few seconds, so colleagues see "... is replying". A file, not an
// inline script: the workspace's Content-Security-Policy allows scripts from 'self' only.
(function () {
  "use strict";
  var QUIET_MS = 5000;
  var timer = null;
  function state() { return document.getElementById("typing-state"); }
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-typing")) { return; }
    var field = state();
    if (!field) { return; }
    field.value = "1";
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { field.value = "0"; }, QUIET_MS);
  });
})();
