/**
 * OpenAI request bodies (already schema-checked) as engine requests: one
 * GenerateRequest per choice (n per prompt), and how the response is wanted.
 * A field this server cannot honour yet is a 400 naming it, never output that
 * silently ignores it.
 */
import type { ChatMessage } from "../tokenizer/chat-template.js";
import type { GenerateRequest, RouteHints } from "../types.js";
import { HttpError } from "./http-errors.js";

type Body = Record<string, unknown>;

export interface CompletionPlan {
  /** One request per choice, in choice-index order: n per prompt. */
  requests: GenerateRequest[];
  /** Choices per prompt. */
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

// Sampling and ending fields, as both routes share them.
function common(body: Body): GenerateRequest {
  const opt = <T>(key: string) => (body[key] === null ? undefined : (body[key] as T | undefined));
  const topK = opt<number>("top_k");
  return {
    maxTokens: opt<number>("max_completion_tokens") ?? opt<number>("max_tokens"),
    temperature: opt<number>("temperature"),
    topP: opt<number>("top_p"),
    topK: topK === -1 ? undefined : topK, // vLLM's "off"
    minP: opt<number>("min_p"),
    presencePenalty: opt<number>("presence_penalty"),
    frequencyPenalty: opt<number>("frequency_penalty"),
    repetitionPenalty: opt<number>("repetition_penalty"),
    seed: opt<number>("seed"),
    stop: opt<string | string[]>("stop"),
    ignoreEos: opt<boolean>("ignore_eos"),
    deadlineMs: opt<number>("deadline_ms"),
    route: {
      privacy: opt<NonNullable<RouteHints["privacy"]>>("privacy"),
      latencyBudgetMs: opt<number>("latency_budget_ms"),
      maxCostPer1k: opt<number>("max_cost_per_1k"),
      user: opt<string>("user"),
    },
  };
}

/** The x-neoserve-* routing headers, as body fields where the body gives none; a bad value is a 400 naming the header. */
export function withRouteHeaders(body: Body, headers: Record<string, string | string[] | undefined>): Body {
  const out = { ...body };
  const header = (name: string) => {
    const v = headers[name];
    return typeof v === "string" ? v.trim() : undefined;
  };
  const privacy = header("x-neoserve-privacy");
  if (privacy !== undefined && (out.privacy ?? null) === null) {
    if (!["private", "internal", "public"].includes(privacy)) throw new HttpError(400, `x-neoserve-privacy must be private, internal or public, got ${JSON.stringify(privacy.slice(0, 40))}`, "x-neoserve-privacy");
    out.privacy = privacy;
  }
  for (const [name, field, min] of [
    ["x-neoserve-latency-budget-ms", "latency_budget_ms", 0],
    ["x-neoserve-deadline-ms", "deadline_ms", 1],
    ["x-neoserve-max-cost-per-1k", "max_cost_per_1k", 0],
  ] as const) {
    const v = header(name);
    if (v === undefined || (out[field] ?? null) !== null) continue;
    const n = Number(v);
    if (v === "" || !Number.isFinite(n) || n < min || n > 1e9) throw new HttpError(400, `${name} must be a number from ${min} to 1e9, got ${JSON.stringify(v.slice(0, 40))}`, name);
    out[field] = n;
  }
  return out;
}

// n choices of one prompt: distinct seeds when a seed is given, so they differ yet repeat.
function choices(base: GenerateRequest, n: number): GenerateRequest[] {
  return Array.from({ length: n }, (_, i) => ({ ...base, seed: base.seed === undefined ? undefined : base.seed + i }));
}

function wanted(body: Body): Pick<CompletionPlan, "stream" | "includeUsage"> {
  const options = body.stream_options as { include_usage?: boolean | null } | null | undefined;
  return { stream: body.stream === true, includeUsage: options?.include_usage === true };
}

function refuse(field: string, why: string): never {
  throw new HttpError(400, `${field}: ${why}`, field, "unsupported_parameter");
}

export function chatPlan(body: Body): CompletionPlan {
  const topLogprobs = typeof body.top_logprobs === "number" ? body.top_logprobs : undefined;
  if (topLogprobs !== undefined && body.logprobs !== true) refuse("top_logprobs", "needs logprobs: true");
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format && format.type !== "text") refuse("response_format", `only {"type": "text"} is supported, got ${JSON.stringify(format.type)}`);
  const tools = body.tools as unknown[] | null | undefined;
  if (tools && tools.length > 0 && body.tool_choice !== "none") refuse("tools", 'tool calls are not supported: send tool_choice "none" or no tools');
  const messages = (body.messages as { role: string; content?: unknown }[]).map((m, i): ChatMessage => ({ role: m.role, content: messageText(m.content, i) }));
  const n = (body.n as number | null | undefined) ?? 1;
  const logprobs = body.logprobs === true ? (topLogprobs ?? 0) : undefined;
  return { requests: choices({ ...common(body), messages, logprobs }, n), n, ...wanted(body) };
}

// A message's content: a string, or text parts joined (other part types are refused).
function messageText(content: unknown, i: number): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return (content as { type: string; text?: string }[])
    .map((part, j) => {
      if (part.type !== "text" || typeof part.text !== "string") refuse(`messages[${i}].content[${j}]`, `only text parts are supported, got type ${JSON.stringify(part.type)}`);
      return part.text;
    })
    .join("");
}

export function completionPlan(body: Body): CompletionPlan {
  if (body.echo === true) refuse("echo", "echoing the prompt is not supported");
  if (typeof body.suffix === "string" && body.suffix.length > 0) refuse("suffix", "suffixes (insertion) are not supported");
  if (typeof body.best_of === "number" && body.best_of > 1) refuse("best_of", "best_of is not supported");
  const base = { ...common(body), logprobs: typeof body.logprobs === "number" ? body.logprobs : undefined };
  const n = (body.n as number | null | undefined) ?? 1;
  const prompt = body.prompt as string | string[] | number[] | number[][];
  const prompts: GenerateRequest[] =
    typeof prompt === "string"
      ? [{ prompt }]
      : typeof prompt[0] === "string"
        ? (prompt as string[]).map((p) => ({ prompt: p }))
        : typeof prompt[0] === "number"
          ? [{ tokens: prompt as number[] }]
          : (prompt as number[][]).map((tokens) => ({ tokens }));
  return { requests: prompts.flatMap((p) => choices({ ...base, ...p }, n)), n, ...wanted(body) };
}
