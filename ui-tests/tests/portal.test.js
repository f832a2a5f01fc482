// The customer portal, checked in a real browser against a real Herald (spec portal.md,
// checks F1–F10 and F14).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startHerald } from "../support/herald.js";
import { startReceiver } from "../support/receiver.js";
import { startHost } from "../support/host.js";
import { launch, newPage, pageChecks, screenshot } from "../support/browser.js";
import { seedCatalog, seedApp, publish, USER_CREATED_EXAMPLE } from "../support/seed.js";

let herald, receiver, browser, host, strangerHost;
const REFRESH_URL = "https://customer.example/refresh";

before(async () => {
  host = await startHost({ embed: true });
  strangerHost = await startHost({ embed: true });
  herald = await startHerald({
    config: `
[delivery]
retry_schedule = []
[portal]
frame_ancestors = ["'self'", "${host.origin}"]
refresh_url = "${REFRESH_URL}"
`,
  });
  receiver = await startReceiver();
  browser = await launch();
  await seedCatalog(herald);
});

after(async () => {
  await browser?.close();
  herald?.stop();
  await receiver?.stop();
  host?.stop();
  strangerHost?.stop();
});

const origins = () => [herald.url];

/** Waits until `check()` holds, asking again as Herald records work; fails after `ms`. */
async function eventually(check, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function openPortal(portalUrl, extraOrigins = [], options = {}) {
  const page = await newPage(browser, [...origins(), ...extraOrigins], options);
  await page.goto(portalUrl);
  return page;
}

test("F1.1–2 the portal link signs in, hides its key, survives a reload; no key means expired", async () => {
  const { app, portal } = await seedApp(herald, { name: "Acme Corp", endpoints: [`${receiver.url}/acme`] });
  assert.match(portal.url, /\/portal\/#key=/);
  const page = await openPortal(portal.url);
  await page.getByTestId("app-name").waitFor();
  assert.equal(await page.getByTestId("app-name").textContent(), "Acme Corp");
  assert.equal(await page.getByTestId("endpoint-list").getByTestId("row").count(), 1);
  assert.ok(!page.url().includes("#key="), page.url());
  await pageChecks(page, "portal-endpoints");
  await page.reload();
  await page.getByTestId("app-name").waitFor();

  const fresh = await newPage(browser, origins());
  await fresh.goto(`${herald.url}/portal/`);
  await fresh.getByTestId("session-expired").waitFor();
  assert.equal(await fresh.getByTestId("refresh-link").getAttribute("href"), REFRESH_URL);
  await pageChecks(fresh, "portal-session-expired");
  await fresh.context().close();
  await page.context().close();
  assert.ok(app.id);
});

test("F1.3 expire-all ends the session at the next request", async () => {
  const { app, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/x`] });
  const page = await openPortal(portal.url);
  await page.getByTestId("endpoint-list").waitFor();
  const answer = await herald.api("POST", `/auth/app/${app.id}/expire-all`, {});
  assert.equal(answer.status, 204);
  await page.getByTestId("nav-messages").click();
  await page.getByTestId("session-expired").waitFor();
  await page.context().close();
});

test("F1.4 a session sees its own application only", async () => {
  const mine = await seedApp(herald, { endpoints: [`${receiver.url}/mine`] });
  const theirs = await seedApp(herald, { endpoints: [`${receiver.url}/theirs`] });
  const page = await openPortal(mine.portal.url);
  await page.getByTestId("endpoint-list").waitFor();
  await page.goto(`${herald.url}/portal/endpoints/${theirs.endpoints[0].id}`);
  await page.getByTestId("not-found").waitFor();
  const status = await page.evaluate(async ({ app, endpoint }) => {
    const token = sessionStorage.getItem("herald.portal.token");
    const r = await fetch(`/api/v1/app/${app}/endpoint/${endpoint}`, { headers: { Authorization: `Bearer ${token}` } });
    return r.status;
  }, { app: theirs.app.id, endpoint: theirs.endpoints[0].id });
  assert.ok([403, 404].includes(status), `status ${status}`);
  await page.context().close();
});

test("F1.5 a read-only session shows no changing controls and the API refuses changes", async () => {
  const { app, endpoints, portal } = await seedApp(herald, {
    endpoints: [`${receiver.url}/ro`],
    access: { readOnly: true },
  });
  const msg = await publish(herald, app.id, "user.created");
  await receiver.waitFor((r) => r.headers["webhook-id"] === msg.id);
  const page = await openPortal(portal.url);
  await page.getByTestId("endpoint-list").waitFor();
  assert.equal(await page.getByTestId("add-endpoint").count(), 0);
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  await page.getByTestId("endpoint-url").waitFor();
  assert.equal(await page.getByTestId("rotate-secret").count(), 0);
  assert.equal(await page.getByTestId("delete-endpoint").count(), 0);
  await page.goto(`${herald.url}/portal/messages/${msg.id}`);
  await page.getByTestId("message-id").waitFor();
  assert.equal(await page.getByTestId("resend").count(), 0);
  const answer = await page.evaluate(async (appId) => {
    const token = sessionStorage.getItem("herald.portal.token");
    const r = await fetch(`/api/v1/app/${appId}/endpoint`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ url: "https://example.com/hook" }),
    });
    return { status: r.status, body: await r.json() };
  }, app.id);
  assert.equal(answer.status, 403);
  assert.ok(answer.body.code && answer.body.detail, JSON.stringify(answer.body));
  await page.context().close();
});

test("F1.6 without ViewEndpointSecret the secret cannot be revealed", async () => {
  const { app, endpoints, portal } = await seedApp(herald, {
    endpoints: [`${receiver.url}/nosecret`],
    access: { capabilities: ["ViewBase", "ManageEndpoint"] },
  });
  const page = await openPortal(portal.url);
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  await page.getByTestId("endpoint-url").waitFor();
  assert.equal(await page.getByTestId("reveal-secret").count(), 0);
  const token = portal.token;
  const answer = await herald.api("GET", `/app/${app.id}/endpoint/${endpoints[0].id}/secret`, undefined, token);
  assert.equal(answer.status, 403);
  await page.context().close();
});

test("F2.1–4 framed by an allowed origin it works and resizes; elsewhere it is refused; themes apply", async () => {
  const { app, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/framed`] });
  const page = await newPage(browser, [herald.url, host.origin, strangerHost.origin]);
  await page.goto(`${host.origin}/?src=${encodeURIComponent(portal.url)}`);
  const frame = page.frameLocator("iframe");
  await frame.getByTestId("endpoint-list").waitFor();
  // embed.js sized the frame to its content.
  const iframe = page.locator("iframe");
  await page.waitForFunction(() => document.querySelector("iframe").getBoundingClientRect().height > 150);
  const before = (await iframe.boundingBox()).height;
  // Creating an endpoint works inside the frame (its session is the frame's own).
  await frame.getByTestId("add-endpoint").click();
  await frame.getByTestId("endpoint-url").fill(`${receiver.url}/made-in-frame`);
  await frame.getByTestId("save-endpoint").click();
  await frame.getByTestId("endpoint-url").filter({ hasText: "made-in-frame" }).waitFor();
  const list = await herald.ok("GET", `/app/${app.id}/endpoint`);
  assert.equal(list.data.length, 2);
  for (let i = 0; i < 6; i += 1) await herald.ok("POST", `/app/${app.id}/endpoint`, { url: `${receiver.url}/more-${i}` });
  await frame.getByTestId("nav-endpoints").click();
  await frame.getByTestId("row").nth(7).waitFor();
  await page.waitForFunction((h) => document.querySelector("iframe").getBoundingClientRect().height > h, before);
  await screenshot(page, "portal-embedded");
  await page.context().close();

  // An origin not on the allow-list gets no portal.
  const second = await seedApp(herald, { endpoints: [`${receiver.url}/refused`] });
  const refused = await newPage(browser, [herald.url, strangerHost.origin]);
  const portalResponse = refused.waitForResponse((r) => r.url().startsWith(`${herald.url}/portal`) && r.request().resourceType() === "document");
  await refused.goto(`${strangerHost.origin}/?src=${encodeURIComponent(second.portal.url)}`);
  const csp = (await portalResponse).headers()["content-security-policy"];
  assert.match(csp, /frame-ancestors 'self' http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(!csp.includes(strangerHost.origin), csp);
  const blocked = refused.frameLocator("iframe").getByTestId("endpoint-list");
  await assert.rejects(blocked.waitFor({ timeout: 3000 }));
  await refused.context().close();

  const dark = await openPortal(`${herald.url}/portal/?theme=dark${second.portal.url.slice(second.portal.url.indexOf("#"))}`);
  await dark.getByTestId("endpoint-list").waitFor();
  assert.equal(await dark.locator("html").getAttribute("data-theme"), "dark");
  await pageChecks(dark, "portal-dark");
  await dark.context().close();
});

test("F3 endpoint list: rows, search, disable, delete", async () => {
  const { app, endpoints, portal } = await seedApp(herald, {
    endpoints: [
      { url: `${receiver.url}/billing`, description: "Billing service" },
      { url: `${receiver.url}/crm`, description: "CRM sync" },
      { url: `${receiver.url}/audit`, description: "Audit log" },
    ],
  });
  const page = await openPortal(portal.url);
  const rows = page.getByTestId("endpoint-list").getByTestId("row");
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  await page.getByTestId("endpoint-search").fill("crm");
  await page.getByTestId("endpoint-search").press("Enter");
  await page.waitForURL(/\?q=crm/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=endpoint-list] [data-testid=row]").length === 1);
  assert.equal(await rows.first().getAttribute("data-id"), endpoints[1].id);

  // Disable the CRM endpoint: its badge says so and it gets nothing afterwards.
  await rows.first().getByRole("link").click();
  await page.getByTestId("disable-endpoint").click();
  await page.getByTestId("enable-endpoint").waitFor();
  assert.equal(await page.getByTestId("status-badge").textContent(), "disabled");
  await pageChecks(page, "portal-endpoint-detail");
  const msg = await publish(herald, app.id, "order.paid");
  await receiver.waitFor((r) => r.path === "/billing" && r.headers["webhook-id"] === msg.id);
  await receiver.waitFor((r) => r.path === "/audit" && r.headers["webhook-id"] === msg.id);
  assert.equal(receiver.received.filter((r) => r.path === "/crm").length, 0);

  await page.getByTestId("delete-endpoint").click();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("endpoint-list").waitFor();
  assert.equal(await page.getByTestId("endpoint-list").getByTestId("row").count(), 2);
  const gone = await herald.api("GET", `/app/${app.id}/endpoint/${endpoints[1].id}`);
  assert.equal(gone.status, 404);
  await page.context().close();
});

test("F4 adding an endpoint: the picker groups and filters types, SSRF addresses are refused", async () => {
  const { app, portal } = await seedApp(herald, { access: { featureFlags: [] } });
  const page = await openPortal(portal.url);
  await page.getByTestId("add-endpoint").click();
  await page.getByTestId("event-type-picker").waitFor();
  // The feature-flagged type is not offered to a session without the flag.
  assert.equal(await page.locator('[data-testid=event-type-option][data-name="beta.preview"]').count(), 0);
  await page.getByTestId("event-type-search").fill("user");
  const visible = page.locator("label.option:visible");
  assert.deepEqual((await visible.allTextContents()).map((t) => t.split(" ")[0]).sort(), ["user.created", "user.deleted"]);
  await pageChecks(page, "portal-new-endpoint");

  // A metadata address: an inline error and nothing created.
  await page.getByTestId("endpoint-url").fill("http://169.254.169.254/latest");
  await page.getByTestId("save-endpoint").click();
  await page.getByTestId("form-error").waitFor();
  assert.match(await page.getByTestId("form-error").textContent(), /169\.254\.169\.254/);
  assert.equal((await herald.ok("GET", `/app/${app.id}/endpoint`)).data.length, 0);

  await page.getByTestId("endpoint-url").fill(`${receiver.url}/picked`);
  await page.locator('[data-testid=event-type-option][data-name="user.created"]').check();
  await page.locator('[data-testid=event-type-option][data-name="user.deleted"]').check();
  await page.getByTestId("save-endpoint").click();
  await page.getByTestId("endpoint-event-types").waitFor();
  assert.deepEqual((await page.getByTestId("endpoint-event-types").locator("li").allTextContents()).sort(),
    ["user.created", "user.deleted"]);
  const [created] = (await herald.ok("GET", `/app/${app.id}/endpoint`)).data;
  assert.deepEqual([...created.filterTypes].sort(), ["user.created", "user.deleted"]);
  await page.context().close();

  // A session holding the flag is offered the flagged type.
  const flagged = await seedApp(herald, { access: { featureFlags: ["beta"] } });
  const betaPage = await openPortal(flagged.portal.url);
  await betaPage.getByTestId("add-endpoint").click();
  await betaPage.locator('[data-testid=event-type-option][data-name="beta.preview"]').waitFor();
  await betaPage.context().close();
});

function verify(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  const expected = createHmac("sha256", key).update(signed).digest("base64");
  return headers["webhook-signature"].split(" ").some((s) => s === `v1,${expected}`);
}

test("F5 the secret is revealed, copied and rotated with an overlap", async () => {
  const { app, endpoints, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/secret`] });
  const page = await openPortal(portal.url, [], { permissions: ["clipboard-read", "clipboard-write"] });
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  await page.getByTestId("reveal-secret").click();
  const secretPath = `/app/${app.id}/endpoint/${endpoints[0].id}/secret`;
  const old = (await herald.ok("GET", secretPath)).key;
  await page.getByTestId("secret-value").filter({ hasText: old }).waitFor();
  await page.getByTestId("copy-secret").click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), old);

  await page.getByTestId("rotate-secret").click();
  await page.getByTestId("confirm-dialog").waitFor();
  assert.match(await page.getByTestId("confirm-dialog").textContent(), /both signatures/);
  await page.getByTestId("confirm-ok").click();
  await page.waitForFunction((o) => {
    const shown = document.querySelector("[data-testid=secret-value]").textContent;
    return shown.startsWith("whsec_") && shown !== o;
  }, old);
  const fresh = (await herald.ok("GET", secretPath)).key;
  assert.equal(await page.getByTestId("secret-value").textContent(), fresh);
  const msg = await publish(herald, app.id, "user.created");
  const request = await receiver.waitFor((r) => r.headers["webhook-id"] === msg.id);
  assert.equal(request.headers["webhook-signature"].split(" ").length, 2);
  assert.ok(verify(old, request.headers, request.body), "old secret still verifies");
  assert.ok(verify(fresh, request.headers, request.body), "new secret verifies");
  await page.context().close();
});

test("F6 send example: the catalog's example arrives and its attempt shows", async () => {
  const { endpoints, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/example`] });
  const page = await openPortal(portal.url);
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  const select = page.getByTestId("example-type");
  await select.waitFor();
  assert.equal(await select.locator('option[value="user.deleted"]').isDisabled(), true);
  await select.selectOption("user.created");
  await page.getByTestId("send-example").click();
  await page.getByTestId("endpoint-attempts").getByTestId("attempt-code").filter({ hasText: "200" }).first()
    .waitFor({ timeout: 5000 });
  const request = await receiver.waitFor((r) => r.path === "/example");
  assert.deepEqual(JSON.parse(request.body), USER_CREATED_EXAMPLE);
  await page.context().close();
});

