// Start-up and routing of both faces: the customer portal (/portal, one application, a
// portal session's token) and the provider dashboard (/ui, an admin token, every
// application). The same views serve both; the token decides what they may do.

import { Api } from "./api.js";
import { h, show } from "./dom.js";
import { endpointList } from "./views/endpoints.js";
import { endpointDetail, newEndpoint } from "./views/endpoint.js";
import { messageList, messageDetail } from "./views/messages.js";
import { catalogList, catalogDetail, newEventType } from "./views/catalog.js";
import { appList, instancePage } from "./views/apps.js";
import { analyticsPage } from "./views/analytics.js";
import { operationalPage } from "./views/operational.js";
import { tokensPage } from "./views/tokens.js";

const settings = JSON.parse(document.getElementById("herald-settings").textContent);
const face = document.documentElement.dataset.face;
const base = face === "portal" ? "/portal" : "/ui";
const storageKey = `herald.${face}.token`;
/** Why a sign-in link did not sign in, shown on the sign-in form. */
let linkProblem = null;

applyLook();
reportHeight();
takeKeyFromFragment().then(start);

function applyLook() {
  const root = document.documentElement;
  const asked = new URLSearchParams(location.search).get("theme");
  const prefersDark = matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = settings.theme || (asked === "dark" || asked === "light" ? asked : prefersDark ? "dark" : "light");
  root.style.setProperty("--accent", settings.accentColor);
}

// The key arrives in the fragment (never sent to a server); it is kept for this tab only
// and taken out of the address bar, history and anything a user might copy. A portal
// link's key is its session token; a dashboard link's (herald ui-link) is good for one
// exchange for a session token.
async function takeKeyFromFragment() {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (!key) return;
  history.replaceState(history.state, "", location.pathname + location.search);
  if (face === "portal") {
    sessionStorage.setItem(storageKey, key);
    return;
  }
  const response = await fetch("/api/v1/auth/one-time-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ oneTimeToken: key }),
    credentials: "omit",
  });
  if (response.ok) sessionStorage.setItem(storageKey, (await response.json()).token);
  else linkProblem = "That sign-in link was used already or has expired: run herald ui-link again.";
}

// Inside an iframe, tell the host page how tall the content is (see /portal/embed.js).
function reportHeight() {
  if (window.parent === window) return;
  const post = () => window.parent.postMessage(
    { type: "herald:resize", height: document.documentElement.scrollHeight }, "*");
  new ResizeObserver(post).observe(document.body);
}

async function start() {
  const app = document.getElementById("app");
  const token = sessionStorage.getItem(storageKey);
  if (!token) return face === "portal" ? expired(app) : signIn(app, linkProblem);
  const api = new Api(token, () => {
    sessionStorage.removeItem(storageKey);
    expired(app);
  });
  let session;
  try {
    session = await api.get("/auth/session");
  } catch {
    return;
  }
  if (face === "dashboard" && !session.admin) {
    sessionStorage.removeItem(storageKey);
    return signIn(app, "That token is limited to one application; the dashboard needs an admin token.");
  }
  const ctx = makeContext(api, session, app);
  window.addEventListener("popstate", () => ctx.render());
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    ctx.navigate(link.getAttribute("href"));
  });
  ctx.render();
}

function makeContext(api, session, root) {
  const ctx = {
    api,
    face,
    base,
    settings,
    session,
    can: (capability) => session.capabilities.includes(capability),
    navigate(path, { replace = false } = {}) {
      if (replace) history.replaceState(null, "", path);
      else history.pushState(null, "", path);
      ctx.render();
    },
    async render() {
      const path = location.pathname.slice(base.length).replace(/^\/+|\/+$/g, "");
      const search = new URLSearchParams(location.search);
      const route = match(path);
      ctx.appId = route.appId ?? session.appId;
      ctx.appBase = face === "portal" ? base : `${base}/apps/${encodeURIComponent(ctx.appId)}`;
      const main = h("main", { id: "main", testid: `page-${route.name}` });
      show(root, header(ctx, route), main);
      try {
        await route.view(ctx, main, route.params, search);
      } catch (error) {
        if (error.status === 401) return;
        show(main, h("div", { class: "notice", testid: error.status === 404 ? "not-found" : "page-error" },
          h("h1", {}, error.status === 404 ? "Not found" : "Something went wrong"),
          h("p", {}, error.status === 404 ? "Nothing here, or not yours to see." : error.message)));
      }
    },
  };
  return ctx;
}

