// A real `herald serve` for the browser suite: its own data directory, a port the kernel
// picks, an admin token, and loopback receivers allowed.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const ADMIN_TOKEN = "hrld_browser_suite_admin_token_0123456789abcdef";

export function heraldBinary() {
  if (process.env.HERALD_TEST_BIN) return process.env.HERALD_TEST_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.resolve(import.meta.dirname, "../../target");
  return path.join(target, "debug", "herald");
}

/**
 * Starts Herald; `config` is extra TOML (a [portal] section, say); `databaseUrl` names a
 * database other than SQLite in the temporary directory.
 */
export async function startHerald({ config = "", databaseUrl } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-ui-"));
  const configFile = path.join(dir, "herald.toml");
  writeFileSync(configFile, config);
  const child = spawn(heraldBinary(), [
    "serve", "--config", configFile, "--data-dir", dir, "--listen", "127.0.0.1:0",
    "--allow-network", "127.0.0.0/8",
    ...(databaseUrl ? ["--database-url", databaseUrl] : []),
  ], {
    env: { ...process.env, HERALD_ADMIN_TOKEN: ADMIN_TOKEN, NO_COLOR: "1", RUST_LOG: "warn,herald_server=info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start within 30 s:\n${log}`)), 30000);
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const found = log.match(/api=(http:\/\/[^\s]+)\/api\/v1/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`herald exited with ${code}:\n${log}`)));
  });
  const api = async (method, route, body, token = ADMIN_TOKEN) => {
    const response = await fetch(`${url}/api/v1${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  /** The body of a 2xx answer, or an error naming what came back. */
  const ok = async (method, route, body) => {
    const answer = await api(method, route, body);
    if (answer.status >= 300) throw new Error(`${method} ${route}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  return {
    url,
    adminToken: ADMIN_TOKEN,
    /** Runs another herald command on this server's configuration and data; its output. */
    command(...args) {
      return execFileSync(heraldBinary(), [...args, "--config", configFile, "--data-dir", dir], {
        env: { ...process.env, HERALD_ADMIN_TOKEN: ADMIN_TOKEN },
      }).toString();
    },
    api,
    ok,
    stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
