// The benchmarks' HTTP client: streamed /v1/completions over node:http with
// pooled keep-alive connections, parsing only what it measures. It shares the
// server's cores here, so it is kept as light as a client can be (fetch and
// its web streams cost about three times its CPU per event), standing in for
// a gateway on another machine.
import http from "node:http";

export interface StreamedRun {
  /** Milliseconds from sending the request to the first event carrying text. */
  ttftMs: number;
  /** completion_tokens of the usage chunk. */
  tokens: number;
  /** The server's own time to first token (neoserve's `neoserve.timings`), when it sends one. */
  serverTtftMs?: number;
}

export class SseClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  constructor(private readonly url: URL) {}

  completion(body: object): Promise<StreamedRun> {
    const payload = JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } });
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request(
        { host: this.url.hostname, port: this.url.port, path: "/v1/completions", method: "POST", agent: this.agent, headers: { "content-type": "application/json" } },
        (res) => {
          res.setEncoding("utf8");
          let buffer = "";
          if (res.statusCode !== 200) {
            res.on("data", (c: string) => (buffer += c));
            res.on("end", () => reject(new Error(`${this.url}: ${res.statusCode} ${buffer}`)));
            return;
          }
          let ttftMs = -1;
          let tokens = 0;
          let serverTtftMs: number | undefined;
          res.on("data", (c: string) => {
            buffer += c;
            let cut: number;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const event = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
              const data = JSON.parse(event.slice(6)) as { choices: { text?: string }[]; usage?: { completion_tokens: number }; neoserve?: { timings: { time_to_first_token_ms: number | null } } };
              if (ttftMs < 0 && data.choices[0]?.text) ttftMs = performance.now() - t0;
              if (data.usage) tokens = data.usage.completion_tokens;
              serverTtftMs ??= data.neoserve?.timings.time_to_first_token_ms ?? undefined;
            }
          });
          res.on("end", () => resolve({ ttftMs, tokens, serverTtftMs }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
