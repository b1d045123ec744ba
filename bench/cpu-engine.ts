// The CPU engine benchmark of record: neoserve against llama.cpp (node-llama-cpp's
// prebuilt CPU binary) on the same SmolLM2-135M-shaped GGUF files, same threads,
// in one run. Each engine runs in its own child process, so peak RSS is its own.
//
//   npm run bench [-- --threads 2 --out bench/results/cpu-engine.md]
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeModel } from "../models/make-models.js";
import { packageRoot } from "../src/addon.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = packageRoot();

interface Row {
  weights: string;
  ours: { decodeTokS: number; prefillTokS: number; peakRssMiB: number; precision: string; device: string };
  llama: { decodeTokS: number; prefillTokS: number; peakRssMiB: number };
}

// Each engine runs in a child process of its own, so its peak RSS is its own.
function runJson(script: string, args: string[]): Record<string, number | string> {
  const out = execFileSync(process.execPath, [join(here, script), ...args, "--json"], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").pop()!);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const threads = Number(argv[argv.indexOf("--threads") + 1] || 2) || 2;
  const outFile = argv.includes("--out") ? resolve(argv[argv.indexOf("--out") + 1]!) : join(root, "bench", "results", "cpu-engine.md");
  const modelsDir = join(root, "models", "generated");
  await makeModel("smol", modelsDir);
  const smol = join(modelsDir, "smol");

  const cases: { weights: string; ours: [string, string]; llama: string }[] = [
    { weights: "F32", ours: [join(smol, "smol-f32.gguf"), "auto"], llama: join(smol, "smol-f32.gguf") },
    { weights: "Q8_0 (GGUF)", ours: [join(smol, "smol-q8_0.gguf"), "auto"], llama: join(smol, "smol-q8_0.gguf") },
    { weights: "INT8 (ours, from F32 HF) vs Q8_0", ours: [join(smol, "hf"), "int8"], llama: join(smol, "smol-q8_0.gguf") },
  ];
  const rows: Row[] = [];
  for (const c of cases) {
    const llama = runJson("llama-cpp-baseline.js", [c.llama, "--threads", String(threads)]) as unknown as Row["llama"];
    const ours = runJson("neoserve-engine.js", [c.ours[0], "--precision", c.ours[1], "--threads", String(threads)]) as unknown as Row["ours"];
    rows.push({ weights: c.weights, ours, llama });
    console.log(`${c.weights}: decode ${ours.decodeTokS.toFixed(1)} vs ${llama.decodeTokS.toFixed(1)} tok/s, prefill ${ours.prefillTokS.toFixed(1)} vs ${llama.prefillTokS.toFixed(1)} tok/s`);
  }

  const f = (x: number) => x.toFixed(1);
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — SmolLM2-135M shape, ${threads} threads`,
    "",
    `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; neoserve ${rows[0]?.ours.device ?? ""}.`,
    `Command: \`npm run bench -- --threads ${threads}\` (prefill: 512-token prompt in one step, best of 2 after a warm-up; decode: 128 greedy tokens after a 16-token prompt, clock from the first token).`,
    "",
    "| weights | decode tok/s neoserve | decode tok/s llama.cpp | ratio | prefill tok/s neoserve | prefill tok/s llama.cpp | ratio | peak RSS MiB neoserve | peak RSS MiB llama.cpp |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.weights} | ${f(r.ours.decodeTokS)} | ${f(r.llama.decodeTokS)} | ${(r.ours.decodeTokS / r.llama.decodeTokS).toFixed(2)}× | ` +
        `${f(r.ours.prefillTokS)} | ${f(r.llama.prefillTokS)} | ${(r.ours.prefillTokS / r.llama.prefillTokS).toFixed(2)}× | ` +
        `${r.ours.peakRssMiB.toFixed(0)} | ${r.llama.peakRssMiB.toFixed(0)} |`,
    ),
    "",
  ];
  mkdirSync(dirname(outFile), { recursive: true });
  if (!existsSync(outFile)) writeFileSync(outFile, "# CPU engine: neoserve vs llama.cpp\n\n");
  appendFileSync(outFile, lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
