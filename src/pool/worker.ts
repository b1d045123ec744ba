/**
 * A pool worker: one process per slice (a process can use one MIG instance),
 * loading the model with its own scheduler and streaming tokens to the parent.
 */
import { NeoserveError } from "../errors.js";
import { loadModel, type Model } from "../model.js";
import type { TokenStream } from "../token-stream.js";
import type { FromWorker, ToWorker } from "./protocol.js";

// Messages go out once per turn of the event loop, as one batch: a message per
// token would cost the parent more than the tokens themselves.
let outbox: FromWorker[] = [];
function send(m: FromWorker): void {
  if (outbox.push(m) === 1)
    setImmediate(() => {
      const messages = outbox;
      outbox = [];
      if (process.connected) process.send!(messages.length === 1 ? messages[0]! : { t: "batch", messages });
    });
}
let model: Model | undefined;
const streams = new Map<number, TokenStream>();

async function serve(id: number, stream: TokenStream): Promise<void> {
  streams.set(id, stream);
  try {
    for await (const token of stream) send({ t: "tok", id, token });
    const result = await stream.result;
    send({ t: "end", id, result: { ...result, logits: undefined } });
  } finally {
    streams.delete(id);
  }
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
        void serve(m.id, model!.generate(m.request));
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
