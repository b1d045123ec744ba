// The independent reference: llama.cpp through node-llama-cpp's prebuilt CPU binary (no build, no download).
//
// Raw logits come from LlamaContextSequence.controlledEvaluate(): an input item
// [token, { generateNext: { token: true, logits: true, options: { temperature: 0 } } }] returns, for that
// position, the sampled next token and `next.logits`, a Map<Token, number> over the whole vocabulary (sorted by
// logit, highest first). With temperature 0 and no repeat penalty, DRY, XTC, token bias or grammar, the sampler is
// pure greedy, and the logits are llama.cpp's raw output for that position.
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

export interface ReferenceOptions {
  /** evaluation threads (default 2) */
  threads?: number;
  /** context size in tokens (default 512) */
  contextSize?: number;
  /** batch size for prompt processing (default min(512, contextSize)) */
  batchSize?: number;
  /**
   * KV cache element type (default "F32", so f32 models are compared without llama.cpp's default F16 KV rounding;
   * "F16" is llama.cpp's own default).
   */
  kvCacheType?: "F32" | "F16";
}

export interface GreedyResult {
  /** the greedy continuation: tokens[i] is the argmax of logits[i] */
  tokens: number[];
  /** logits[i]: the full logits vector (vocab_size) of the last position before tokens[i] was chosen */
  logits: Float32Array[];
}

let llamaPromise: Promise<Llama> | undefined;

/** One CPU-only Llama instance per process (prebuilt binary; never builds or downloads). */
export function getCpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  return llamaPromise;
}

/** Full logits Map (any order) -> dense Float32Array of length vocabSize (missing entries -Infinity). */
export function logitsToArray(map: ReadonlyMap<Token, number>, vocabSize: number): Float32Array {
  const out = new Float32Array(vocabSize).fill(-Infinity);
  for (const [tok, v] of map) out[tok as number] = v;
  return out;
}

/** Index of the largest logit (lowest index on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** Top-1 and top-2 logits and their gap. */
export function topMargin(logits: ArrayLike<number>): { top1: number; top2: number; margin: number; argmax: number } {
  let i1 = -1;
  let v1 = -Infinity;
  let v2 = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > v1) {
      v2 = v1;
      v1 = v;
      i1 = i;
    } else if (v > v2) v2 = v;
  }
  return { top1: v1, top2: v2, margin: v1 - v2, argmax: i1 };
}

export class LlamaCppReference {
  private constructor(
    readonly path: string,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly sequence: LlamaContextSequence,
    readonly vocabSize: number,
  ) {}

  static async load(ggufPath: string, opts: ReferenceOptions = {}): Promise<LlamaCppReference> {
    const llama = await getCpuLlama();
    const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0, useMmap: true });
    const contextSize = opts.contextSize ?? 512;
    const context = await model.createContext({
      contextSize,
      batchSize: opts.batchSize ?? Math.min(512, contextSize),
      threads: { ideal: opts.threads ?? 2, min: opts.threads ?? 2 },
      sequences: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: opts.kvCacheType ?? "F32",
      experimentalKvCacheValueType: opts.kvCacheType ?? "F32",
    });
    const sequence = context.getSequence();
    const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly string[] } } }).tokenizer?.ggml?.tokens;
    const vocabSize = tokens?.length ?? 0;
    if (!vocabSize) throw new Error(`${ggufPath}: no tokenizer.ggml.tokens`);
    return new LlamaCppReference(ggufPath, model, context, sequence, vocabSize);
  }

  /**
   * Evaluates promptIds from an empty context, then greedily generates `steps` tokens.
   * Returns the tokens and, for each, the full logits vector it was chosen from.
   */
  async greedy(promptIds: readonly number[], steps: number): Promise<GreedyResult> {
    if (promptIds.length === 0) throw new Error("greedy: empty prompt");
    await this.sequence.clearHistory();
    const tokens: number[] = [];
    const logits: Float32Array[] = [];
    const gen = { generateNext: { token: true, logits: true, options: { temperature: 0 } } } as const;
    let input: Array<Token | [Token, typeof gen]> = promptIds.map((t) => t as Token);
    for (let step = 0; step < steps; step++) {
      const last = input.length - 1;
      input[last] = [input[last] as Token, gen];
      const out = await this.sequence.controlledEvaluate(input);
      const next = out[last]?.next;
      if (!next || next.token == null || !next.logits) throw new Error(`llama.cpp gave no token/logits at step ${step}`);
      const dense = logitsToArray(next.logits, this.vocabSize);
      const tok = next.token as number;
      // Greedy check: llama.cpp's pick must be (one of) the largest logit(s).
      if (dense[tok]! < dense[argmax(dense)]!) throw new Error(`llama.cpp sampled ${tok}, not the argmax, at step ${step}`);
      tokens.push(tok);
      logits.push(dense);
      input = [tok as Token];
    }
    return { tokens, logits };
  }

  /** Logits of the last prompt position (from an empty context). */
  async promptLogits(promptIds: readonly number[]): Promise<Float32Array> {
    return (await this.greedy(promptIds, 1)).logits[0]!;
  }

  /** llama.cpp's own tokenizer (special tokens parsed). */
  tokenize(text: string): number[] {
    return this.model.tokenize(text, true).map((t) => t as number);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

/** One-shot helper: load, run greedy for `steps` tokens, dispose. */
export async function referenceGreedy(
  ggufPath: string,
  promptIds: readonly number[],
  steps: number,
  opts: ReferenceOptions = {},
): Promise<GreedyResult> {
  const ref = await LlamaCppReference.load(ggufPath, opts);
  try {
    return await ref.greedy(promptIds, steps);
  } finally {
    await ref.dispose();
  }
}