test("F7 the message log filters by type and id, keeps filters in the address, pages with them", async () => {
  const { app, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/log`] });
  // Every fifth message fails (there are no retries in this suite's configuration).
  receiver.answer = (r) => (r.path === "/log" && JSON.parse(r.body).i % 5 === 0 ? { status: 500, body: "" } : { status: 200, body: "" });
  const types = ["user.created", "order.paid", "user.deleted"];
  for (let i = 0; i < 150; i += 1) {
    await publish(herald, app.id, types[i % 3], { i, marker: `m-${i}` }, { eventId: `evt-${i}` });
  }
  await eventually(async () => (await herald.ok("GET", `/app/${app.id}/msg?status=2&limit=50`)).data.length === 30);
  receiver.answer = () => ({ status: 200, body: "" });
  const page = await openPortal(portal.url);
  await page.getByTestId("nav-messages").click();
  await page.getByTestId("message-list").waitFor();
  await page.getByTestId("filter-event-types").selectOption(["order.paid"]);
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/event_types=order\.paid/);
  const rows = page.getByTestId("message-list").getByTestId("row-event-type");
  const onlyTypes = (wanted) => page.waitForFunction((w) => {
    const cells = [...document.querySelectorAll("[data-testid=row-event-type]")];
    return cells.length > 0 && cells.every((c) => w.includes(c.textContent));
  }, wanted);
  await onlyTypes(["order.paid"]);
  const api = await herald.ok("GET", `/app/${app.id}/msg?event_types=order.paid&limit=50`);
  assert.equal(await rows.count(), api.data.length);
  await pageChecks(page, "portal-messages");
  // Reload keeps the filter; back returns to the previous one.
  await page.reload();
  await page.getByTestId("message-list").waitFor();
  assert.deepEqual(await page.getByTestId("filter-event-types").evaluate((s) => [...s.selectedOptions].map((o) => o.value)), ["order.paid"]);
  await page.getByTestId("filter-event-types").selectOption(["user.created", "user.deleted"]);
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/event_types=user\.created(%2C|,)user\.deleted/);
  await onlyTypes(["user.created", "user.deleted"]);
  await page.goBack();
  await page.waitForURL(/event_types=order\.paid$/);
  await onlyTypes(["order.paid"]);
  // Page 2 of a filtered list holds only matching rows (convoy #135).
  await page.goForward();
  await page.getByTestId("next-page").click();
  await page.waitForURL(/iterator=/);
  await onlyTypes(["user.created", "user.deleted"]);
  assert.equal(await rows.count(), 50);
  // With a delivery status too: both filters in the address, only failed rows of those types.
  await page.getByTestId("filter-status").selectOption("2");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/status=2/);
  assert.match(page.url(), /event_types=user\.created(%2C|,)user\.deleted/);
  assert.ok(!page.url().includes("iterator="), "a new filter starts from the first page");
  await onlyTypes(["user.created", "user.deleted"]);
  const failedIds = await page.getByTestId("message-list").locator("[data-testid=row] td:nth-child(3)").allTextContents();
  assert.equal(failedIds.length, 20);
  assert.ok(failedIds.every((id) => Number(id.replace("evt-", "")) % 5 === 0), failedIds.join());
  // An event id names one message; no match shows the empty state.
  await page.getByTestId("filter-id").fill("evt-7");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/id=evt-7/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=message-list] [data-testid=row]").length === 1);
  await page.getByTestId("filter-id").fill("");
  // By response class: the 5xx rows are the failed ones, here of every type.
  await page.getByTestId("clear-filters").click();
  await page.getByTestId("filter-status-class").selectOption("500");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/status_code_class=500/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=message-list] [data-testid=row]").length === 30);
  const classIds = await page.getByTestId("message-list").locator("[data-testid=row] td:nth-child(3)").allTextContents();
  assert.ok(classIds.every((id) => Number(id.replace("evt-", "")) % 5 === 0), classIds.join());
  // Payload text: one message holds "m-42".
  await page.getByTestId("clear-filters").click();
  await page.getByTestId("filter-payload").fill("m-42\"");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/payload=m-42/);
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll("[data-testid=message-list] [data-testid=row] td:nth-child(3)")];
    return cells.length === 1 && cells[0].textContent === "evt-42";
  });
  // Payload words: "M-14" is the words "m" and "14", and "14" starts 14 and 140 to 149.
  await page.getByTestId("clear-filters").click();
  await page.getByTestId("filter-search").fill("M-14");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/search=M-14/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=message-list] [data-testid=row]").length === 11);
  const wordIds = await page.getByTestId("message-list").locator("[data-testid=row] td:nth-child(3)").allTextContents();
  assert.ok(wordIds.every((id) => id.startsWith("evt-14")), wordIds.join());
  await page.getByTestId("clear-filters").click();
  await page.getByTestId("filter-payload").fill("m-42\"");
  await page.getByTestId("apply-filters").click();
  await page.waitForURL(/payload=m-42/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=message-list] [data-testid=row]").length === 1);
  // A time preset keeps the other filters and sets the start of the range.
  await page.getByTestId("range-1h").click();
  await page.waitForURL(/after=/);
  assert.match(page.url(), /payload=m-42/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=message-list] [data-testid=row]").length === 1);
  await page.getByTestId("filter-id").fill("evt-nothing");
  await page.getByTestId("apply-filters").click();
  await page.getByTestId("empty-state").waitFor();
  assert.equal(await page.getByTestId("loading").count(), 0);
  await page.context().close();
});

test("F11 custom headers reach the receiver, reserved ones are refused, the rate limit and order are kept", async () => {
  const { app, endpoints, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/headers`] });
  const page = await openPortal(portal.url);
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  await page.getByTestId("header-name").fill("X-Tenant");
  await page.getByTestId("header-value").fill("7");
  await page.getByTestId("save-header").click();
  await page.locator('[data-testid=header-row][data-name="X-Tenant"]').waitFor();
  const msg = await publish(herald, app.id, "order.paid");
  const request = await receiver.waitFor((r) => r.headers["webhook-id"] === msg.id);
  assert.equal(request.headers["x-tenant"], "7");

  await page.getByTestId("header-name").fill("webhook-id");
  await page.getByTestId("header-value").fill("forged");
  await page.getByTestId("save-header").click();
  await page.getByTestId("header-error").waitFor();
  const answer = await herald.api("PATCH", `/app/${app.id}/endpoint/${endpoints[0].id}/headers`, { headers: { "webhook-id": "x" } });
  assert.equal(answer.status, 422);

  await page.getByTestId("edit-open").click();
  await page.getByTestId("edit-rate-limit").fill("25");
  await page.getByTestId("edit-description").fill("Tenant seven");
  await page.getByTestId("save-edit").click();
  await page.getByTestId("endpoint-description").filter({ hasText: "Tenant seven" }).waitFor();
  await page.reload();
  await page.getByTestId("edit-open").click();
  assert.equal(await page.getByTestId("edit-rate-limit").inputValue(), "25");
  await pageChecks(page, "portal-endpoint-edit");

  // Delivery in publish order, one at a time: set here, shown in the settings.
  await page.getByTestId("edit-ordered").check();
  await page.getByTestId("save-edit").click();
  await page.getByTestId("ordered-note").waitFor();
  const saved = await herald.ok("GET", `/app/${app.id}/endpoint/${endpoints[0].id}`);
  assert.equal(saved.ordered, true);
  await page.context().close();
});

