// What every benchmark shares: appending a result section to its file in
// bench/results, and running main() when the file is the entry point.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../src/addon.js";

/** Appends `lines` to bench/results/<name>.md, creating it with `title` first. */
export function recordResult(name: string, title: string, lines: readonly string[]): void {
  const out = join(packageRoot(), "bench", "results", `${name}.md`);
  mkdirSync(dirname(out), { recursive: true });
  if (!existsSync(out)) writeFileSync(out, `# ${title}\n\n`);
  appendFileSync(out, lines.join("\n") + "\n\n");
}

/** A result section's opening: its title with the date, then the machine and the command that measured it. */
export function sectionHeader(title: string, command: string): string[] {
  return [`## ${new Date().toISOString().slice(0, 16)} — ${title}`, "", `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores. Command: \`${command}\`.`, ""];
}

/** Runs `main(argv)` when `moduleUrl` is the script node was started with; exits 1 on failure. */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<void>): void {
  if (!process.argv[1] || resolve(process.argv[1]) !== fileURLToPath(moduleUrl)) return;
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
