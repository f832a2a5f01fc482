// One endpoint: adding it (with the event-type picker), its settings, its secret, sending
// it an example, recovering what failed, and the attempts made to it.

import { enc, query } from "../api.js";
import { h, show, field, errorBox, setError, confirmDialog, badge, emptyState } from "../dom.js";
import { endpointStatus, allPages } from "./endpoints.js";
import { attemptRow, attemptTableHead } from "./messages.js";
import { currentSchema } from "./catalog.js";

const OVERLAP_NOTE =
  "The old secret keeps signing beside the new one for the overlap window (24 hours by default): " +
  "every delivery carries both signatures, so your receiver can switch at its own pace.";

export async function newEndpoint(ctx, main) {
  const eventTypes = await allPages(ctx.api, "/event-type?with_content=false");
  const url = h("input", { type: "url", required: true, testid: "endpoint-url", placeholder: "https://example.com/webhooks" });
  const description = h("input", { type: "text", testid: "endpoint-description" });
  const channels = h("input", { type: "text", testid: "endpoint-channels", placeholder: "project-1, project-2" });
  const picker = eventTypePicker(eventTypes, []);
  const error = errorBox();
  const form = h("form", { class: "card", testid: "endpoint-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const problem = checkUrl(url.value.trim());
    if (problem) return setError(error, problem);
    const body = { url: url.value.trim(), description: description.value };
    const selected = picker.selected();
    if (selected.length) body.filterTypes = selected;
    const chans = channels.value.split(",").map((c) => c.trim()).filter(Boolean);
    if (chans.length) body.channels = chans;
    try {
      const created = await ctx.api.post(`/app/${enc(ctx.appId)}/endpoint`, body);
      ctx.navigate(`${ctx.appBase}/endpoints/${enc(created.id)}`);
    } catch (e) {
      setError(error, e.message);
    }
  } },
  h("h1", {}, "Add endpoint"),
  field("Endpoint URL", url, "Where Herald sends the webhooks: an https:// address on the public internet."),
  field("Description", description),
  picker.element,
  field("Channels (optional)", channels, "Comma-separated; only messages on one of them are sent."),
  error,
  h("div", { class: "actions" },
    h("a", { href: ctx.appBase, "data-nav": "", class: "button" }, "Cancel"),
    h("button", { type: "submit", class: "primary", testid: "save-endpoint" }, "Create")));
  show(main, form);
}

/** What the browser can tell of a URL before the server checks it fully (SSRF included). */
function checkUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return "Enter a full URL, such as https://example.com/webhooks.";
  }
  if (!["http:", "https:"].includes(url.protocol)) return "The URL must start with https:// or http://.";
  return null;
}

