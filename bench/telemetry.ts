// What telemetry sampling costs: process CPU time per sample while the native
// sampler runs, and the share of a core that makes at 1 Hz. Runs against the
// NVML given by --nvml (default: the fake library the C++ build makes; on a
// GPU machine pass the real libnvidia-ml.so.1).
//
//   npm run bench:telemetry [-- --nvml /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 --layout h100-mig7]
import { cpus } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/addon.js";
import { Runtime } from "../src/index.js";
import { recordResult, runIfMain } from "./record.js";

async function main(argv: string[]): Promise<void> {
  const arg = (name: string, d: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : d);
  const nvml = arg("--nvml", join(packageRoot(), "build", "fake_nvml", "libnvidia-ml.so.1"));
  process.env.FAKE_NVML_LAYOUT = arg("--layout", "h100-mig7");
  const runtime = new Runtime({ nvmlLibrary: nvml });
  const periodMs = 10; // fast, so that many samples are measured; the cost scales per sample
  const samples = 300;
  const idle0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, samples * periodMs));
  const idle = process.cpuUsage(idle0);
  const busy0 = process.cpuUsage();
  let n = 0;
  for await (const _ of runtime.samples(periodMs)) if (++n === samples) break;
  const busy = process.cpuUsage(busy0);
  await runtime.dispose();
  const perSampleUs = (busy.user + busy.system - (idle.user + idle.system)) / samples;
  const lines = [
    `## ${new Date().toISOString().slice(0, 16)} — telemetry sampler cost`,
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. NVML: ${nvml} (layout ${process.env.FAKE_NVML_LAYOUT}). Command: \`npm run bench:telemetry\`.`,
    "",
    `${samples} samples at ${periodMs} ms, process CPU time minus the same idle wait: ${perSampleUs.toFixed(1)} µs per sample ` +
      `(reading NVML and handing the snapshot to JS) → ${((perSampleUs / 1e6) * 100).toFixed(4)}% of a core at 1 Hz.`,
  ];
  recordResult("telemetry", "Telemetry sampler cost", lines);
  console.log(lines.join("\n"));
}

runIfMain(import.meta.url, main);
