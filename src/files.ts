/** Reading the files a user points neoserve at (model files, configs, key files) without trusting them. */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { basename } from "node:path";

/**
 * A file's text; null when it does not exist. Only regular files are read: a
 * FIFO or device would block a libuv thread (it is opened without blocking,
 * then refused). Past `maxBytes` it is refused before it is read. Every
 * failure is `fail(message naming the file, cause)`.
 */
export async function readRegularFile(
  path: string,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<string | null> {
  return (await readRegularBytes(path, fail, maxBytes))?.toString("utf8") ?? null;
}

/** readRegularFile's bytes, as they are. */
export async function readRegularBytes(
  path: string,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Buffer | null> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fail(`${path}: cannot read ${basename(path)} (${messageOf(err)})`, err);
  }
  let refusal: Error | undefined;
  try {
    const info = await file.stat();
    if (!info.isFile()) refusal = fail(`${path}: not a regular file`);
    else if (info.size > maxBytes) refusal = fail(`${path}: ${info.size} bytes, more than the ${maxBytes} allowed`);
    else return await file.readFile();
  } catch (err) {
    refusal = fail(`${path}: cannot read ${basename(path)} (${messageOf(err)})`, err);
  } finally {
    await file.close();
  }
  throw refusal;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
