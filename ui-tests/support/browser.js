// Debian's chromium, driven by playwright-core (no browser download), and the checks
// every page gets: axe-core, and no request leaving Herald's origin.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const SCREENSHOTS = process.env.HERALD_TEST_SCREENSHOTS || path.resolve(import.meta.dirname, "../screenshots");

export async function launch() {
  const executablePath = process.env.HERALD_TEST_CHROMIUM || "/usr/bin/chromium";
  // A missing browser is a failure, never a skip: CI installs it (.ci/run).
  return chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
}

/**
 * A new page that records every request; `foreign()` lists those not to `allowed`
 * origins (Herald's, plus any the test names).
 */
export async function newPage(browser, allowedOrigins, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const foreign = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (!["http:", "https:"].includes(url.protocol) || allowedOrigins.includes(url.origin)) return route.continue();
    foreign.push(url.href);
    return route.abort();
  });
  page.foreign = foreign;
  return page;
}

/** axe-core on what the page shows now: no serious or critical violation. */
export async function checkAccessibility(page, label) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), [],
    `accessibility of ${label}`);
}

/** Saves a screenshot of the page for CI's artefacts. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Both checks of every page, and the screenshot. */
export async function pageChecks(page, name) {
  await checkAccessibility(page, name);
  await screenshot(page, name);
  assert.deepEqual(page.foreign, [], `${name}: requests left Herald's origin`);
}
