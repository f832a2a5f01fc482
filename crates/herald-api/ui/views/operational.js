// Provider-only: the operational webhooks, where Herald tells the provider about its
// customers' endpoints (disabled, failing, exhausted…).

import { enc } from "../api.js";
import { h, show, field, errorBox, setError, emptyState, confirmDialog, badge } from "../dom.js";
import { allPages } from "./endpoints.js";

const EVENTS = [
  "endpoint.created", "endpoint.updated", "endpoint.deleted", "endpoint.disabled", "endpoint.enabled",
  "message.attempt.failing", "message.attempt.exhausted", "message.attempt.recovered",
];

export async function operationalPage(ctx, main) {
  const endpoints = await allPages(ctx.api, "/operational-webhook/endpoint");
  const error = errorBox();
  const rows = endpoints.map((e) => h("tr", { testid: "row", "data-id": e.id },
    h("td", { class: "url" }, e.url),
    h("td", {}, e.disabled ? badge("disabled", "off") : badge("enabled", "ok")),
    h("td", {}, (e.filterTypes || e.eventTypes || []).join(", ") || h("span", { class: "muted" }, "all events")),
    h("td", {}, h("button", { type: "button", class: "small danger", testid: "delete-operational", onclick: async () => {
      if (!(await confirmDialog("Delete this operational endpoint?", `${e.url} will hear nothing more from Herald.`, "Delete"))) return;
      try {
        await ctx.api.delete(`/operational-webhook/endpoint/${enc(e.id)}`);
        ctx.render();
      } catch (err) {
        setError(error, err.message);
      }
    } }, "Delete"))));
  const url = h("input", { type: "url", required: true, testid: "operational-url", placeholder: "https://ops.example.com/herald" });
  const boxes = EVENTS.map((name) => h("input", { type: "checkbox", value: name, testid: "operational-event", "data-name": name }));
  const createError = errorBox("operational-error");
  show(main,
    h("h1", {}, "Operational webhooks"),
    h("p", { class: "hint" }, "Herald signs and sends these events about your customers' endpoints to the URLs below."),
    endpoints.length
      ? h("table", { testid: "operational-list" }, h("thead", {}, h("tr", {}, h("th", {}, "URL"), h("th", {}, "Status"),
        h("th", {}, "Events"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : emptyState("No operational endpoints yet."),
    error,
    h("form", { class: "card", testid: "new-operational", onsubmit: async (event) => {
      event.preventDefault();
      const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
      try {
        await ctx.api.post("/operational-webhook/endpoint", { url: url.value.trim(), eventTypes: chosen.length ? chosen : undefined });
        ctx.render();
      } catch (err) {
        setError(createError, err.message);
      }
    } },
    h("h2", {}, "Add an operational endpoint"),
    field("URL", url),
    h("fieldset", { class: "picker" }, h("legend", {}, "Events (none selected means all)"),
      boxes.map((box) => h("label", { class: "option" }, box, h("code", {}, box.value)))),
    createError,
    h("button", { type: "submit", class: "primary", testid: "save-operational" }, "Add")));
}
