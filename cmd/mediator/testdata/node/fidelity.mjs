#!/usr/bin/env node
// fidelity.mjs — runs a fixed list of MCP requests with the official
// TypeScript SDK's client over stdio or streamable HTTP and prints, for
// each, the response exactly as the server wrote it (its stdout line, or
// its JSON body or event's data line), so that cmd/mediator's fidelity
// test can compare a server reached directly with the same server reached
// through the mediator, byte for byte.
//
// Usage:
//   node fidelity.mjs STEPS.json [--bare] -- COMMAND [ARG...]
//   node fidelity.mjs STEPS.json [--bare] --url URL
//
// The client declares sampling, elicitation and roots, or, with --bare,
// no capabilities.
//
// STEPS.json is an array of {"name": "...", "method": "...", "params": {...},
// "pages": true}; with "pages", the request is repeated with each
// nextCursor the server returns (at most 100 pages). It prints one JSON
// object on stdout:
//   {"ok":true,"steps":[{"name":"...","lines":["<response line>", ...]}]}
// and {"ok":false,"error":"..."} with exit code 1 when the client cannot
// connect or a step gets no response line. A JSON-RPC error is a response
// like any other: it is printed, not a failure.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ListRootsRequestSchema, ResultSchema } from "@modelcontextprotocol/sdk/types.js";

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const argv = process.argv.slice(2);
const bare = argv[1] === "--bare";
if (bare) argv.splice(1, 1);
if (argv.length < 3 || (argv[1] !== "--" && argv[1] !== "--url")) {
  process.stderr.write("usage: fidelity.mjs STEPS.json (-- COMMAND [ARG...] | --url URL)\n");
  process.exit(64);
}
const steps = JSON.parse(readFileSync(argv[0], "utf8"));
const deadline = setTimeout(() => {
  out({ ok: false, error: "deadline of 60 s exceeded" });
  process.exit(2);
}, 60000);

// byID holds each response the server wrote, as written, by its id.
const byID = new Map();
function noteLine(line) {
  try {
    const m = JSON.parse(line);
    if (m.id !== undefined && m.method === undefined) byID.set(m.id, line);
  } catch { /* not ours to judge: the SDK reports it */ }
}

// tapFetch is fetch, with a copy of each response body read for the
// messages in it: a JSON body is one, an event stream's data lines are.
async function tapFetch(url, init) {
  const res = await fetch(url, init);
  if (!res.body) return res;
  const [mine, theirs] = res.body.tee();
  const sse = (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
  (async () => {
    const dec = new TextDecoder();
    let text = "";
    for await (const chunk of mine) {
      text += dec.decode(chunk, { stream: true });
      if (!sse) continue;
      let nl;
      while ((nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl).replace(/\r$/, "");
        text = text.slice(nl + 1);
        if (line.startsWith("data: ")) noteLine(line.slice(6));
        else if (line.startsWith("data:")) noteLine(line.slice(5));
      }
    }
    if (!sse && text.trim() !== "") noteLine(text.trim());
  })().catch(() => { /* the SDK sees the same stream fail */ });
  return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function main() {
  const transport = argv[1] === "--url"
    ? new StreamableHTTPClientTransport(new URL(argv[2]), { fetch: tapFetch })
    : new StdioClientTransport({ command: argv[2], args: argv.slice(3), env: { ...process.env }, stderr: "inherit" });
  // The capabilities the mediator's shared upstream session offers its
  // upstream (it relays sampling, elicitation and roots), so that both
  // sides see the tools a server offers only to such clients.
  const client = new Client({ name: "mediator-fidelity-test", version: "1.0.0" },
    { capabilities: bare ? {} : { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  if (!bare) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [] }));
  // The id of each request the client sends, and each line the server
  // writes, as written.
  let lastID;
  const send = transport.send.bind(transport);
  transport.send = (msg, opts) => {
    if (msg.method !== undefined && msg.id !== undefined) lastID = msg.id;
    return send(msg, opts);
  };
  await client.connect(transport);
  if (transport._process) {
    let pending = "";
    transport._process.stdout.on("data", (chunk) => {
      pending += chunk.toString("utf8");
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        noteLine(pending.slice(0, nl).replace(/\r$/, ""));
        pending = pending.slice(nl + 1);
      }
    });
  }

  const results = [];
  for (const s of steps) {
    const lines = [];
    let params = s.params ?? {};
    for (let page = 0; page < 100; page++) {
      let res;
      try {
        res = await client.request({ method: s.method, params }, ResultSchema, { timeout: 30000 });
      } catch { /* a JSON-RPC error: its line is kept below */ }
      // Over HTTP the copy of the body may be read a moment after the SDK's.
      for (let i = 0; i < 100 && !byID.has(lastID); i++) await new Promise((r) => setTimeout(r, 20));
      const line = byID.get(lastID);
      if (line === undefined) throw new Error(`${s.name}: no response line for request ${lastID}`);
      lines.push(line);
      if (!s.pages || !res?.nextCursor) break;
      params = { ...params, cursor: res.nextCursor };
    }
    results.push({ name: s.name, lines });
  }
  await client.close();
  return { ok: true, steps: results };
}

main().then((r) => {
  clearTimeout(deadline);
  out(r);
  process.exit(0);
}, (e) => {
  clearTimeout(deadline);
  out({ ok: false, error: String(e?.stack ?? e) });
  process.exit(1);
});
