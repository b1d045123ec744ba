/**
 * JSON schemas of the OpenAI request bodies this server takes. Fastify
 * validates each body against them before a handler runs (a 400 naming the
 * field); fields not listed are accepted and ignored, as OpenAI-compatible
 * servers do, and logged at debug level.
 */

const number = (minimum?: number, maximum?: number) => ({ type: ["number", "null"], ...(minimum !== undefined ? { minimum } : {}), ...(maximum !== undefined ? { maximum } : {}) });
const integer = (minimum?: number, maximum?: number) => ({ type: ["integer", "null"], ...(minimum !== undefined ? { minimum } : {}), ...(maximum !== undefined ? { maximum } : {}) });

/** Sampling and ending fields common to both completion routes. */
const sampling = {
  model: { type: "string", minLength: 1, maxLength: 256 },
  max_tokens: integer(1, 2 ** 31 - 1),
  temperature: number(0, 2),
  top_p: number(0, 1),
  top_k: integer(-1, 2 ** 31 - 1),
  min_p: number(0, 1),
  presence_penalty: number(-2, 2),
  frequency_penalty: number(-2, 2),
  repetition_penalty: number(0.01, 10),
  seed: integer(0, Number.MAX_SAFE_INTEGER),
  stop: {
    anyOf: [
      { type: "string", minLength: 1, maxLength: 1024 },
      { type: "array", maxItems: 16, items: { type: "string", minLength: 1, maxLength: 1024 } },
      { type: "null" },
    ],
  },
  n: integer(1, 16),
  stream: { type: ["boolean", "null"] },
  stream_options: { anyOf: [{ type: "object", properties: { include_usage: { type: ["boolean", "null"] } } }, { type: "null" }] },
  user: { type: ["string", "null"], maxLength: 256 },
  ignore_eos: { type: ["boolean", "null"] },
  // Routing: what a router weighs (also from x-neoserve-* headers); deadline_ms holds for every engine.
  privacy: { enum: ["private", "internal", "public", null] },
  latency_budget_ms: number(0, 1e9),
  deadline_ms: number(1, 1e9),
  max_cost_per_1k: number(0, 1e9),
} as const;

const textPart = {
  type: "object",
  required: ["type"],
  properties: { type: { type: "string" }, text: { type: "string" } },
} as const;

export const chatCompletionBody = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...sampling,
    max_completion_tokens: integer(1, 2 ** 31 - 1),
    messages: {
      type: "array",
      minItems: 1,
      maxItems: 4096,
      items: {
        type: "object",
        required: ["role"],
        properties: {
          role: { type: "string", minLength: 1, maxLength: 64 },
          content: { anyOf: [{ type: "string" }, { type: "array", maxItems: 1024, items: textPart }, { type: "null" }] },
          name: { type: "string" },
        },
      },
    },
    logprobs: { type: ["boolean", "null"] },
    top_logprobs: integer(0, 20),
    response_format: { type: ["object", "null"] },
    tools: { type: ["array", "null"] },
    tool_choice: {},
  },
} as const;

export const completionBody = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", minItems: 1, maxItems: 64, items: { type: "string" } },
        { type: "array", minItems: 1, items: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1 } },
        { type: "array", minItems: 1, maxItems: 64, items: { type: "array", minItems: 1, items: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1 } } },
      ],
    },
    logprobs: integer(0, 20),
    echo: { type: ["boolean", "null"] },
    suffix: { type: ["string", "null"] },
    best_of: integer(1, 16),
  },
} as const;

export const tokenizeBody = {
  type: "object",
  required: ["model"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 256 },
    prompt: { type: "string" },
    messages: chatCompletionBody.properties.messages,
    add_special_tokens: { type: "boolean" },
    add_generation_prompt: { type: "boolean" },
  },
} as const;

export const detokenizeBody = {
  type: "object",
  required: ["model", "tokens"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 256 },
    tokens: { type: "array", items: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1 } },
  },
} as const;

/** The top-level fields a schema names: the rest of a body is ignored (and logged at debug). */
export function unknownFields(body: unknown, schema: { properties: object }): string[] {
  if (typeof body !== "object" || body === null) return [];
  return Object.keys(body).filter((k) => !(k in schema.properties));
}