/** Event types grouped by their first dotted part, with search and "select all in group". */
export function eventTypePicker(eventTypes, chosen) {
  const boxes = [];
  const search = h("input", { type: "search", id: "event-type-search", testid: "event-type-search", placeholder: "Filter event types" });
  const groups = new Map();
  for (const t of eventTypes.filter((t) => !t.archived)) {
    const group = t.groupName || t.name.split(".")[0];
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(t);
  }
  const list = h("div", { class: "picker-groups" });
  for (const [group, types] of groups) {
    const options = types.map((t) => {
      const box = h("input", { type: "checkbox", value: t.name, checked: chosen.includes(t.name),
        testid: "event-type-option", "data-name": t.name });
      boxes.push(box);
      return h("label", { class: "option", "data-name": t.name }, box, h("code", {}, t.name),
        t.description ? h("span", { class: "muted" }, ` — ${t.description}`) : null,
        t.deprecated ? badge("deprecated", "warn", "deprecated-badge") : null);
    });
    const all = h("button", { type: "button", class: "small link", testid: "select-group", "data-group": group,
      onclick: () => options.forEach((o) => { if (!o.hidden) o.querySelector("input").checked = true; }) },
    `Select all ${group}.*`);
    list.append(h("fieldset", { class: "group", "data-group": group }, h("legend", {}, `${group}.*`), all, options));
  }
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    for (const set of list.querySelectorAll("fieldset")) {
      let visible = 0;
      for (const option of set.querySelectorAll("label.option")) {
        option.hidden = q !== "" && !option.dataset.name.toLowerCase().includes(q);
        if (!option.hidden) visible += 1;
      }
      set.hidden = visible === 0;
    }
  });
  const element = h("fieldset", { class: "picker", testid: "event-type-picker" },
    h("legend", {}, "Event types"),
    h("p", { class: "hint" }, "None selected means all events, including types added later."),
    eventTypes.length ? h("div", { class: "field" }, h("label", { for: "event-type-search" }, "Filter"), search) : null,
    eventTypes.length ? list : emptyState("The catalog has no event types yet: this endpoint gets all events."));
  return { element, selected: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

export async function endpointDetail(ctx, main, { id }) {
  const path = `/app/${enc(ctx.appId)}/endpoint/${enc(id)}`;
  const endpoint = await ctx.api.get(path);
  const stats = await ctx.api.get(`${path}/stats`).catch(() => null);
  const sections = [
    h("div", { class: "title-row" },
      h("h1", { class: "url", testid: "endpoint-url" }, endpoint.url), endpointStatus(endpoint)),
    h("p", { testid: "endpoint-description" }, endpoint.description || h("span", { class: "muted" }, "No description")),
    settingsSection(ctx, endpoint, path),
    ctx.can("ManageEndpoint") ? await editSection(ctx, endpoint, path) : null,
    await headersSection(ctx, path),
    stats ? statsSection(ctx, endpoint.id, stats) : null,
    await secretSection(ctx, path),
    ctx.can("CreateAttempts") ? await exampleSection(ctx, path) : null,
    ctx.can("CreateAttempts") ? recoverSection(ctx, path) : null,
    await attemptsSection(ctx, endpoint),
  ];
  show(main, sections);
}

function settingsSection(ctx, endpoint, path) {
  const types = endpoint.filterTypes?.length
    ? h("ul", { testid: "endpoint-event-types" }, endpoint.filterTypes.map((t) => h("li", {}, h("code", {}, t))))
    : h("p", { testid: "endpoint-event-types" }, "All events");
  const error = errorBox();
  const actions = ctx.can("ManageEndpoint") ? h("div", { class: "actions" },
    h("button", { type: "button", testid: endpoint.disabled ? "enable-endpoint" : "disable-endpoint", onclick: async () => {
      try {
        await ctx.api.patch(path, { disabled: !endpoint.disabled });
        ctx.render();
      } catch (e) {
        setError(error, e.message);
      }
    } }, endpoint.disabled ? "Enable" : "Disable"),
    h("button", { type: "button", class: "danger", testid: "delete-endpoint", onclick: async () => {
      const sure = await confirmDialog("Delete this endpoint?",
        `${endpoint.url} will get no more webhooks, and its delivery history goes with it.`, "Delete");
      if (!sure) return;
      try {
        await ctx.api.delete(path);
        ctx.navigate(ctx.appBase);
      } catch (e) {
        setError(error, e.message);
      }
    } }, "Delete")) : null;
  return h("section", { class: "card", "aria-labelledby": "settings-title" },
    h("h2", { id: "settings-title" }, "Settings"),
    h("h3", {}, "Event types"), types,
    endpoint.channels?.length ? [h("h3", {}, "Channels"), h("p", {}, endpoint.channels.join(", "))] : null,
    endpoint.rateLimit ? [h("h3", {}, "Rate limit"), h("p", {}, `${endpoint.rateLimit} per second`)] : null,
    endpoint.ordered ? [h("h3", {}, "Order"), h("p", { testid: "ordered-note" },
      "One message at a time, in publish order: each waits until the one before it succeeded or ran out of retries.")] : null,
    actions, error);
}

/** Changing what the endpoint is: URL, description, event types, channels, rate limit, order. */
async function editSection(ctx, endpoint, path) {
  const eventTypes = await allPages(ctx.api, "/event-type?with_content=false");
  const url = h("input", { type: "url", value: endpoint.url, testid: "edit-url", required: true });
  const description = h("input", { type: "text", value: endpoint.description, testid: "edit-description" });
  const channels = h("input", { type: "text", value: (endpoint.channels || []).join(", "), testid: "edit-channels" });
  const rateLimit = h("input", { type: "number", min: 1, max: 65535, value: endpoint.rateLimit ?? "", testid: "edit-rate-limit" });
  const ordered = h("input", { type: "checkbox", checked: Boolean(endpoint.ordered), testid: "edit-ordered" });
  const picker = eventTypePicker(eventTypes, endpoint.filterTypes || []);
  const error = errorBox("edit-error");
  const form = h("form", { testid: "edit-endpoint", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const problem = checkUrl(url.value.trim());
    if (problem) return setError(error, problem);
    const selected = picker.selected();
    const chans = channels.value.split(",").map((c) => c.trim()).filter(Boolean);
    try {
      await ctx.api.patch(path, {
        url: url.value.trim(),
        description: description.value,
        filterTypes: selected.length ? selected : null,
        channels: chans.length ? chans : null,
        rateLimit: rateLimit.value ? Number(rateLimit.value) : null,
        ordered: ordered.checked,
      });
      ctx.render();
    } catch (e) {
      setError(error, e.message);
    }
  } },
  field("Endpoint URL", url),
  field("Description", description),
  picker.element,
  field("Channels", channels, "Comma-separated; empty means every message."),
  field("Rate limit (messages per second)", rateLimit, "Empty means no limit."),
  field("Deliver in order", ordered,
    "One message at a time, in publish order. A failing message holds up the ones behind it until its retries run out."),
  error,
  h("button", { type: "submit", class: "primary", testid: "save-edit" }, "Save changes"));
  return h("details", { class: "card", testid: "edit-section" },
    h("summary", { testid: "edit-open" }, h("h2", { class: "inline-title" }, "Edit")), form);
}

