import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TEST_PRESETS } from "../../models/make-models.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where the test suites find their models (made by test/setup/models.ts). */
export const testModelsDir = join(repoRoot, "models", "generated");
export { TEST_PRESETS as testPresets } from "../../models/make-models.js";
export type TestPreset = (typeof TEST_PRESETS)[number];

export function hfDir(preset: TestPreset): string {
  return join(testModelsDir, preset, "hf");
}
export function ggufFile(preset: TestPreset, kind: "f32" | "f16" | "q8_0" = "f32"): string {
  return join(testModelsDir, preset, `${preset}-${kind}.gguf`);
}
