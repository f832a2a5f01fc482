// A customer's own site on another loopback origin, framing whatever portal URL it is
// given (`/?src=URL`), optionally with Herald's embed.js beside the frame.

import http from "node:http";

export async function startHost({ embed = false, height = 150 } = {}) {
  const server = http.createServer((req, res) => {
    const src = new URL(req.url, "http://x").searchParams.get("src") || "";
    const script = embed && src ? `<script src="${new URL(src).origin}/portal/embed.js"></script>` : "";
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><html lang="en"><head><title>Customer site</title>${script}</head><body>
      <h1>Your webhooks</h1><iframe title="Webhooks" src="${src}" style="width:100%;height:${height}px;border:0"></iframe></body></html>`);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${server.address().port}`, stop: () => server.close() };
}
