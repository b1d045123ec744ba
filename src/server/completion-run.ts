/**
 * One completion request over HTTP: its choices run as engine streams, and
 * come back either as one JSON response or as server-sent events (a role
 * chunk, content deltas, a finish chunk per choice, the usage chunk, [DONE]).
 * The 200 is sent only once the engine has accepted every choice, so a
 * refused prompt is an ordinary error response. A client that goes away
 * cancels its streams; a draining server cancels them with a final chunk.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Engine } from "../engine.js";
import type { GenerationStream } from "../generation-stream.js";
import { reasonKind } from "../metrics/router-metrics.js";
import { type RouteInfo, RoutedStream } from "../router/router.js";
import type { GenerateResult, Token } from "../types.js";
import { HttpError, toHttpFailure } from "./http-errors.js";
import type { CompletionPlan } from "./openai-requests.js";

export type CompletionKind = "chat" | "text";

export interface RunContext {
  engine: Engine;
  model: string;
  kind: CompletionKind;
  /** How often an idle stream sends a keep-alive comment. */
  keepAliveMs: number;
  /** Registers the run with the server's drain; returns the unregister function. */
  track(cancel: (why: string) => void): () => void;
  /** The run ended: its summary goes to the request log. */
  log(summary: RunSummary): void;
}

export interface RunSummary {
  status: number;
  promptTokens: number;
  completionTokens: number;
  finishReasons: string[];
  timeToFirstTokenMs: number | null;
  /** Each choice's result, and how a router served it (undefined: not routed). */
  results: readonly GenerateResult[];
  routes: readonly (RouteInfo | undefined)[];
}

const OPENAI_FINISH: Record<string, "stop" | "length"> = { stop: "stop", length: "length" };

type Logprob = NonNullable<Token["logprob"]>;

// Chat's logprobs entry for one token.
const chatLogprob = (lp: Logprob) => ({
  token: lp.piece,
  logprob: lp.logprob,
  bytes: lp.bytes,
  top_logprobs: lp.top.map((t) => ({ token: t.piece, logprob: t.logprob, bytes: t.bytes })),
});

// Completions' logprobs object for a run of tokens (text_offset counts from `offset`).
function textLogprobs(lps: readonly Logprob[], offset = 0) {
  const text_offset: number[] = [];
  for (const lp of lps) {
    text_offset.push(offset);
    offset += lp.piece.length;
  }
  return {
    tokens: lps.map((lp) => lp.piece),
    token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries(lp.top.map((t) => [t.piece, t.logprob]))),
    text_offset,
  };
}

export async function runCompletion(ctx: RunContext, plan: CompletionPlan, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const streams: GenerationStream[] = [];
  let drainedFor: string | undefined;
  const cancelAll = () => streams.forEach((s) => s.cancel());
  try {
    for (const r of plan.requests) streams.push(ctx.engine.generate(r));
  } catch (err) {
    cancelAll();
    throw err;
  }
  const untrack = ctx.track((why) => {
    drainedFor = why;
    cancelAll();
  });
  // The response closing before its end is a client that went away.
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) cancelAll();
  });
  try {
    try {
      await Promise.all(streams.map((s) => s.accepted));
    } catch (err) {
      cancelAll();
      throw err;
    }
    return plan.stream ? await sse(ctx, plan, streams, request, reply, routeHeaders(streams[0]), () => drainedFor) : await json(ctx, plan, streams, reply, () => drainedFor);
  } finally {
    untrack();
  }
}

// How a router served the request (its first choice, for n > 1): which backend, why, and whether it ran degraded.
// A stream's headers go out when it is accepted: a router accepts only once a backend it can no longer
// replace has it (its first token, or the last backend it may try), so they name the backend that serves.
function routeHeaders(stream: GenerationStream | undefined): Record<string, string> {
  if (!(stream instanceof RoutedStream)) return {};
  const r = stream.route;
  return {
    "x-neoserve-route": `backend=${r.backend ?? "none"}; reason=${reasonKind(r)}; attempts=${r.attempts}`,
    ...(r.degraded ? { "x-neoserve-degraded": "remote backends unavailable: served locally" } : {}),
  };
}

const idOf = (ctx: RunContext, request: FastifyRequest) => `${ctx.kind === "chat" ? "chatcmpl" : "cmpl"}-${request.id}`;
const created = () => Math.floor(Date.now() / 1000);

