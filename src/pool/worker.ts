/**
 * A pool worker: one process per slice (a process can use one MIG instance),
 * loading the model with its own scheduler and streaming tokens to the parent.
 */
import { NeoserveError } from "../errors.js";
import { loadModel, type Model } from "../model.js";
import type { TokenStream } from "../token-stream.js";
import type { Token } from "../types.js";
import type { FromWorker, ToWorker } from "./protocol.js";

// Messages go out in batches, with their tokens packed into parallel arrays: a message (or an object) per
// token would cost the two processes more than the tokens themselves.
let outbox: FromWorker[] = [];
let toks: Extract<FromWorker, { t: "toks" }> | undefined;

function send(m: FromWorker): void {
  toks = undefined; // later tokens go after this message
  enqueue(m);
}

function sendToken(id: number, token: Token): void {
  if (!toks) enqueue((toks = { t: "toks", ids: [], tokens: [], texts: [] }));
  toks.ids.push(id);
  toks.tokens.push(token.id);
  toks.texts.push(token.text);
}

// At most one message per FLUSH_MS: a fast engine's steps (a few ms on the CPU)
// are packed together, since each message costs both processes a wake-up; a
// step slower than that (a GPU batch) still goes out as soon as it is done.
const FLUSH_MS = 4;
let lastFlush = 0;

function enqueue(m: FromWorker): void {
  if (outbox.push(m) > 1) return;
  const wait = lastFlush + FLUSH_MS - performance.now();
  if (wait > 0) setTimeout(flush, wait);
  else setImmediate(flush);
}

function flush(): void {
  const messages = outbox;
  outbox = [];
  toks = undefined;
  lastFlush = performance.now();
  if (process.connected) process.send!(messages.length === 1 ? messages[0]! : { t: "batch", messages });
}

let model: Model | undefined;
const streams = new Map<number, TokenStream>();

function serve(id: number, stream: TokenStream): void {
  streams.set(id, stream);
  stream.onToken((token) => sendToken(id, token));
  void stream.result.then((result) => {
    streams.delete(id);
    const { tokens: _t, text: _x, logits: _l, ...rest } = result;
    send({ t: "end", id, result: rest });
  });
}

process.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "load":
      loadModel(m.path, m.options).then(
        (loaded) => {
          model = loaded;
          send({ t: "ready", backend: loaded.info.backend, device: loaded.info.device, visibleDevices: process.env.CUDA_VISIBLE_DEVICES });
        },
        (e: unknown) => send({ t: "loadError", code: e instanceof NeoserveError ? e.code : "internal", message: String((e as Error)?.message ?? e) }),
      );
      return;
    case "gen":
      try {
        serve(m.id, model!.generate(m.request));
      } catch (e) {
        send({ t: "rejected", id: m.id, code: e instanceof NeoserveError ? e.code : "internal", message: (e as Error).message });
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
