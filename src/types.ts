/** The public shapes of requests, tokens and results. */
import type { ChatMessage } from "./tokenizer/chat-template.js";

export type FinishReason =
  | "stop"
  | "length"
  | "cancelled"
  | "deadline_exceeded"
  | "queue_timeout"
  /** Its deadline could not be met even if started at once (predicted at admission from maxTokens and the step time): it never ran. */
  | "deadline_unmeetable"
  | "queue_full"
  | "device_lost"
  | "error";

export interface SamplingOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Same seed and input → same tokens, whatever else runs. Default: a random seed. */
  seed?: number;
}

export interface GenerateRequest extends SamplingOptions {
  /** Text to continue; or give `tokens`, or `messages` for the model's chat template. */
  prompt?: string;
  tokens?: readonly number[];
  messages?: readonly ChatMessage[];
  /**
   * With `messages`: read special-token text inside a message's content
   * ("<|im_end|>") as the control token. Default false: it is plain text, so
   * a user cannot open or close roles the template did not.
   */
  parseSpecialTokens?: boolean;
  /** Default 128. */
  maxTokens?: number;
  /** Text that ends generation; it is not included in the output. */
  stop?: string | readonly string[];
  /** Token ids that end generation, besides the model's end-of-sequence ids. */
  stopTokenIds?: readonly number[];
  /** Do not stop at the model's end-of-sequence tokens. */
  ignoreEos?: boolean;
  signal?: AbortSignal;
  /** Higher runs first under the "priority" policy and is preempted last. Default 0. */
  priority?: number;
  /** End-to-end budget from generate(), in ms: past it the request ends with "deadline_exceeded" ("edf" orders by it). */
  deadlineMs?: number;
  /** In a pool: run on this slice only. */
  slice?: string;
  /** Keep the raw logits each token was sampled from (before penalties) in result.logits. */
  returnLogits?: boolean;
  /**
   * Each generated token's log probability under the model's raw distribution
   * (log-softmax of its logits, before sampling parameters), with this many of
   * the most likely alternatives (0-20), on each Token and in result.logprobs.
   * Computed in native code. Default: off.
   */
  logprobs?: number;
  /** For a Router: what the route must respect. Other engines ignore it. */
  route?: RouteHints;
}

/** A request's needs, as a Router weighs them (the server fills them from the body, headers and tenant). */
export interface RouteHints {
  /** "private" never leaves local backends. Default: the tenant's, else the router's ("internal"). */
  privacy?: "private" | "internal" | "public";
  /** Time to first token wanted, ms: the cheapest backend predicted to meet it is chosen. */
  latencyBudgetMs?: number;
  /** The most to pay per 1k tokens. */
  maxCostPer1k?: number;
  tenant?: string;
  /** The end user (OpenAI's `user`): with the tenant, it keeps a caller on one side of a canary split. */
  user?: string;
  /** Backends the tenant may use; absent = all. */
  allowedBackends?: readonly string[];
}

/** A token with its log probability: its id, and its own text and bytes (not the stream's text, which may hold a character back). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  piece: string;
  bytes: number[];
}

export interface Token {
  id: number;
  /** The new text this token completes (may be "" while a UTF-8 character or a possible stop string is incomplete). */
  text: string;
  /** With request.logprobs: this token's log probability and the most likely alternatives, most likely first. */
  logprob?: TokenLogprob & { top: TokenLogprob[] };
}

export interface GenerateResult {
  tokens: number[];
  text: string;
  finishReason: FinishReason;
  /** With returnLogits: one row per generated token, the logits it was sampled from. */
  logits?: Float32Array[];
  /** With request.logprobs: one entry per token in `tokens`. */
  logprobs?: (TokenLogprob & { top: TokenLogprob[] })[];
  /** Why the request ended abnormally (finishReason "error" or "cancelled"). */
  error?: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  timings: {
    /** Time in the scheduler's queue before the request started (null if it never started). */
    queuedMs: number | null;
    /** From generate() to the first token. */
    timeToFirstTokenMs: number | null;
    totalMs: number;
    /** Generated tokens per second after the first one. */
    decodeTokensPerSecond: number | null;
  };
}
