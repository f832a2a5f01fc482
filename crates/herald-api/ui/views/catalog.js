// The event catalog: what each event type means and what its payload holds, rendered from
// its JSON Schema; the dashboard can also add types.

import { enc } from "../api.js";
import { h, show, badge, emptyState, codeBlock, field, errorBox, setError } from "../dom.js";
import { allPages } from "./endpoints.js";

/** The newest version of an event type's schema (`schemas` is keyed by version). */
export function currentSchema(eventType) {
  const schemas = eventType.schemas || {};
  const versions = Object.keys(schemas).sort((a, b) => Number(a) - Number(b));
  return versions.length ? schemas[versions[versions.length - 1]] : null;
}

function catalogBase(ctx) {
  return ctx.face === "dashboard" && !ctx.appId ? ctx.base : ctx.appBase;
}

export async function catalogList(ctx, main) {
  const types = await allPages(ctx.api, "/event-type?with_content=false");
  const groups = new Map();
  for (const t of types) {
    const group = t.groupName || t.name.split(".")[0];
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(t);
  }
  const base = catalogBase(ctx);
  const sections = [...groups].map(([group, list]) => h("section", { class: "card", "aria-label": group },
    h("h2", {}, group),
    h("ul", { class: "catalog" }, list.map((t) => h("li", { testid: "row", "data-id": t.name },
      h("a", { href: `${base}/event-types/${enc(t.name)}`, "data-nav": "" }, h("code", {}, t.name)),
      t.deprecated ? badge("deprecated", "warn", "deprecated-badge") : null,
      t.description ? h("span", { class: "muted" }, ` — ${t.description}`) : null)))));
  const canEdit = ctx.face === "dashboard" && ctx.session.admin;
  show(main,
    h("div", { class: "title-row" }, h("h1", {}, "Event types"),
      canEdit ? h("a", { href: `${ctx.base}/event-types/new`, "data-nav": "", class: "button primary", testid: "add-event-type" },
        "Add event type") : null),
    types.length ? sections : emptyState("No event types in the catalog yet."));
}

export async function catalogDetail(ctx, main, { name }) {
  const type = await ctx.api.get(`/event-type/${enc(name)}`);
  const schema = currentSchema(type);
  show(main,
    h("div", { class: "title-row" }, h("h1", {}, h("code", { testid: "event-type-name" }, type.name)),
      type.deprecated ? badge("deprecated", "warn", "deprecated-badge") : null,
      type.archived ? badge("archived", "off", "archived-badge") : null),
    h("p", {}, type.description || h("span", { class: "muted" }, "No description")),
    schema ? schemaSection(schema) : emptyState("This event type has no schema."));
}

function schemaSection(schema) {
  const examples = Array.isArray(schema.examples) ? schema.examples : [];
  return [
    h("section", { class: "card", "aria-labelledby": "fields-title" },
      h("h2", { id: "fields-title" }, "Payload fields"),
      fieldTable(schema)),
    h("section", { class: "card", "aria-labelledby": "examples-title" },
      h("h2", { id: "examples-title" }, "Examples"),
      examples.length
        ? examples.map((e, i) => codeBlock(JSON.stringify(e, null, 2), `example-${i}`))
        : emptyState("No examples.")),
    h("details", {}, h("summary", {}, "JSON Schema"), codeBlock(JSON.stringify(schema, null, 2), "schema-json")),
  ];
}

/** One row per property, nested objects' properties with dotted names. */
function fieldTable(schema) {
  const rows = [];
  const walk = (node, prefix, depth) => {
    const required = new Set(node?.required || []);
    for (const [name, prop] of Object.entries(node?.properties || {})) {
      const full = prefix ? `${prefix}.${name}` : name;
      rows.push(h("tr", { testid: "field-row", "data-name": full },
        h("td", {}, h("code", {}, full)),
        h("td", {}, typeOf(prop)),
        h("td", { testid: "field-required" }, required.has(name) ? "required" : "optional"),
        h("td", {}, prop.description || "")));
      if (depth < 4 && prop.type === "object") walk(prop, full, depth + 1);
    }
  };
  walk(schema, "", 0);
  if (!rows.length) return emptyState("The schema names no fields.");
  return h("table", { testid: "schema-fields" },
    h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Type"), h("th", {}, "Required"), h("th", {}, "Description"))),
    h("tbody", {}, rows));
}

function typeOf(prop) {
  if (Array.isArray(prop.type)) return prop.type.join(" | ");
  if (prop.type === "array" && prop.items?.type) return `array of ${prop.items.type}`;
  if (prop.enum) return `one of ${prop.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  return prop.type || (prop.$ref ? prop.$ref.split("/").pop() : "any");
}

export async function newEventType(ctx, main) {
  const name = h("input", { type: "text", required: true, testid: "event-type-name-input", placeholder: "user.created" });
  const description = h("input", { type: "text", testid: "event-type-description" });
  const schema = h("textarea", { rows: 14, testid: "event-type-schema", spellcheck: "false",
    placeholder: '{"type": "object", "properties": {…}, "examples": [{…}]}' });
  const schemaProblem = h("p", { class: "error", role: "alert", testid: "schema-error", hidden: true });
  const error = errorBox();
  // Checked as it is typed for JSON; the server checks it is a valid JSON Schema on save.
  schema.addEventListener("input", () => {
    const text = schema.value.trim();
    let problem = "";
    if (text) {
      try {
        const value = JSON.parse(text);
        if (typeof value !== "object" || value === null || Array.isArray(value)) problem = "A schema is a JSON object.";
      } catch (e) {
        problem = `Not JSON: ${e.message}`;
      }
    }
    setError(schemaProblem, problem);
  });
  show(main, h("form", { class: "card", testid: "event-type-form", onsubmit: async (event) => {
    event.preventDefault();
    setError(error, "");
    const body = { name: name.value.trim(), description: description.value };
    if (schema.value.trim()) {
      try {
        body.schemas = { 1: JSON.parse(schema.value) };
      } catch (e) {
        return setError(schemaProblem, `Not JSON: ${e.message}`);
      }
    }
    try {
      await ctx.api.post("/event-type", body);
      ctx.navigate(`${ctx.base}/event-types/${enc(body.name)}`);
    } catch (e) {
      setError(error, e.message);
    }
  } },
  h("h1", {}, "Add event type"),
  field("Name", name, "Dotted, such as user.created; the first part groups it."),
  field("Description", description),
  field("JSON Schema (optional)", schema, "Its examples are what \"send example\" sends."),
  schemaProblem, error,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "save-event-type" }, "Create"))));
}
