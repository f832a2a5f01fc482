// Analytics in the portal (spec portal.md F12), and the "done when" walk: a new
// provider sets up an endpoint in the dashboard, and its customer sees the delivery, with
// its latency, in the portal framed by the customer's own site.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHerald } from "../support/herald.js";
import { startReceiver } from "../support/receiver.js";
import { startHost } from "../support/host.js";
import { launch, newPage, pageChecks, screenshot } from "../support/browser.js";
import { seedCatalog, seedApp, publish } from "../support/seed.js";

let herald, receiver, browser, customerSite;

before(async () => {
  customerSite = await startHost({ height: 900 });
  herald = await startHerald({
    config: `
[delivery]
retry_schedule = []
[portal]
frame_ancestors = ["'self'", "${customerSite.origin}"]
`,
  });
  receiver = await startReceiver();
  receiver.answer = (r) => (r.body.includes('"fail":true') || r.path === "/down" ? { status: 500, body: "no" } : { status: 200, body: "" });
  browser = await launch();
  await seedCatalog(herald);
});

after(async () => {
  await browser?.close();
  herald?.stop();
  await receiver?.stop();
  customerSite?.stop();
});

async function tileValue(page, testid) {
  return page.getByTestId(`${testid}-value`).textContent();
}

const fmtPercent = (x) => `${x.toFixed(1)}%`;
const fmtMs = (x) => `${x.toFixed(1)} ms`;

test("F12 tiles, charts and breakdowns show what the statistics API returns", async () => {
  const { app, endpoints, portal } = await seedApp(herald, {
    endpoints: [`${receiver.url}/analytics`, `${receiver.url}/down`],
  });
  const [main, down] = endpoints;
  // 40 attempts at the main endpoint (10 failing), failures in a row at the other.
  await herald.ok("PATCH", `/app/${app.id}/endpoint/${down.id}`, { disabled: true });
  const types = ["order.paid", "user.deleted"];
  for (let i = 0; i < 40; i += 1) await publish(herald, app.id, types[i % 2], { i, fail: i % 4 === 0 });
  await receiver.waitForCount((r) => r.path === "/analytics", 40);
  await herald.ok("PATCH", `/app/${app.id}/endpoint/${down.id}`, { disabled: false });
  await herald.ok("PATCH", `/app/${app.id}/endpoint/${main.id}`, { disabled: true });
  for (let i = 0; i < 10; i += 1) await publish(herald, app.id, "order.paid", { i });
  // Herald's circuit breaker holds the rest back after five failures in a row.
  await receiver.waitForCount((r) => r.path === "/down", 5);
  await herald.ok("PATCH", `/app/${app.id}/endpoint/${main.id}`, { disabled: false });
  const stats = async (range) => {
    for (;;) {
      const s = await herald.ok("GET", `/app/${app.id}/stats/series?range=${range}&endpoint_id=${main.id}&group_by=event_type`);
      if (s.total.totals.attempts === 40) return s;
    }
  };
  const day = await stats("24h");
  assert.equal(day.total.totals.successRate, 75);

  const page = await newPage(browser, [herald.url]);
  await page.goto(portal.url);
  await page.getByTestId("endpoint-list").waitFor();
  // The list's health badges: one request for every row.
  const statsRequests = [];
  page.on("request", (r) => { if (r.url().includes("/stats/")) statsRequests.push(r.url()); });
  await page.reload();
  await page.locator(`[data-testid=row][data-id="${down.id}"] [data-testid=health-badge]`).filter({ hasText: "failing" }).waitFor();
  assert.equal(statsRequests.length, 1, statsRequests.join("\n"));
  await pageChecks(page, "portal-endpoints-health");

  await page.goto(`${herald.url}/portal/analytics?range=24h&endpoint=${main.id}`);
  await page.getByTestId("tiles").waitFor();
  assert.equal(await tileValue(page, "success-rate"), fmtPercent(day.total.totals.successRate));
  assert.equal(await tileValue(page, "tile-attempts"), "40");
  assert.equal(await tileValue(page, "latency-p95"), fmtMs(day.total.totals.latencyP95Ms));
  const rows = page.getByTestId("event-type-row");
  assert.equal(await rows.count(), 2);
  const counts = await rows.getByTestId("row-attempts").allTextContents();
  assert.equal(counts.map(Number).reduce((a, b) => a + b, 0), 40);
  const marks = page.getByTestId("chart-deliveries").locator("rect[data-series=succeeded]");
  assert.equal(await marks.count(), day.buckets.length, "one mark per bucket");
  const values = await page.getByTestId("chart-deliveries").locator("rect").evaluateAll((els) => els.map((e) => Number(e.dataset.value)));
  assert.equal(values.reduce((a, b) => a + b, 0), 40);
  await pageChecks(page, "portal-analytics-24h");

  await page.getByTestId("range-1h").click();
  await page.waitForURL(/range=1h/);
  const hour = await stats("1h");
  // Attached, not visible: a bucket with no deliveries (the minute just begun) has a
  // mark of zero height, which the browser counts as hidden.
  await page.getByTestId("chart-deliveries").locator("rect[data-series=succeeded]").nth(hour.buckets.length - 1).waitFor({ state: "attached" });
  assert.equal(await page.getByTestId("chart-deliveries").locator("rect[data-series=succeeded]").count(), hour.buckets.length);
  assert.equal(await tileValue(page, "success-rate"), fmtPercent(hour.total.totals.successRate));
  assert.equal(await tileValue(page, "latency-p50"), fmtMs(hour.total.totals.latencyP50Ms));
  await page.context().close();
});

test("done when: dashboard set-up, a delivery, and the customer's framed portal shows it with its latency", async () => {
  const page = await newPage(browser, [herald.url]);
  await page.goto(`${herald.url}/ui/`);
  await page.getByLabel("Admin token").fill(herald.adminToken);
  await page.getByTestId("sign-in-submit").click();
  await page.getByTestId("new-app-name").fill("Hooli");
  await page.getByTestId("create-app").click();
  await page.getByTestId("add-endpoint").click();
  await page.getByTestId("endpoint-url").fill(`${receiver.url}/hooli`);
  await page.getByTestId("save-endpoint").click();
  await page.getByTestId("example-type").selectOption("user.created");
  await page.getByTestId("send-example").click();
  const arrived = await receiver.waitFor((r) => r.path === "/hooli");
  await page.getByTestId("endpoint-attempts").getByTestId("attempt-code").filter({ hasText: "200" }).first().waitFor();
  const appId = decodeURIComponent(new URL(page.url()).pathname.split("/")[3]);
  await page.context().close();

  const access = await herald.ok("POST", `/auth/app-portal-access/${appId}`, {});
  const analytics = access.url.replace("/portal/#", "/portal/analytics?range=1h#");
  const customer = await newPage(browser, [herald.url, customerSite.origin]);
  await customer.goto(`${customerSite.origin}/?src=${encodeURIComponent(analytics)}`);
  const frame = customer.frameLocator("iframe");
  await frame.getByTestId("tiles").waitFor();
  assert.equal(await frame.getByTestId("tile-attempts-value").textContent(), "1");
  assert.match(await frame.getByTestId("latency-p50-value").textContent(), /^\d+\.\d ms$/);
  const marks = await frame.getByTestId("chart-deliveries").locator("rect[data-series=succeeded]")
    .evaluateAll((els) => els.map((e) => Number(e.dataset.value)));
  assert.equal(marks.reduce((a, b) => a + b, 0), 1);
  await screenshot(customer, "done-when-framed-analytics");
  assert.ok(arrived.headers["webhook-signature"].startsWith("v1,"));
  await customer.context().close();
});
