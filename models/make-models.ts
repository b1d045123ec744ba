// Deterministic random-weight Llama / Qwen2 / Qwen3 test models, in Hugging Face and GGUF form.
//
//   node dist/models/make-models.js [--preset NAME ...|--all] [--out DIR] [--hf-dtype f32|f16|bf16] [--gguf KIND,...] [--force]
//
// Each preset writes <out>/<preset>/:
//   hf/config.json, hf/generation_config.json, hf/tokenizer.json, hf/tokenizer_config.json,
//   hf/model.safetensors (or model-0000N-of-0000M.safetensors + model.safetensors.index.json)
//   <preset>-f32.gguf, <preset>-f16.gguf, <preset>-bf16.gguf, <preset>-q8_0.gguf
//   stamp.json (generator version + options; a preset whose stamp matches is not made again)
//
// Weights come from a seeded PRNG (xoshiro128** + Box-Muller), one stream per tensor keyed by the preset's seed and
// the tensor's HF name, so the same preset always gives the same bytes, and presets that share a seed and shapes
// (tiny, tiny-sharded) share weights. GGUF conversion follows llama.cpp's convert_hf_to_gguf.py for llama: tensor
// names, Q/K row permutation for its interleaved RoPE, F32 norms, Q8_0 for 2-D tensors (F16 fallback when a row
// is not a multiple of 32), rope_freqs.weight for llama3 rope scaling. For qwen2 / qwen3 it follows the
// converter's Qwen2Model / Qwen3Model (plain TextModel): `qwen2.*` / `qwen3.*` keys, no llama-only vocab_size or
// rope.dimension_count, and no Q/K permutation (llama.cpp runs NEOX-style RoPE on them, HF's rotate-half layout).
// qwen2 adds q/k/v biases (blk.N.attn_{q,k,v}.bias, F32); qwen3 adds per-head RMSNorm weights on q and k
// (blk.N.attn_{q,k}_norm.weight, F32) and writes head_dim (qwen3.attention.key_length / value_length).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType, GgufWriter, LlamaFileType } from "./gguf-writer.js";
import { SafetensorsWriter, type SafetensorsDtype } from "./safetensors-writer.js";
import {
  GPT2_EOT_ID,
  GPT2_VOCAB_SIZE,
  IM_END_ID,
  gpt2GgufTokenizer,
  gpt2TokenizerConfig,
  gpt2TokenizerJson,
} from "./gpt2-tokenizer.js";

/** Bump when the bytes a preset produces change (QKV_BIAS_STD included). */
export const GENERATOR_VERSION = 1;

/** Model family: decides the HF config, the extra tensors and the GGUF keys / layout. */
export type ModelArch = "llama" | "qwen2" | "qwen3";

