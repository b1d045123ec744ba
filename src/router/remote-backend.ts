/**
 * An Engine served by another server over the OpenAI API: another neoserve,
 * vLLM, llama-server or a hosted endpoint. Requests stream through a bounded
 * pool of keep-alive connections (undici); each has a connect timeout, a
 * first-token timeout and an idle-stream timeout, and a circuit breaker stops
 * sending to a server that keeps failing. A remote's tokens arrive as text:
 * each Token carries id -1.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Pool } from "undici";
import type { Engine, EngineInfo, EngineStats } from "../engine.js";
import { InvalidRequestError, ModelDisposedError, type NeoserveError, ProviderUnavailableError, QueueFullError } from "../errors.js";
import { ForwardedStream } from "../forwarded-stream.js";
import { ABORTED_BEFORE_START } from "../generation-stream.js";
import { parseRequest } from "../request.js";
import type { TextInput } from "../tokenizer/text-workers.js";
import type { FinishReason, GenerateRequest } from "../types.js";
import { lazyRequire } from "../lazy-require.js";
import { type BreakerOptions, CircuitBreaker } from "./circuit-breaker.js";

const undici = lazyRequire<typeof import("undici")>("undici");

export interface RemoteBackendOptions {
  /** How its errors name it (they may reach clients: an address may not). Default: the URL's origin. */
  name?: string;
  /** The server's base URL, up to and without `/v1` (e.g. http://10.0.0.5:8000). */
  baseUrl: string;
  /** The model name the remote serves. */
  model: string;
  /** Sent as `Authorization: Bearer`; never logged. */
  apiKey?: string;
  /** Connections kept to it (requests beyond wait for one). Default 16. */
  connections?: number;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** From sending a request to its first token; 0 = no limit. Default 30000. */
  firstTokenTimeoutMs?: number;
  /** Longest silence inside a stream (keep-alive comments count as traffic). Default 30000. */
  idleTimeoutMs?: number;
  breaker?: BreakerOptions;
  /** How often GET /v1/models checks it while nothing else does; 0 = never. Default 10000. */
  healthIntervalMs?: number;
  /** Its context length, when its /v1/models does not say (max_model_len). */
  maxContext?: number;
}

const MAX_ERROR_BODY = 64 * 1024;
const EWMA = 0.2;

export class RemoteBackend implements Engine {
  readonly info: EngineInfo;
  private readonly pool: Pool;
  private readonly breaker: CircuitBreaker;
  private readonly firstTokenTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly inFlight = new Set<AbortController>();
  private readonly health: NodeJS.Timeout | undefined;
  private healthy = true;
  private streamed = 0;
  private ttftEwmaMs: number | undefined;
  private disposed = false;
  private readonly label: string;
  /** The base URL's path, prefixed to every route (a server mounted under /something). */
  private readonly basePath: string;

  constructor(private readonly options: RemoteBackendOptions) {
    const url = new URL(options.baseUrl);
    this.label = options.name ?? url.origin;
    this.basePath = url.pathname.replace(/\/$/, "");
    this.info = { backend: "remote", device: url.origin, source: options.model, maxContext: options.maxContext ?? 0, vocabSize: 0 };
    this.pool = new (undici().Pool)(url.origin, {
      connections: options.connections ?? 16,
      connect: { timeout: options.connectTimeoutMs ?? 5000 },
      headersTimeout: options.firstTokenTimeoutMs ?? 30_000,
      bodyTimeout: options.idleTimeoutMs ?? 30_000,
    });
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.breaker = new CircuitBreaker(options.breaker);
    this.firstTokenTimeoutMs = options.firstTokenTimeoutMs ?? 30_000;
    const every = options.healthIntervalMs ?? 10_000;
    if (every > 0) {
      this.health = setInterval(() => void this.checkHealth(), every);
      this.health.unref();
    }
  }

  /** Asks the remote's /v1/models; the result is `stats().healthy`, and its max_model_len fills info.maxContext. */
  async checkHealth(): Promise<boolean> {
    try {
      const res = await this.call("GET", "/v1/models");
      const body = (await res.body.json()) as { data?: { id: string; max_model_len?: number }[] };
      this.healthy = res.statusCode === 200;
      const mine = body.data?.find((m) => m.id === this.options.model);
      if (this.healthy && mine?.max_model_len && !this.options.maxContext) (this.info as { maxContext: number }).maxContext = mine.max_model_len;
    } catch {
      this.healthy = false;
    }
    return this.healthy;
  }

