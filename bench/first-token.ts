// Cold start, neoserve's side: a fresh process loads a model and produces one
// token; bench/quantized.ts times the whole process (and its peak RSS) from
// outside, as it times llama-bench doing the same.
//
//   node dist/bench/first-token.js <model> [--threads 2] [--weight-cache DIR]
import { loadModel } from "../src/index.js";

const [path, ...rest] = process.argv.slice(2);
const flag = (name: string) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : undefined);
const threads = Number(flag("--threads") ?? 2) || 2;
const model = await loadModel(path!, { backend: "cpu", threads, weightCache: flag("--weight-cache") });
await model.generate({ tokens: [464, 2068, 7586], maxTokens: 1, temperature: 0 }).result;
process.exit(0);
