/**
 * A pool worker: one process per slice (a process can use one MIG instance),
 * loading the model with its own scheduler and streaming tokens to the parent.
 */
import { Socket } from "node:net";
import { toWireError } from "../errors.js";
import { loadModel, type Model } from "../model.js";
import type { TokenStream } from "../token-stream.js";
import { encodeFrames, TokenRun } from "./frames.js";
import { DEFAULT_FLUSH_INTERVAL_MS, FRAME_FD, HEARTBEAT_INTERVAL_MS, type FromWorker, type ToWorker } from "./protocol.js";

const pipe = new Socket({ fd: FRAME_FD, readable: false, writable: true });
pipe.on("error", () => {}); // the pool went away: "disconnect" below ends this process

// Messages go out in batches, tokens packed into runs: a message, or even an
// object, per token would cost the two processes more than the tokens themselves.
let outbox: (FromWorker | TokenRun)[] = [];
let run: TokenRun | undefined;

function send(m: FromWorker): void {
  run = undefined; // later tokens go after this message
  enqueue(m);
}

function sendToken(id: number, token: number, text: string): void {
  if (!run) enqueue((run = new TokenRun()));
  run.push(id, token, text);
}

// At most one batch per flush interval: a fast engine's steps (a few ms on the
// CPU) are packed together, since each write costs both processes a wake-up; a
// step slower than that (a GPU batch) still goes out as soon as it is done.
// Set by the pool (PoolOptions.flushIntervalMs).
let flushMs = DEFAULT_FLUSH_INTERVAL_MS;
let lastFlush = 0;

function enqueue(m: FromWorker | TokenRun): void {
  if (outbox.push(m) > 1) return;
  const wait = lastFlush + flushMs - performance.now();
  if (wait > 0) setTimeout(flush, wait);
  else setImmediate(flush);
}

function flush(): void {
  const frames = encodeFrames(outbox);
  outbox = [];
  run = undefined;
  lastFlush = performance.now();
  if (!pipe.destroyed) pipe.write(frames);
}

let model: Model | undefined;

// Heartbeats from before the load on: a native load runs off the event loop, so
// a worker loading a big model still answers, and the pool only kills the silent.
// The first one tells the pool this process has started (it watches from then);
// once loaded, each carries the engine's load, which the pool's stats report.
function heartbeat(): void {
  if (!model || model.isDisposed) return void (outbox.length === 0 && send({ t: "alive" })); // a batch on its way says as much
  const s = model.stats();
  send({ t: "alive", load: { tokensPerSecond: s.tokensPerSecond, predictedWaitMs: s.predictedWaitMs, stepTime: s.stepTime } });
}
heartbeat();
setInterval(heartbeat, HEARTBEAT_INTERVAL_MS).unref();

// Test-only: a request whose tokens are exactly these (comma-separated, from the
// test's environment) kills this worker, as a request that crashes the engine would.
const poison = process.env.NEOSERVE_TEST_POISON_TOKENS;
const isPoison = (tokens: readonly number[]) => poison !== undefined && tokens.join(",") === poison;

const streams = new Map<number, TokenStream>();

function serve(id: number, stream: TokenStream): void {
  streams.set(id, stream);
  stream.onToken((token) =>
    token.logprob ? send({ t: "token", id, token: token.id, text: token.text, logprob: token.logprob }) : sendToken(id, token.id, token.text),
  );
  void stream.result.then((result) => {
    streams.delete(id);
    const { tokens: _t, text: _x, logits: _l, logprobs: _p, ...rest } = result;
    send({ t: "end", id, result: rest });
  });
}

process.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "load":
      flushMs = m.flushIntervalMs;
      // Requests arrive as ids (the pool tokenizes): one text worker, for the detokenizer's table.
      loadModel(m.path, { ...m.options, text: { ...m.options.text, workers: 1 } }).then(
        (loaded) => {
          model = loaded;
          send({ t: "ready", info: loaded.info, visibleDevices: process.env.CUDA_VISIBLE_DEVICES });
        },
        (e: unknown) => send({ t: "loadError", ...toWireError(e) }),
      );
      return;
    case "gen":
      if (isPoison(m.request.tokens)) process.exit(99);
      try {
        serve(m.id, model!.generate(m.request));
      } catch (e) {
        send({ t: "rejected", id: m.id, ...toWireError(e) });
      }
      return;
    case "cancel":
      streams.get(m.id)?.cancel();
      return;
  }
});

// The parent went away: nothing to serve.
process.on("disconnect", () => {
  void model?.dispose().finally(() => process.exit(0));
});
