// The message log: filters kept in the address (so reload, back and shared links keep
// them), cursor paging that carries them, and each message with its deliveries and
// attempts.

import { enc, query } from "../api.js";
import { h, show, field, time, badge, emptyState, pretty, codeBlock, errorBox, setError } from "../dom.js";
import { allPages } from "./endpoints.js";

const STATUS = { 0: ["succeeded", "ok"], 1: ["pending", "warn"], 2: ["failed", "bad"], 3: ["sending", "warn"] };
const TRIGGER = { 0: "scheduled", 1: "manual" };
const FILTER_KEYS = ["event_types", "status", "status_code_class", "search", "payload", "channel", "after", "before", "id"];
const STATUS_CLASSES = [["200", "2xx"], ["300", "3xx"], ["400", "4xx"], ["500", "5xx"], ["0", "No response"]];
// Presets of the time range: each sets `after` to that long before now.
const RANGE_PRESETS = [["1h", 3600e3], ["24h", 86400e3], ["7d", 7 * 86400e3]];

export async function messageList(ctx, main, _params, search) {
  const id = search.get("id");
  if (id) {
    // A message id or event id names one message: show it alone.
    const one = await ctx.api.get(`/app/${enc(ctx.appId)}/msg/${enc(id)}?with_content=false`).catch((e) => {
      if (e.status === 404) return null;
      throw e;
    });
    return show(main, heading(), await filterForm(ctx, search), messageTable(ctx, one ? [one] : [], null, search));
  }
  const filters = {
    event_types: search.get("event_types"),
    status: search.get("status"),
    status_code_class: search.get("status_code_class"),
    search: search.get("search"),
    payload_contains: search.get("payload"),
    channel: search.get("channel"),
    after: search.get("after"),
    before: search.get("before"),
    iterator: search.get("iterator"),
    limit: 50,
    with_content: false,
  };
  const page = await ctx.api.get(`/app/${enc(ctx.appId)}/msg${query(filters)}`);
  show(main, heading(), await filterForm(ctx, search), messageTable(ctx, page.data, page, search));
}

function heading() {
  return h("h1", {}, "Messages");
}

async function filterForm(ctx, search) {
  const types = await allPages(ctx.api, "/event-type?with_content=false");
  const chosen = (search.get("event_types") || "").split(",").filter(Boolean);
  const typeSelect = h("select", { multiple: true, testid: "filter-event-types", size: Math.min(6, Math.max(2, types.length)) },
    types.map((t) => h("option", { value: t.name, selected: chosen.includes(t.name) }, t.name)));
  const status = h("select", { testid: "filter-status" },
    h("option", { value: "" }, "Any"),
    [["0", "Succeeded"], ["2", "Failed"], ["1", "Pending"], ["3", "Sending"]].map(([value, text]) =>
      h("option", { value, selected: search.get("status") === value }, text)));
  const statusClass = h("select", { testid: "filter-status-class" },
    h("option", { value: "" }, "Any"),
    STATUS_CLASSES.map(([value, text]) =>
      h("option", { value, selected: search.get("status_code_class") === value }, text)));
  const words = h("input", { type: "search", testid: "filter-search", value: search.get("search") || "", maxlength: 256 });
  const payload = h("input", { type: "search", testid: "filter-payload", value: search.get("payload") || "", maxlength: 256 });
  const channel = h("input", { type: "text", testid: "filter-channel", value: search.get("channel") || "" });
  const after = h("input", { type: "datetime-local", testid: "filter-after", value: toLocalInput(search.get("after")) });
  const before = h("input", { type: "datetime-local", testid: "filter-before", value: toLocalInput(search.get("before")) });
  const id = h("input", { type: "search", testid: "filter-id", value: search.get("id") || "", placeholder: "msg_… or your event id" });
  const apply = (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    const selected = [...typeSelect.selectedOptions].map((o) => o.value);
    if (selected.length) q.set("event_types", selected.join(","));
    if (status.value) q.set("status", status.value);
    if (statusClass.value) q.set("status_code_class", statusClass.value);
    if (words.value.trim()) q.set("search", words.value.trim());
    if (payload.value) q.set("payload", payload.value);
    if (channel.value.trim()) q.set("channel", channel.value.trim());
    if (after.value) q.set("after", new Date(after.value).toISOString());
    if (before.value) q.set("before", new Date(before.value).toISOString());
    if (id.value.trim()) q.set("id", id.value.trim());
    const s = q.toString();
    ctx.navigate(`${ctx.appBase}/messages${s ? `?${s}` : ""}`);
  };
  const active = FILTER_KEYS.some((k) => search.get(k));
  // A preset keeps the other filters and replaces the time range.
  const preset = (length) => {
    const q = new URLSearchParams(search);
    q.delete("iterator");
    q.delete("before");
    q.set("after", new Date(Date.now() - length).toISOString());
    return `${ctx.appBase}/messages?${q}`;
  };
  return h("form", { class: "filters card", role: "search", testid: "message-filters", onsubmit: apply },
    field("Event types", typeSelect),
    field("Delivery status", status, "Messages with a delivery in this state"),
    field("Response status", statusClass, "Messages with an attempt answered so"),
    field("Payload words", words, "Words or their starts, any case; quick on a large log"),
    field("Payload contains", payload, "Exact text, case-sensitive"),
    field("Channel", channel),
    field("After", after),
    field("Before", before),
    h("nav", { class: "ranges", "aria-label": "Time range presets" }, RANGE_PRESETS.map(([name, length]) =>
      h("a", { href: preset(length), "data-nav": "", class: "button small", testid: `range-${name}` }, `Last ${name}`))),
    field("Message or event id", id),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", testid: "apply-filters" }, "Apply"),
      active ? h("a", { href: `${ctx.appBase}/messages`, "data-nav": "", class: "button", testid: "clear-filters" }, "Clear") : null));
}

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function messageTable(ctx, messages, page, search) {
  if (!messages.length) return emptyState("No messages match these filters.");
  const rows = messages.map((m) => h("tr", { testid: "row", "data-id": m.id },
    h("td", {}, h("a", { href: `${ctx.appBase}/messages/${enc(m.id)}`, "data-nav": "" }, m.id)),
    h("td", { testid: "row-event-type" }, h("code", {}, m.eventType)),
    h("td", {}, m.eventId || h("span", { class: "muted" }, "—")),
    h("td", {}, (m.channels || []).join(", ")),
    h("td", {}, time(m.timestamp))));
  let next = null;
  if (page && !page.done && page.iterator) {
    const q = new URLSearchParams(search);
    q.set("iterator", page.iterator);
    next = h("a", { href: `${ctx.appBase}/messages?${q}`, "data-nav": "", class: "button", testid: "next-page" }, "Older messages");
  }
  return h("section", { "aria-label": "Messages" },
    h("p", { class: "muted", testid: "row-count" }, `${messages.length} shown`),
    h("table", { testid: "message-list" },
      h("thead", {}, h("tr", {}, h("th", {}, "Message"), h("th", {}, "Event type"), h("th", {}, "Event id"),
        h("th", {}, "Channels"), h("th", {}, "Created"))),
      h("tbody", {}, rows)),
    next);
}

