// Delivery analytics of an application, or of one of its endpoints: tiles, charts and
// breakdowns for 1 h, 24 h, 7 d or 30 d, all from one statistics request.

import { enc, query } from "../api.js";
import { h, show, badge, emptyState } from "../dom.js";
import { stackedBars } from "../chart.js";

const RANGES = ["1h", "24h", "7d", "30d"];
const HEALTH = { healthy: "ok", degraded: "warn", failing: "bad", unknown: "" };

export function healthBadge(health) {
  return badge(health === "unknown" ? "no traffic" : health, HEALTH[health] ?? "", "health-badge");
}

export const percent = (x) => (x === null || x === undefined ? "—" : `${x.toFixed(1)}%`);
export const millis = (x) => (x === null || x === undefined ? "—" : `${x.toFixed(1)} ms`);

export async function analyticsPage(ctx, main, _params, search) {
  const range = RANGES.includes(search.get("range")) ? search.get("range") : "24h";
  const endpointId = search.get("endpoint");
  const stats = await ctx.api.get(`/app/${enc(ctx.appId)}/stats/series${query({
    range, group_by: "endpoint,event_type,status_code", endpoint_id: endpointId,
  })}`);
  const endpoints = endpointId ? [] : (await ctx.api.get(`/app/${enc(ctx.appId)}/endpoint?limit=250`)).data;
  const urlOf = Object.fromEntries(endpoints.map((e) => [e.id, e]));
  const here = (r) => `${ctx.appBase}/analytics${query({ range: r, endpoint: endpointId })}`;
  const totals = stats.total.totals;
  const failingEndpoints = (stats.groups.endpoint || []).filter((g) => g.health === "failing").length;
  const tile = (label, value, testid) => h("div", { class: "tile", testid },
    h("span", { class: "label" }, label), h("strong", { testid: `${testid}-value` }, value));
  const labels = stats.buckets.map((b) => new Date(b).toISOString());
  const deliveries = stackedBars(
    labels.map((label, i) => ({ label, values: { succeeded: stats.total.points.succeeded[i], failed: stats.total.points.failed[i] } })),
    [{ key: "succeeded", name: "succeeded", className: "ok" }, { key: "failed", name: "failed", className: "bad" }],
    { testid: "chart-deliveries", title: "Attempts over time, succeeded and failed" });
  const errorRate = stackedBars(
    labels.map((label, i) => ({ label, values: { rate: stats.total.points.errorRate[i] ?? 0 } })),
    [{ key: "rate", name: "error rate %", className: "bad" }],
    { testid: "chart-error-rate", title: "Error rate over time", max: 100 });
  const latency = stackedBars(
    labels.map((label, i) => ({ label, values: { p95: stats.total.points.latencyP95Ms[i] ?? 0 } })),
    [{ key: "p95", name: "p95 latency ms", className: "accent" }],
    { testid: "chart-latency", title: "95th percentile latency over time" });
  show(main,
    h("div", { class: "title-row" },
      h("h1", {}, endpointId ? "Endpoint analytics" : "Analytics"),
      h("nav", { class: "ranges", "aria-label": "Time range" }, RANGES.map((r) =>
        h("a", { href: here(r), "data-nav": "", class: "button small", testid: `range-${r}`, "aria-current": r === range ? "true" : null }, r)))),
    endpointId ? h("p", {}, "Only endpoint ", h("code", {}, endpointId), ". ",
      h("a", { href: `${ctx.appBase}/analytics${query({ range })}`, "data-nav": "" }, "All endpoints")) : null,
    h("div", { class: "tiles", testid: "tiles" },
      endpointId ? null : tile("Messages", String(stats.messages ?? 0), "tile-messages"),
      tile("Attempts", String(totals.attempts), "tile-attempts"),
      tile("Success rate", percent(totals.successRate), "success-rate"),
      tile("Latency p50", millis(totals.latencyP50Ms), "latency-p50"),
      tile("Latency p95", millis(totals.latencyP95Ms), "latency-p95"),
      tile("Latency p99", millis(totals.latencyP99Ms), "latency-p99"),
      endpointId ? null : tile("Failing endpoints", String(failingEndpoints), "tile-failing")),
    totals.attempts === 0 ? emptyState("No attempts in this range.") : null,
    h("section", { class: "card", "aria-labelledby": "c1" }, h("h2", { id: "c1" }, "Attempts"), legend(), deliveries),
    h("section", { class: "card", "aria-labelledby": "c2" }, h("h2", { id: "c2" }, "Error rate"), errorRate),
    h("section", { class: "card", "aria-labelledby": "c3" }, h("h2", { id: "c3" }, "Latency (95th percentile)"), latency),
    breakdown("By status code", "status-row", stats.groups.status_code, (g) => (g.key === "0" ? "no response" : g.key)),
    breakdown("By event type", "event-type-row", stats.groups.event_type, (g) => h("code", {}, g.key)),
    endpointId ? null : breakdown("By endpoint", "endpoint-health-row", stats.groups.endpoint, (g) =>
      [h("a", { href: `${ctx.appBase}/analytics${query({ range, endpoint: g.key })}`, "data-nav": "", class: "url" },
        urlOf[g.key]?.url ?? g.key), " ", healthBadge(g.health)]));
}

function legend() {
  return h("p", { class: "legend" }, h("span", { class: "swatch ok" }), " succeeded ", h("span", { class: "swatch bad" }), " failed");
}

function breakdown(title, testid, groups = [], name) {
  const id = `t-${testid}`;
  return h("section", { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    groups.length
      ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Attempts"), h("th", {}, "Failed"),
        h("th", {}, "Error rate"), h("th", {}, "p95"))),
      h("tbody", {}, groups.map((g) => h("tr", { testid, "data-key": g.key },
        h("td", {}, name(g)), h("td", { testid: "row-attempts" }, String(g.totals.attempts)),
        h("td", {}, String(g.totals.failed)), h("td", {}, percent(g.totals.errorRate)),
        h("td", {}, millis(g.totals.latencyP95Ms))))))
      : emptyState("Nothing in this range."));
}
