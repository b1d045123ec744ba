import { beforeAll, describe, expect, it } from "vitest";
import { CHATML_TEMPLATE, IM_START_ID, gpt2TokenizerConfig, gpt2TokenizerJson } from "../models/gpt2-tokenizer.js";
import { InvalidRequestError } from "../src/errors.js";
import { ChatTemplate, chatTemplateSource, type ChatMessage } from "../src/tokenizer/chat-template.js";
import { TextTokenizer } from "../src/tokenizer/tokenizer.js";

const conversation: ChatMessage[] = [
  { role: "system", content: "You are helpful." },
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello! 😀" },
  { role: "user", content: "日本語で?" },
];

let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.fromJson(gpt2TokenizerJson(), gpt2TokenizerConfig());
});

describe("chat templates", () => {
  it("renders the model's ChatML template", () => {
    const expected =
      "<|im_start|>system\nYou are helpful.<|im_end|>\n" +
      "<|im_start|>user\nHi there<|im_end|>\n" +
      "<|im_start|>assistant\nHello! 😀<|im_end|>\n" +
      "<|im_start|>user\n日本語で?<|im_end|>\n";
    expect(tok.applyChatTemplate(conversation, { addGenerationPrompt: false })).toBe(expected);
    expect(tok.applyChatTemplate(conversation, { addGenerationPrompt: true })).toBe(
      expected + "<|im_start|>assistant\n",
    );
    expect(tok.applyChatTemplate(conversation)).toBe(expected + "<|im_start|>assistant\n");
  });

  it("gives a prompt whose control tokens encode as single ids", () => {
    const text = tok.applyChatTemplate([{ role: "user", content: "Hi" }]);
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids[0]).toBe(IM_START_ID);
    expect(ids.filter((id) => id === IM_START_ID).length).toBe(2);
    expect(tok.decode(ids)).toBe(text);
  });

  it("passes bos_token and eos_token", () => {
    const t = new ChatTemplate("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}", {
      bosToken: "<s>",
      eosToken: "</s>",
    });
    expect(t.render([{ role: "user", content: "a" }, { role: "assistant", content: "b" }])).toBe(
      "<s>[user]a</s>[assistant]b</s>",
    );
    const withTemplate = TextTokenizer.fromJson(gpt2TokenizerJson(), {
      ...gpt2TokenizerConfig(),
      chat_template: "{{ bos_token }}|{{ eos_token }}|{{ messages | length }}",
    });
    expect(withTemplate.applyChatTemplate(conversation)).toBe("<|endoftext|>|<|endoftext|>|4");
  });

  it("throws a typed error when the model has no template", () => {
    const { chat_template: _, ...config } = gpt2TokenizerConfig();
    const bare = TextTokenizer.fromJson(gpt2TokenizerJson(), config);
    expect(bare.chatTemplate).toBeUndefined();
    expect(() => bare.applyChatTemplate(conversation)).toThrow(InvalidRequestError);
    expect(() => bare.applyChatTemplate(conversation)).toThrow(/no chat template/);
    try {
      bare.applyChatTemplate(conversation);
    } catch (err) {
      expect((err as InvalidRequestError).code).toBe("invalid_request");
    }
  });

  it("rejects malformed messages", () => {
    expect(() => tok.applyChatTemplate([{ role: "user" } as unknown as ChatMessage])).toThrow(/messages\[0\]\.content/);
    expect(() => tok.applyChatTemplate([{ role: "", content: "x" }])).toThrow(InvalidRequestError);
    expect(() => tok.applyChatTemplate("hi" as unknown as ChatMessage[])).toThrow(InvalidRequestError);
  });

  it("turns raise_exception and unparsable templates into InvalidRequestError", () => {
    const strict = new ChatTemplate(
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok",
    );
    expect(strict.render([{ role: "user", content: "x" }])).toBe("ok");
    expect(() => strict.render([{ role: "assistant", content: "x" }])).toThrow(/must start with user/);
    const broken = TextTokenizer.fromJson(gpt2TokenizerJson(), { ...gpt2TokenizerConfig(), chat_template: "{% for %}" });
    expect(broken.encode("Hello world")).toEqual([15496, 995]); // loading still works
    expect(() => broken.applyChatTemplate(conversation)).toThrow(/cannot be parsed/);
  });

  it("picks the default of a list of named templates", () => {
    expect(chatTemplateSource(CHATML_TEMPLATE)).toBe(CHATML_TEMPLATE);
    expect(chatTemplateSource([{ name: "tool_use", template: "T" }, { name: "default", template: "D" }])).toBe("D");
    expect(chatTemplateSource([{ name: "rag", template: "R" }])).toBe("R");
    expect(chatTemplateSource(undefined)).toBeUndefined();
    expect(chatTemplateSource("")).toBeUndefined();
  });
});