test("F8 attempt detail: request sent, status, body, truncation; a refused connection is named", async () => {
  const big = "x".repeat(1024 * 1024);
  receiver.answer = (r) => (r.path === "/nope" ? { status: 500, body: "nope" }
    : r.path === "/big" ? { status: 200, body: big } : { status: 200, body: "" });
  const { app, endpoints, portal } = await seedApp(herald, {
    endpoints: [`${receiver.url}/nope`, "http://127.0.0.1:9/closed", `${receiver.url}/big`],
  });
  await herald.ok("PATCH", `/app/${app.id}/endpoint/${endpoints[0].id}/headers`,
    { headers: { "X-Api-Key": "s3cret-value", "X-Tenant": "7" } });
  const msg = await publish(herald, app.id, "user.created");
  const request = await receiver.waitFor((r) => r.path === "/nope" && r.headers["webhook-id"] === msg.id);
  assert.equal(request.headers["x-api-key"], "s3cret-value", "the receiver gets the real value");
  await eventually(async () => (await herald.ok("GET", `/app/${app.id}/attempt/msg/${msg.id}`)).data.length === 3);
  const page = await openPortal(portal.url);
  await page.goto(`${herald.url}/portal/messages/${msg.id}`);
  const attempts = page.getByTestId("message-attempts").getByTestId("attempt-row");
  await attempts.nth(2).waitFor();
  assert.equal(await attempts.count(), 3);
  const failed500 = attempts.filter({ hasText: "/nope" });
  await failed500.getByTestId("attempt-open").click();
  assert.equal(await failed500.getByTestId("attempt-status-code").textContent(), "500");
  assert.match(await failed500.getByTestId("attempt-response").textContent(), /nope/);
  // What was sent: the webhook-id is the message's id, the signature is there, the
  // secret-looking custom header is masked and the harmless one is not.
  const sent = await failed500.getByTestId("attempt-request-headers").textContent();
  assert.match(sent, new RegExp(`webhook-id: ${msg.id}`));
  assert.match(sent, /webhook-signature: v1,/);
  assert.match(sent, /x-tenant: 7/);
  assert.match(sent, /x-api-key: •+/);
  assert.ok(!sent.includes("s3cret-value"), sent);
  assert.deepEqual(JSON.parse(await failed500.getByTestId("attempt-request-body").textContent()), msg.payload);
  assert.equal(await failed500.getByTestId("attempt-truncated").count(), 0);
  // A 1 MiB answer is kept cut, and says so.
  const large = attempts.filter({ hasText: "/big" });
  await large.getByTestId("attempt-open").click();
  await large.getByTestId("attempt-truncated").waitFor();
  const kept = await large.getByTestId("attempt-response").textContent();
  assert.ok(kept.length > 0 && kept.length < big.length, `${kept.length} characters shown`);
  const refused = attempts.filter({ hasText: "127.0.0.1:9" });
  await refused.getByTestId("attempt-open").click();
  assert.match(await refused.getByTestId("attempt-error").textContent(), /connection refused/);
  await pageChecks(page, "portal-message-detail");
  receiver.answer = () => ({ status: 200, body: "" });
  await page.context().close();
});

