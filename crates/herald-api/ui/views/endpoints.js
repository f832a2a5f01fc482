// An application's endpoints: a searchable list with each one's status.

import { enc } from "../api.js";
import { h, show, badge, emptyState } from "../dom.js";
import { stackedBars } from "../chart.js";
import { healthBadge } from "./analytics.js";

export function endpointStatus(endpoint) {
  if (endpoint.disabled) return badge("disabled", "off");
  if (endpoint.failingSince) return badge("failing", "bad");
  return badge("enabled", "ok");
}

/** One badge: disabled, else its health over the last 24 hours when it had traffic. */
function listStatus(endpoint, stats) {
  const health = stats?.health;
  if (endpoint.disabled || !health || health === "unknown") return endpointStatus(endpoint);
  return healthBadge(health);
}

/** The last 24 hours of an endpoint, hour by hour, from the list's one stats request. */
function sparkline(group) {
  if (!group) return h("span", { class: "muted" }, "no traffic");
  const buckets = group.points.attempts.map((_, i) => ({
    label: `hour ${i + 1}`,
    values: { succeeded: group.points.succeeded[i], failed: group.points.failed[i] },
  }));
  return stackedBars(buckets, [
    { key: "succeeded", name: "succeeded", className: "ok" },
    { key: "failed", name: "failed", className: "bad" },
  ], { testid: "sparkline", height: 28, className: "sparkline", title: "Attempts in the last 24 hours" });
}

export async function endpointList(ctx, main, _params, search) {
  const app = await ctx.api.get(`/app/${enc(ctx.appId)}`);
  const endpoints = await allPages(ctx.api, `/app/${enc(ctx.appId)}/endpoint`);
  // One grouped request for every row's sparkline and health, not one per endpoint.
  const stats = await ctx.api.get(`/app/${enc(ctx.appId)}/stats/series?range=24h&granularity=1h&group_by=endpoint`);
  const byEndpoint = Object.fromEntries((stats.groups.endpoint || []).map((g) => [g.key, g]));
  const wanted = (search.get("q") || "").toLowerCase();
  const searchBox = h("input", { type: "search", id: "endpoint-search", value: search.get("q") || "",
    testid: "endpoint-search", placeholder: "URL or description" });
  searchBox.addEventListener("change", () => {
    const q = searchBox.value.trim();
    ctx.navigate(`${ctx.appBase}${q ? `?q=${enc(q)}` : ""}`, { replace: true });
  });
  const shown = endpoints.filter((e) =>
    !wanted || e.url.toLowerCase().includes(wanted) || (e.description || "").toLowerCase().includes(wanted));
  const rows = shown.map((e) => h("tr", { testid: "row", "data-id": e.id },
    h("td", {}, h("a", { href: `${ctx.appBase}/endpoints/${enc(e.id)}`, "data-nav": "", class: "url" }, e.url),
      e.description ? h("div", { class: "muted" }, e.description) : null),
    h("td", {}, listStatus(e, byEndpoint[e.id])),
    h("td", {}, e.filterTypes?.length ? e.filterTypes.join(", ") : h("span", { class: "muted" }, "all events")),
    h("td", {}, sparkline(byEndpoint[e.id]))));
  show(main,
    h("div", { class: "title-row" },
      h("h1", { testid: "app-name" }, app.name),
      ctx.can("ManageEndpoint")
        ? h("a", { href: `${ctx.appBase}/endpoints/new`, "data-nav": "", class: "button primary", testid: "add-endpoint" },
          "Add endpoint")
        : null),
    h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); searchBox.dispatchEvent(new Event("change")); } },
      h("label", { for: "endpoint-search" }, "Search"), searchBox),
    h("section", { testid: "endpoint-list", "aria-label": "Endpoints" },
      shown.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "URL"), h("th", {}, "Status"),
          h("th", {}, "Event types"), h("th", {}, "Last 24 hours"))), h("tbody", {}, rows))
        : emptyState(endpoints.length ? "No endpoint matches the search." : "No endpoints yet.")));
}

/** Every item of a list route, following its cursor. */
export async function allPages(api, path, limit = 250) {
  const items = [];
  let iterator = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api.get(`${path}${sep}limit=${limit}${iterator ? `&iterator=${enc(iterator)}` : ""}`);
    items.push(...page.data);
    if (page.done || !page.data.length) return items;
    iterator = page.iterator;
  }
}
