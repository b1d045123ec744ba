// A plain, slow Llama forward pass over the Hugging Face checkpoint (HF weight layout, rotate-half RoPE, llama3
// rope scaling as transformers computes it), in float64. Used to check that the GGUF conversion (Q/K permutation,
// rope_freqs) means the same model as the HF files: its logits must match llama.cpp's on the GGUF. Small models only.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

interface HfConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  vocab_size: number;
  rope_scaling: null | { rope_type: string; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };
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
  const W = readHfTensors(hfDir);
  const get = (n: string): Float32Array => {
    const t = W.get(n);
    if (!t) throw new Error(`missing tensor ${n}`);
    return t;
  };
  const H = c.hidden_size;
  const nH = c.num_attention_heads;
  const nKV = c.num_key_value_heads;
  const hd = c.head_dim ?? H / nH;
  const F = c.intermediate_size;
  const T = tokens.length;

  // inverse frequencies (transformers' default + llama3 rope init)
  const half = hd / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(c.rope_theta, (2 * i) / hd);
    const rs = c.rope_scaling;
    if (rs && rs.rope_type === "llama3") {
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
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let k = 0; k < cols; k++) s += w[o + k]! * x[xo + k]!;
      y[r] = s;
    }
    return y;
  };
  const rmsnorm = (x: Float64Array, w: Float32Array): Float64Array => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + c.rms_norm_eps);
    return x.map((v, i) => v * inv * w[i]!);
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

  const emb = get("model.embed_tokens.weight");
  let xs: Float64Array[] = tokens.map((t) => Float64Array.from(emb.subarray(t * H, (t + 1) * H)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const hs = xs.map((x) => rmsnorm(x, get(`${p}.input_layernorm.weight`)));
    const qs = hs.map((h, pos) => { const q = matvec(get(`${p}.self_attn.q_proj.weight`), nH * hd, H, h); rope(q, nH, pos); return q; });
    const ks = hs.map((h, pos) => { const k = matvec(get(`${p}.self_attn.k_proj.weight`), nKV * hd, H, h); rope(k, nKV, pos); return k; });
    const vs = hs.map((h) => matvec(get(`${p}.self_attn.v_proj.weight`), nKV * hd, H, h));
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
      const o = matvec(get(`${p}.self_attn.o_proj.weight`), H, nH * hd, att);
      const x1 = x.map((v, i) => v + o[i]!);
      const h2 = rmsnorm(x1, get(`${p}.post_attention_layernorm.weight`));
      const g = matvec(get(`${p}.mlp.gate_proj.weight`), F, H, h2);
      const u = matvec(get(`${p}.mlp.up_proj.weight`), F, H, h2);
      const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const d = matvec(get(`${p}.mlp.down_proj.weight`), H, F, act);
      return x1.map((v, i) => v + d[i]!);
    });
  }
  const last = rmsnorm(xs[T - 1]!, get("model.norm.weight"));
  const head = c.tie_word_embeddings ? emb : get("lm_head.weight");
  return matvec(head, c.vocab_size, H, last);
}
