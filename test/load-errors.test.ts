// Every malformed model reaches JS as a typed ModelLoadError naming the file
// and what is wrong; the process survives and nothing is left loaded.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidRequestError, loadModel, ModelLoadError, ProviderUnavailableError } from "../src/index.js";
import { ggufFile, hfDir } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "neoserve-bad-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
function hfCopy(mutate: (dir: string) => void): string {
  const dir = join(scratch, `hf${n++}`);
  cpSync(hfDir("tiny"), dir, { recursive: true });
  mutate(dir);
  return dir;
}
function ggufCopy(mutate: (file: string) => void): string {
  const file = join(scratch, `m${n++}.gguf`);
  copyFileSync(ggufFile("tiny"), file);
  mutate(file);
  return file;
}
function patchBytes(file: string, at: number, bytes: number[]): void {
  const buf = readFileSync(file);
  bytes.forEach((b, i) => (buf[at + i] = b));
  writeFileSync(file, buf);
}
function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(file, "utf8"));
  edit(j);
  writeFileSync(file, JSON.stringify(j));
}
// The safetensors header: 8-byte length, then JSON.
function editSafetensorsHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString("utf8"));
  edit(header);
  let text = JSON.stringify(header);
  text = text.padEnd(len, " ");
  if (text.length !== len) throw new Error("edited header must not grow");
  buf.write(text, 8, "utf8");
  writeFileSync(file, buf);
}

async function expectLoadError(path: string, pattern: RegExp): Promise<void> {
  const err = await loadModel(path, { backend: "cpu" }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelLoadError);
  expect((err as ModelLoadError).code).toBe("model_load_failed");
  expect((err as Error).message).toMatch(pattern);
}

describe("malformed Hugging Face directories", () => {
  it("a missing path", () => expectLoadError(join(scratch, "nope"), /nope/));
  it("a directory without config.json", () =>
    expectLoadError(hfCopy((d) => rmSync(join(d, "config.json"))), /config\.json/));
  it("config.json that is not JSON", () =>
    expectLoadError(hfCopy((d) => writeFileSync(join(d, "config.json"), "{ not json")), /config\.json/));
  it("a truncated safetensors file", () =>
    expectLoadError(hfCopy((d) => truncateSync(join(d, "model.safetensors"), 5000)), /model\.safetensors/));
  it("a header length past the end of the file", () =>
    expectLoadError(
      hfCopy((d) => patchBytes(join(d, "model.safetensors"), 0, [0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0])),
      /model\.safetensors/,
    ));
  it("an unknown dtype", () =>
    expectLoadError(
      hfCopy((d) => editSafetensorsHeader(join(d, "model.safetensors"), (h) => (h["model.norm.weight"].dtype = "I64"))),
      /I64/,
    ));
  it("a missing tensor", () =>
    expectLoadError(
      hfCopy((d) =>
        editSafetensorsHeader(join(d, "model.safetensors"), (h) => {
          h["model.nrm.weight_"] = h["model.norm.weight"]; // same length: the header keeps its size
          delete h["model.norm.weight"];
        }),
      ),
      /model\.norm\.weight/,
    ));
  it("config and tensors that disagree", () =>
    expectLoadError(hfCopy((d) => editJson(join(d, "config.json"), (j) => (j.hidden_size = 128))), /shape|hidden/));
});

describe("malformed GGUF files", () => {
  it("bad magic", () => expectLoadError(ggufCopy((f) => patchBytes(f, 0, [0x58, 0x58, 0x58, 0x58])), /\.gguf/));
  it("an unsupported version", () => expectLoadError(ggufCopy((f) => patchBytes(f, 4, [9, 0, 0, 0])), /version/));
  it("a truncated file", () => expectLoadError(ggufCopy((f) => truncateSync(f, 4096)), /\.gguf/));
  it("a file cut inside the tensor data", () =>
    expectLoadError(ggufCopy((f) => truncateSync(f, Math.floor(readFileSync(f).length * 0.9))), /\.gguf/));
  it("an unsupported architecture", () =>
    expectLoadError(
      ggufCopy((f) => {
        const buf = readFileSync(f);
        const at = buf.indexOf("llama", buf.indexOf("general.architecture") + 20);
        buf.write("gemma", at, "latin1");
        writeFileSync(f, buf);
      }),
      /architecture/,
    ));
});

describe("bad load options", () => {
  it("an unknown backend or precision is an InvalidRequestError", async () => {
    await expect(loadModel(hfDir("tiny"), { backend: "quantum" as never })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(loadModel(hfDir("tiny"), { precision: "int3" as never })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(loadModel(hfDir("tiny"), { threads: -1 })).rejects.toBeInstanceOf(InvalidRequestError);
  });
  it("tensorrt for a checkpoint says the provider is unavailable and why", async () => {
    const err = await loadModel(hfDir("tiny"), { backend: "tensorrt" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as Error).message).toMatch(/tensorrt/i);
  });
});