// Routes below the face's root. In the dashboard an application's pages live under
// apps/{appId}/; in the portal at the root, for the session's one application.
const appRoutes = [
  ["", "endpoints", endpointList],
  ["endpoints/new", "new-endpoint", newEndpoint],
  ["endpoints/:id", "endpoint", endpointDetail],
  ["messages", "messages", messageList],
  ["messages/:id", "message", messageDetail],
  ["analytics", "analytics", analyticsPage],
  ["event-types", "event-types", catalogList],
  ["event-types/:name", "event-type", catalogDetail],
];
const dashboardRoutes = [
  ["", "apps", appList],
  ["instance", "instance", instancePage],
  ["operational", "operational", operationalPage],
  ["tokens", "tokens", tokensPage],
  ["event-types", "event-types", catalogList],
  ["event-types/new", "new-event-type", newEventType],
  ["event-types/:name", "event-type", catalogDetail],
];

function match(path) {
  const parts = path ? path.split("/").map(decodeURIComponent) : [];
  if (face === "dashboard") {
    if (parts[0] === "apps" && parts[1]) {
      return { ...find(appRoutes, parts.slice(2)), appId: parts[1] };
    }
    return find(dashboardRoutes, parts);
  }
  return find(appRoutes, parts);
}

function find(routes, parts) {
  for (const [pattern, name, view] of routes) {
    const wanted = pattern ? pattern.split("/") : [];
    if (wanted.length !== parts.length) continue;
    const params = {};
    if (wanted.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = parts[i]), true) : w === parts[i]))) {
      return { name, view, params };
    }
  }
  return { name: "not-found", view: notFound, params: {} };
}

async function notFound(_ctx, main) {
  show(main, h("div", { class: "notice", testid: "not-found" }, h("h1", {}, "Not found"),
    h("p", {}, "There is no such page.")));
}

function header(ctx, route) {
  const link = (href, text, testid, active) =>
    h("a", { href, "data-nav": "", testid, "aria-current": active ? "page" : null }, text);
  const inApp = ctx.face === "portal" || ctx.appId;
  const nav = [];
  if (ctx.face === "dashboard") {
    nav.push(link(`${base}`, "Applications", "nav-apps", route.name === "apps"));
  }
  if (inApp) {
    nav.push(link(ctx.appBase, "Endpoints", "nav-endpoints", route.name.includes("endpoint")));
    nav.push(link(`${ctx.appBase}/messages`, "Messages", "nav-messages", route.name.startsWith("message")));
    nav.push(link(`${ctx.appBase}/analytics`, "Analytics", "nav-analytics", route.name === "analytics"));
  }
  const catalogBase = ctx.face === "portal" ? base : inApp ? ctx.appBase : base;
  nav.push(link(`${catalogBase}/event-types`, "Event types", "nav-event-types", route.name.includes("event-type")));
  if (ctx.face === "dashboard") {
    nav.push(link(`${base}/operational`, "Operational webhooks", "nav-operational", route.name === "operational"));
    nav.push(link(`${base}/tokens`, "API tokens", "nav-tokens", route.name === "tokens"));
    nav.push(link(`${base}/instance`, "Instance", "nav-instance", route.name === "instance"));
  }
  const logo = settings.logoUrl ? h("img", { src: settings.logoUrl, alt: "", class: "logo" }) : null;
  return h("header", { class: "top" },
    h("div", { class: "brand" }, logo, h("span", {}, settings.organizationName),
      face === "dashboard" ? h("span", { class: "face" }, "dashboard") : null),
    h("nav", { "aria-label": "Main" }, nav),
    h("button", { type: "button", class: "link", testid: "sign-out", onclick: () => signOut(ctx) }, "Sign out"));
}

async function signOut(ctx) {
  if (ctx.face === "portal") {
    try {
      await ctx.api.post("/auth/logout");
    } catch {
      // Already gone: signing out locally is all that is left to do.
    }
  }
  sessionStorage.removeItem(storageKey);
  location.assign(base);
}

function expired(root) {
  const refresh = settings.refreshUrl
    ? h("p", {}, h("a", { href: settings.refreshUrl, testid: "refresh-link", target: "_top" }, "Get a new link"))
    : h("p", {}, "Ask for a new link from the page that brought you here.");
  show(root, h("main", { id: "main", class: "notice", testid: "session-expired" },
    h("h1", {}, "Session expired"),
    h("p", {}, "This link has expired or was revoked."),
    refresh));
}

function signIn(root, problem) {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true, testid: "token-input" });
  const error = h("p", { class: "error", role: "alert", hidden: !problem }, problem || "");
  const form = h("form", { class: "card narrow", testid: "sign-in", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(storageKey, input.value.trim());
    start();
  } },
  h("h1", {}, "Sign in to the dashboard"),
  h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"), input,
    h("small", { class: "hint" }, "Printed by herald serve at its first start, or made with herald token create.")),
  error,
  h("button", { class: "primary", type: "submit", testid: "sign-in-submit" }, "Sign in"));
  show(root, h("main", { id: "main" }, form));
}