export interface Llama3RopeScaling {
  rope_type: "llama3";
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** How the random weights are scaled (std of a normal, or mean ± std for norm weights). */
export interface InitScales {
  /** embed_tokens std */
  embedStd: number;
  /** q/k/v/gate/up std = inGain / sqrt(hidden) */
  inGain: number;
  /** o_proj std = outGain / sqrt(n_heads*head_dim); down_proj std = outGain / sqrt(ffn) */
  outGain: number;
  /** lm_head std = lmHeadGain / sqrt(hidden) (untied models) */
  lmHeadGain: number;
  /** attention / ffn norm weights: 1 + normNoise * N(0,1) */
  normNoise: number;
  /** final norm weights: finalNormMean + normNoise * N(0,1) */
  finalNormMean: number;
  /** qwen2's q/k/v biases: N(0, biasStd) (default QKV_BIAS_STD; optional so llama presets' stamps are unchanged) */
  biasStd?: number;
}

export interface ModelPreset {
  name: string;
  /** model family (default "llama"; left out of the stamp when "llama", so older stamps stay valid) */
  arch: ModelArch;
  /** PRNG seed; presets with the same seed and shapes get the same weights */
  seed: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  ropeScaling: Llama3RopeScaling | null;
  /** safetensors shards (1 = model.safetensors) */
  shards: number;
  init: InitScales;
}

/** Target standard deviation of a logits vector (see the note on init scales above tensorPlan). */
export const TARGET_LOGIT_STD = 24;

/**
 * Default std of qwen2's q/k/v biases. The projections' outputs have std ~inGain (2) on RMS-normed input, so a bias
 * of 0.5 shifts them visibly (a missing or misplaced bias changes the logits) without dominating attention.
 */
export const QKV_BIAS_STD = 0.5;

export const DEFAULT_INIT: Omit<InitScales, "finalNormMean"> = {
  embedStd: 1.0,
  inGain: 2.0,
  outGain: 4.0,
  lmHeadGain: TARGET_LOGIT_STD,
  normNoise: 0.1,
};

function preset(p: Partial<ModelPreset> & Pick<ModelPreset, "name" | "hiddenSize" | "numLayers" | "numHeads">): ModelPreset {
  const numKvHeads = p.numKvHeads ?? p.numHeads;
  return {
    arch: "llama",
    seed: 1,
    numKvHeads,
    headDim: p.hiddenSize / p.numHeads,
    intermediateSize: 4 * p.hiddenSize,
    vocabSize: GPT2_VOCAB_SIZE,
    maxPositionEmbeddings: 1024,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: false,
    ropeScaling: null,
    shards: 1,
    ...p,
    init: {
      ...DEFAULT_INIT,
      // Tied models: logits = embed . norm(h), std ~ sqrt(hidden) * embedStd * finalNormMean -> TARGET_LOGIT_STD.
      finalNormMean: p.tieWordEmbeddings ? TARGET_LOGIT_STD / Math.sqrt(p.hiddenSize) / (p.init?.embedStd ?? DEFAULT_INIT.embedStd) : 1,
      ...p.init,
    },
  };
}

export const PRESETS: Readonly<Record<string, ModelPreset>> = {
  tiny: preset({ name: "tiny", seed: 1, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 160 }),
  "tiny-mha": preset({ name: "tiny-mha", seed: 2, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 160 }),
  "tiny-tied": preset({
    name: "tiny-tied", seed: 3, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 160,
    tieWordEmbeddings: true,
  }),
  // Odd shapes: 3 heads of 32, one KV head (MQA), ffn 224 = 7 blocks of 32 (so Q8_0 covers every 2-D tensor).
  "tiny-odd": preset({
    name: "tiny-odd", seed: 4, hiddenSize: 96, numLayers: 3, numHeads: 3, numKvHeads: 1, intermediateSize: 224,
    rmsNormEps: 1e-6,
  }),
  // llama3 rope scaling with a 64-token original context, so all three frequency bands occur (head_dim 16).
  "tiny-llama3": preset({
    name: "tiny-llama3", seed: 5, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 160,
    ropeTheta: 500000, maxPositionEmbeddings: 512,
    ropeScaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  }),
  // Same weights as tiny (same seed and shapes), safetensors split in two shards.
  "tiny-sharded": preset({
    name: "tiny-sharded", seed: 1, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 160,
    shards: 2,
  }),
  // SmolLM2-135M's shape (vocab aside: GPT-2's 50259 here), for benchmarks.
  smol: preset({
    name: "smol", seed: 7, hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3, intermediateSize: 1536,
    tieWordEmbeddings: true, ropeTheta: 100000, maxPositionEmbeddings: 2048,
  }),
  // Llama-3.2-1B's shape (with GPT-2's vocabulary): the throughput benchmarks' 1B-class model. ~1.1B parameters;
  // make it with `--gguf q8_0,bf16 --hf-dtype bf16` unless 16 GB of every variant is wanted.
  llama1b: preset({
    name: "llama1b", seed: 8, hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, intermediateSize: 8192,
    tieWordEmbeddings: true, ropeTheta: 500000, maxPositionEmbeddings: 4096,
  }),
  // Qwen2: q/k/v biases, NEOX RoPE (no Q/K permutation in the GGUF), tied embeddings as in Qwen2.5-0.5B.
  "tiny-qwen2": preset({
    name: "tiny-qwen2", arch: "qwen2", seed: 9, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 160,
    tieWordEmbeddings: true, rmsNormEps: 1e-6,
  }),
  // Qwen3: q/k RMSNorm per head, head_dim 32 so heads*head_dim (128) != hidden (64), untied as in Qwen3-8B.
  "tiny-qwen3": preset({
    name: "tiny-qwen3", arch: "qwen3", seed: 10, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32,
    intermediateSize: 160, ropeTheta: 1000000, rmsNormEps: 1e-6,
  }),
  // K-quant shapes: every 2-D tensor's row length (hidden 256, heads*head_dim 256, ffn 512) a multiple of 256.
  "tiny-k": preset({
    name: "tiny-k", seed: 11, hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 512,
  }),
  "tiny-qwen3-k": preset({
    name: "tiny-qwen3-k", arch: "qwen3", seed: 12, hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 64,
    intermediateSize: 512, ropeTheta: 1000000, rmsNormEps: 1e-6,
  }),
};

export const TEST_PRESETS = [
  "tiny", "tiny-mha", "tiny-tied", "tiny-odd", "tiny-llama3", "tiny-sharded", "tiny-qwen2", "tiny-qwen3", "tiny-k",
] as const;

export type HfDtype = "f32" | "f16" | "bf16";
export type GgufKind = "f32" | "f16" | "bf16" | "q8_0";
export const GGUF_KINDS: readonly GgufKind[] = ["f32", "f16", "bf16", "q8_0"];

export interface MakeModelOptions {
  /** dtype of the safetensors weights (default f32) */
  hfDtype?: HfDtype;
  /** GGUF variants to write (default all: f32, f16, bf16, q8_0) */
  gguf?: readonly GgufKind[];
  /** remake even when the stamp matches */
  force?: boolean;
  /** log progress to stderr */
  verbose?: boolean;
}

export interface MadeModel {
  preset: ModelPreset;
  /** <outDir>/<preset> */
  dir: string;
  /** <outDir>/<preset>/hf */
  hfDir: string;
  /** GGUF file paths by kind */
  gguf: Partial<Record<GgufKind, string>>;
  /** false when an up-to-date copy was already there */
  made: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic PRNG: xoshiro128** seeded through splitmix32 from a 32-bit FNV-1a hash of (seed, tensor name).

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** uniform in (0, 1) */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** standard normal (Box-Muller, both values used) */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function randomTensor(seed: number, name: string, n: number, mean: number, std: number): Float32Array {
  const rng = new Rng(fnv1a(`${seed}:${name}`));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor plan

interface TensorSpec {
  hfName: string;
  ggufName: string;
  /** PyTorch shape: [rows, cols] or [n] */
  shape: number[];
  mean: number;
  std: number;
  /** permute rows for llama.cpp's RoPE layout with this many heads */
  permuteHeads?: number;
}

export function tensorPlan(p: ModelPreset): TensorSpec[] {
  const H = p.hiddenSize;
  const F = p.intermediateSize;
  const q = p.numHeads * p.headDim;
  const kv = p.numKvHeads * p.headDim;
  const s = p.init;
  const lin = (gain: number, fanIn: number): { mean: number; std: number } => ({ mean: 0, std: gain / Math.sqrt(fanIn) });
  const norm = { mean: 1, std: s.normNoise };
  const bias = { mean: 0, std: s.biasStd ?? QKV_BIAS_STD };
  // llama.cpp's converter permutes Q/K rows (and biases) only for its llama architecture (LlamaModel.undo_permute);
  // Qwen2Model / Qwen3Model are plain TextModels, and llama.cpp runs NEOX-style RoPE on HF's rotate-half layout.
  const permute = p.arch === "llama";
  const specs: TensorSpec[] = [
    { hfName: "model.embed_tokens.weight", ggufName: "token_embd.weight", shape: [p.vocabSize, H], mean: 0, std: s.embedStd },
  ];
  for (let i = 0; i < p.numLayers; i++) {
    const hf = `model.layers.${i}`;
    const gg = `blk.${i}`;
    const qProj: TensorSpec = { hfName: `${hf}.self_attn.q_proj.weight`, ggufName: `${gg}.attn_q.weight`, shape: [q, H], ...lin(s.inGain, H) };
    const kProj: TensorSpec = { hfName: `${hf}.self_attn.k_proj.weight`, ggufName: `${gg}.attn_k.weight`, shape: [kv, H], ...lin(s.inGain, H) };
    if (permute) {
      qProj.permuteHeads = p.numHeads;
      kProj.permuteHeads = p.numKvHeads;
    }
    specs.push(
      { hfName: `${hf}.input_layernorm.weight`, ggufName: `${gg}.attn_norm.weight`, shape: [H], ...norm },
      qProj,
      ...(p.arch === "qwen2" ? [{ hfName: `${hf}.self_attn.q_proj.bias`, ggufName: `${gg}.attn_q.bias`, shape: [q], ...bias }] : []),
      kProj,
      ...(p.arch === "qwen2" ? [{ hfName: `${hf}.self_attn.k_proj.bias`, ggufName: `${gg}.attn_k.bias`, shape: [kv], ...bias }] : []),
      { hfName: `${hf}.self_attn.v_proj.weight`, ggufName: `${gg}.attn_v.weight`, shape: [kv, H], ...lin(s.inGain, H) },
      ...(p.arch === "qwen2" ? [{ hfName: `${hf}.self_attn.v_proj.bias`, ggufName: `${gg}.attn_v.bias`, shape: [kv], ...bias }] : []),
      { hfName: `${hf}.self_attn.o_proj.weight`, ggufName: `${gg}.attn_output.weight`, shape: [H, q], ...lin(s.outGain, q) },
      ...(p.arch === "qwen3"
        ? [
            { hfName: `${hf}.self_attn.q_norm.weight`, ggufName: `${gg}.attn_q_norm.weight`, shape: [p.headDim], ...norm },
            { hfName: `${hf}.self_attn.k_norm.weight`, ggufName: `${gg}.attn_k_norm.weight`, shape: [p.headDim], ...norm },
          ]
        : []),
      { hfName: `${hf}.post_attention_layernorm.weight`, ggufName: `${gg}.ffn_norm.weight`, shape: [H], ...norm },
      { hfName: `${hf}.mlp.gate_proj.weight`, ggufName: `${gg}.ffn_gate.weight`, shape: [F, H], ...lin(s.inGain, H) },
      { hfName: `${hf}.mlp.up_proj.weight`, ggufName: `${gg}.ffn_up.weight`, shape: [F, H], ...lin(s.inGain, H) },
      { hfName: `${hf}.mlp.down_proj.weight`, ggufName: `${gg}.ffn_down.weight`, shape: [H, F], ...lin(s.outGain, F) },
    );
  }
  specs.push({ hfName: "model.norm.weight", ggufName: "output_norm.weight", shape: [H], mean: s.finalNormMean, std: s.normNoise });
  if (!p.tieWordEmbeddings) {
    specs.push({ hfName: "lm_head.weight", ggufName: "output.weight", shape: [p.vocabSize, H], ...lin(s.lmHeadGain, H) });
  }
  return specs;
}

/**
 * llama.cpp's Q/K row permutation (HF rotate-half layout -> interleaved pairs):
 * w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols).
 */
export function permuteQK(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const hd = rows / nHead;
  const half = hd / 2;
  if (!Number.isInteger(half)) throw new Error(`permuteQK: rows ${rows} not divisible by 2*${nHead}`);
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const src = (h * hd + s * half + j) * cols;
        const dst = (h * hd + 2 * j + s) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** rope_freqs.weight for llama3 rope scaling: one factor per rotary pair, computed as the converter does (float32). */
export function llama3RopeFactors(headDim: number, ropeTheta: number, rs: Llama3RopeScaling): Float32Array {
  const fr = Math.fround;
  const factor = rs.factor ?? 8;
  const lowFreqFactor = rs.low_freq_factor ?? 1;
  const highFreqFactor = rs.high_freq_factor ?? 4;
  const oldContextLen = rs.original_max_position_embeddings ?? 8192;
  const lowFreqWavelen = oldContextLen / lowFreqFactor;
  const highFreqWavelen = oldContextLen / highFreqFactor;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = fr(1 / fr(Math.pow(ropeTheta, fr((2 * i) / headDim))));
    const wavelen = fr((2 * Math.PI) / freq);
    if (wavelen < highFreqWavelen) out[i] = 1;
    else if (wavelen > lowFreqWavelen) out[i] = factor;
    else {
      const smooth = fr(fr(fr(oldContextLen / wavelen) - lowFreqFactor) / (highFreqFactor - lowFreqFactor));
      out[i] = fr(1 / fr(fr(fr(1 - smooth) / factor) + smooth));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// HF side files

function hfConfig(p: ModelPreset, dtype: HfDtype): Record<string, unknown> {
  if (p.arch === "qwen2") return qwen2Config(p, dtype);
  if (p.arch === "qwen3") return qwen3Config(p, dtype);
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: GPT2_EOT_ID,
    eos_token_id: [GPT2_EOT_ID, IM_END_ID],
    head_dim: p.headDim,
    hidden_act: "silu",
    hidden_size: p.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: p.intermediateSize,
    max_position_embeddings: p.maxPositionEmbeddings,
    mlp_bias: false,
    num_attention_heads: p.numHeads,
    num_hidden_layers: p.numLayers,
    num_key_value_heads: p.numKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: p.rmsNormEps,
    rope_scaling: p.ropeScaling,
    rope_theta: p.ropeTheta,
    tie_word_embeddings: p.tieWordEmbeddings,
    torch_dtype: dtype === "f32" ? "float32" : dtype === "f16" ? "float16" : "bfloat16",
    transformers_version: "4.46.0",
    use_cache: true,
    vocab_size: p.vocabSize,
  };
}

function torchDtype(dtype: HfDtype): string {
  return dtype === "f32" ? "float32" : dtype === "f16" ? "float16" : "bfloat16";
}

/** The fields Qwen2 and Qwen3 configs share (Qwen2.5's and Qwen3's config.json). */
function qwenConfig(p: ModelPreset, dtype: HfDtype): Record<string, unknown> {
  return {
    attention_dropout: 0.0,
    bos_token_id: GPT2_EOT_ID,
    eos_token_id: [GPT2_EOT_ID, IM_END_ID],
    hidden_act: "silu",
    hidden_size: p.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: p.intermediateSize,
    max_position_embeddings: p.maxPositionEmbeddings,
    max_window_layers: p.numLayers,
    num_attention_heads: p.numHeads,
    num_hidden_layers: p.numLayers,
    num_key_value_heads: p.numKvHeads,
    rms_norm_eps: p.rmsNormEps,
    rope_scaling: null,
    rope_theta: p.ropeTheta,
    tie_word_embeddings: p.tieWordEmbeddings,
    torch_dtype: torchDtype(dtype),
    use_cache: true,
    use_sliding_window: false,
    vocab_size: p.vocabSize,
  };
}

/**
 * Qwen2ForCausalLM, with Qwen2.5's fields: no head_dim (Qwen2Config derives hidden/heads, and the converter then
 * writes no key_length), no attention_bias field (q/k/v always have biases), sliding window present but off.
 */
function qwen2Config(p: ModelPreset, dtype: HfDtype): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    ...qwenConfig(p, dtype),
    sliding_window: p.maxPositionEmbeddings,
    transformers_version: "4.46.0",
  };
}

/** Qwen3ForCausalLM, with Qwen3's fields: explicit head_dim, attention_bias false, no sliding window. */
function qwen3Config(p: ModelPreset, dtype: HfDtype): Record<string, unknown> {
  return {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...qwenConfig(p, dtype),
    attention_bias: false,
    head_dim: p.headDim,
    sliding_window: null,
    transformers_version: "4.51.0",
  };
}

function generationConfig(): Record<string, unknown> {
  return { bos_token_id: GPT2_EOT_ID, eos_token_id: [GPT2_EOT_ID, IM_END_ID], transformers_version: "4.46.0" };
}

// ---------------------------------------------------------------------------------------------------------------
// GGUF side

const GGUF_TYPE: Record<GgufKind, { tensor: GgmlType; file: LlamaFileType }> = {
  f32: { tensor: GgmlType.F32, file: LlamaFileType.ALL_F32 },
  f16: { tensor: GgmlType.F16, file: LlamaFileType.MOSTLY_F16 },
  bf16: { tensor: GgmlType.BF16, file: LlamaFileType.MOSTLY_BF16 },
  q8_0: { tensor: GgmlType.Q8_0, file: LlamaFileType.MOSTLY_Q8_0 },
};

/** The ggml type the converter would give a tensor: 1-D (norms, rope_freqs) stay F32; Q8_0 falls back to F16. */
function ggufTensorType(kind: GgufKind, shape: readonly number[]): GgmlType {
  if (shape.length <= 1) return GgmlType.F32;
  const t = GGUF_TYPE[kind].tensor;
  if (t === GgmlType.Q8_0 && shape[shape.length - 1]! % 32 !== 0) return GgmlType.F16;
  return t;
}

function ggufWriterFor(p: ModelPreset, kind: GgufKind, specs: TensorSpec[]): GgufWriter {
  const w = new GgufWriter();
  const tok = gpt2GgufTokenizer();
  const a = p.arch; // llama.cpp's architecture name is the key prefix (llama, qwen2, qwen3)
  w.addString("general.architecture", a);
  w.addString("general.type", "model");
  w.addString("general.name", `neoserve ${p.name}`);
  // TextModel.set_gguf_parameters(), in its order
  w.addUint32(`${a}.block_count`, p.numLayers);
  w.addUint32(`${a}.context_length`, p.maxPositionEmbeddings);
  w.addUint32(`${a}.embedding_length`, p.hiddenSize);
  w.addUint32(`${a}.feed_forward_length`, p.intermediateSize);
  w.addUint32(`${a}.attention.head_count`, p.numHeads);
  w.addUint32(`${a}.attention.head_count_kv`, p.numKvHeads);
  w.addFloat32(`${a}.rope.freq_base`, p.ropeTheta);
  w.addFloat32(`${a}.attention.layer_norm_rms_epsilon`, p.rmsNormEps);
  // The converter writes key/value_length whenever config.json carries head_dim: llama's and qwen3's do, qwen2's
  // (like Qwen2.5's) does not, and llama.cpp then takes head_dim = embedding_length / head_count.
  if (a !== "qwen2") {
    w.addUint32(`${a}.attention.key_length`, p.headDim);
    w.addUint32(`${a}.attention.value_length`, p.headDim);
  }
  w.addUint32("general.file_type", GGUF_TYPE[kind].file);
  if (a === "llama") {
    // LlamaModel.set_gguf_parameters() only
    w.addUint32("llama.vocab_size", p.vocabSize);
    w.addUint32("llama.rope.dimension_count", p.headDim);
  }
  w.addUint32("general.quantization_version", 2);
  w.addString("tokenizer.ggml.model", tok.model);
  w.addString("tokenizer.ggml.pre", tok.pre);
  w.addStringArray("tokenizer.ggml.tokens", tok.tokens);
  w.addInt32Array("tokenizer.ggml.token_type", tok.tokenTypes);
  w.addStringArray("tokenizer.ggml.merges", tok.merges);
  w.addUint32("tokenizer.ggml.bos_token_id", tok.bosId);
  w.addUint32("tokenizer.ggml.eos_token_id", tok.eosId);
  w.addUint32("tokenizer.ggml.eot_token_id", tok.eotId);
  w.addUint32("tokenizer.ggml.padding_token_id", GPT2_EOT_ID);
  w.addBool("tokenizer.ggml.add_bos_token", tok.addBos);
  w.addBool("tokenizer.ggml.add_eos_token", false);
  w.addString("tokenizer.chat_template", tok.chatTemplate);
  if (p.ropeScaling) w.addTensorInfo("rope_freqs.weight", [p.headDim / 2], GgmlType.F32);
  for (const s of specs) w.addTensorInfo(s.ggufName, [...s.shape].reverse(), ggufTensorType(kind, s.shape));
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// makeModel

interface Stamp {
  generatorVersion: number;
  preset: ModelPreset;
  hfDtype: HfDtype;
  gguf: GgufKind[];
}

function stampOf(p: ModelPreset, hfDtype: HfDtype, gguf: readonly GgufKind[]): Stamp {
  // arch "llama" is left out, so stamps written before there was an arch field still match (same bytes).
  const { arch, ...rest } = p;
  const stamped = (arch === "llama" ? rest : p) as ModelPreset;
  return { generatorVersion: GENERATOR_VERSION, preset: stamped, hfDtype, gguf: [...gguf].sort() };
}

function ggufPaths(dir: string, name: string, kinds: readonly GgufKind[]): Partial<Record<GgufKind, string>> {
  const out: Partial<Record<GgufKind, string>> = {};
  for (const k of kinds) out[k] = join(dir, `${name}-${k}.gguf`);
  return out;
}

/** Repository root (the directory holding package.json above this file, in src or dist form). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export function defaultOutDir(): string {
  return join(repoRoot(), "models", "generated");
}

/** Makes (or reuses) one preset under <outDir>/<preset>/. `preset` is a preset name or a full ModelPreset. */
export async function makeModel(preset: string | ModelPreset, outDir: string = defaultOutDir(), opts: MakeModelOptions = {}): Promise<MadeModel> {
  const p = typeof preset === "string" ? PRESETS[preset] : preset;
  if (!p) throw new Error(`unknown model preset "${String(preset)}" (known: ${Object.keys(PRESETS).join(", ")})`);
  validatePreset(p);
  const hfDtype = opts.hfDtype ?? "f32";
  const kinds = opts.gguf ?? GGUF_KINDS;
  const root = resolve(outDir);
  const dir = join(root, p.name);
  const stamp = stampOf(p, hfDtype, kinds);
  const stampPath = join(dir, "stamp.json");
  const result: MadeModel = { preset: p, dir, hfDir: join(dir, "hf"), gguf: ggufPaths(dir, p.name, kinds), made: false };
  if (!opts.force && existsSync(stampPath)) {
    try {
      if (JSON.stringify(JSON.parse(readFileSync(stampPath, "utf8"))) === JSON.stringify(stamp)) return result;
    } catch {
      // remake
    }
  }
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.${p.name}.tmp-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "hf"), { recursive: true });
  try {
    writeModelFiles(p, tmp, hfDtype, kinds, opts.verbose ?? false);
    writeFileSync(join(tmp, "stamp.json"), JSON.stringify(stamp, null, 2) + "\n");
    // Swap into place: move any old copy aside first, so readers never see a half-written directory.
    const old = `${dir}.old-${process.pid}-${Date.now()}`;
    if (existsSync(dir)) renameSync(dir, old);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // someone else finished first: keep theirs if it matches
      if (existsSync(join(dir, "stamp.json"))) {
        rmSync(tmp, { recursive: true, force: true });
      } else {
        throw e;
      }
    }
    rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  result.made = true;
  return result;
}

function validatePreset(p: ModelPreset): void {
  const bad = (m: string): never => {
    throw new Error(`preset ${p.name}: ${m}`);
  };
  if (p.numHeads % p.numKvHeads !== 0) bad("num_heads must be a multiple of num_kv_heads");
  if (p.headDim % 2 !== 0) bad("head_dim must be even");
  if (p.hiddenSize % 4 !== 0 || p.intermediateSize % 4 !== 0) bad("sizes must be multiples of 4 (8-byte aligned f16 tensors)");
  if (p.shards < 1) bad("shards must be >= 1");
  if (!["llama", "qwen2", "qwen3"].includes(p.arch)) bad(`unknown arch "${String(p.arch)}"`);
  if (p.arch !== "llama" && p.ropeScaling) bad("rope scaling is only written for llama");
  // llama.cpp's qwen2 takes attn_output as {n_embd, n_embd}: its heads must tile the hidden size.
  if (p.arch === "qwen2" && p.numHeads * p.headDim !== p.hiddenSize) bad("qwen2 needs num_heads * head_dim == hidden_size");
  // the extra 1-D tensors (kv bias, q/k norms) must also keep f16 safetensors 8-byte aligned
  if (p.arch === "qwen2" && (p.numKvHeads * p.headDim) % 4 !== 0) bad("qwen2 needs num_kv_heads * head_dim to be a multiple of 4");
  if (p.arch === "qwen3" && p.headDim % 4 !== 0) bad("qwen3 needs head_dim to be a multiple of 4");
}

function writeModelFiles(p: ModelPreset, dir: string, hfDtype: HfDtype, kinds: readonly GgufKind[], verbose: boolean): void {
  const log = verbose ? (m: string) => process.stderr.write(`[make-models] ${p.name}: ${m}\n`) : () => {};
  const hfDir = join(dir, "hf");
  const specs = tensorPlan(p);
  writeJson(join(hfDir, "config.json"), hfConfig(p, hfDtype));
  writeJson(join(hfDir, "generation_config.json"), generationConfig());
  writeJson(join(hfDir, "tokenizer.json"), gpt2TokenizerJson());
  writeJson(join(hfDir, "tokenizer_config.json"), gpt2TokenizerConfig(p.maxPositionEmbeddings));

  // safetensors: split the tensor list into shards of about equal bytes, in order
  const stDtype: SafetensorsDtype = hfDtype === "f32" ? "F32" : hfDtype === "f16" ? "F16" : "BF16";
  const elemBytes = stDtype === "F32" ? 4 : 2;
  const sizes = specs.map((s) => s.shape.reduce((a, b) => a * b, 1) * elemBytes);
  const total = sizes.reduce((a, b) => a + b, 0);
  const shardOf: number[] = [];
  {
    let acc = 0;
    for (let i = 0; i < specs.length; i++) {
      const remainingTensors = specs.length - i;
      let shard = Math.min(p.shards - 1, Math.floor((acc * p.shards) / total));
      // never leave a shard empty
      shard = Math.max(shard, p.shards - remainingTensors);
      if (i > 0) shard = Math.max(shard, shardOf[i - 1]!);
      shardOf.push(shard);
      acc += sizes[i]!;
    }
  }
  const shardName = (k: number): string =>
    p.shards === 1 ? "model.safetensors" : `model-${String(k + 1).padStart(5, "0")}-of-${String(p.shards).padStart(5, "0")}.safetensors`;
  const st: SafetensorsWriter[] = [];
  for (let k = 0; k < p.shards; k++) st.push(new SafetensorsWriter({ format: "pt" }));
  specs.forEach((s, i) => st[shardOf[i]!]!.addTensor(s.hfName, stDtype, s.shape));
  st.forEach((w, k) => w.open(join(hfDir, shardName(k))));
  if (p.shards > 1) {
    const weightMap: Record<string, string> = {};
    specs.forEach((s, i) => (weightMap[s.hfName] = shardName(shardOf[i]!)));
    writeJson(join(hfDir, "model.safetensors.index.json"), { metadata: { total_size: total }, weight_map: weightMap });
  }

  const gg = kinds.map((k) => {
    const w = ggufWriterFor(p, k, specs);
    w.open(join(dir, `${p.name}-${k}.gguf`));
    return w;
  });
  if (p.ropeScaling) {
    const factors = llama3RopeFactors(p.headDim, p.ropeTheta, p.ropeScaling);
    for (const w of gg) w.writeTensor("rope_freqs.weight", factors);
  }
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = randomTensor(p.seed, s.hfName, n, s.mean, s.std);
    st[shardOf[i]!]!.writeTensor(s.hfName, data);
    const ggData = s.permuteHeads !== undefined ? permuteQK(data, s.shape[0]!, s.shape[1]!, s.permuteHeads) : data;
    for (const w of gg) w.writeTensor(s.ggufName, ggData);
  });
  for (const w of st) w.close();
  for (const w of gg) w.close();
  log(`wrote ${specs.length} tensors (${(total / 1e6).toFixed(1)} MB of ${stDtype}) and ${kinds.length} GGUF files`);
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2) + "\n");
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

