/**
 * An OpenAI-compatible stand-in for a remote backend that fails on demand:
 * on 127.0.0.1, streaming completions whose behaviour `mode` sets, and a log
 * of every request it received (the proof of where a request went).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type StubMode =
  | "ok"
  | "500"
  | "503"
  | "429"
  | "no-first-token"
  /** A 200, then the connection dropped before any token. */
  | "drop-before-first-token"
  | "drop-mid-stream"
  /** A 200 and one token, then silence (no keep-alives) until the client gives up. */
  | "stall-after-first-token"
  | "error-chunk"
  | "no-finish";

export interface FaultStub {
  url: string;
  mode: StubMode;
  /** The text of each streamed token in "ok" mode. */
  tokens: string[];
  /** GET /v1/models answers 503 while false. */
  healthy: boolean;
  /** Health checks received. */
  healthChecks: number;
  /** Connections open now, the most ever open at once, and all ever opened. */
  sockets: { open: number; peak: number; total: number };
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let s = "";
    req.on("data", (c: Buffer) => (s += c.toString()));
    req.on("end", () => resolve(s));
  });

export async function startFaultStub(): Promise<FaultStub> {
  const stub = { mode: "ok" as StubMode, tokens: ["Hello", ",", " world", "!"], requests: [] as FaultStub["requests"], healthy: true, healthChecks: 0, sockets: { open: 0, peak: 0, total: 0 } };
  const server: Server = createServer(async (req, res) => {
    const text = await readBody(req);
    if (req.method === "GET" && req.url === "/v1/models") {
      stub.healthChecks++;
      res.writeHead(stub.healthy ? 200 : 503, { "content-type": "application/json" });
      return res.end(JSON.stringify({ object: "list", data: [{ id: "stub", object: "model", max_model_len: 4096 }] }));
    }
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    stub.requests.push({ path: req.url ?? "", body });
    const chat = req.url === "/v1/chat/completions";
    const chunk = (t: string, finish: string | null = null) =>
      `data: ${JSON.stringify({ choices: [chat ? { index: 0, delta: { content: t }, finish_reason: finish } : { index: 0, text: t, finish_reason: finish }] })}\n\n`;
    switch (stub.mode) {
      case "500":
      case "503":
      case "429":
        res.writeHead(Number(stub.mode), { "content-type": "application/json" });
        return res.end(JSON.stringify({ error: { message: `stub says ${stub.mode}`, type: "x", param: null, code: null } }));
      default:
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.flushHeaders();
    if (stub.mode === "no-first-token") {
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 20);
      res.on("close", () => clearInterval(keepAlive));
      return;
    }
    if (stub.mode === "drop-before-first-token") {
      await new Promise((r) => setTimeout(r, 20));
      return res.destroy();
    }
    if (stub.mode === "stall-after-first-token") return void res.write(chunk(stub.tokens[0] ?? "x"));
    if (stub.mode === "error-chunk") {
      res.write(chunk("Hel"));
      res.write(`data: ${JSON.stringify({ error: { message: "the engine failed" } })}\n\n`);
      return res.end("data: [DONE]\n\n");
    }
    for (const [i, t] of stub.tokens.entries()) {
      res.write(chunk(t));
      await new Promise((r) => setTimeout(r, 5));
      if (stub.mode === "drop-mid-stream" && i === 1) return res.destroy();
    }
    if (stub.mode !== "no-finish") res.write(chunk("", "length"));
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: stub.tokens.length, total_tokens: 7 + stub.tokens.length } })}\n\n`);
    res.end("data: [DONE]\n\n");
  });
  server.on("connection", (socket) => {
    const s = stub.sockets;
    s.total++;
    s.peak = Math.max(s.peak, ++s.open);
    socket.on("close", () => s.open--);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
