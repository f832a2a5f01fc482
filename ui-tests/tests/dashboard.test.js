// The provider dashboard, in a real browser against a real Herald (spec portal.md, F10's
// editor, F13 and F14).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHerald } from "../support/herald.js";
import { startReceiver } from "../support/receiver.js";
import { launch, newPage, pageChecks } from "../support/browser.js";
import { seedCatalog, seedApp } from "../support/seed.js";

let herald, receiver, browser;

before(async () => {
  herald = await startHerald();
  receiver = await startReceiver();
  browser = await launch();
  await seedCatalog(herald);
});

after(async () => {
  await browser?.close();
  herald?.stop();
  await receiver?.stop();
});

/** A dashboard page signed in by pasting the admin token, as a new user would. */
async function signedIn() {
  const page = await newPage(browser, [herald.url]);
  await page.goto(`${herald.url}/ui/`);
  await page.getByTestId("sign-in").waitFor();
  await pageChecks(page, "dashboard-sign-in");
  await page.getByLabel("Admin token").fill(herald.adminToken);
  await page.getByTestId("sign-in-submit").click();
  await page.getByTestId("page-apps").waitFor();
  return page;
}

test("herald ui-link signs in once; the spent link is refused", async () => {
  const printed = herald.command("ui-link").trim();
  const link = `${herald.url}${new URL(printed).pathname}${new URL(printed).hash}`;
  assert.match(link, /\/ui\/#key=hrld_/);
  const page = await newPage(browser, [herald.url]);
  await page.goto(link);
  await page.getByTestId("page-apps").waitFor();
  assert.ok(!page.url().includes("#key="), page.url());
  const again = await newPage(browser, [herald.url]);
  await again.goto(link);
  await again.getByRole("alert").filter({ hasText: "used already" }).waitFor();
  await page.context().close();
  await again.context().close();
});

test("signing in needs an admin token; an app's token is turned away", async () => {
  const { portal } = await seedApp(herald);
  const page = await newPage(browser, [herald.url]);
  await page.goto(`${herald.url}/ui/`);
  await page.getByLabel("Admin token").fill(portal.token);
  await page.getByTestId("sign-in-submit").click();
  await page.getByRole("alert").filter({ hasText: "admin token" }).waitFor();
  await page.context().close();
});

test("F13 applications: search, create, and open the portal as a customer", async () => {
  await seedApp(herald, { name: "Globex" });
  await seedApp(herald, { name: "Initech" });
  const page = await signedIn();
  await pageChecks(page, "dashboard-apps");
  await page.getByTestId("app-search").fill("globex");
  await page.getByTestId("app-search-submit").click();
  await page.waitForURL(/\?q=globex/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=app-list] [data-testid=row]").length === 1);
  const row = page.getByTestId("app-list").getByTestId("row");
  assert.equal(await row.getByRole("link").textContent(), "Globex");

  const [portalTab] = await Promise.all([
    page.context().waitForEvent("page"),
    row.getByTestId("open-portal").click(),
  ]);
  await portalTab.getByTestId("app-name").waitFor();
  assert.equal(await portalTab.getByTestId("app-name").textContent(), "Globex");
  assert.ok(new URL(portalTab.url()).pathname.startsWith("/portal"));
  assert.equal(await portalTab.getByTestId("nav-apps").count(), 0, "the portal shows one application only");
  await portalTab.close();

  await page.getByTestId("new-app-name").fill("Umbrella");
  await page.getByTestId("create-app").click();
  await page.getByTestId("app-name").filter({ hasText: "Umbrella" }).waitFor();
  await page.getByTestId("add-endpoint").click();
  await page.getByTestId("endpoint-url").fill(`${receiver.url}/umbrella`);
  await page.getByTestId("save-endpoint").click();
  await page.getByTestId("send-example").waitFor();
  await page.getByTestId("example-type").selectOption("user.created");
  await page.getByTestId("send-example").click();
  await page.getByTestId("endpoint-attempts").getByTestId("attempt-code").filter({ hasText: "200" }).first().waitFor();
  await pageChecks(page, "dashboard-endpoint");
  await page.context().close();
});

test("F10 the catalog editor refuses an invalid schema and saves nothing", async () => {
  const page = await signedIn();
  await page.getByTestId("nav-event-types").click();
  await page.getByTestId("add-event-type").click();
  await page.getByTestId("event-type-name-input").fill("invoice.sent");
  await page.getByTestId("event-type-schema").fill('{"type": "object",');
  await page.getByTestId("schema-error").filter({ hasText: "Not JSON" }).waitFor();
  await pageChecks(page, "dashboard-new-event-type");
  // JSON, but not a JSON Schema: the server says why, and nothing is stored.
  await page.getByTestId("event-type-schema").fill('{"type": 12}');
  await page.getByTestId("save-event-type").click();
  await page.getByTestId("form-error").waitFor();
  assert.equal((await herald.api("GET", "/event-type/invoice.sent")).status, 404);
  await page.getByTestId("event-type-schema").fill(JSON.stringify({
    type: "object", required: ["total"], properties: { total: { type: "number" } }, examples: [{ total: 12 }],
  }));
  await page.getByTestId("save-event-type").click();
  await page.getByTestId("field-row").first().waitFor();
  assert.equal(await page.getByTestId("field-row").count(), 1);
  assert.equal((await herald.api("GET", "/event-type/invoice.sent")).status, 200);
  await page.context().close();
});

test("F13 operational webhook endpoints are listed, added and deleted", async () => {
  const page = await signedIn();
  await page.getByTestId("nav-operational").click();
  await page.getByTestId("new-operational").waitFor();
  await page.getByTestId("operational-url").fill(`${receiver.url}/ops`);
  await page.locator('[data-testid=operational-event][data-name="endpoint.disabled"]').check();
  await page.getByTestId("save-operational").click();
  await page.getByTestId("operational-list").getByTestId("row").first().waitFor();
  const listed = await herald.ok("GET", "/operational-webhook/endpoint");
  assert.equal(listed.data.length, 1);
  assert.deepEqual(listed.data[0].filterTypes ?? listed.data[0].eventTypes, ["endpoint.disabled"]);
  await pageChecks(page, "dashboard-operational");
  await page.getByTestId("delete-operational").click();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("empty-state").waitFor();
  assert.equal((await herald.ok("GET", "/operational-webhook/endpoint")).data.length, 0);
  await page.context().close();
});

test("F13 the instance page names the store and the queue", async () => {
  const page = await signedIn();
  await page.getByTestId("nav-instance").click();
  await page.getByTestId("instance").waitFor();
  assert.equal(await page.getByTestId("instance-store").textContent(), "sqlite");
  assert.match(await page.getByTestId("queue-depth").textContent(), /^\d+$/);
  await pageChecks(page, "dashboard-instance");
  await page.context().close();
});

test("F13 an API token is shown once, then only by its first characters, and can be revoked", async () => {
  const page = await signedIn();
  await page.getByTestId("nav-tokens").click();
  await page.getByTestId("new-token").waitFor();
  await page.getByTestId("token-description").fill("billing service");
  await page.getByTestId("create-token").click();
  const value = (await page.getByTestId("token-value").textContent()).trim();
  assert.match(value, /^hrld_[A-Za-z0-9]{40}$/);
  // The value works as a token of the API.
  const answer = await fetch(`${herald.url}/api/v1/app`, { headers: { authorization: `Bearer ${value}` } });
  assert.equal(answer.status, 200);
  const row = page.getByTestId("token-list").getByTestId("row").filter({ hasText: "billing service" });
  assert.equal(await row.getByTestId("token-hint").textContent(), `${value.slice(0, 9)}…`);
  await pageChecks(page, "dashboard-tokens");
  // Shown once: after a reload the page knows only the hint.
  await page.reload();
  await row.waitFor();
  assert.ok(!(await page.content()).includes(value), "the value is not on the page again");
  assert.equal(await page.getByTestId("token-created").count(), 0);
  await row.getByTestId("revoke-token").click();
  await page.getByTestId("confirm-ok").click();
  await row.waitFor({ state: "detached" });
  const after = await fetch(`${herald.url}/api/v1/app`, { headers: { authorization: `Bearer ${value}` } });
  assert.equal(after.status, 401);
  await page.context().close();
});
