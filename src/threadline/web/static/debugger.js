// The Sources pages: copy a write key, confirm rotate/revoke, and the live event debugger.
// Plain JavaScript on purpose: EventSource does the streaming and reconnecting. Texts come from
// data-* attributes the server rendered, so they are translated with the rest of the page.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        var label = button.textContent;
        button.textContent = button.dataset.copied;
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  var panel = document.getElementById("debugger");
  if (!panel || !window.EventSource) return;
  var text = panel.dataset;
  var list = document.getElementById("live");
  var status = document.getElementById("live-status");
  var pause = document.getElementById("live-pause");
  var MAX_SHOWN = 200; // the page would grow without end on a busy source
  var paused = false;
  var waiting = [];

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined && content !== null) node.textContent = String(content);
    return node;
  }

  // textContent only: payloads come from anyone holding a write key.
  function entry(m) {
    var li = el("li");
    var head = el("div");
    head.appendChild(el("span", "tag " + m.status, text[m.status] || m.status));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("strong", null, (m.type || "?") + (m.name ? " · " + m.name : "")));
    var who = m.userId ? "userId " + m.userId : m.anonymousId ? "anonymousId " + m.anonymousId : "";
    var meta = [m.receivedAt ? m.receivedAt.replace("T", " ").slice(0, 19) + " UTC" : "", who,
                m.messageId ? "messageId " + m.messageId : ""].filter(Boolean).join(" · ");
    head.appendChild(el("small", "muted", " " + meta));
    li.appendChild(head);
    if (m.status === "rejected") {
      li.appendChild(el("div", "error", (m.field ? m.field + ": " : "") + m.reason));
    }
    var details = el("details");
    details.appendChild(el("summary", null, text.payload));
    details.appendChild(el("pre", null, m.payload));
    li.appendChild(details);
    return li;
  }

  function show(m) {
    list.insertBefore(entry(m), list.firstChild);
    while (list.children.length > MAX_SHOWN) list.removeChild(list.lastChild);
  }

  function note(message) {
    var li = el("li", "muted", message);
    list.insertBefore(li, list.firstChild);
  }

  pause.hidden = false;
  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? text.resume : text.pause;
    status.textContent = paused ? text.paused : text.live;
    if (!paused) {
      waiting.forEach(show);
      waiting = [];
    }
  });

  var source = new EventSource(panel.dataset.stream);
  source.onopen = function () { status.textContent = paused ? text.paused : text.live; };
  source.onerror = function () { status.textContent = text.lost; };
  source.onmessage = function (event) {
    var m = JSON.parse(event.data);
    if (paused) {
      waiting.push(m);
      if (waiting.length > MAX_SHOWN) waiting.shift();
    } else {
      show(m);
    }
  };
  source.addEventListener("dropped", function (event) {
    note(text.dropped.replace("%(count)s", event.data));
  });
})();
