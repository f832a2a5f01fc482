// Provider-only: API tokens for services. A new token's value is shown once, on the page
// that made it; afterwards lists name it by its first characters only.

import { enc } from "../api.js";
import { h, show, field, errorBox, setError, emptyState, confirmDialog, badge, time, codeBlock } from "../dom.js";

export async function tokensPage(ctx, main, params, search, created) {
  const { data: tokens } = await ctx.api.get("/auth/token");
  const error = errorBox();
  const rows = tokens.map((t) => h("tr", { testid: "row", "data-id": t.id },
    h("td", {}, h("code", { testid: "token-hint" }, t.hint ? `${t.hint}…` : "(chosen token)")),
    h("td", {}, t.description),
    h("td", {}, t.appId ? h("code", {}, t.appId) : badge("admin", "warn")),
    h("td", {}, time(t.createdAt)),
    h("td", {}, t.expiresAt ? time(t.expiresAt) : h("span", { class: "muted" }, "never")),
    h("td", {}, h("button", { type: "button", class: "small danger", testid: "revoke-token", onclick: async () => {
      if (!(await confirmDialog("Revoke this token?", `Requests with ${t.hint || "it"}… fail from now on.`, "Revoke"))) return;
      try {
        await ctx.api.delete(`/auth/token/${enc(t.id)}`);
        ctx.render();
      } catch (err) {
        setError(error, err.message);
      }
    } }, "Revoke"))));
  const description = h("input", { type: "text", required: true, maxlength: 200, testid: "token-description" });
  const app = h("input", { type: "text", testid: "token-app", placeholder: "app_… or uid" });
  const createError = errorBox("token-error");
  const onsubmit = async (event) => {
    event.preventDefault();
    try {
      const made = await ctx.api.post("/auth/token", {
        description: description.value.trim(),
        appId: app.value.trim() || undefined,
      });
      // Rendered from memory only: a reload or another visit cannot show it again.
      await tokensPage(ctx, main, params, search, made);
    } catch (err) {
      setError(createError, err.message);
    }
  };
  show(main,
    h("h1", {}, "API tokens"),
    created
      ? h("section", { class: "card", testid: "token-created", role: "status" },
        h("h2", {}, "Token created"),
        h("p", {}, "Copy it now: Herald keeps only its hash and will not show it again."),
        codeBlock(created.value, "token-value"))
      : null,
    tokens.length
      ? h("table", { testid: "token-list" }, h("thead", {}, h("tr", {}, h("th", {}, "Token"), h("th", {}, "Description"),
        h("th", {}, "Scope"), h("th", {}, "Created"), h("th", {}, "Expires"),
        h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : emptyState("No API tokens."),
    error,
    h("form", { class: "card", testid: "new-token", onsubmit },
      h("h2", {}, "Create a token"),
      field("Description", description),
      field("Application (optional)", app, "Limit the token to one application; without it, an admin token"),
      createError,
      h("button", { type: "submit", class: "primary", testid: "create-token" }, "Create")));
}
