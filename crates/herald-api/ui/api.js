// The only way the pages reach Herald: the public /api/v1 routes, with the session's
// bearer token. Nothing here decides what is allowed; the API does.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail ? describe(body.detail) : `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((l) => l !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

export class Api {
  /** `onExpired` runs when the token is refused (expired or revoked). */
  constructor(token, onExpired) {
    this.token = token;
    this.onExpired = onExpired;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
    const text = await response.text();
    const json = text ? safeJson(text) : null;
    if (response.status === 401) {
      this.onExpired();
      throw new ApiError(401, json);
    }
    if (!response.ok) throw new ApiError(response.status, json);
    return json;
  }

  get(path) { return this.request("GET", path); }
  post(path, body = {}) { return this.request("POST", path, body); }
  put(path, body) { return this.request("PUT", path, body); }
  patch(path, body) { return this.request("PATCH", path, body); }
  delete(path) { return this.request("DELETE", path); }
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}

/** `?a=1&b=x,y` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) q.set(key, value.join(","));
    } else q.set(key, value);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;
