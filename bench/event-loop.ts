// The event loop while neoserve loads models and tokenizes hostile or huge
// text: the longest stall of the loop (monitorEventLoopDelay, 1 ms resolution)
// in each phase, and the worst inter-token gap of a stream running beside a
// 1 MB prompt. Target: no stretch much over 20 ms.
//
//   npm run bench:event-loop
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { packageRoot } from "../src/addon.js";
import { loadModel, type Model } from "../src/index.js";
import { recordResult, runIfMain, sectionHeader } from "./record.js";

async function stallMs<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const value = await work();
  await new Promise((r) => setTimeout(r, 20)); // a stall is recorded when the loop next turns
  h.disable();
  return { value, ms: h.max / 1e6 };
}

// The worst gap between tokens of a stream that runs while `other` is tokenized.
async function gapBeside(model: Model, other: () => Promise<unknown>): Promise<number> {
  const stream = model.generate({ tokens: [1, 2, 3], maxTokens: 200, ignoreEos: true, temperature: 0 });
  let last = 0;
  let worst = 0;
  const reading = (async () => {
    for await (const _ of stream) {
      const now = performance.now();
      if (last) worst = Math.max(worst, now - last);
      last = now;
    }
  })();
  await new Promise((r) => setTimeout(r, 50));
  await other();
  await reading;
  return worst;
}

async function main(): Promise<void> {
  const models = join(packageRoot(), "models", "generated");
  const rows: string[] = [];
  for (const [what, path] of [
    ["tiny GGUF (tokenizer rebuilt from metadata)", join(models, "tiny", "tiny-q8_0.gguf")],
    ["tiny Hugging Face directory", join(models, "tiny", "hf")],
    ["smol GGUF (135M)", join(models, "smol", "smol-q8_0.gguf")],
  ] as const) {
    const { value: model, ms } = await stallMs(() => loadModel(path, { backend: "cpu", threads: 2 }));
    rows.push(`| load: ${what} | ${ms.toFixed(1)} |`);
    await model.dispose();
  }
  const model = await loadModel(join(models, "tiny", "hf"), { backend: "cpu", threads: 1 });
  try {
    const prompt = "All work and no play makes a dull model. ".repeat(25_000);
    const { ms } = await stallMs(() => model.generate({ prompt }).accepted.catch(() => undefined));
    rows.push(`| a 1 MB prompt, tokenized then refused for the context | ${ms.toFixed(1)} |`);
    const gap = await gapBeside(model, () => model.generate({ prompt }).accepted.catch(() => undefined));
    rows.push(`| worst inter-token gap of a stream beside the 1 MB prompt | ${gap.toFixed(1)} |`);
  } finally {
    await model.dispose();
  }
  const lines = [
    ...sectionHeader("longest event-loop stall", "npm run bench:event-loop"),
    "| phase | longest stall, ms |",
    "|---|---|",
    ...rows,
  ];
  console.log(lines.join("\n"));
  recordResult("event-loop", "The event loop under loads and hostile text", lines);
}

runIfMain(import.meta.url, main);
