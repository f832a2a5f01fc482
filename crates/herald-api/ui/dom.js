// Building the page. Every text goes in through text nodes or attributes, never through
// innerHTML, so a payload, header or description holding markup is shown as text.

/** An element: `h("a", {href, testid: "row", onclick}, "text", child, [more])`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "testid") el.dataset.testid = value;
    else if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `el` shows. */
export function show(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A `<time>` with the machine-readable instant and a local rendering. */
export function time(iso) {
  if (!iso) return h("span", {}, "—");
  const date = new Date(iso);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

/** A coloured label: `ok`, `warn`, `bad`, `off` or plain. */
export function badge(text, kind = "", testid = "status-badge") {
  return h("span", { class: `badge ${kind}`, testid }, text);
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label), control, hint ? h("small", { class: "hint" }, hint) : null);
}

/** An inline error under a form; empty hides it. */
export function errorBox(testid = "form-error") {
  return h("p", { class: "error", role: "alert", testid, hidden: true });
}

export function setError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** Asks before something that cannot be undone; resolves to true on "confirm". */
export function confirmDialog(title, text, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { testid: "confirm-dialog", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h("div", { class: "actions" },
        h("button", { type: "button", testid: "confirm-cancel", onclick: () => close(false) }, "Cancel"),
        h("button", { type: "button", class: "primary", testid: "confirm-ok", onclick: () => close(true) },
          confirmLabel)));
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** JSON shown pretty when it parses, as sent otherwise. */
export function pretty(text) {
  if (text === null || text === undefined) return "";
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A code block with a copy button. */
export function codeBlock(text, testid = "code") {
  // Focusable, so a long body that scrolls can be scrolled from the keyboard too.
  const pre = h("pre", { testid, tabindex: "0" }, text);
  return h("div", { class: "code" }, pre,
    h("button", { type: "button", class: "small", testid: `${testid}-copy`,
      onclick: () => navigator.clipboard.writeText(text) }, "Copy"));
}

export function emptyState(text) {
  return h("p", { class: "empty", testid: "empty-state" }, text);
}
