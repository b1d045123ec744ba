// A plain, slow forward pass over a Hugging Face checkpoint of the Llama family, in float64: Llama (rotate-half
// RoPE, llama3 rope scaling as transformers computes it), Qwen2 (q/k/v biases) and Qwen3 (per-head RMSNorm of q and
// k over head_dim before RoPE, explicit head_dim), following transformers' modeling_llama.py / modeling_qwen2.py /
// modeling_qwen3.py. Used to check that the GGUF conversion (Q/K permutation, rope_freqs, biases, q/k norms) means
// the same model as the HF files: its logits must match llama.cpp's on the GGUF. Small models only. It shares no
// code with neoserve, and it refuses what it does not implement (unknown architectures, rope types, activations,
// sliding windows) and any checkpoint tensor it would not use, rather than silently compute another model.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

interface HfConfig {
  architectures?: string[];
  model_type?: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number | null;
  hidden_act?: string;
  rms_norm_eps: number;
  rope_theta?: number;
  tie_word_embeddings?: boolean;
  vocab_size: number;
  attention_bias?: boolean;
  mlp_bias?: boolean;
  use_sliding_window?: boolean;
  rope_scaling?: null | {
    rope_type?: string;
    type?: string;
    factor: number;
    low_freq_factor: number;
    high_freq_factor: number;
    original_max_position_embeddings: number;
  };
}

type Family = "llama" | "qwen2" | "qwen3";

function family(c: HfConfig): Family {
  const archs = c.architectures ?? [];
  if (c.model_type === "qwen3" || archs.includes("Qwen3ForCausalLM")) return "qwen3";
  if (c.model_type === "qwen2" || archs.includes("Qwen2ForCausalLM")) return "qwen2";
  if (c.model_type === "llama" || archs.includes("LlamaForCausalLM") || (!c.model_type && archs.length === 0)) return "llama";
  throw new Error(`hf-forward: unsupported model (model_type ${String(c.model_type)}, architectures ${archs.join(", ")})`);
}

/** Reads every F32 tensor of an HF directory (single file or sharded). */
export function readHfTensors(hfDir: string): Map<string, Float32Array> {
  const files = existsSync(join(hfDir, "model.safetensors"))
    ? ["model.safetensors"]
    : [...new Set(Object.values((JSON.parse(readFileSync(join(hfDir, "model.safetensors.index.json"), "utf8")) as { weight_map: Record<string, string> }).weight_map))];
  const out = new Map<string, Float32Array>();
  for (const f of files) {
    const buf = readFileSync(join(hfDir, f));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      if (t.dtype !== "F32") throw new Error(`hf-forward reads F32 only (${name} is ${t.dtype})`);
      const [b, e] = t.data_offsets;
      const bytes = buf.subarray(8 + n + b, 8 + n + e);
      out.set(name, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
    }
  }
  return out;
}