/** Custom headers sent with every delivery; reserved ones are refused by the API. */
async function headersSection(ctx, path) {
  const current = await ctx.api.get(`${path}/headers`);
  const error = errorBox("header-error");
  const patch = async (body) => {
    try {
      await ctx.api.patch(`${path}/headers`, body);
      ctx.render();
    } catch (e) {
      setError(error, e.message);
    }
  };
  const rows = Object.entries(current.headers).map(([name, value]) => h("tr", { testid: "header-row", "data-name": name },
    h("td", {}, h("code", {}, name)),
    h("td", {}, current.sensitive.includes(name) ? h("span", { class: "muted" }, "•••• (hidden)") : value),
    h("td", {}, ctx.can("ManageEndpoint")
      ? h("button", { type: "button", class: "small", testid: "remove-header", onclick: () => patch({ headers: {}, deleteHeaders: [name] }) }, "Remove")
      : null)));
  const name = h("input", { type: "text", testid: "header-name", placeholder: "X-Tenant" });
  const value = h("input", { type: "text", testid: "header-value" });
  return h("section", { class: "card", "aria-labelledby": "headers-title" },
    h("h2", { id: "headers-title" }, "Custom headers"),
    rows.length
      ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Value"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "None."),
    ctx.can("ManageEndpoint") ? h("form", { class: "inline", testid: "add-header", onsubmit: (event) => {
      event.preventDefault();
      if (!name.value.trim()) return setError(error, "Give the header a name.");
      patch({ headers: { [name.value.trim()]: value.value } });
    } }, field("Header", name), field("Value", value), h("button", { type: "submit", testid: "save-header" }, "Add header")) : null,
    error);
}

function statsSection(ctx, endpointId, stats) {
  const tile = (label, value, testid) => h("div", { class: "tile", testid }, h("span", { class: "label" }, label),
    h("strong", {}, String(value)));
  return h("section", { class: "card", "aria-labelledby": "stats-title" },
    h("h2", { id: "stats-title" }, "Deliveries"),
    h("p", {}, h("a", { href: `${ctx.appBase}/analytics?range=24h&endpoint=${enc(endpointId)}`, "data-nav": "", testid: "endpoint-analytics" },
      "Analytics for this endpoint")),
    h("div", { class: "tiles" },
      tile("Succeeded", stats.success, "stat-success"),
      tile("Failed", stats.fail, "stat-fail"),
      tile("Pending", stats.pending, "stat-pending"),
      tile("Sending", stats.sending, "stat-sending")));
}

