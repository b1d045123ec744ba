/**
 * Chat templates: the Jinja template a model ships in tokenizer_config.json
 * (`chat_template`), rendered with @huggingface/jinja the way transformers'
 * `apply_chat_template` does (variables `messages`, `add_generation_prompt`,
 * `bos_token`, `eos_token`).
 */
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { InputLimitError, InvalidRequestError } from "../errors.js";

export interface ChatMessage {
  /** "system", "user", "assistant", "tool", or whatever roles the model's template knows. */
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the header that opens the assistant's turn (default true). */
  addGenerationPrompt?: boolean;
}

/** Items a template's range() may produce: far more than any chat template loops over. */
export const MAX_TEMPLATE_RANGE = 100_000;

/** What one render may do: evaluation steps (nodes the interpreter visits) and characters of output. */
export interface RenderLimits {
  maxSteps: number;
  maxOutputChars: number;
}

/** Far above any published chat template over a long conversation (~50 steps a message). */
export const DEFAULT_RENDER_LIMITS: RenderLimits = { maxSteps: 2_000_000, maxOutputChars: 4 << 20 };

// Jinja's range(), refusing a range longer than MAX_TEMPLATE_RANGE before it is
// built: the built-in fills the array first (1e7 items block the event loop for
// seconds; 1e9 is a fatal out-of-memory of the whole process).
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("range() step must not be zero");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (!(n <= MAX_TEMPLATE_RANGE))
    throw new InputLimitError(`the chat template asked for range() of ${n} items; a chat template may loop over ${MAX_TEMPLATE_RANGE} at most`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

// Template.render() declares its globals, range() among them, on a fresh
// Environment and refuses a second declaration, and runs a fresh Interpreter:
// the bounded range() and a step count go in on their prototypes, for the one
// synchronous render only (nested loops or recursion end at maxSteps).
function withRenderLimits<T>(limits: RenderLimits, render: () => T): T {
  const set = Environment.prototype.set;
  const evaluate = Interpreter.prototype.evaluate;
  let steps = 0;
  Environment.prototype.set = function (this: Environment, name: string, value: unknown) {
    return set.call(this, name, name === "range" ? boundedRange : value);
  };
  Interpreter.prototype.evaluate = function (this: Interpreter, ...args: Parameters<typeof evaluate>) {
    if (++steps > limits.maxSteps)
      throw new InputLimitError(`the chat template took more than ${limits.maxSteps} evaluation steps for these messages`);
    return evaluate.apply(this, args);
  };
  try {
    return render();
  } finally {
    Environment.prototype.set = set;
    Interpreter.prototype.evaluate = evaluate;
  }
}

/** A parsed chat template, with the special-token strings it may refer to. */
export class ChatTemplate {
  private readonly template: Template;

  /** Throws InvalidRequestError if `source` is not a template @huggingface/jinja can parse. */
  constructor(
    readonly source: string,
    private readonly specialTokens: { bosToken?: string; eosToken?: string } = {},
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new InvalidRequestError(`the model's chat template cannot be parsed: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Renders the conversation; throws InvalidRequestError for malformed messages
   * or a template error, InputLimitError past `limits`.
   */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}, limits = DEFAULT_RENDER_LIMITS): string {
    validateMessages(messages);
    let text: string;
    try {
      text = withRenderLimits(limits, () =>
        this.template.render({
          messages: messages.map((m) => ({ ...m })),
          add_generation_prompt: options.addGenerationPrompt ?? true,
          bos_token: this.specialTokens.bosToken ?? "",
          eos_token: this.specialTokens.eosToken ?? "",
        }),
      );
    } catch (err) {
      if (err instanceof InputLimitError) throw err;
      // Templates reject conversations they do not support with raise_exception(...).
      throw new InvalidRequestError(`the chat template rejected the messages: ${messageOf(err)}`, { cause: err });
    }
    if (text.length > limits.maxOutputChars)
      throw new InputLimitError(`the chat template rendered ${text.length} characters; the limit is ${limits.maxOutputChars}`);
    return text;
  }
}

/**
 * Picks the template text from a tokenizer_config.json `chat_template` value: a
 * string, or (newer transformers) a list of {name, template} where "default" wins.
 */
export function chatTemplateSource(value: unknown): string | undefined {
  if (typeof value === "string") return value.length > 0 ? value : undefined;
  if (Array.isArray(value)) {
    const named = value.filter(
      (t): t is { name: string; template: string } =>
        typeof t === "object" && t !== null && typeof t.name === "string" && typeof t.template === "string",
    );
    return (named.find((t) => t.name === "default") ?? named[0])?.template;
  }
  return undefined;
}

/** The error a model without a chat template gives for a `messages` request. */
export function noChatTemplateError(modelPath: string): InvalidRequestError {
  return new InvalidRequestError(
    `the model at ${modelPath} has no chat template (no chat_template in tokenizer_config.json, ` +
      "chat_template.jinja or GGUF tokenizer.chat_template): send a prompt instead of messages",
  );
}

/** Throws InvalidRequestError unless `messages` is an array of {role, content} strings. */
export function validateMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new InvalidRequestError("messages must be an array of {role, content}");
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null) throw new InvalidRequestError(`messages[${i}] must be an object`);
    if (typeof m.role !== "string" || m.role.length === 0)
      throw new InvalidRequestError(`messages[${i}].role must be a non-empty string`);
    if (typeof m.content !== "string") throw new InvalidRequestError(`messages[${i}].content must be a string`);
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
