#!/usr/bin/env python3
"""Check an exported ONNX (export_onnx.py) against transformers and, optionally, neoserve's CPU engine.

    python3 models/tensorrt/check_onnx.py <onnx_dir> <hf_dir> [--reference logits.json] [--steps N]
                                          [--atol X] [--rtol X] [--ep cpu|cuda] [--hf-device cpu|cuda] [--no-hf]
                                          [--long-prompt N]

Runs <onnx_dir>/model.onnx with onnxruntime (CPUExecutionProvider by default) the way neoserve's TensorRT
provider drives the engine, and compares every step's logits with the transformers model's (float32, eager
attention, one unpadded sequence at a time). Built-in prompts: 1, 5, 17 and --long-prompt (600) tokens, the
last reaching positions where RoPE computed in float16 would show:

  single   each prompt alone: prefill with an empty past (past length 0), then decode steps feeding
           present.* back as past_key_values.*
  batch    two prompts in one batch with different past lengths, padded in the middle: each step's
           attention_mask is [past padded to P | new tokens padded to S] with zeros on padding, the
           padding alternately after and before the real slots of each segment, position_ids carrying
           real positions; the first batched step mixes one sequence's decode token with the other's
           remaining prompt chunk, and each step's present (holes included) is fed back as the next past.

Every sequence is teacher-forced with the reference's greedy tokens, so one near-tie cannot make later steps
incomparable; "greedy" reports how often the ONNX's own argmax agrees. The check fails (exit 1) when any
row's max |Δlogit| exceeds its tolerance, atol + rtol x (the reference row's max - min logit): atol 1e-3
for a float32 export; rtol 0.02 for float16, whose rounding grows with the logits' scale (--atol and --rtol
override).
Exit 2: bad arguments or missing packages.

--reference FILE: logits from neoserve's CPU engine (written by test/onnx-export.test.ts), JSON:

  {
    "prompts": [[int, ...], ...],        // token ids of each prompt (no BOS is added: these are the ids fed)
    "steps":   N,                        // tokens generated per prompt: greedy, temperature 0, EOS ignored
    "tokens":  [[int x N], ...],         // tokens[p][t]: the t-th generated token of prompt p
    "logits":  [[[float x vocab] x N], ...],
                                         // logits[p][t]: the raw logits tokens[p][t] was chosen from;
                                         // t = 0 is the prompt's last position, t > 0 the position after
                                         // feeding tokens[p][t-1]
    "source":  "...", "precision": "f32" // optional, informational
  }

With a reference, its prompts and steps replace the built-in ones, the ONNX is compared with it as well
(teacher-forced with the reference's tokens), and transformers vs neoserve is printed for information.
--no-hf skips transformers (then --reference is required and its tokens drive every run).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

DEFAULT_STEPS = 6
DEFAULT_LONG_PROMPT = 600
# (atol, rtol): a row's logits may differ by atol + rtol * (max - min of the reference row).
TOLERANCE = {"float32": (1e-3, 0.0), "float16": (0.0, 0.02)}


def die(msg: str, code: int = 2):
    print(f"check_onnx: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("onnx_dir", help="directory written by export_onnx.py (model.onnx, export.json)")
    p.add_argument("hf_dir", help="the Hugging Face checkpoint it was exported from")
    p.add_argument("--reference", help="logits from neoserve's CPU engine (JSON, format above)")
    p.add_argument("--steps", type=int, help=f"greedy steps per prompt (default {DEFAULT_STEPS}, or the reference's)")
    p.add_argument("--atol", type=float, help="max |Δlogit| allowed, plus rtol x the row's range (default 1e-3 float32, "
                                              "0 float16)")
    p.add_argument("--rtol", type=float, help="tolerance as a fraction of the reference row's max - min logit "
                                              "(default 0 float32, 0.02 float16)")
    p.add_argument("--ep", choices=("cpu", "cuda"), default="cpu",
                   help="onnxruntime execution provider (cuda needs onnxruntime-gpu; float16 graphs may need it)")
    p.add_argument("--hf-device", choices=("cpu", "cuda"), default="cpu", help="where transformers runs (float32)")
    p.add_argument("--no-hf", action="store_true", help="skip transformers; compare with --reference only")
    p.add_argument("--long-prompt", type=int, default=DEFAULT_LONG_PROMPT,
                   help=f"tokens of the longest built-in prompt (default {DEFAULT_LONG_PROMPT}, capped by the model's "
                        "context; 0: none)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# Prompts and references


def default_prompts(vocab: int, long_len: int) -> list:
    """Deterministic token-id prompts of lengths 1, 5, 17 and long_len (the LCG test/llama-cpp-parity.test.ts
    uses). The long one reaches positions where RoPE angles computed at low precision go visibly wrong."""
    def make(n: int, seed: int) -> list:
        out = []
        for _ in range(n):
            seed = (seed * 1103515245 + 12345) % 2147483648
            out.append(seed % min(vocab, 50000))
        return out
    prompts = [[464 % vocab], make(5, 1), make(17, 2)]
    if long_len > 17:
        prompts.append(make(long_len, 3))
    return prompts


def load_reference(path: str, vocab: int) -> dict:
    try:
        with open(path) as f:
            ref = json.load(f)
    except (OSError, ValueError) as e:
        die(f"--reference {path}: {e}")
    for key in ("prompts", "steps", "tokens", "logits"):
        if key not in ref:
            die(f"--reference {path}: missing \"{key}\"")
    n, steps = len(ref["prompts"]), ref["steps"]
    if not isinstance(steps, int) or steps < 1:
        die(f"--reference {path}: \"steps\" must be a positive integer")
    if len(ref["tokens"]) != n or len(ref["logits"]) != n:
        die(f"--reference {path}: prompts, tokens and logits must have one entry per prompt")
    for p in range(n):
        if not ref["prompts"][p]:
            die(f"--reference {path}: prompt {p} is empty")
        if len(ref["tokens"][p]) != steps or len(ref["logits"][p]) != steps:
            die(f"--reference {path}: prompt {p} needs {steps} tokens and {steps} logits rows")
        for row in ref["logits"][p]:
            if len(row) != vocab:
                die(f"--reference {path}: prompt {p} has a logits row of {len(row)} values, the model's vocab is {vocab}")
    return ref


def hf_greedy(np, hf_dir: str, prompts: list, steps: int, device: str):
    """transformers, float32, eager attention, each prompt alone and unpadded: (tokens, logits rows)."""
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, DynamicCache
    except Exception as e:
        die(f"transformers reference needs torch and transformers ({type(e).__name__}: {e}); "
            "pass --no-hf --reference FILE to compare with neoserve only")
    kwargs = {"attn_implementation": "eager"}
    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
    kwargs["dtype" if major_minor >= (4, 56) else "torch_dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(hf_dir, **kwargs).to(device=device, dtype=torch.float32).eval()
    all_tokens, all_rows = [], []
    with torch.no_grad():
        for prompt in prompts:
            cache = DynamicCache()
            feed = list(prompt)
            tokens, rows = [], []
            for _ in range(steps):
                ids = torch.tensor([feed], dtype=torch.long, device=device)
                out = model(input_ids=ids, past_key_values=cache, use_cache=True, return_dict=True)
                cache = out.past_key_values
                row = out.logits[0, -1].float().cpu().numpy()
                tok = int(row.argmax())
                rows.append(row)
                tokens.append(tok)
                feed = [tok]
            all_tokens.append(tokens)
            all_rows.append(rows)
    return all_tokens, all_rows


# ---------------------------------------------------------------------------------------------------------------
# The ONNX, driven like the TensorRT provider drives the engine


class OnnxDecoder:
    def __init__(self, np, onnx_dir: str, meta: dict, ep: str):
        import onnxruntime as ort

        self.np = np
        self.meta = meta
        io = meta["io"]
        self.layers = meta["numLayers"]
        self.kvh = meta["numKeyValueHeads"]
        self.head_dim = meta["headDim"]
        self.vocab = meta["vocabSize"]
        self.names_in = [io["inputIds"], io["attentionMask"], io["positionIds"]]
        self.names_out = [io["logits"]]
        for i in range(self.layers):
            self.names_in += [io["pastKey"].replace("{i}", str(i)), io["pastValue"].replace("{i}", str(i))]
            self.names_out += [io["presentKey"].replace("{i}", str(i)), io["presentValue"].replace("{i}", str(i))]
        providers = ["CPUExecutionProvider"]
        if ep == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                die("--ep cuda: this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        path = os.path.join(onnx_dir, meta.get("onnx", "model.onnx"))
        try:
            self.sess = ort.InferenceSession(path, providers=providers)
        except Exception as e:
            hint = " (a float16 graph may need --ep cuda: onnxruntime's CPU provider lacks some float16 kernels)" \
                if meta.get("dtype") == "float16" else ""
            die(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}{hint}")
        self.provider = self.sess.get_providers()[0]
        got_in = [i.name for i in self.sess.get_inputs()]
        got_out = [o.name for o in self.sess.get_outputs()]
        if got_in != self.names_in or got_out != self.names_out:
            die(f"{path}: I/O names differ from export.json's contract:\n  inputs  {got_in}\n  outputs {got_out}")
        types = {i.name: i.type for i in self.sess.get_inputs()}
        self.kv_dtype = np.float16 if types[self.names_in[3]] == "tensor(float16)" else np.float32
        self.ids_dtype = np.int32 if types[self.names_in[0]] == "tensor(int32)" else np.int64
        self.mask_dtype = np.int32 if types[self.names_in[1]] == "tensor(int32)" else np.int64

    def run(self, ids, mask, pos, past):
        np = self.np
        feeds = {
            self.names_in[0]: ids.astype(self.ids_dtype),
            self.names_in[1]: mask.astype(self.mask_dtype),
            self.names_in[2]: pos.astype(self.ids_dtype),
        }
        for n, t in zip(self.names_in[3:], past):
            feeds[n] = t.astype(self.kv_dtype)
        out = self.sess.run(self.names_out, feeds)
        logits = out[0].astype(np.float32)
        b, s = ids.shape
        total = mask.shape[1]
        if logits.shape != (b, s, self.vocab):
            die(f"logits shape {logits.shape}, expected {(b, s, self.vocab)}", 1)
        for t in out[1:]:
            if t.shape != (b, self.kvh, total, self.head_dim):
                die(f"present shape {t.shape}, expected {(b, self.kvh, total, self.head_dim)}", 1)
        return logits, out[1:]



class Seq:
    """One sequence of the batched run: what it feeds each step, and its cache slots (holes included)."""

    def __init__(self, np, dec: OnnxDecoder, feeds: list, record_from: int):
        self.kv = [np.zeros((dec.kvh, 0, dec.head_dim), dec.kv_dtype) for _ in range(2 * dec.layers)]
        self.mask = np.zeros((0,), np.int64)
        self.next_pos = 0
        self.feeds = feeds  # token lists, one per engine call
        self.record_from = record_from  # feeds before this one end mid-prompt: their logits are not compared
        self.rows = []


def onnx_single(np, dec: OnnxDecoder, prompt: list, forced: list) -> list:
    """One sequence, batch 1: prefill from an empty past, then decode feeding present back (teacher-forced)."""
    past = [np.zeros((1, dec.kvh, 0, dec.head_dim), dec.kv_dtype) for _ in range(2 * dec.layers)]
    feed, pos0, rows = list(prompt), 0, []
    for t in range(len(forced)):
        n = len(feed)
        total = past[0].shape[2] + n
        ids = np.array([feed], np.int64)
        mask = np.ones((1, total), np.int64)
        pos = np.arange(pos0, pos0 + n, dtype=np.int64)[None, :]
        logits, past = dec.run(ids, mask, pos, past)
        rows.append(logits[0, -1])
        pos0 += n
        feed = [forced[t]]
    return rows


def batched_step(np, dec: OnnxDecoder, seqs: list, feeds: list, step: int) -> list:
    """One engine call over several sequences, padded in the middle. Returns each sequence's last logits row.

    attention_mask = [past segment, P slots | new segment, S slots]; a sequence's real slots sit after its
    padding on odd steps and before it on even steps, in both segments. After an odd step, present (P + S
    slots, padding included) becomes the sequence's cache as is, so holes sit inside the next past; after an
    even step only its real slots are kept (as a paged KV cache would), so the next call pads pasts of
    different lengths to P.
    """
    P = max(s.mask.shape[0] for s in seqs)
    S = max(len(f) for f in feeds)
    B = len(seqs)
    before = step % 2 == 1
    ids = np.zeros((B, S), np.int64)
    pos = np.zeros((B, S), np.int64)
    mask = np.zeros((B, P + S), np.int64)
    past = [np.zeros((B, dec.kvh, P, dec.head_dim), dec.kv_dtype) for _ in range(2 * dec.layers)]
    last = []
    for b, (s, f) in enumerate(zip(seqs, feeds)):
        L, n = s.mask.shape[0], len(f)
        po = P - L if before else 0
        mask[b, po:po + L] = s.mask
        for j in range(2 * dec.layers):
            past[j][b, :, po:po + L] = s.kv[j]
        no = S - n if before else 0
        ids[b, no:no + n] = f
        pos[b, no:no + n] = np.arange(s.next_pos, s.next_pos + n)
        mask[b, P + no:P + no + n] = 1
        last.append(no + n - 1)
    logits, present = dec.run(ids, mask, pos, past)
    rows = []
    compact = step % 2 == 0
    for b, (s, f) in enumerate(zip(seqs, feeds)):
        keep = mask[b] != 0 if compact else np.ones(P + S, bool)
        s.kv = [present[j][b][:, keep] for j in range(2 * dec.layers)]
        s.mask = mask[b][keep].copy()
        s.next_pos += len(f)
        rows.append(logits[b, last[b]])
    return rows


def onnx_batched(np, dec: OnnxDecoder, prompt_a: list, forced_a: list, prompt_b: list, forced_b: list):
    """Two sequences in one batch; prompt_b has >= 2 tokens and is prefilled in two chunks.

    call 0: a's whole prompt | b's first chunk (one token shorter, when a has 2 or more)   (empty pasts)
    call 1: a's first forced token | b's rest of the prompt   (pasts of different lengths; a decode mixed
                                                              with a prefill chunk)
    call k: a's token k-1 | b's token k-2                 (until each has as many rows as forced tokens)
    Returns (rows of a, rows of b, number of engine calls).
    """
    # b's first chunk is one token shorter than a's prompt, so each sequence gets padding in some call.
    split = max(1, min(len(prompt_a) - 1, len(prompt_b) - 1))
    a = Seq(np, dec, [list(prompt_a)] + [[t] for t in forced_a[:-1]], 0)
    b = Seq(np, dec, [list(prompt_b[:split]), list(prompt_b[split:])] + [[t] for t in forced_b[:-1]], 1)
    step = 0
    while True:
        active = [s for s in (a, b) if step < len(s.feeds)]
        if not active:
            break
        rows = batched_step(np, dec, active, [s.feeds[step] for s in active], step)
        for s, row in zip(active, rows):
            if step >= s.record_from:
                s.rows.append(row)
        step += 1
    return a.rows, b.rows, step


# ---------------------------------------------------------------------------------------------------------------
# Comparison and report


def compare(np, rows: list, ref_rows: list, ref_tokens: list, tol: tuple) -> dict:
    """The row that comes closest to (or furthest past) its tolerance: its max |Δlogit| and its bound."""
    atol, rtol = tol
    worst, bound, agree = 0.0, atol, 0
    margin = None
    for got, want, tok in zip(rows, ref_rows, ref_tokens):
        want = np.asarray(want, np.float32)
        diff = float(np.abs(got.astype(np.float32) - want).max())
        row_bound = atol + rtol * float(want.max() - want.min())
        if margin is None or diff - row_bound > margin:
            worst, bound, margin = diff, row_bound, diff - row_bound
        agree += int(int(np.argmax(got)) == tok)
    return {"diff": worst, "bound": bound, "ok": worst <= bound, "agree": agree, "n": len(rows)}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.no_hf and not args.reference:
        die("--no-hf needs --reference")
    try:
        import numpy as np
    except Exception as e:
        die(f"numpy is required ({e})")
    try:
        import onnxruntime as ort
    except Exception as e:
        die(f"onnxruntime is required ({type(e).__name__}: {e}); pip install onnxruntime")

    onnx_dir = os.path.abspath(args.onnx_dir)
    meta_path = os.path.join(onnx_dir, "export.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        die(f"{meta_path}: {e} (run export_onnx.py first)")
    dtype = meta.get("dtype", "float32")
    atol, rtol = TOLERANCE.get(dtype, TOLERANCE["float16"])
    tol = (args.atol if args.atol is not None else atol, args.rtol if args.rtol is not None else rtol)
    tol_text = f"atol {tol[0]:g} + rtol {tol[1]:g} x each row's logit range"
    vocab = meta["vocabSize"]

    ref = load_reference(args.reference, vocab) if args.reference else None
    steps = args.steps or (ref["steps"] if ref else DEFAULT_STEPS)
    context = meta.get("maxPositionEmbeddings") or 0
    long_len = min(args.long_prompt, context - steps - 1) if context else args.long_prompt
    prompts = ref["prompts"] if ref else default_prompts(vocab, long_len)
    if ref and steps > ref["steps"]:
        die(f"--steps {steps} exceeds the reference's {ref['steps']}")
    for p in prompts:
        if any(not (0 <= t < vocab) for t in p):
            die(f"prompt {p[:8]}... has token ids outside the vocab ({vocab})")

    t0 = time.time()
    dec = OnnxDecoder(np, onnx_dir, meta, args.ep)
    print(f"onnx: {meta.get('onnx', 'model.onnx')} ({dtype}, {dec.layers} layers, kv {dec.kvh}x{dec.head_dim}, "
          f"vocab {vocab}) on onnxruntime {ort.__version__} {dec.provider}")
    print(f"prompts: {len(prompts)} (lengths {', '.join(str(len(p)) for p in prompts)}), {steps} steps each, "
          f"tolerance on max |Δlogit|: {tol_text}")

    ref_tokens = [t[:steps] for t in ref["tokens"]] if ref else None
    ref_rows = [r[:steps] for r in ref["logits"]] if ref else None
    if args.no_hf:
        hf_tokens, hf_rows = None, None
        forced = ref_tokens
    else:
        hf_tokens, hf_rows = hf_greedy(np, os.path.abspath(args.hf_dir), prompts, steps, args.hf_device)
        forced = hf_tokens
    base_name = "neoserve" if args.no_hf else "transformers"
    base_rows = ref_rows if args.no_hf else hf_rows

    results = []  # (check, sequence, stats, counts)

    def add(check: str, seq: str, stats: dict, counted: bool = True, note: str = ""):
        results.append((check, seq, stats, counted, note))

    single = []
    for i, p in enumerate(prompts):
        rows = onnx_single(np, dec, p, forced[i])
        single.append(rows)
        add(f"onnx vs {base_name}, alone", f"#{i} ({len(p)} tok)", compare(np, rows, base_rows[i], forced[i], tol))

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    longer = [i for i in order if len(prompts[i]) >= 2]
    if longer:
        ib = longer[-1]
        rest = [i for i in order if i != ib]
        ia = rest[-1] if rest else ib
        ra, rb, calls = onnx_batched(np, dec, prompts[ia], forced[ia], prompts[ib], forced[ib])
        add(f"onnx vs {base_name}, batch of 2", f"#{ia} ({len(prompts[ia])} tok)", compare(np, ra, base_rows[ia], forced[ia], tol),
            note=f"{calls} calls, padded in the middle")
        add(f"onnx vs {base_name}, batch of 2", f"#{ib} ({len(prompts[ib])} tok)", compare(np, rb, base_rows[ib], forced[ib], tol),
            note="prefilled in 2 chunks")
    else:
        print("note: no prompt has 2 tokens or more: the batched check is skipped")

    if ref and not args.no_hf:
        for i, p in enumerate(prompts):
            diverge = next((t for t in range(steps) if ref_tokens[i][t] != hf_tokens[i][t]), None)
            rows = single[i] if diverge is None else onnx_single(np, dec, p, ref_tokens[i])
            note = "" if diverge is None else f"tokens differ from transformers' from step {diverge}"
            add("onnx vs neoserve, alone", f"#{i} ({len(p)} tok)", compare(np, rows, ref_rows[i], ref_tokens[i], tol), note=note)
        for i, p in enumerate(prompts):
            n = steps
            diverge = next((t for t in range(steps) if ref_tokens[i][t] != hf_tokens[i][t]), None)
            if diverge is not None:
                n = diverge + 1  # rows after a divergence were conditioned on other tokens
            stats = compare(np, hf_rows[i][:n], ref_rows[i][:n], ref_tokens[i][:n], tol)
            add("transformers vs neoserve (info)", f"#{i} ({len(p)} tok)", stats, counted=False,
                note="" if diverge is None else f"compared up to step {diverge}")

    # Table
    header = ("check", "sequence", "max |Δlogit| / allowed", "greedy", "result")
    table = []
    failed = 0
    for check, seq, st, counted, note in results:
        ok = st["ok"]
        if counted and not ok:
            failed += 1
        verdict = ("ok" if ok else "MISMATCH") if counted else ("(within)" if ok else "(beyond)")
        table.append((check, seq, f"{st['diff']:.3e} / {st['bound']:.3e}", f"{st['agree']}/{st['n']}", verdict + (f"  {note}" if note else "")))
    widths = [max(len(r[c]) for r in [header] + table) for c in range(4)]
    line = lambda r: "  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4]
    print()
    print(line(header))
    print("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    for r in table:
        print(line(r))
    print()
    counted = sum(1 for r in results if r[3])
    if failed:
        print(f"FAIL: {failed} of {counted} checks beyond tolerance ({tol_text}; {time.time() - t0:.1f} s)")
        return 1
    print(f"OK: {counted} checks within tolerance ({tol_text}; {time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
