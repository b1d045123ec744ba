// CPU attention at long contexts: single-stream decode and prefill tokens/s of
// the smol Q8_0 model with the KV cache filled to 64, 1024 and 1984 positions
// (decode then runs to the model's 2,048), with an fp32 and an fp16 KV cache.
// With --baseline <checkout> (another built neoserve tree), that build runs
// the same cases in alternation with this one, each in its own process, so
// the two are compared side by side in one run.
//
//   npm run bench:attention [-- --baseline ../neoserve-before --rounds 2]
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../src/addon.js";
import { recordResult, runIfMain, sectionHeader } from "./record.js";

const CONTEXTS = [64, 1024, 1984];

// One measurement in a child process, through `tree`'s own engine benchmark (bench/neoserve-engine.ts).
function measure(tree: string, context: number, kvCacheDtype: "f32" | "f16"): { decode: number; prefill: number } {
  const engine = pathToFileURL(join(tree, "dist", "bench", "neoserve-engine.js")).href;
  const options = { threads: 2, promptTokens: context, decodePromptTokens: context, decodeTokens: 63, prefillRepeats: 1, kvCacheDtype };
  const script = `const { neoserveBench } = await import(${JSON.stringify(engine)});
    console.log(JSON.stringify(await neoserveBench(${JSON.stringify(model())}, ${JSON.stringify(options)})));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").pop()!) as { decodeTokS: number; prefillTokS: number };
  return { decode: r.decodeTokS, prefill: r.prefillTokS };
}

const model = () => join(packageRoot(), "models", "generated", "smol", "smol-q8_0.gguf");

async function main(argv: string[]): Promise<void> {
  const at = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const baseline = at("--baseline");
  const rounds = Number(at("--rounds") ?? 2);
  // A baseline tree predates the fp16 cache: it runs fp32 only.
  const trees: [string, string, "f32" | "f16"][] = [
    ["this build, fp32 KV", packageRoot(), "f32"],
    ["this build, fp16 KV", packageRoot(), "f16"],
    ...(baseline ? [["baseline", resolve(baseline), "f32"] as [string, string, "f32"]] : []),
  ];
  const rows: string[] = [];
  for (const context of CONTEXTS) {
    const runs = new Map<string, { decode: number[]; prefill: number[] }>();
    for (let r = 0; r < rounds; r++)
      for (const [name, tree, kv] of r % 2 ? [...trees].reverse() : trees) {
        const m = measure(tree, context, kv);
        const entry = runs.get(name) ?? { decode: [], prefill: [] };
        entry.decode.push(m.decode);
        entry.prefill.push(m.prefill);
        runs.set(name, entry);
      }
    for (const [name, m] of runs)
      rows.push(`| ${context} | ${name} | ${Math.max(...m.decode).toFixed(1)} | ${Math.max(...m.prefill).toFixed(0)} |`);
  }
  const lines = [
    ...sectionHeader(`attention at long contexts, smol Q8_0, 2 threads, best of ${rounds} each, alternating`, `npm run bench:attention -- ${argv.join(" ")}`),
    "| context | build | decode tok/s | prefill tok/s |",
    "|---|---|---|---|",
    ...rows,
  ];
  console.log(lines.join("\n"));
  recordResult("attention", "CPU attention at long contexts", lines);
}

runIfMain(import.meta.url, main);
