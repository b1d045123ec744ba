/**
 * One text worker process (see text-workers.ts): builds the model's tokenizer,
 * then turns request text into token ids, one request at a time. Whatever the
 * tokenizer or template does, only this process waits; the parent's timer and
 * this process's heap limit bound it.
 */
import { InputLimitError, toWireError } from "../errors.js";
import type { FromTextWorker, TextWorkerData, ToTextWorker } from "./text-workers.js";
import { TextTokenizer } from "./tokenizer.js";

const data = JSON.parse(process.argv[2]!) as TextWorkerData;
const send = (m: FromTextWorker) => process.send!(m);

// The parent went away: nothing to tokenize for.
process.on("disconnect", () => process.exit(0));

try {
  const tokenizer = await TextTokenizer.fromSource(data.source);
  const table = data.sendDecodeTable ? tokenizer.tokenBytes() : null;
  send({ t: "ready", vocabSize: tokenizer.vocabSize, table: table && { bytes: table.bytes, offsets: table.offsets, stripLeadingSpaces: table.stripLeadingSpaces } });
  process.on("message", (m: ToTextWorker) => {
    try {
      if (m.t === "decode") return send({ t: "decoded", id: m.id, text: tokenizer.decode(Array.from(m.ids), { skipSpecialTokens: m.skipSpecialTokens }) });
      const ids =
        "prompt" in m.input
          ? tokenizer.encode(m.input.prompt, { addSpecialTokens: m.input.addSpecialTokens ?? true })
          : tokenizer.encodeChat(m.input.messages, {
              addGenerationPrompt: m.input.addGenerationPrompt ?? true,
              parseSpecialTokens: m.input.parseSpecialTokens,
              limits: data.render,
            });
      send({ t: "encoded", id: m.id, ids: Int32Array.from(ids) });
    } catch (e) {
      send({ t: "failed", id: m.id, error: toWireError(e), limit: e instanceof InputLimitError });
    }
  });
} catch (e) {
  send({ t: "loadError", error: toWireError(e) });
}