export async function messageDetail(ctx, main, { id }) {
  const path = `/app/${enc(ctx.appId)}/msg/${enc(id)}`;
  const message = await ctx.api.get(path);
  const deliveries = await allPages(ctx.api, `${path}/endpoint`);
  const attempts = await allPages(ctx.api, `/app/${enc(ctx.appId)}/attempt/msg/${enc(message.id)}`);
  const error = errorBox();
  const deliveryRows = deliveries.map((d) => {
    const [text, kind] = STATUS[d.status] || ["unknown", ""];
    return h("tr", { testid: "delivery-row", "data-id": d.id },
      h("td", {}, h("a", { href: `${ctx.appBase}/endpoints/${enc(d.id)}`, "data-nav": "", class: "url" }, d.url)),
      h("td", {}, badge(text, kind)),
      h("td", {}, d.nextAttempt ? time(d.nextAttempt) : "—"),
      h("td", {}, ctx.can("CreateAttempts")
        ? h("button", { type: "button", class: "small", testid: "resend", onclick: async () => {
          try {
            await ctx.api.post(`${path}/endpoint/${enc(d.id)}/resend`, {});
            ctx.render();
          } catch (e) {
            setError(error, e.message);
          }
        } }, "Resend")
        : null));
  });
  show(main,
    h("h1", {}, "Message ", h("code", { testid: "message-id" }, message.id)),
    h("dl", { class: "facts" },
      h("dt", {}, "Event type"), h("dd", { testid: "message-event-type" }, message.eventType),
      h("dt", {}, "Event id"), h("dd", {}, message.eventId || "—"),
      h("dt", {}, "Channels"), h("dd", {}, (message.channels || []).join(", ") || "—"),
      h("dt", {}, "Created"), h("dd", {}, time(message.timestamp))),
    h("section", { class: "card", "aria-labelledby": "payload-title" },
      h("h2", { id: "payload-title" }, "Payload"),
      codeBlock(pretty(message.payload), "message-payload")),
    h("section", { class: "card", "aria-labelledby": "deliveries-title" },
      h("h2", { id: "deliveries-title" }, "Endpoints"),
      deliveries.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "Status"),
          h("th", {}, "Next attempt"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
        h("tbody", {}, deliveryRows))
        : emptyState("No endpoint was subscribed to this message."),
      error),
    h("section", { class: "card", "aria-labelledby": "attempts-title" },
      h("h2", { id: "attempts-title" }, "Attempts"),
      attempts.length
        ? h("table", { testid: "message-attempts" }, attemptTableHead(false),
          h("tbody", {}, attempts.map((a) => attemptRow(ctx, a, false, message.payload))))
        : emptyState("No attempts yet.")));
}

