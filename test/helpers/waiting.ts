/** Resolves once `cond()` holds; rejects after `ms`. Every wait in a test is bounded. */
export async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A greedy request whose prompt depends on `i`, never ending early at EOS. */
export const numberedRequest = (i: number, maxTokens = 24) => ({
  tokens: [i % 50000, (i * 7) % 50000, 42],
  maxTokens,
  temperature: 0,
  ignoreEos: true,
});
