// The segment builder (segment.html): draws the definition's conditions as selects and inputs, and writes
// every edit back to the JSON field, which htmx posts for the live count ("segment-changed" event).
// Editing the JSON redraws the conditions. No inline scripts: the page's words come in data attributes.
(function () {
  "use strict";
  const tree = document.getElementById("segment-tree");
  const field = document.getElementById("segment-definition");
  if (!tree || !field) return;
  const words = JSON.parse(tree.dataset.words || "{}");
  const others = JSON.parse(tree.dataset.segments || "[]");
  const readonly = tree.dataset.readonly === "true";
  const L = words.labels || {};
  let root = null;

  // A group in the editor: {group: "all"|"any"|"not", items: [...]}; "not" is saved as {"not": {"any": items}}.
  function load(node) {
    if (node && Array.isArray(node.all)) return { group: "all", items: node.all.map(load) };
    if (node && Array.isArray(node.any)) return { group: "any", items: node.any.map(load) };
    if (node && node.not) {
      const inner = load(node.not);
      return { group: "not", items: inner.group === "any" ? inner.items : [inner] };
    }
    return node || { type: "trait", key: "", op: "eq", value: "" };
  }
  function save(node) {
    if (!node.group) return node;
    const items = node.items.map(save);
    return node.group === "not" ? { not: { any: items } } : { [node.group]: items };
  }
  function changed() {
    field.value = JSON.stringify(save(root), null, 2);
    field.dispatchEvent(new Event("segment-changed"));
  }
  function parseValue(text, op) {
    if (op === "in") return text.split(",").map((t) => parseValue(t.trim(), "eq")).filter((v) => v !== "");
    if (text === "true" || text === "false") return text === "true";
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    return text;
  }
  function showValue(value) {
    if (Array.isArray(value)) return value.join(", ");
    return value === undefined || value === null ? "" : String(value);
  }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    if (readonly && (tag === "select" || tag === "input" || tag === "button")) node.disabled = true;
    return node;
  }
  function select(options, current, onChange, label) {
    const box = el("select", { "aria-label": label || "" });
    options.forEach(([value, text]) => {
      const option = el("option", { value: String(value), text: text });
      if (String(value) === String(current)) option.selected = true;
      box.appendChild(option);
    });
    box.addEventListener("change", () => onChange(box.value));
    return box;
  }
  function input(node, key, type, label, parse) {
    const box = el("input", { type: type, "aria-label": label, placeholder: label });
    box.value = showValue(node[key]);
    box.addEventListener("input", () => {
      const text = box.value.trim();
      if (text === "") delete node[key];
      else node[key] = parse ? parse(text) : text;
      changed();
    });
    return box;
  }
  const pairs = (list) => list.map((v) => [v, v]);
  function opSelect(node, ops) {
    return select(pairs(ops), node.op, (op) => { node.op = op; if (op === "exists") delete node.value; changed(); redraw(); });
  }
  function valueInput(node) {
    if (node.op === "exists") return [];
    return [input(node, "value", "text", L.value, (t) => parseValue(t, node.op))];
  }
  const int = (t) => parseInt(t, 10);
  const FIELDS = {
    trait: (n) => [input(n, "key", "text", L.key), opSelect(n, words.trait_ops), ...valueInput(n)],
    identity: (n) => [input(n, "kind", "text", L.key), opSelect(n, ["exists", "starts_with"]), ...valueInput(n)],
    channel: (n) => [select(pairs(words.channels), n.channel, (v) => { n.channel = v; changed(); }), input(n, "within_days", "number", L.days, int)],
    event: (n) => [
      select([["true", L.did], ["false", L.did_not]], String(n.did !== false), (v) => { n.did = v === "true"; changed(); }),
      input(n, "name", "text", L.name), input(n, "at_least", "number", L.at_least, int), input(n, "within_days", "number", L.days, int),
    ],
    computed: (n) => [select(Object.entries(words.computed), n.trait, (v) => { n.trait = v; changed(); }), opSelect(n, words.number_ops), ...valueInput(n)],
    rfm: (n) => [select(pairs(["r", "f", "m"]), n.score, (v) => { n.score = v; changed(); }), opSelect(n, words.number_ops), ...valueInput(n)],
    score: (n) => [input(n, "name", "text", L.name), opSelect(n, [...words.number_ops, "exists"]), ...valueInput(n)],
    consent: (n) => [
      select(pairs(words.purposes), n.purpose, (v) => { n.purpose = v; changed(); }),
      select(pairs(words.consent_channels), n.channel, (v) => { n.channel = v; changed(); }),
      select([["true", L.allowed], ["false", L.not_allowed]], String(n.allowed !== false), (v) => { n.allowed = v === "true"; changed(); }),
    ],
    tag: (n) => [input(n, "value", "text", L.value)],
    owner: (n) => [input(n, "value", "number", L.value, int)],
    loyalty: (n) => [select(pairs(words.loyalty_fields), n.field, (v) => { n.field = v; changed(); }), opSelect(n, words.number_ops), ...valueInput(n)],
    portrait: (n) => [select(Object.entries(words.portrait_tags), n.tag, (v) => { n.tag = v; changed(); }), opSelect(n, ["eq", "neq"]), input(n, "value", "text", L.value)],
    segment: (n) => [select(others.map(([id, name]) => [id, name]), n.segment, (v) => { n.segment = int(v); changed(); })],
  };
  // What a new condition of each type starts as: valid, so the count updates at once.
  const FRESH = {
    trait: () => ({ type: "trait", key: "", op: "exists" }),
    identity: () => ({ type: "identity", kind: "email", op: "exists" }),
    channel: () => ({ type: "channel", channel: words.channels[0] }),
    event: () => ({ type: "event", name: "Order Completed", did: true }),
    computed: () => ({ type: "computed", trait: "order_count", op: "gte", value: 1 }),
    rfm: () => ({ type: "rfm", score: "r", op: "gte", value: 4 }),
    score: () => ({ type: "score", name: "churn_risk", op: "gte", value: 0.5 }),
    consent: () => ({ type: "consent", purpose: "marketing", channel: "email", allowed: true }),
    tag: () => ({ type: "tag", value: "" }),
    owner: () => ({ type: "owner", value: null }),
    loyalty: () => ({ type: "loyalty", field: "points", op: "gte", value: 100 }),
    portrait: () => ({ type: "portrait", tag: "lifecycle_stage", op: "eq", value: "active" }),
    segment: () => ({ type: "segment", segment: others.length ? others[0][0] : 0 }),
  };
  function leaf(node, onReplace, onRemove) {
    const types = Object.entries(words.types).filter(([t]) => t !== "segment" || others.length);
    const row = el("div", { class: "seg-leaf" });
    row.appendChild(select(types, node.type, (t) => { onReplace(FRESH[t]()); changed(); redraw(); }));
    (FIELDS[node.type] || (() => []))(node).forEach((c) => row.appendChild(c));
    if (onRemove) row.appendChild(button(L.remove, onRemove));
    return row;
  }
  function button(text, action) {
    const b = el("button", { type: "button", class: "link", text: text });
    b.addEventListener("click", () => { action(); changed(); redraw(); });
    return b;
  }
  function group(node, onRemove) {
    const box = el("div", { class: "seg-group" });
    box.appendChild(select([["all", L.all], ["any", L.any], ["not", L.not]], node.group, (g) => { node.group = g; changed(); }));
    node.items.forEach((item, i) => {
      const replace = (fresh) => { node.items[i] = fresh; };
      const remove = () => node.items.splice(i, 1);
      box.appendChild(item.group ? group(item, remove) : leaf(item, replace, remove));
    });
    const actions = el("div", { class: "seg-actions" });
    actions.appendChild(button(L.add_condition, () => node.items.push(FRESH.trait())));
    actions.appendChild(button(L.add_group, () => node.items.push({ group: "any", items: [] })));
    if (onRemove) actions.appendChild(button(L.remove, onRemove));
    box.appendChild(actions);
    return box;
  }
  function redraw() {
    tree.replaceChildren(root.group ? group(root, null) : leaf(root, (f) => { root = f; }, null));
  }
  function fromField() {
    try {
      root = load(JSON.parse(field.value));
      if (!root.group) root = { group: "all", items: [root] };
      redraw();
    } catch (e) {
      tree.replaceChildren(el("p", { class: "error", text: L.invalid_json }));
    }
  }
  field.addEventListener("input", fromField);
  fromField();
})();
