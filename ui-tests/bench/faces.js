// Figures for BENCHMARKS.md (not a test): on a database seeded by scripts/seed-history.py,
// how long the portal's message log takes to show its first page, and how long the 30-day
// statistics take, through the API and as the analytics page.
//
//   HERALD_TEST_BIN=/path/to/release/herald node bench/faces.js DATABASE_URL [RUNS]

import { performance } from "node:perf_hooks";
import { startHerald } from "../support/herald.js";
import { launch, newPage } from "../support/browser.js";

const [databaseUrl, runsArg] = process.argv.slice(2);
if (!databaseUrl) {
  console.error("usage: node bench/faces.js DATABASE_URL [RUNS]");
  process.exit(2);
}
const runs = Number(runsArg || 15);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const report = (name, xs) => console.log(`${name}: median ${median(xs).toFixed(1)} ms, p95 ${p95(xs).toFixed(1)} ms (${xs.length} runs)`);

async function timed(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const herald = await startHerald({ databaseUrl });
try {
  const app = await herald.ok("GET", "/app/history");
  const stored = await herald.ok("GET", `/app/${app.id}/stats/series?range=30d`);
  console.log(`application ${app.id}: ${stored.messages} messages, ${stored.total.totals.attempts} attempts in 30 days`);

  for (const [name, path] of [
    ["30-day series, ungrouped (API)", `/app/${app.id}/stats/series?range=30d`],
    ["30-day series, by endpoint, event type and status (API)", `/app/${app.id}/stats/series?range=30d&group_by=endpoint,event_type,status_code`],
    ["24-hour series (hourly buckets), grouped (API)", `/app/${app.id}/stats/series?range=24h&group_by=endpoint,event_type,status_code`],
  ]) {
    await herald.ok("GET", path);
    const times = [];
    for (let i = 0; i < runs; i += 1) times.push(await timed(() => herald.ok("GET", path)));
    report(name, times);
  }

  const browser = await launch();
  const access = await herald.ok("POST", `/auth/app-portal-access/${app.id}`, {});
  for (const [name, page, ready] of [
    ["message log, first page rendered (browser)", "messages", "message-list"],
    ["30-day analytics page rendered (browser)", "analytics?range=30d", "chart-deliveries"],
  ]) {
    const times = [];
    for (let i = 0; i < Math.min(runs, 7); i += 1) {
      const tab = await newPage(browser, [herald.url]);
      await tab.goto(access.url);
      await tab.getByTestId("endpoint-list").waitFor();
      times.push(await timed(async () => {
        await tab.goto(`${herald.url}/portal/${page}`);
        await tab.getByTestId(ready).waitFor();
      }));
      await tab.context().close();
    }
    report(name, times);
  }
  await browser.close();
} finally {
  herald.stop();
}
