// Makes the test models once per test run (deterministic, so a finished set is reused), then their quantized
// variants with llama.cpp's llama-quantize (built on first use; reused while newer than their f32 source).
import { makeModel } from "../../models/make-models.js";
import { makeQuantizedTestModels } from "../helpers/llama-quantize.js";
import { testModelsDir, testPresets } from "../helpers/paths.js";

export default async function setup(): Promise<void> {
  for (const preset of testPresets) await makeModel(preset, testModelsDir);
  makeQuantizedTestModels();
}
