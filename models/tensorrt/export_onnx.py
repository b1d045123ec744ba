#!/usr/bin/env python3
"""Export a Hugging Face Llama-family checkpoint to ONNX for neoserve's TensorRT provider.

    python3 models/tensorrt/export_onnx.py <hf_dir> <out_dir> [--dtype float16|float32] [--opset 17]
                                           [--attn eager|sdpa] [--device auto|cpu|cuda] [--no-verify]

Supported: model_type llama (Llama 2/3, SmolLM, TinyLlama, ...), mistral, qwen2. Needs torch >= 2.1,
transformers >= 4.45, onnx; onnxruntime (optional) for the quick self-check at the end.

The graph follows the I/O contract Hugging Face Optimum uses for text-generation-with-past:

  inputs   input_ids                  [batch, tokens]              int64
           attention_mask             [batch, past + tokens]       int64, 1 = attend, 0 = padding
           position_ids               [batch, tokens]              int64, the real position of each new token
           past_key_values.{i}.key    [batch, kv_heads, past, head_dim]   (i = 0 .. layers-1; also .value)
  outputs  logits                     [batch, tokens, vocab]       float32 (cast at the end, even for float16)
           present.{i}.key            [batch, kv_heads, past + tokens, head_dim]   (also .value)

neoserve pads a batch "in the middle": attention_mask is [past padded to P | new tokens padded to S], with
zeros wherever a slot is padding, so holes can sit anywhere, not only on the left. The graph therefore builds
its own additive 4-D mask from the 2-D one and hands it to the model (transformers uses a 4-D mask as given):

  query j (slot P + j) may attend key slot k  iff  k <= P + j  and  attention_mask[b, k] == 1

and every query attends its own slot, so a row of a padded query is never fully masked: its output stays
finite (no NaN can reach a later step through present key/values of padding slots). RoPE uses position_ids
only; cache slots carry no positions. Sliding-window models (Mistral, Qwen2 with use_sliding_window) attend
the whole context here: neoserve caps their context at the window, within which the two are the same.

Writes into out_dir:
  model.onnx (+ model.onnx.data when the weights pass 2 GB), config.json, tokenizer.json,
  tokenizer_config.json, generation_config.json (those the checkpoint has), export.json (what
  build_engine.py and check_onnx.py read: dtype, opset, shapes, I/O names).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

EXPORT_FORMAT = "neoserve-onnx-export"
EXPORT_FORMAT_VERSION = 1
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"
# Protobuf's hard limit is 2 GiB; stay clear of it (graph + initializers).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
# Additive mask value: finfo(float16).min, representable in float16 and float32 alike, so an fp32 graph
# built with trtexec --fp16 keeps the same value. Rows always keep one finite score (the query's own slot).
MASK_MIN = -65504.0

IO = {
    "inputIds": "input_ids",
    "attentionMask": "attention_mask",
    "positionIds": "position_ids",
    "pastKey": "past_key_values.{i}.key",
    "pastValue": "past_key_values.{i}.value",
    "logits": "logits",
    "presentKey": "present.{i}.key",
    "presentValue": "present.{i}.value",
}
AXIS_BATCH = "batch_size"
AXIS_TOKENS = "sequence_length"
AXIS_PAST = "past_sequence_length"
AXIS_TOTAL = "total_sequence_length"  # past + tokens


def layer_name(pattern: str, i: int) -> str:
    return pattern.replace("{i}", str(i))


def die(msg: str, code: int = 2) -> None:
    print(f"export_onnx: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hf_dir", help="Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json)")
    p.add_argument("out_dir", help="directory to write model.onnx, export.json and the config/tokenizer files into")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="weights, activations and KV cache of the graph (logits are always float32). Default float16")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17; TensorRT 10 parses 9..20+)")
    p.add_argument("--attn", choices=("eager", "sdpa"), default="eager",
                   help="transformers attention implementation to trace (default eager: plain MatMul/Softmax)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to run the trace (auto: cuda for float16 when available, else cpu)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the onnxruntime check of the exported graph against the traced module")
    p.add_argument("--force", action="store_true", help="write into a non-empty out_dir that has no export.json")
    return p.parse_args(argv)


def import_deps():
    missing = []
    mods = {}
    for name in ("torch", "transformers", "onnx"):
        try:
            mods[name] = __import__(name)
        except Exception as e:  # ImportError, or a broken install raising something else
            missing.append(f"{name} ({type(e).__name__}: {e})")
    if missing:
        die("missing Python packages: " + "; ".join(missing) + "\n  pip install torch transformers onnx onnxruntime")
    return mods["torch"], mods["transformers"], mods["onnx"]


def version_tuple(v: str) -> tuple:
    out = []
    for part in v.split("+")[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if len(out) == 3:
            break
    return tuple(out + [0] * (3 - len(out)))


def load_model(torch, transformers, hf_dir: str, dtype, attn: str, device: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(hf_dir)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        die(f"model_type {config.model_type!r} is not one neoserve's TensorRT provider runs "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
    kwargs = {"attn_implementation": attn}
    # transformers 4.56 renamed torch_dtype to dtype; older versions would silently ignore "dtype".
    if version_tuple(transformers.__version__) >= (4, 56, 0):
        kwargs["dtype"] = dtype
    else:
        kwargs["torch_dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(hf_dir, **kwargs)
    # Only the device: from_pretrained has cast the weights, and Module.to(dtype) would also round the rotary
    # embedding's inv_freq buffer, which transformers keeps (and computes RoPE angles in) float32.
    model = model.to(device=device)
    other = sorted({str(p.dtype) for p in model.parameters() if p.dtype != dtype})
    if other:
        die(f"transformers loaded weights in {', '.join(other)}, not {dtype}")
    model.eval()
    model.config.use_cache = True
    return model


def sliding_window_of(config):
    """The window transformers would apply, or None (recorded in export.json; the graph attends everything)."""
    window = getattr(config, "sliding_window", None)
    if config.model_type == "mistral":
        return window or None
    if config.model_type == "qwen2" and getattr(config, "use_sliding_window", False):
        return window or None
    return None


def make_wrapper(torch, model, num_layers: int):
    from transformers import DynamicCache

    param = next(model.parameters())
    dtype = param.dtype
    # cache_position drives transformers' own mask and static caches; with a 4-D mask and a DynamicCache it only
    # saves a get_seq_length() call. Passed when the forward still names it.
    takes_cache_position = "cache_position" in inspect.signature(model.forward).parameters

    class NeoserveDecoder(torch.nn.Module):
        """forward(input_ids, attention_mask, position_ids, *past) -> (logits fp32, *present)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            device = input_ids.device
            tokens = input_ids.shape[1]
            past_len = past[0].shape[2]
            total = attention_mask.shape[1]  # == past_len + tokens
            # Additive 4-D mask [batch, 1, tokens, total] in the model's dtype (see the module docstring).
            q_slot = torch.arange(tokens, device=device) + past_len
            k_slot = torch.arange(total, device=device)
            causal = k_slot[None, :] <= q_slot[:, None]  # [tokens, total]
            keep = causal[None, :, :] & (attention_mask[:, None, :] != 0)  # [batch, tokens, total]
            keep = keep | (k_slot[None, :] == q_slot[:, None])[None, :, :]
            zero = torch.zeros((), dtype=dtype, device=device)
            neg = torch.full((), MASK_MIN, dtype=dtype, device=device)
            mask4d = torch.where(keep[:, None, :, :], zero, neg)

            cache = DynamicCache()
            for i in range(num_layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            kwargs = {}
            if takes_cache_position:
                kwargs["cache_position"] = torch.arange(tokens, device=device) + past_len
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask4d,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                return_dict=True,
                **kwargs,
            )
            cache = out.past_key_values
            flat = []
            for i in range(num_layers):
                k, v = layer_kv(cache, i)
                flat += [k, v]
            return (out.logits.float(), *flat)

    return NeoserveDecoder().eval()


