import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where the test suites find their models (made by test/setup/models.ts). */
export const testModelsDir = join(repoRoot, "models", "generated");
export const testPresets = ["tiny", "tiny-mha", "tiny-tied", "tiny-odd", "tiny-llama3", "tiny-sharded"] as const;
export type TestPreset = (typeof testPresets)[number];

export function hfDir(preset: TestPreset): string {
  return join(testModelsDir, preset, "hf");
}
export function ggufFile(preset: TestPreset, kind: "f32" | "f16" | "q8_0" = "f32"): string {
  return join(testModelsDir, preset, `${preset}-${kind}.gguf`);
}
