// Provider-only pages: every application (with "open the portal as this customer") and
// the instance's state.

import { enc } from "../api.js";
import { h, show, time, emptyState, field, errorBox, setError } from "../dom.js";
import { allPages } from "./endpoints.js";

export async function appList(ctx, main, _params, search) {
  const apps = await allPages(ctx.api, "/app");
  const wanted = (search.get("q") || "").toLowerCase();
  const shown = apps.filter((a) => !wanted || a.name.toLowerCase().includes(wanted)
    || (a.uid || "").toLowerCase().includes(wanted) || a.id.toLowerCase().includes(wanted));
  const searchBox = h("input", { type: "search", id: "app-search", testid: "app-search", value: search.get("q") || "" });
  const error = errorBox();
  const rows = shown.map((a) => h("tr", { testid: "row", "data-id": a.id },
    h("td", {}, h("a", { href: `${ctx.base}/apps/${enc(a.id)}`, "data-nav": "" }, a.name)),
    h("td", {}, a.uid ? h("code", {}, a.uid) : h("span", { class: "muted" }, "—")),
    h("td", {}, time(a.createdAt)),
    h("td", {}, h("button", { type: "button", class: "small", testid: "open-portal", onclick: async () => {
      try {
        const access = await ctx.api.post(`/auth/app-portal-access/${enc(a.id)}`, { expiry: 3600 });
        window.open(access.url, "_blank", "noopener");
      } catch (e) {
        setError(error, e.message);
      }
    } }, "Open portal as this customer"))));
  const name = h("input", { type: "text", required: true, testid: "new-app-name" });
  const uid = h("input", { type: "text", testid: "new-app-uid" });
  const createError = errorBox();
  show(main,
    h("h1", {}, "Applications"),
    h("form", { class: "filters", role: "search", onsubmit: (e) => {
      e.preventDefault();
      const q = searchBox.value.trim();
      ctx.navigate(`${ctx.base}${q ? `?q=${enc(q)}` : ""}`, { replace: true });
    } }, h("label", { for: "app-search" }, "Search"), searchBox,
    h("button", { type: "submit", testid: "app-search-submit" }, "Search")),
    error,
    shown.length
      ? h("table", { testid: "app-list" }, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Uid"),
        h("th", {}, "Created"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : emptyState(apps.length ? "No application matches." : "No applications yet."),
    h("form", { class: "card", testid: "new-app", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const app = await ctx.api.post("/app", { name: name.value.trim(), uid: uid.value.trim() || undefined });
        ctx.navigate(`${ctx.base}/apps/${enc(app.id)}`);
      } catch (err) {
        setError(createError, err.message);
      }
    } },
    h("h2", {}, "New application"),
    h("div", { class: "inline" }, field("Name", name), field("Uid (optional)", uid)),
    createError,
    h("button", { type: "submit", class: "primary", testid: "create-app" }, "Create")));
}

export async function instancePage(ctx, main) {
  const instance = await ctx.api.get("/instance");
  show(main,
    h("h1", {}, "Instance"),
    h("dl", { class: "facts card", testid: "instance" },
      h("dt", {}, "Version"), h("dd", { testid: "instance-version" }, instance.version),
      h("dt", {}, "Store"), h("dd", { testid: "instance-store" }, instance.store),
      h("dt", {}, "Deliveries waiting"), h("dd", { testid: "queue-depth" }, String(instance.queueDepth)),
      h("dt", {}, "Oldest waiting since"), h("dd", { testid: "oldest-waiting" }, time(instance.oldestWaiting))));
}
