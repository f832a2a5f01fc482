// A webhook receiver on loopback that records what arrives and answers as told.

import http from "node:http";
import { EventEmitter } from "node:events";

export async function startReceiver() {
  const events = new EventEmitter();
  const received = [];
  const receiver = {
    received,
    /** (request) => {status, body}; 200 with an empty body unless changed. */
    answer: () => ({ status: 200, body: "" }),
    url: "",
    /** Resolves with the first request matching `predicate`, waiting up to `ms`. */
    waitFor(predicate, ms = 10000) {
      const found = received.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off("request", check);
          reject(new Error(`no matching request within ${ms} ms; got ${received.length}`));
        }, ms);
        const check = (request) => {
          if (!predicate(request)) return;
          clearTimeout(timer);
          events.off("request", check);
          resolve(request);
        };
        events.on("request", check);
      });
    },
    /** Waits until `count` requests match. */
    async waitForCount(predicate, count, ms = 10000) {
      const deadline = Date.now() + ms;
      while (received.filter(predicate).length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`wanted ${count} matching requests, got ${received.filter(predicate).length}`);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, left);
          events.once("request", () => { clearTimeout(timer); resolve(); });
        });
      }
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const request = { path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      received.push(request);
      const { status, body } = receiver.answer(request);
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(body);
      events.emit("request", request);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${server.address().port}`;
  receiver.stop = () => new Promise((resolve) => server.close(resolve));
  return receiver;
}
