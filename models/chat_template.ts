/**
 * Chat templates: the Jinja `chat_template` that a Hugging Face `tokenizer_config.json` carries,
 * rendered with `@huggingface/jinja` (the engine transformers.js uses) the way transformers'
 * `apply_chat_template` renders it: blocks trimmed (`trim_blocks`, `lstrip_blocks`), the variables
 * `messages`, `add_generation_prompt`, `tools` and `documents` (both none), the config's special
 * tokens as strings (`bos_token`, `eos_token`, …), and the functions `raise_exception` and
 * `strftime_now` (today's date, so a template that prints it, such as Llama-3.2's, renders
 * differently each day unless `date_string` is passed in `variables`).
 *
 * @module
 */

import { JinjaTemplate } from "../deps.ts";

/** One message of a conversation, as chat templates read it. */
export interface ChatTemplateMessage {
  /** Who speaks: "system", "user", "assistant" (templates may accept others, e.g. "tool"). */
  role: string;
  /** The text of the message. */
  content: string;
}

/** Options of {@linkcode ChatTemplate.render}. */
export interface ChatTemplateRenderOptions {
  /**
   * End with the header that opens an assistant turn (e.g. `"<|im_start|>assistant\n"`), for a
   * prompt the model continues. Default false.
   */
  addGenerationPrompt?: boolean;
  /** More template variables (e.g. `date_string`); they override the defaults. */
  variables?: Readonly<Record<string, unknown>>;
}

/** The special-token keys of `tokenizer_config.json` that transformers passes to templates. */
const SPECIAL_TOKEN_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/**
 * A chat template: renders a conversation into the text the model was trained on.
 *
 * @example
 * ```ts
 * import { ChatTemplate } from "../mod.ts";
 * const template = ChatTemplate.fromTokenizerConfig({
 *   eos_token: "</s>",
 *   chat_template: "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n" +
 *     "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
 * })!;
 * const text = template.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
 * if (text !== "<|user|>\nHi</s>\n<|assistant|>\n") throw new Error(JSON.stringify(text));
 * ```
 */
export class ChatTemplate {
  /** The Jinja source. */
  readonly template: string;
  /** Where it came from, for error messages. */
  readonly source: string;
  /** The special tokens passed to the template (`bos_token`, `eos_token`, …), as strings. */
  readonly specialTokens: Readonly<Record<string, string | string[]>>;
  readonly #compiled: JinjaTemplate;

  /**
   * Compiles `template`; throws "Cannot parse chat template …" on a syntax error.
   *
   * @param specialTokens variables such as `bos_token` and `eos_token`, as the template sees them
   * @param source where the template came from, for error messages
   */
  constructor(
    template: string,
    specialTokens: Readonly<Record<string, string | string[]>> = {},
    source = "chat template",
  ) {
    if (typeof template !== "string") {
      throw new TypeError(`Cannot parse chat template of ${source}: it must be a string`);
    }
    this.template = template;
    this.source = source;
    this.specialTokens = { ...specialTokens };
    try {
      this.#compiled = new JinjaTemplate(template);
    } catch (e) {
      throw new Error(`Cannot parse chat template of ${source}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * The chat template of a parsed `tokenizer_config.json`, or `undefined` when it has none.
   * `chat_template` is a string, or a list of `{name, template}` of which the one named
   * "default" is used (transformers' choice when no name is asked for). The config's special
   * tokens (strings or `{content}` objects) become template variables.
   *
   * @param source where the config came from, for error messages
   * @example
   * ```ts
   * import { ChatTemplate } from "../mod.ts";
   * const t = ChatTemplate.fromTokenizerConfig({
   *   bos_token: { content: "<s>" },
   *   chat_template: [
   *     { name: "tool_use", template: "tools" },
   *     { name: "default", template: "{{ bos_token }}{{ messages[0].content }}" },
   *   ],
   * });
   * if (t?.render([{ role: "user", content: "x" }]) !== "<s>x") throw new Error("bad template");
   * if (ChatTemplate.fromTokenizerConfig({}) !== undefined) throw new Error("no template expected");
   * ```
   */
  static fromTokenizerConfig(
    config: unknown,
    source = "tokenizer_config.json",
  ): ChatTemplate | undefined {
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new Error(`Cannot read chat template of ${source}: expected a JSON object`);
    }
    const c = config as Record<string, unknown>;
    const raw = c.chat_template;
    if (raw === undefined || raw === null) return undefined;
    let template: string;
    if (typeof raw === "string") {
      template = raw;
    } else if (Array.isArray(raw)) {
      const named = raw.find((t) => (t as { name?: unknown })?.name === "default") as
        | { template?: unknown }
        | undefined;
      if (named === undefined) {
        const names = raw.map((t) => JSON.stringify((t as { name?: unknown })?.name)).join(", ");
        throw new Error(
          `Cannot read chat template of ${source}: chat_template lists templates named ` +
            `${names || "(none)"} but none named "default"`,
        );
      }
      if (typeof named.template !== "string") {
        throw new Error(
          `Cannot read chat template of ${source}: the "default" chat_template has no string template`,
        );
      }
      template = named.template;
    } else {
      throw new Error(
        `Cannot read chat template of ${source}: chat_template must be a string or a list of ` +
          `{name, template}, got ${typeof raw}`,
      );
    }
    const specialTokens: Record<string, string | string[]> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const content = specialTokenContent(c[key]);
      if (content !== undefined) specialTokens[key] = content;
    }
    if (Array.isArray(c.additional_special_tokens)) {
      specialTokens.additional_special_tokens = c.additional_special_tokens
        .map(specialTokenContent)
        .filter((t): t is string => t !== undefined);
    }
    return new ChatTemplate(template, specialTokens, source);
  }

  /**
   * The text of `messages` (see the module doc for the variables the template sees). Throws
   * "Cannot render chat template …" when the template raises (e.g. roles that do not alternate).
   */
  render(
    messages: readonly ChatTemplateMessage[],
    options: ChatTemplateRenderOptions = {},
  ): string {
    const fail = (why: string, cause?: unknown): never => {
      throw new Error(`Cannot render chat template of ${this.source}: ${why}`, { cause });
    };
    if (!Array.isArray(messages)) fail("messages must be an array");
    messages.forEach((m, i) => {
      if (typeof m?.role !== "string") fail(`messages[${i}].role must be a string`);
      if (typeof m.content !== "string") fail(`messages[${i}].content must be a string`);
    });
    try {
      return this.#compiled.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        tools: null,
        documents: null,
        ...this.specialTokens,
        ...options.variables,
      });
    } catch (e) {
      return fail((e as Error).message, e);
    }
  }
}

/**
 * The text of a special token as `tokenizer_config.json` writes it: a string, or an object with
 * a string `content` (an AddedToken); anything else (null, absent) gives undefined.
 */
export function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  const content = (value as { content?: unknown } | null | undefined)?.content;
  return typeof content === "string" ? content : undefined;
}
