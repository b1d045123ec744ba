/**
 * A CommonJS dependency loaded on its first use rather than at import: the
 * engine's import path (loadModel) then does not pay for what only the server
 * and remote backends use (fastify and undici: about 150 ms of a cold start).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
