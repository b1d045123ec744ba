#!/usr/bin/env node
/**
 * The neoserve command line: `neoserve generate [prompt]` streams tokens from a
 * model; `neoserve serve` serves models over the OpenAI API; `neoserve audit
 * verify` checks an audit trail; `neoserve keys hash` hashes a tenant's key.
 */
import { Command } from "commander";
import { NeoserveError } from "../errors.js";
import { loadModel } from "../model.js";
import { defaultModelPath, integer, loadOption, number } from "./options.js";
import { registerAudit } from "./audit.js";
import { registerKeys } from "./keys.js";
import { registerServe } from "./serve.js";

const program = new Command("neoserve").description("Accelerated LLM inference inside Node.js");

program
  .command("generate")
  .description("stream a continuation of a prompt")
  .argument("[prompt]", "text to continue", "Once upon a time")
  .option("-m, --model <path>", "Hugging Face directory, .gguf file, or TensorRT engine directory (neoserve.json)", defaultModelPath)
  .option("-n, --max-tokens <n>", "tokens to generate", integer, 64)
  .option("-t, --temperature <t>", "0 = greedy", number, 0.8)
  .option("--top-k <k>", "keep the k most likely tokens (default: off)", integer)
  .option("--top-p <p>", "nucleus sampling (default: off)", number)
  .option("--seed <n>", "same seed, same tokens", integer, 7)
  .option("--backend <name>", loadOption("backend"))
  .option("--precision <p>", loadOption("precision"))
  .option("--threads <n>", loadOption("threads"), integer)
  .option("--device <id>", loadOption("device"))
  .option("--weight-cache <dir>", loadOption("weightCache"))
  .option("--weight-cache-check <what>", loadOption("weightCacheCheck"))
  .option("--chat", "treat the prompt as a user message and apply the chat template")
  .action(async (prompt: string, opts) => {
    const model = await loadModel(opts.model, { backend: opts.backend, precision: opts.precision, threads: opts.threads, device: opts.device, weightCache: opts.weightCache, weightCacheCheck: opts.weightCacheCheck });
    try {
      const input = opts.chat ? { messages: [{ role: "user", content: prompt }] } : { prompt };
      const stream = model.generate({
        ...input,
        maxTokens: opts.maxTokens,
        temperature: opts.temperature,
        topK: opts.topK,
        topP: opts.topP,
        seed: opts.seed,
      });
      await stream.accepted; // a prompt the model refuses (too long, a template's error) is the command's error
      process.stdout.write(opts.chat ? "" : prompt);
      for await (const tok of stream) process.stdout.write(tok.text);
      const r = await stream.result;
      const speed = r.timings.decodeTokensPerSecond?.toFixed(1) ?? "-";
      process.stderr.write(
        `\n[${model.info.backend} ${model.info.precision}] ${r.usage.completionTokens} tokens, ` +
          `finish: ${r.finishReason}, first token ${r.timings.timeToFirstTokenMs?.toFixed(1)} ms, ${speed} tok/s\n`,
      );
    } finally {
      await model.dispose();
    }
  });

registerServe(program);
registerAudit(program);
registerKeys(program);

program.parseAsync().catch((err: unknown) => {
  const code = err instanceof NeoserveError ? ` [${err.code}]` : "";
  process.stderr.write(`neoserve: ${err instanceof Error ? err.message : String(err)}${code}\n`);
  process.exit(1);
});