/** Logits (vocab_size) of the last position for the given prompt. */
export function hfForwardLastLogits(hfDir: string, tokens: readonly number[]): Float64Array {
  const c = JSON.parse(readFileSync(join(hfDir, "config.json"), "utf8")) as HfConfig;
  const fam = family(c);
  const W = readHfTensors(hfDir);
  const used = new Set<string>();
  const get = (n: string, len?: number): Float32Array => {
    const t = W.get(n);
    if (!t) throw new Error(`missing tensor ${n}`);
    if (len !== undefined && t.length !== len) throw new Error(`tensor ${n} has ${t.length} values, expected ${len}`);
    used.add(n);
    return t;
  };
  if ((c.hidden_act ?? "silu") !== "silu") throw new Error(`hf-forward: unsupported hidden_act ${c.hidden_act}`);
  if (c.use_sliding_window) throw new Error("hf-forward: sliding-window attention is not implemented");
  if (c.mlp_bias) throw new Error("hf-forward: mlp_bias is not implemented");
  const H = c.hidden_size;
  const nH = c.num_attention_heads;
  const nKV = c.num_key_value_heads ?? nH;
  // head_dim: Llama/Qwen2 derive hidden/heads when absent; Qwen3Config defaults to 128.
  const hd = c.head_dim ?? (fam === "qwen3" ? 128 : H / nH);
  const F = c.intermediate_size;
  const T = tokens.length;
  const eps = c.rms_norm_eps;
  const theta = c.rope_theta ?? 10000;
  // Which linear layers of attention have biases: Qwen2's q/k/v always (o_proj never); Llama's and Qwen3's
  // q/k/v/o when attention_bias.
  const qkvBias = fam === "qwen2" || !!c.attention_bias;
  const oBias = fam !== "qwen2" && !!c.attention_bias;
  const qkNorm = fam === "qwen3";

  // inverse frequencies (transformers' default + llama3 rope init)
  const half = hd / 2;
  const invFreq = new Float64Array(half);
  const rs = c.rope_scaling ?? null;
  const ropeType = rs ? (rs.rope_type ?? rs.type) : "default";
  if (ropeType !== "default" && ropeType !== "llama3") throw new Error(`hf-forward: unsupported rope type ${ropeType}`);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(theta, (2 * i) / hd);
    if (rs && ropeType === "llama3") {
      const lowW = rs.original_max_position_embeddings / rs.low_freq_factor;
      const highW = rs.original_max_position_embeddings / rs.high_freq_factor;
      const wl = (2 * Math.PI) / f;
      if (wl > lowW) f = f / rs.factor;
      else if (wl >= highW) {
        const smooth = (rs.original_max_position_embeddings / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - smooth) * (f / rs.factor) + smooth * f;
      }
    }
    invFreq[i] = f;
  }

  const matvec = (w: Float32Array, rows: number, cols: number, x: Float64Array, xo = 0): Float64Array => {
    if (w.length !== rows * cols) throw new Error(`matvec: weight has ${w.length} values, expected ${rows}x${cols}`);
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let k = 0; k < cols; k++) s += w[o + k]! * x[xo + k]!;
      y[r] = s;
    }
    return y;
  };
  /** nn.Linear: W x (+ b when the layer has a bias). */
  const linear = (name: string, rows: number, cols: number, x: Float64Array, hasBias: boolean): Float64Array => {
    const y = matvec(get(`${name}.weight`, rows * cols), rows, cols, x);
    if (hasBias) {
      const b = get(`${name}.bias`, rows);
      for (let r = 0; r < rows; r++) y[r]! += b[r]!;
    }
    return y;
  };
  const rmsnorm = (x: Float64Array, w: Float32Array): Float64Array => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * inv * w[i]!);
  };
  /** Qwen3RMSNorm over each head's head_dim values (q_norm / k_norm), in place. */
  const headNorm = (v: Float64Array, nHeads: number, w: Float32Array): void => {
    for (let h = 0; h < nHeads; h++) {
      let ss = 0;
      for (let i = 0; i < hd; i++) ss += v[h * hd + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / hd + eps);
      for (let i = 0; i < hd; i++) v[h * hd + i] = v[h * hd + i]! * inv * w[i]!;
    }
  };
  const rope = (v: Float64Array, nHeads: number, pos: number): void => {
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < half; i++) {
        const a = pos * invFreq[i]!;
        const x1 = v[h * hd + i]!;
        const x2 = v[h * hd + i + half]!;
        v[h * hd + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
        v[h * hd + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
    }
  };

  const emb = get("model.embed_tokens.weight", c.vocab_size * H);
  let xs: Float64Array[] = tokens.map((t) => Float64Array.from(emb.subarray(t * H, (t + 1) * H)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    const hs = xs.map((x) => rmsnorm(x, get(`${p}.input_layernorm.weight`, H)));
    const qs = hs.map((h, pos) => {
      const q = linear(`${a}.q_proj`, nH * hd, H, h, qkvBias);
      if (qkNorm) headNorm(q, nH, get(`${a}.q_norm.weight`, hd));
      rope(q, nH, pos);
      return q;
    });
    const ks = hs.map((h, pos) => {
      const k = linear(`${a}.k_proj`, nKV * hd, H, h, qkvBias);
      if (qkNorm) headNorm(k, nKV, get(`${a}.k_norm.weight`, hd));
      rope(k, nKV, pos);
      return k;
    });
    const vs = hs.map((h) => linear(`${a}.v_proj`, nKV * hd, H, h, qkvBias));
    xs = xs.map((x, t) => {
      const att = new Float64Array(nH * hd);
      for (let h = 0; h < nH; h++) {
        const kvh = Math.floor(h / (nH / nKV));
        const scores = new Float64Array(t + 1);
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let i = 0; i < hd; i++) d += qs[t]![h * hd + i]! * ks[s]![kvh * hd + i]!;
          scores[s] = d / Math.sqrt(hd);
          mx = Math.max(mx, scores[s]!);
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += (scores[s] = Math.exp(scores[s]! - mx));
        for (let s = 0; s <= t; s++) for (let i = 0; i < hd; i++) att[h * hd + i]! += (scores[s]! / sum) * vs[s]![kvh * hd + i]!;
      }
      const o = linear(`${a}.o_proj`, H, nH * hd, att, oBias);
      const x1 = x.map((v, i) => v + o[i]!);
      const h2 = rmsnorm(x1, get(`${p}.post_attention_layernorm.weight`, H));
      const g = linear(`${p}.mlp.gate_proj`, F, H, h2, false);
      const u = linear(`${p}.mlp.up_proj`, F, H, h2, false);
      const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const d = linear(`${p}.mlp.down_proj`, H, F, act, false);
      return x1.map((v, i) => v + d[i]!);
    });
  }
  const last = rmsnorm(xs[T - 1]!, get("model.norm.weight", H));
  // Tied: transformers ties lm_head to the embedding (an lm_head.weight in the files is then not used).
  const head = c.tie_word_embeddings ? emb : get("lm_head.weight", c.vocab_size * H);
  if (c.tie_word_embeddings) used.add("lm_head.weight");
  const unused = [...W.keys()].filter((n) => !used.has(n) && !n.endsWith("rotary_emb.inv_freq"));
  if (unused.length) throw new Error(`hf-forward: checkpoint tensors this forward does not use: ${unused.join(", ")}`);
  return matvec(head, c.vocab_size, H, last);
}