// Choices that share a prompt count its tokens once, as OpenAI's usage does.
function usage(plan: CompletionPlan, results: readonly GenerateResult[]) {
  let prompt = 0;
  let completion = 0;
  results.forEach((r, i) => {
    if (i % plan.n === 0) prompt += r.usage.promptTokens;
    completion += r.usage.completionTokens;
  });
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function summarize(u: ReturnType<typeof usage>, results: readonly GenerateResult[], streams: readonly GenerationStream[]): Omit<RunSummary, "status"> {
  return {
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    finishReasons: results.map((r) => r.finishReason),
    timeToFirstTokenMs: results[0]?.timings.timeToFirstTokenMs ?? null,
    results,
    routes: streams.map((s) => (s instanceof RoutedStream ? s.route : undefined)),
  };
}

/** The server-side timings of a choice: queueing told apart from compute. */
function timings(r: GenerateResult) {
  const t = r.timings;
  return {
    queued_ms: t.queuedMs,
    time_to_first_token_ms: t.timeToFirstTokenMs,
    prefill_ms: t.timeToFirstTokenMs !== null && t.queuedMs !== null ? Math.max(0, t.timeToFirstTokenMs - t.queuedMs) : null,
    decode_tokens_per_second: t.decodeTokensPerSecond,
    total_ms: t.totalMs,
  };
}

// A choice that ended for a reason OpenAI has no finish_reason for: the error the client gets.
function abnormal(r: GenerateResult, drainedFor: string | undefined): HttpError | undefined {
  if (OPENAI_FINISH[r.finishReason]) return undefined;
  if (drainedFor) return new HttpError(503, drainedFor, null, "shutting_down", 5);
  return new HttpError(r.finishReason === "error" ? 500 : 503, `the request ended: ${r.finishReason}${r.error ? ` (${r.error})` : ""}`, null, r.finishReason);
}

async function json(ctx: RunContext, plan: CompletionPlan, streams: GenerationStream[], reply: FastifyReply, drained: () => string | undefined): Promise<unknown> {
  const results = await Promise.all(streams.map((s) => s.result));
  void reply.headers(routeHeaders(streams[0])); // after the end: the backend that served it, fallbacks included
  const u = usage(plan, results);
  const summary = summarize(u, results, streams);
  const failed = results.map((r) => abnormal(r, drained())).find((e) => e);
  if (failed) {
    ctx.log({ ...summary, status: failed.status });
    throw failed;
  }
  const t = timings(results[0]!);
  reply.header(
    "server-timing",
    [`queue;dur=${t.queued_ms ?? 0}`, `prefill;dur=${t.prefill_ms ?? 0}`, `ttft;dur=${t.time_to_first_token_ms ?? 0}`, `total;dur=${t.total_ms}`].join(", "),
  );
  ctx.log({ ...summary, status: 200 });
  const common = { id: idOf(ctx, reply.request), created: created(), model: ctx.model, usage: u, neoserve: { timings: t } };
  if (ctx.kind === "chat")
    return {
      ...common,
      object: "chat.completion",
      choices: results.map((r, index) => ({
        index,
        message: { role: "assistant", content: r.text },
        logprobs: r.logprobs ? { content: r.logprobs.map(chatLogprob) } : null,
        finish_reason: OPENAI_FINISH[r.finishReason],
      })),
    };
  return {
    ...common,
    object: "text_completion",
    choices: results.map((r, index) => ({ index, text: r.text, logprobs: r.logprobs ? textLogprobs(r.logprobs) : null, finish_reason: OPENAI_FINISH[r.finishReason] })),
  };
}

async function sse(
  ctx: RunContext,
  plan: CompletionPlan,
  streams: GenerationStream[],
  request: FastifyRequest,
  reply: FastifyReply,
  headers: Record<string, string>,
  drained: () => string | undefined,
): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-request-id": request.id, ...headers });
  res.flushHeaders(); // the client knows at once that its request is queued, before its first token
  const id = idOf(ctx, request);
  const stamp = created();
  const object = ctx.kind === "chat" ? "chat.completion.chunk" : "text_completion";
  let keepAlive: NodeJS.Timeout | undefined;
  const write = (text: string) => {
    if (res.writableEnded || res.destroyed) return;
    res.write(text);
    keepAlive?.refresh();
  };
  const event = (data: unknown) => write(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (choices: unknown[], extra: object = {}) => event({ id, object, created: stamp, model: ctx.model, choices, ...extra });
  keepAlive = setInterval(() => write(": keep-alive\n\n"), ctx.keepAliveMs);

  streams.forEach((s, index) => {
    if (ctx.kind === "chat") chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
    let offset = 0;
    s.onToken((token) => {
      if (token.text.length === 0 && !token.logprob) return; // a token that completes no text yet, unless its logprob is wanted
      const lp = token.logprob;
      chunk([
        ctx.kind === "chat"
          ? { index, delta: { content: token.text }, logprobs: lp ? { content: [chatLogprob(lp)] } : null, finish_reason: null }
          : { index, text: token.text, logprobs: lp ? textLogprobs([lp], offset) : null, finish_reason: null },
      ]);
      offset += lp?.piece.length ?? 0;
    });
  });
  const results = await Promise.all(
    streams.map(async (s, index) => {
      const r = await s.result;
      const failed = abnormal(r, drained());
      if (failed) event(toHttpFailure(failed, () => {}).body);
      else chunk([ctx.kind === "chat" ? { index, delta: {}, logprobs: null, finish_reason: OPENAI_FINISH[r.finishReason] } : { index, text: "", logprobs: null, finish_reason: OPENAI_FINISH[r.finishReason] }], { neoserve: { timings: timings(r) } });
      return r;
    }),
  );
  clearInterval(keepAlive);
  const u = usage(plan, results);
  if (plan.includeUsage) chunk([], { usage: u });
  write("data: [DONE]\n\n");
  res.end();
  ctx.log({ ...summarize(u, results, streams), status: 200 });
}