export function attemptTableHead(withMessage) {
  return h("thead", {}, h("tr", {},
    h("th", {}, "When"), withMessage ? h("th", {}, "Message") : h("th", {}, "URL"),
    h("th", {}, "Result"), h("th", {}, "Status code"), h("th", {}, "Duration"), h("th", {}, "Trigger")));
}

/**
 * One attempt, opening onto its detail: what was sent where, and what came back. The
 * request body is the message's payload (or the endpoint template's output), shown when
 * the caller has it at hand and linked otherwise.
 */
export function attemptRow(ctx, a, withMessage, payload) {
  const sentHeaders = Object.entries(a.requestHeaders || {});
  const [text, kind] = STATUS[a.status] || ["unknown", ""];
  const detail = h("details", { testid: "attempt-detail" },
    h("summary", { testid: "attempt-open" }, time(a.timestamp)),
    h("dl", { class: "facts" },
      h("dt", {}, "Attempt"), h("dd", {}, a.id),
      h("dt", {}, "URL"), h("dd", { class: "url", testid: "attempt-url" }, a.url),
      h("dt", {}, "Response status"), h("dd", { testid: "attempt-status-code" }, String(a.responseStatusCode)),
      h("dt", {}, "Duration"), h("dd", { testid: "attempt-duration" }, `${a.responseDurationMs} ms`),
      h("dt", {}, "Trigger"), h("dd", { testid: "attempt-trigger" }, TRIGGER[a.triggerType] || String(a.triggerType)),
      a.errorKind ? [h("dt", {}, "Error"), h("dd", { testid: "attempt-error" }, describeError(a))] : null),
    h("h3", {}, "Request"),
    h("p", {}, h("code", { testid: "attempt-request-line" }, `POST ${a.url}`)),
    sentHeaders.length
      ? codeBlock(sentHeaders.map(([k, v]) => `${k}: ${v}`).join("\n"), "attempt-request-headers")
      : h("p", { class: "muted" }, "No request headers recorded (not an HTTP destination, or an attempt made before Herald recorded them)."),
    payload !== undefined
      ? codeBlock(pretty(payload), "attempt-request-body")
      : h("p", {}, "Body: the ", h("a", { href: `${ctx.appBase}/messages/${enc(a.msgId)}`, "data-nav": "" }, "message's payload"),
        " (or the endpoint template's output)."),
    Object.keys(a.responseHeaders || {}).length
      ? [h("h3", {}, "Response headers"), codeBlock(Object.entries(a.responseHeaders).map(([k, v]) => `${k}: ${v}`).join("\n"), "attempt-response-headers")]
      : null,
    h("h3", {}, "Response body"),
    a.responseTruncated
      ? h("p", { class: "truncated", testid: "attempt-truncated", role: "note" },
        "Truncated: the response was longer than Herald keeps; below is its start.")
      : null,
    a.response ? codeBlock(pretty(a.response), "attempt-response") : h("p", { class: "muted" }, "Empty"));
  return h("tr", { testid: "attempt-row", "data-id": a.id, "data-status": text },
    h("td", {}, detail),
    withMessage
      ? h("td", {}, h("a", { href: `${ctx.appBase}/messages/${enc(a.msgId)}`, "data-nav": "" }, a.msgId))
      : h("td", { class: "url" }, a.url),
    h("td", {}, badge(text, kind, "attempt-result")),
    h("td", { testid: "attempt-code" }, a.responseStatusCode ? String(a.responseStatusCode) : "—"),
    h("td", {}, `${a.responseDurationMs} ms`),
    h("td", {}, TRIGGER[a.triggerType] || String(a.triggerType)));
}

const ERROR_TEXT = {
  http_status: "the endpoint answered with an error status",
  timeout: "timed out",
  connection_refused: "connection refused",
  dns: "DNS lookup failed",
  tls: "TLS handshake failed",
  connection: "connection failed",
  invalid_response: "invalid response",
  blocked: "address not allowed",
  template: "template failed",
  rejected: "rejected",
  listener_offline: "no herald listen session attached",
  token: "no OAuth access token",
};

function describeError(a) {
  const kind = ERROR_TEXT[a.errorKind] || a.errorKind;
  return a.errorDetail ? `${kind}: ${a.errorDetail}` : kind;
}