function usage(): string {
  return [
    "usage: node dist/models/make-models.js [--preset NAME ...|--all] [--out DIR] [--hf-dtype f32|f16|bf16] [--gguf KIND,...] [--force] [--quiet]",
    `GGUF kinds: ${GGUF_KINDS.join(", ")} (default all)`,
    `presets: ${Object.keys(PRESETS).join(", ")} (default: the test presets ${TEST_PRESETS.join(", ")})`,
  ].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  const presets: string[] = [];
  let out = defaultOutDir();
  let hfDtype: HfDtype = "f32";
  let gguf: GgufKind[] | undefined;
  let force = false;
  let verbose = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--preset" || a === "-p") presets.push(...val().split(","));
    else if (a.startsWith("--preset=")) presets.push(...a.slice(9).split(","));
    else if (a === "--all") presets.push(...Object.keys(PRESETS));
    else if (a === "--out" || a === "-o") out = val();
    else if (a.startsWith("--out=")) out = a.slice(6);
    else if (a === "--hf-dtype") hfDtype = val() as HfDtype;
    else if (a === "--gguf") gguf = val().split(",") as GgufKind[];
    else if (a === "--force") force = true;
    else if (a === "--quiet") verbose = false;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(usage() + "\n");
      return 0;
    } else {
      process.stderr.write(`unknown argument ${a}\n${usage()}\n`);
      return 2;
    }
  }
  if (!["f32", "f16", "bf16"].includes(hfDtype)) {
    process.stderr.write(`--hf-dtype must be f32, f16 or bf16\n`);
    return 2;
  }
  const unknown = gguf?.find((k) => !GGUF_KINDS.includes(k));
  if (unknown !== undefined) {
    process.stderr.write(`--gguf: unknown kind ${unknown} (kinds: ${GGUF_KINDS.join(", ")})\n`);
    return 2;
  }
  const list = presets.length ? [...new Set(presets)] : [...TEST_PRESETS];
  for (const name of list) {
    const t0 = Date.now();
    const r = await makeModel(name, out, { hfDtype, force, verbose, ...(gguf ? { gguf } : {}) });
    if (verbose) {
      process.stderr.write(`[make-models] ${name}: ${r.made ? `made in ${((Date.now() - t0) / 1000).toFixed(1)} s` : "up to date"} -> ${r.dir}\n`);
    }
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`make-models: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
