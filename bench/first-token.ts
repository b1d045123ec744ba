// Cold start, neoserve's side: a fresh process loads a model and produces one
// token; bench/quantized.ts times the whole process (and its peak RSS) from
// outside, as it times llama-bench doing the same.
//
//   node dist/bench/first-token.js <model> [--threads 2]
import { loadModel } from "../src/index.js";

const [path, ...rest] = process.argv.slice(2);
const threads = Number(rest[rest.indexOf("--threads") + 1] || 2) || 2;
const model = await loadModel(path!, { backend: "cpu", threads });
await model.generate({ tokens: [464, 2068, 7586], maxTokens: 1, temperature: 0 }).result;
process.exit(0);
