// Makes the test models once per test run (deterministic, so a finished set is reused).
import { makeModel } from "../../models/make-models.js";
import { testModelsDir, testPresets } from "../helpers/paths.js";

export default async function setup(): Promise<void> {
  for (const preset of testPresets) await makeModel(preset, testModelsDir);
}
