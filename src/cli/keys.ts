/** `neoserve keys hash KEY`: the SHA-256 a tenant's config lists for an API key (keys never sit in the config). */
import type { Command } from "commander";
import { hashKey } from "../tenants/tenants.js";

export function registerKeys(program: Command): void {
  program
    .command("keys")
    .description("API keys for tenants")
    .command("hash")
    .description("print the SHA-256 of an API key, as a tenant's `keys:` list holds it (reads the key from stdin when none is given)")
    .argument("[key]", "the API key")
    .action(async (key: string | undefined) => {
      let k = key;
      if (k === undefined) {
        let text = "";
        for await (const chunk of process.stdin) text += String(chunk);
        k = text.trim();
      }
      process.stdout.write(`${hashKey(k)}\n`);
    });
}