def layer_kv(cache, i: int):
    """(key, value) of layer i across transformers versions."""
    layers = getattr(cache, "layers", None)
    if layers is not None:  # >= 4.56: DynamicLayer objects
        return layers[i].keys, layers[i].values
    if hasattr(cache, "key_cache"):  # 4.36 .. 4.55
        return cache.key_cache[i], cache.value_cache[i]
    return cache[i][0], cache[i][1]


def example_inputs(torch, cfg: dict, dtype, device, batch: int, tokens: int, past: int, seed: int = 0):
    """Inputs with holes in the mask: row 1 has two padding slots in its past and one in its new tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg["vocabSize"], (batch, tokens), generator=g, dtype=torch.int64)
    mask = torch.ones((batch, past + tokens), dtype=torch.int64)
    pos = torch.empty((batch, tokens), dtype=torch.int64)
    for b in range(batch):
        if b % 2 == 1 and past >= 2 and tokens >= 2:
            mask[b, past - 2:past] = 0  # past padded at the end of its segment
            mask[b, past + tokens - 1] = 0  # last new slot is padding
        real_past = int(mask[b, :past].sum())
        pos[b] = torch.arange(real_past, real_past + tokens)
    kv = []
    for _ in range(cfg["numLayers"]):
        for _ in range(2):
            kv.append(torch.randn((batch, cfg["numKeyValueHeads"], past, cfg["headDim"]), generator=g).to(dtype))
    return tuple(t.to(device) for t in (ids, mask, pos, *kv))


def io_names(num_layers: int):
    inputs = [IO["inputIds"], IO["attentionMask"], IO["positionIds"]]
    outputs = [IO["logits"]]
    axes = {
        IO["inputIds"]: {0: AXIS_BATCH, 1: AXIS_TOKENS},
        IO["attentionMask"]: {0: AXIS_BATCH, 1: AXIS_TOTAL},
        IO["positionIds"]: {0: AXIS_BATCH, 1: AXIS_TOKENS},
        IO["logits"]: {0: AXIS_BATCH, 1: AXIS_TOKENS},
    }
    for i in range(num_layers):
        for pat in (IO["pastKey"], IO["pastValue"]):
            inputs.append(layer_name(pat, i))
            axes[inputs[-1]] = {0: AXIS_BATCH, 2: AXIS_PAST}
        for pat in (IO["presentKey"], IO["presentValue"]):
            outputs.append(layer_name(pat, i))
            axes[outputs[-1]] = {0: AXIS_BATCH, 2: AXIS_TOTAL}
    return inputs, outputs, axes


def export(torch, onnx, wrapper, args_example, path: str, opset: int, inputs, outputs, axes) -> None:
    kwargs = dict(
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
        export_params=True,
    )
    # The TorchScript exporter: torch >= 2.9 defaults to the dynamo exporter, which handles dynamic_axes
    # and transformers' cache objects less reliably.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings from transformers' Python-side checks
        torch.onnx.export(wrapper, args_example, path, **kwargs)


def save_consolidated(onnx, src: str, dst_dir: str, param_bytes: int) -> dict:
    """Re-saves the exported graph as model.onnx (+ one model.onnx.data when large)."""
    model = onnx.load(src)  # loads external data written beside src, if any
    # The graph's own weights decide, not the module's: folding constants can add copies (a tied embedding
    # also stored transposed for the LM head), and a proto past 2 GiB cannot be saved.
    graph_bytes = sum(len(t.raw_data) if t.HasField("raw_data") else t.ByteSize() for t in model.graph.initializer)
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    dst = os.path.join(dst_dir, ONNX_FILE)
    data = os.path.join(dst_dir, ONNX_DATA_FILE)
    if os.path.exists(data):
        os.remove(data)
    external = max(param_bytes, graph_bytes) > EXTERNAL_DATA_THRESHOLD
    if external:
        onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=ONNX_DATA_FILE, size_threshold=1024)
    else:
        onnx.save_model(model, dst)
    onnx.checker.check_model(dst)  # a path: works past 2 GB
    return {"inputs": got_in, "outputs": got_out, "external": external}


def verify_with_ort(torch, wrapper, cfg: dict, dtype, device, onnx_path: str) -> None:
    """Runs the ONNX on shapes other than the traced ones (catches frozen dimensions) against the module."""
    try:
        import numpy as np
        import onnxruntime as ort
    except Exception as e:
        print(f"  verify: skipped (onnxruntime not importable: {e})")
        return
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        sess = ort.InferenceSession(onnx_path, providers=providers)
    except Exception as e:
        print(f"  verify: skipped (onnxruntime cannot load the graph on {providers[0]}: {str(e).splitlines()[0]})")
        return
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    for batch, tokens, past in ((1, 1, 0), (3, 4, 6), (2, 1, 9)):
        ex = example_inputs(torch, cfg, dtype, device, batch, tokens, past, seed=batch * 100 + tokens)
        with torch.no_grad():
            ref = wrapper(*ex)
        feeds = {n: t.cpu().numpy() for n, t in zip(names, ex)}
        got = sess.run(None, feeds)
        for a, b in zip(got, ref):
            b = b.float().cpu().numpy()
            if a.shape != b.shape:
                die(f"verify: output shape {a.shape} != {b.shape} for batch {batch}, tokens {tokens}, past {past}", 1)
            worst = max(worst, float(np.abs(a.astype(np.float32) - b).max()))
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    print(f"  verify: onnxruntime ({providers[0]}) vs torch, 3 shapes: max |diff| {worst:.2e} (tolerance {tol:g})")
    if not worst <= tol:
        die(f"verify: the exported graph disagrees with the traced module (max |diff| {worst:.3e} > {tol:g})", 1)


def main(argv=None) -> int:
    args = parse_args(argv)
    hf_dir = os.path.abspath(args.hf_dir)
    out_dir = os.path.abspath(args.out_dir)
    if not os.path.isfile(os.path.join(hf_dir, "config.json")):
        die(f"{hf_dir} has no config.json: give a Hugging Face checkpoint directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not args.force \
            and not os.path.isfile(os.path.join(out_dir, "export.json")):
        die(f"{out_dir} is not empty and holds no export.json; pass --force to write into it")
    os.makedirs(out_dir, exist_ok=True)

    torch, transformers, onnx = import_deps()
    if version_tuple(transformers.__version__) < (4, 45, 0):
        print(f"warning: transformers {transformers.__version__} is older than 4.45, the oldest this exporter "
              "was written for", file=sys.stderr)
    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    dev = args.device
    if dev == "auto":
        dev = "cuda" if (args.dtype == "float16" and torch.cuda.is_available()) else "cpu"
    if dev == "cuda" and not torch.cuda.is_available():
        die("--device cuda: torch sees no CUDA device")
    device = torch.device(dev)

    t0 = time.time()
    print(f"loading {hf_dir} ({args.dtype}, attn {args.attn}, on {dev}) with transformers "
          f"{transformers.__version__}, torch {torch.__version__}")
    model = load_model(torch, transformers, hf_dir, dtype, args.attn, device)
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    cfg = {
        "numLayers": c.num_hidden_layers,
        "numAttentionHeads": c.num_attention_heads,
        "numKeyValueHeads": getattr(c, "num_key_value_heads", None) or c.num_attention_heads,
        "headDim": head_dim,
        "hiddenSize": c.hidden_size,
        "vocabSize": c.vocab_size,
    }
    window = sliding_window_of(c)
    wrapper = make_wrapper(torch, model, cfg["numLayers"])
    if window:
        print(f"  sliding window {window}: the graph attends the whole context; neoserve caps the context at "
              f"{window} (where the two agree)")
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    inputs, outputs, axes = io_names(cfg["numLayers"])
    # Distinct sizes (batch 2, tokens 3, past 5) so no two dynamic dimensions can be confused while tracing.
    ex = example_inputs(torch, cfg, dtype, device, batch=2, tokens=3, past=5)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        raw = os.path.join(tmp, ONNX_FILE)
        print(f"exporting with torch.onnx.export (TorchScript exporter, opset {args.opset}) ...")
        export(torch, onnx, wrapper, ex, raw, args.opset, inputs, outputs, axes)
        saved = save_consolidated(onnx, raw, out_dir, param_bytes)
    if saved["inputs"] != inputs or saved["outputs"] != outputs:
        die("the exported graph's I/O names differ from the contract:\n"
            f"  inputs  {saved['inputs']}\n  outputs {saved['outputs']}", 1)
    onnx_path = os.path.join(out_dir, ONNX_FILE)

    if not args.no_verify:
        verify_with_ort(torch, wrapper, cfg, dtype, device, onnx_path)

    copied = []
    for name in SIDE_FILES:
        src = os.path.join(hf_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out_dir, name))
            copied.append(name)
    if "tokenizer.json" not in copied:
        print("warning: the checkpoint has no tokenizer.json; neoserve needs one beside the engine "
              "(save one with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(out_dir))",
              file=sys.stderr)

    meta = {
        "format": EXPORT_FORMAT,
        "formatVersion": EXPORT_FORMAT_VERSION,
        "onnx": ONNX_FILE,
        "externalData": ONNX_DATA_FILE if saved["external"] else None,
        "dtype": args.dtype,
        "kvDtype": args.dtype,
        "logitsDtype": "float32",
        "idsDtype": "int64",
        "opset": args.opset,
        "modelType": c.model_type,
        **cfg,
        "maxPositionEmbeddings": getattr(c, "max_position_embeddings", None),
        "slidingWindow": window,
        "attnImplementation": args.attn,
        "maskValue": MASK_MIN,
        "io": IO,
        "dynamicAxes": {"batch": AXIS_BATCH, "tokens": AXIS_TOKENS, "past": AXIS_PAST, "total": AXIS_TOTAL},
        "source": hf_dir,
        "files": copied,
        "torchVersion": torch.__version__,
        "transformersVersion": transformers.__version__,
        "onnxVersion": onnx.__version__,
    }
    with open(os.path.join(out_dir, "export.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    size = os.path.getsize(onnx_path) + (os.path.getsize(os.path.join(out_dir, ONNX_DATA_FILE))
                                         if saved["external"] else 0)
    print(f"wrote {onnx_path} ({size / 1e6:.1f} MB{', external data ' + ONNX_DATA_FILE if saved['external'] else ''}),"
          f" export.json, {', '.join(copied)} in {time.time() - t0:.1f} s")
    print(f"  {cfg['numLayers']} layers, {cfg['numKeyValueHeads']} kv heads x {cfg['headDim']}, "
          f"vocab {cfg['vocabSize']}, {args.dtype} (logits float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