async function secretSection(ctx, path) {
  if (!ctx.can("ViewEndpointSecret") && !ctx.can("ManageEndpointSecret")) return null;
  const value = h("code", { testid: "secret-value", class: "secret" }, "whsec_••••••••••••••••");
  const error = errorBox();
  let revealed = null;
  const reveal = async () => {
    try {
      revealed = (await ctx.api.get(`${path}/secret`)).key;
      value.textContent = revealed;
      copy.disabled = false;
    } catch (e) {
      setError(error, e.message);
    }
  };
  const copy = h("button", { type: "button", testid: "copy-secret", disabled: true,
    onclick: () => navigator.clipboard.writeText(revealed) }, "Copy");
  const buttons = [];
  if (ctx.can("ViewEndpointSecret")) {
    buttons.push(h("button", { type: "button", testid: "reveal-secret", onclick: reveal }, "Reveal"), copy);
  }
  if (ctx.can("ManageEndpointSecret")) {
    buttons.push(h("button", { type: "button", testid: "rotate-secret", onclick: async () => {
      if (!(await confirmDialog("Rotate the signing secret?", OVERLAP_NOTE, "Rotate"))) return;
      try {
        await ctx.api.post(`${path}/secret/rotate`, {});
        if (ctx.can("ViewEndpointSecret")) await reveal();
      } catch (e) {
        setError(error, e.message);
      }
    } }, "Rotate"));
  }
  return h("section", { class: "card", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title" }, "Signing secret"),
    h("p", { class: "hint" }, "Verify each webhook's webhook-signature header with this secret (Standard Webhooks)."),
    h("div", { class: "secret-row" }, value, buttons), error);
}

async function exampleSection(ctx, path) {
  const types = (await allPages(ctx.api, "/event-type")).filter((t) => !t.archived);
  const withExample = types.filter((t) => currentSchema(t)?.examples?.length);
  const select = h("select", { testid: "example-type" },
    h("option", { value: "svix.ping" }, "svix.ping (a test ping)"),
    types.map((t) => h("option", { value: t.name, disabled: !withExample.includes(t) },
      withExample.includes(t) ? t.name : `${t.name} (no example in its schema)`)));
  const status = h("p", { class: "hint", role: "status", testid: "example-status" });
  const error = errorBox();
  return h("section", { class: "card", "aria-labelledby": "example-title" },
    h("h2", { id: "example-title" }, "Test this endpoint"),
    h("p", { class: "hint" }, "Sends an event type's example from the catalog to this endpoint only."),
    h("div", { class: "inline" }, field("Event type", select),
      h("button", { type: "button", class: "primary", testid: "send-example", onclick: async () => {
        setError(error, "");
        try {
          const msg = await ctx.api.post(`${path}/send-example`, { eventType: select.value });
          status.textContent = `Sent message ${msg.id}; its attempts appear below.`;
          watchAttempts(ctx, path, msg.id);
        } catch (e) {
          setError(error, e.message);
        }
      } }, "Send example")),
    status, error);
}

/** Refreshes the attempt list until the message's first attempt shows (or 30 s pass). */
async function watchAttempts(ctx, path, msgId) {
  const until = Date.now() + 30000;
  const endpointId = path.split("/").pop();
  while (Date.now() < until && document.querySelector("[data-testid=endpoint-attempts]")) {
    const page = await ctx.api.get(`/app/${enc(ctx.appId)}/attempt/endpoint/${enc(endpointId)}?limit=20`);
    const target = document.querySelector("[data-testid=endpoint-attempts]");
    if (target) target.replaceWith(attemptsTable(ctx, page.data));
    if (page.data.some((a) => a.msgId === msgId)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function recoverSection(ctx, path) {
  const since = h("input", { type: "datetime-local", testid: "recover-since", required: true });
  const until = h("input", { type: "datetime-local", testid: "recover-until" });
  const result = h("p", { role: "status", testid: "recover-result" });
  const error = errorBox();
  const range = () => ({
    since: since.value ? new Date(since.value).toISOString() : null,
    until: until.value ? new Date(until.value).toISOString() : undefined,
  });
  const run = (kind) => async () => {
    const { since: from, until: to } = range();
    if (!from) return setError(error, "Choose the time to start from.");
    setError(error, "");
    const what = kind === "recover" ? "failed messages" : "messages never sent to this endpoint";
    try {
      // A dry run first, so the dialog says how many messages the action touches.
      const preview = await ctx.api.post(`${path}/${kind}`, { since: from, until: to, dryRun: true });
      const count = preview.recovered ?? preview.replayed ?? 0;
      if (count === 0) {
        result.textContent = `No ${what} in that range: nothing to send.`;
        return;
      }
      const text = `${count} ${what} since ${new Date(from).toLocaleString()} will be sent to this endpoint.`;
      if (!(await confirmDialog(`Send ${count} ${what}?`, text, `Send ${count}`))) return;
      const out = await ctx.api.post(`${path}/${kind}`, { since: from, until: to });
      result.textContent = `${out.recovered ?? out.replayed ?? 0} queued.`;
    } catch (e) {
      setError(error, e.message);
    }
  };
  return h("section", { class: "card", "aria-labelledby": "recover-title" },
    h("h2", { id: "recover-title" }, "Recover"),
    h("div", { class: "inline" }, field("Since", since), field("Until (optional)", until)),
    h("div", { class: "actions" },
      h("button", { type: "button", testid: "recover", onclick: run("recover") }, "Resend failed"),
      h("button", { type: "button", testid: "replay-missing", onclick: run("replay-missing") }, "Replay missing")),
    result, error);
}

async function attemptsSection(ctx, endpoint) {
  const page = await ctx.api.get(`/app/${enc(ctx.appId)}/attempt/endpoint/${enc(endpoint.id)}${query({ limit: 20 })}`);
  return h("section", { class: "card", "aria-labelledby": "attempts-title" },
    h("h2", { id: "attempts-title" }, "Recent attempts"), attemptsTable(ctx, page.data));
}

function attemptsTable(ctx, attempts) {
  if (!attempts.length) return h("div", { testid: "endpoint-attempts" }, emptyState("No attempts yet."));
  return h("table", { testid: "endpoint-attempts" }, attemptTableHead(true),
    h("tbody", {}, attempts.map((a) => attemptRow(ctx, a, true))));
}

