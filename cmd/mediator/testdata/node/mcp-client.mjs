#!/usr/bin/env node
// mcp-client.mjs — a small MCP client built on the official TypeScript SDK
// (@modelcontextprotocol/sdk), used by cmd/mediator/interop_test.go to prove
// that a stock client works through the mediator.
//
// Usage:
//   node mcp-client.mjs [options] --url http://127.0.0.1:8080/mcp
//   node mcp-client.mjs [options] --stdio -- COMMAND [ARG...]
//
// Options:
//   --call NAME        call tool NAME after listing tools (repeatable)
//   --task NAME        call tool NAME as a task (MCP 2025-11-25): the SDK's
//                      experimental callToolStream, which polls tasks/get and
//                      fetches tasks/result (repeatable; in order with --call)
//   --args JSON        arguments of the preceding --call or --task (default {})
//   --header K=V       extra HTTP header (repeatable; --url only)
//   --timeout-ms N     whole-run deadline (default 60000); each request
//                      gets the same bound
//
// It connects, lists every tool (following nextCursor), calls each --call in
// order and prints one JSON object on stdout:
//   {"ok":true,"server":{...},"protocolVersion":"...","tools":["a","b"],
//    "calls":[{"name":"a","isError":false,"content":[...],"structuredContent":...}]}
// A --task's entry adds "task":true, "taskId" and "statuses" (each status
// the stream reported, in order).
// A tool result with isError:true is reported, not a failure. A protocol
// error from a call is reported as {"name":..,"error":{"code":..,"message":..}}.
// Anything else (connect failure, tools/list error, deadline) prints
// {"ok":false,"error":"..."} and exits 1 (2 on the deadline).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

function usage(msg) {
  process.stderr.write(`mcp-client: ${msg}\n` +
    "usage: mcp-client.mjs [--call|--task NAME [--args JSON]]... [--timeout-ms N] (--url URL | --stdio -- CMD [ARG...])\n");
  process.exit(64);
}

function parseArgs(argv) {
  const o = { calls: [], headers: {}, timeoutMs: 60000, url: "", stdio: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--url": o.url = next(); break;
      case "--call": o.calls.push({ name: next(), arguments: {} }); break;
      case "--task": o.calls.push({ name: next(), arguments: {}, task: true }); break;
      case "--args": {
        if (o.calls.length === 0) usage("--args must follow --call or --task");
        const v = next();
        try { o.calls[o.calls.length - 1].arguments = JSON.parse(v); } catch (e) { usage(`--args ${v}: ${e.message}`); }
        break;
      }
      case "--header": {
        const v = next();
        const eq = v.indexOf("=");
        if (eq <= 0) usage(`--header ${v}: want K=V`);
        o.headers[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case "--timeout-ms": o.timeoutMs = Number(next()); break;
      case "--stdio":
        if (argv[i + 1] !== "--" || i + 2 >= argv.length) usage("--stdio needs -- COMMAND [ARG...]");
        o.stdio = { command: argv[i + 2], args: argv.slice(i + 3) };
        i = argv.length;
        break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.url === !o.stdio) usage("give exactly one of --url and --stdio");
  if (!(o.timeoutMs > 0)) usage("--timeout-ms must be positive");
  return o;
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const opts = parseArgs(process.argv.slice(2));
let transport;
const deadline = setTimeout(() => {
  out({ ok: false, error: `deadline of ${opts.timeoutMs} ms exceeded` });
  try { transport?.close(); } catch { /* exiting anyway */ }
  process.exit(2);
}, opts.timeoutMs);

async function main() {
  if (opts.url) {
    transport = new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers: opts.headers } });
  } else {
    // Pass our whole environment: the SDK's default keeps only a safe subset.
    transport = new StdioClientTransport({ command: opts.stdio.command, args: opts.stdio.args,
      env: { ...process.env }, stderr: "inherit" });
  }
  const client = new Client({ name: "mediator-interop-test", version: "1.0.0" }, { capabilities: {} });
  const reqOpts = { timeout: opts.timeoutMs };
  await client.connect(transport, reqOpts);

  const tools = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const res = await client.listTools(cursor ? { cursor } : {}, reqOpts);
    for (const t of res.tools) tools.push(t.name);
    cursor = res.nextCursor;
    if (!cursor) break;
  }

  const calls = [];
  for (const c of opts.calls) {
    if (c.task) {
      calls.push(await callAsTask(client, c, reqOpts));
      continue;
    }
    try {
      const res = await client.callTool({ name: c.name, arguments: c.arguments }, undefined, reqOpts);
      calls.push({ name: c.name, isError: res.isError === true, content: res.content ?? [],
        structuredContent: res.structuredContent });
    } catch (e) {
      calls.push({ name: c.name, error: { code: e?.code ?? null, message: String(e?.message ?? e) } });
    }
  }
  const result = { ok: true, server: client.getServerVersion() ?? null,
    protocolVersion: transport.protocolVersion ?? null, tools, calls };
  await client.close();
  return result;
}

// callAsTask calls c as a task and reports the stream's statuses and result.
async function callAsTask(client, c, reqOpts) {
  const entry = { name: c.name, task: true, taskId: null, statuses: [] };
  try {
    const stream = client.experimental.tasks.callToolStream({ name: c.name, arguments: c.arguments }, undefined,
      { ...reqOpts, task: { ttl: 120000 } });
    for await (const m of stream) {
      if (m.type === "taskCreated" || m.type === "taskStatus") {
        entry.taskId = m.task.taskId;
        entry.statuses.push(m.task.status);
      } else if (m.type === "result") {
        Object.assign(entry, { isError: m.result.isError === true, content: m.result.content ?? [],
          structuredContent: m.result.structuredContent });
      } else if (m.type === "error") {
        entry.error = { code: m.error?.code ?? null, message: String(m.error?.message ?? m.error) };
      }
    }
  } catch (e) {
    entry.error = { code: e?.code ?? null, message: String(e?.message ?? e) };
  }
  return entry;
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