test("F9 resend, recover and replay-missing send exactly what they say", async () => {
  let failing = true;
  receiver.answer = (r) => (r.path === "/flaky" && failing && JSON.parse(r.body).fail ? { status: 500, body: "down" } : { status: 200, body: "" });
  const { app, endpoints, portal } = await seedApp(herald, { endpoints: [`${receiver.url}/flaky`] });
  const start = new Date(Date.now() - 60_000);
  const ids = [];
  for (let i = 0; i < 10; i += 1) {
    const msg = await publish(herald, app.id, "order.paid", { i, fail: i < 4 });
    ids.push(msg.id);
  }
  await receiver.waitForCount((r) => r.path === "/flaky", 10);
  const page = await openPortal(portal.url);

  // Resend one failed message: one more request, and a manual attempt.
  failing = false;
  const count = () => receiver.received.filter((r) => r.path === "/flaky" && r.headers["webhook-id"] === ids[0]).length;
  const beforeResend = count();
  await page.goto(`${herald.url}/portal/messages/${ids[0]}`);
  await page.getByTestId("resend").click();
  await receiver.waitForCount((r) => r.path === "/flaky" && r.headers["webhook-id"] === ids[0], beforeResend + 1);
  // The page drew itself right after the resend was accepted, maybe before the attempt was
  // recorded (a busy machine): look again until the log has it.
  const manualShown = () => page.evaluate(() => [...document.querySelectorAll("[data-testid=attempt-row] td:last-child")].some((td) => td.textContent === "manual"));
  for (const deadline = Date.now() + 15_000; !(await manualShown());) {
    assert.ok(Date.now() < deadline, "the manual attempt is shown");
    await page.reload();
    await page.getByTestId("message-attempts").waitFor();
  }
  assert.equal(count(), beforeResend + 1);

  // Recover: the 3 still failed are queued again; the 6 that succeeded are not.
  await page.goto(`${herald.url}/portal/endpoints/${endpoints[0].id}`);
  const local = new Date(start.getTime() - start.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await page.getByTestId("recover-since").fill(local);
  const received = receiver.received.length;
  await page.getByTestId("recover").click();
  await page.getByTestId("confirm-dialog").filter({ hasText: "3 failed messages" }).waitFor();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("recover-result").filter({ hasText: "3 queued" }).waitFor();
  await receiver.waitForCount(() => true, received + 3);
  const recovered = receiver.received.slice(received).map((r) => r.headers["webhook-id"]).sort();
  assert.deepEqual(recovered, ids.slice(1, 4).sort());

  // Replay missing: a new endpoint gets the 10 messages published before it existed.
  const late = await herald.ok("POST", `/app/${app.id}/endpoint`, { url: `${receiver.url}/late` });
  await page.goto(`${herald.url}/portal/endpoints/${late.id}`);
  await page.getByTestId("recover-since").fill(local);
  await page.getByTestId("replay-missing").click();
  await page.getByTestId("confirm-dialog").filter({ hasText: "10 messages" }).waitFor();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("recover-result").filter({ hasText: "10 queued" }).waitFor();
  await receiver.waitForCount((r) => r.path === "/late", 10);
  assert.deepEqual(receiver.received.filter((r) => r.path === "/late").map((r) => r.headers["webhook-id"]).sort(), [...ids].sort());
  receiver.answer = () => ({ status: 200, body: "" });
  await page.context().close();
});

test("F10 the catalog renders schemas as field tables and flags deprecated types", async () => {
  const { portal } = await seedApp(herald);
  const page = await openPortal(portal.url);
  await page.getByTestId("nav-event-types").click();
  await page.locator('[data-testid=row][data-id="order.legacy"] [data-testid=deprecated-badge]').waitFor();
  assert.equal(await page.locator('[data-testid=row][data-id="beta.preview"]').count(), 0);
  await pageChecks(page, "portal-catalog");
  await page.locator('[data-testid=row][data-id="user.created"] a').click();
  const fields = page.getByTestId("field-row");
  await fields.first().waitFor();
  assert.equal(await fields.count(), 3);
  const required = await fields.evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.dataset.name, r.querySelector("[data-testid=field-required]").textContent])));
  assert.deepEqual(required, { id: "required", email: "required", plan: "optional" });
  assert.deepEqual(JSON.parse(await page.getByTestId("example-0").textContent()), USER_CREATED_EXAMPLE);
  await pageChecks(page, "portal-event-type");
  await page.context().close();
});

test("F14 everything is reachable by keyboard", async () => {
  const { portal } = await seedApp(herald, { endpoints: [`${receiver.url}/kbd`] });
  const page = await openPortal(portal.url);
  await page.getByTestId("endpoint-list").waitFor();
  let reached = false;
  for (let i = 0; i < 15 && !reached; i += 1) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.dataset.testid === "add-endpoint");
  }
  assert.ok(reached, "Tab reaches add-endpoint");
  await page.keyboard.press("Enter");
  await page.getByTestId("endpoint-form").waitFor();
  await page.context().close();
});