  generate(request: GenerateRequest): ForwardedStream {
    const startedAt = performance.now();
    if (this.disposed) throw new ModelDisposedError("the remote backend has been disposed");
    const parsed = parseRequest(request);
    for (const [field, set] of [["returnLogits", request.returnLogits], ["logprobs", request.logprobs], ["slice", request.slice]] as const)
      if (set !== undefined && set !== false) throw new InvalidRequestError(`${field} is not available through a remote backend`);
    const abort = new AbortController();
    const stream = new ForwardedStream(() => abort.abort(), startedAt);
    stream.watch(request.signal);
    if (request.signal?.aborted) {
      stream.end("cancelled", ABORTED_BEFORE_START);
      return stream;
    }
    const chat = "messages" in parsed.input;
    const body = {
      model: this.options.model,
      ...("messages" in parsed.input ? { messages: parsed.input.messages } : { prompt: "tokens" in parsed.input ? parsed.input.tokens : parsed.input.prompt }),
      max_tokens: request.maxTokens,
      temperature: request.temperature,
      top_p: request.topP,
      top_k: request.topK,
      min_p: request.minP,
      presence_penalty: request.presencePenalty,
      frequency_penalty: request.frequencyPenalty,
      repetition_penalty: request.repetitionPenalty,
      seed: request.seed,
      stop: parsed.stop.length ? parsed.stop : undefined,
      ignore_eos: request.ignoreEos,
      stream: true,
      stream_options: { include_usage: true },
    };
    void this.run(stream, chat ? "/v1/chat/completions" : "/v1/completions", body, abort, startedAt, request.deadlineMs);
    return stream;
  }

