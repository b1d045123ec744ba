/** What the commands share: the bundled model, flag parsers, and help text from the native option table. */
import { InvalidArgumentError } from "commander";
import { join } from "node:path";
import { addon, packageRoot, type RawLoadOptions, type RawOptionDescription } from "../addon.js";

/** The bundled tiny model that `npm install` generates: the default, so no download is needed. */
export const defaultModelPath = join(packageRoot(), "models", "generated", "tiny", "hf");

export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("expected an integer");
  return n;
}

export function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

/** Help text of a load option, from its one definition in native/core/options.h. */
export function loadOption(name: keyof RawLoadOptions): string {
  return describe(addon().optionTable().find((t) => t.name === name)!);
}

function describe(o: RawOptionDescription): string {
  const values = o.kind === "choice" ? `${o.choices.join(" | ")}: ` : "";
  return `${values}${o.meaning}${o.default === "" ? "" : ` (default: ${o.default})`}`;
}

/** The options every command takes as its own flags (--backend, --precision, --threads, --device). */
export const ENGINE_FLAGS = ["backend", "precision", "threads", "device"] as const;

/** Every other load option (scheduler knobs, KV cache, memory limit), as --kebab-case flags with their native help. */
export function schedulerFlags(): { name: string; flag: string; help: string; parse: (v: string) => string | number }[] {
  return addon()
    .optionTable()
    .filter((o) => !(ENGINE_FLAGS as readonly string[]).includes(o.name))
    .map((o) => ({
      name: o.name,
      flag: `--${o.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} <value>`,
      help: describe(o),
      parse: o.kind === "choice" || o.kind === "text" ? (v: string) => v : number,
    }));
}
