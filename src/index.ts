export { Runtime, type RuntimeOptions } from "./runtime.js";
export { loadModel, Model, type LoadOptions, type ModelInfo, type SchedulerOptions } from "./model.js";
export { TokenStream } from "./token-stream.js";
export { ModelPool, type PoolOptions, type SliceStats } from "./pool/pool.js";
export { PoolStream } from "./pool/pool-stream.js";
export type { FinishReason, GenerateRequest, GenerateResult, SamplingOptions, Token } from "./types.js";
export * from "./errors.js";
export { TextTokenizer } from "./tokenizer/tokenizer.js";
export type { ChatMessage } from "./tokenizer/chat-template.js";