  private async run(stream: ForwardedStream, path: string, body: object, abort: AbortController, startedAt: number, deadlineMs: number | undefined): Promise<void> {
    if (!this.breaker.allows()) {
      stream.refuse(new ProviderUnavailableError(`${this.label}: circuit breaker open after repeated failures`));
      return;
    }
    this.breaker.take();
    this.inFlight.add(abort);
    // The breaker hears of each request once: a failure before the first token, success when the
    // remote answered, or nothing (a cancel or a deadline says nothing of the remote) — which frees a probe.
    let reported = false;
    const report = (ok: boolean | undefined) => {
      if (reported) return;
      reported = true;
      if (ok === true) this.breaker.success();
      else if (ok === false) this.breaker.failure();
      else this.breaker.release();
    };
    let why: { reason: FinishReason; message: string } | undefined;
    const stop = (reason: FinishReason, message: string) => {
      why ??= { reason, message };
      abort.abort();
    };
    const firstToken = this.firstTokenTimeoutMs > 0 ? setTimeout(() => stop("error", `${this.label}: no first token within ${this.firstTokenTimeoutMs} ms`), this.firstTokenTimeoutMs) : undefined;
    const deadline = deadlineMs !== undefined ? setTimeout(() => stop("deadline_exceeded", `deadline of ${deadlineMs} ms passed`), deadlineMs) : undefined;
    let firstAt: number | undefined;
    let finish: string | undefined;
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    let tokens = 0;
    try {
      const res = await this.call("POST", path, body, abort.signal);
      if (res.statusCode !== 200) {
        const failure = await refusal(res.statusCode, res.body, this.label);
        report(!(res.statusCode >= 500 && res.statusCode !== 503)); // it answered: a refusal is no sign of a broken server
        stream.refuse(failure, failure instanceof QueueFullError ? "queue_full" : "error");
        return;
      }
      stream.admit(0);
      let remoteError: string | undefined;
      const parser = createParser({
        onEvent: (event: EventSourceMessage) => {
          if (event.data === "[DONE]") return;
          const data = JSON.parse(event.data) as Chunk;
          if (data.error) return void (remoteError = data.error.message ?? JSON.stringify(data.error));
          if (data.usage) usage = data.usage;
          const choice = data.choices?.[0];
          if (!choice) return;
          const text = choice.delta?.content ?? choice.text ?? "";
          if (text) {
            if (firstAt === undefined) {
              firstAt = performance.now();
              clearTimeout(firstToken);
              report(true);
              this.observeTtft(firstAt - startedAt);
            }
            tokens++;
            this.streamed++;
            stream.pushToken({ id: -1, text });
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body) parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
      if (remoteError !== undefined) why ??= { reason: "error", message: `${this.label}: ${remoteError}` };
      else if (finish === undefined) why ??= { reason: "error", message: `${this.label}: the stream ended without a finish reason` };
    } catch (err) {
      if (why === undefined) {
        if (stream.finished || abort.signal.aborted) why = { reason: "cancelled", message: "cancelled" };
        else if ((err as { code?: string }).code === "UND_ERR_BODY_TIMEOUT")
          why = { reason: "error", message: `${this.label}: the stream was idle for ${this.idleTimeoutMs} ms (idle timeout)` };
        else why = { reason: "error", message: `${this.label}: ${(err as Error).message}` };
      }
    } finally {
      report(why === undefined ? true : why.reason === "error" && firstAt === undefined ? false : undefined);
      clearTimeout(firstToken);
      clearTimeout(deadline);
      this.inFlight.delete(abort);
    }
    if (stream.finished) return;
    const end = performance.now();
    const completion = usage?.completion_tokens ?? tokens;
    const prompt = usage?.prompt_tokens ?? 0;
    const reason: FinishReason = why?.reason ?? (finish === "length" ? "length" : "stop");
    if (why && firstAt === undefined && !stream.finished) {
      // Ended before its first token: a refusal, so a router can try another backend.
      const error = why.reason === "error" ? new ProviderUnavailableError(why.message) : undefined;
      if (error) return stream.refuse(error);
    }
    stream.finish({
      finishReason: reason,
      ...(why ? { error: why.message } : {}),
      usage: { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion },
      timings: {
        queuedMs: null,
        timeToFirstTokenMs: firstAt === undefined ? null : firstAt - startedAt,
        totalMs: end - startedAt,
        decodeTokensPerSecond: firstAt !== undefined && completion > 1 && end > firstAt ? ((completion - 1) * 1000) / (end - firstAt) : null,
      },
    });
  }

  private observeTtft(ms: number): void {
    this.ttftEwmaMs = this.ttftEwmaMs === undefined ? ms : this.ttftEwmaMs + EWMA * (ms - this.ttftEwmaMs);
  }

  private call(method: "GET" | "POST", path: string, body?: object, signal?: AbortSignal) {
    const headers: Record<string, string> = { accept: method === "POST" ? "text/event-stream, application/json" : "application/json" };
    if (body) headers["content-type"] = "application/json";
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    return this.pool.request({ method, path: this.basePath + path, headers, body: body ? JSON.stringify(body) : undefined, signal });
  }

  async tokenize(input: TextInput): Promise<Int32Array> {
    const body = "messages" in input ? { model: this.options.model, messages: input.messages } : { model: this.options.model, prompt: input.prompt, add_special_tokens: input.addSpecialTokens ?? true };
    const res = await this.call("POST", "/tokenize", body);
    if (res.statusCode !== 200) throw await refusal(res.statusCode, res.body, this.label);
    return Int32Array.from(((await res.body.json()) as { tokens: number[] }).tokens);
  }

  async detokenize(ids: ArrayLike<number>): Promise<string> {
    const res = await this.call("POST", "/detokenize", { model: this.options.model, tokens: Array.from(ids) });
    if (res.statusCode !== 200) throw await refusal(res.statusCode, res.body, this.label);
    return ((await res.body.json()) as { prompt: string }).prompt;
  }

  stats(): EngineStats & { healthy: boolean; breaker: CircuitBreaker["state"] } {
    return {
      inFlight: this.inFlight.size,
      progress: this.streamed,
      ...(this.ttftEwmaMs !== undefined ? { predictedWaitMs: this.ttftEwmaMs } : {}),
      available: this.available,
      healthy: this.healthy,
      breaker: this.breaker.state,
    };
  }

  /** Whether a request sent now would go out: healthy and the breaker letting it through. */
  get available(): boolean {
    return !this.disposed && this.healthy && this.breaker.allows();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.health);
    for (const abort of this.inFlight) abort.abort();
    await this.pool.destroy();
  }
}

interface Chunk {
  error?: { message?: string };
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  choices?: { delta?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
}

// The typed error for a remote's non-200 answer, from its OpenAI error envelope when it sent one.
async function refusal(status: number, body: AsyncIterable<unknown> & { dump(): Promise<void> }, where: string): Promise<NeoserveError> {
  let text = "";
  for await (const chunk of body) {
    text += String(chunk);
    if (text.length > MAX_ERROR_BODY) {
      await body.dump();
      break;
    }
  }
  let message = text.slice(0, 500);
  try {
    message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
  } catch {
    // not JSON: the text itself
  }
  const what = `${where} answered ${status}: ${message}`;
  if (status === 400 || status === 422) return new InvalidRequestError(what);
  if (status === 429 || status === 503) return new QueueFullError(what);
  return new ProviderUnavailableError(what);
}
