// An application's endpoints: a searchable list with each one's status.

import { enc } from "../api.js";
import { h, show, badge, emptyState, time } from "../dom.js";

export function endpointStatus(endpoint) {
  if (endpoint.disabled) return badge("disabled", "off");
  if (endpoint.failingSince) return badge("failing", "bad");
  return badge("enabled", "ok");
}

export async function endpointList(ctx, main, _params, search) {
  const app = await ctx.api.get(`/app/${enc(ctx.appId)}`);
  const endpoints = await allPages(ctx.api, `/app/${enc(ctx.appId)}/endpoint`);
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
    h("td", {}, endpointStatus(e)),
    h("td", {}, e.filterTypes?.length ? e.filterTypes.join(", ") : h("span", { class: "muted" }, "all events")),
    h("td", {}, time(e.createdAt))));
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
          h("th", {}, "Event types"), h("th", {}, "Created"))), h("tbody", {}, rows))
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
