/** `neoserve audit verify FILE...`: checks an audit trail's hash chain, oldest file first. */
import type { Command } from "commander";
import { verifyAuditFiles } from "../audit/audit-log.js";

export function registerAudit(program: Command): void {
  program
    .command("audit")
    .description("check audit trails")
    .command("verify")
    .description("check that every record of an audit trail is intact and chained (give rotated files oldest first, then the current one)")
    .argument("<files...>", "audit JSONL files")
    .action(async (files: string[]) => {
      const result = await verifyAuditFiles(files);
      if (result.ok) {
        process.stdout.write(`ok: ${result.records} records chain from the start\n`);
        return;
      }
      const b = result.broken!;
      process.stdout.write(`${b.file}:${b.line}: ${b.why} (${result.records} records before it verify)\n`);
      process.exitCode = 1;
    });
}
