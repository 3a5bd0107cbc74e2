import assert from "node:assert/strict";
import { ChatTemplate } from "../../models/chat_template.ts";
import { generate, GPT, gptConfig, HuggingFaceTokenizer } from "../../models/mod.ts";
import { gpu } from "../helpers.ts";
import { byteLevelJson, CHAT_TEMPLATES } from "./_llama_tokenizers.ts";

const CHAT = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "  Hello there!  " },
  { role: "user", content: "2+2?" },
  { role: "assistant", content: "4" },
];

function real(name: string): ChatTemplate {
  const { chat_template, bos_token, eos_token } = CHAT_TEMPLATES[name];
  return ChatTemplate.fromTokenizerConfig({ chat_template, bos_token, eos_token }, name)!;
}

Deno.test("`ChatTemplate` renders SmolLM2-Instruct's ChatML template exactly", () => {
  const t = real("SmolLM2-Instruct");
  assert.equal(
    t.render(CHAT),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
      "<|im_start|>assistant\n  Hello there!  <|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n4<|im_end|>\n",
  );
  // Without a system message the template supplies SmolLM2's own.
  assert.equal(
    t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face" +
      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("`ChatTemplate` renders Qwen2.5-Instruct's template exactly, tools none", () => {
  const t = real("Qwen2.5-Instruct");
  assert.equal(
    t.render(CHAT.slice(0, 4), { addGenerationPrompt: true }),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
      "<|im_start|>assistant\n  Hello there!  <|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  assert.equal(
    t.render([{ role: "user", content: "Hi" }, { role: "assistant", content: "Yo" }]),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant." +
      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n",
  );
});

Deno.test("`ChatTemplate` renders TinyLlama-Chat's Zephyr template exactly (eos_token after each turn)", () => {
  const t = real("TinyLlama-Chat");
  assert.equal(
    t.render(CHAT),
    "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n  Hello there!  </s>\n" +
      "<|user|>\n2+2?</s>\n<|assistant|>\n4</s>\n",
  );
  assert.equal(
    t.render(CHAT.slice(0, 2), { addGenerationPrompt: true }),
    "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n",
  );
});

Deno.test("`ChatTemplate` renders Llama-3-Instruct's template exactly (bos_token, trimmed contents)", () => {
  const t = real("Llama-3-Instruct");
  const head = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  assert.equal(
    t.render(CHAT),
    "<|begin_of_text|>" + head("system") + "Be brief.<|eot_id|>" + head("user") + "Hi<|eot_id|>" +
      head("assistant") + "Hello there!<|eot_id|>" + head("user") + "2+2?<|eot_id|>" +
      head("assistant") + "4<|eot_id|>",
  );
  assert.equal(
    t.render(CHAT.slice(1, 2), { addGenerationPrompt: true }),
    "<|begin_of_text|>" + head("user") + "Hi<|eot_id|>" + head("assistant"),
  );
});

Deno.test("`ChatTemplate` renders Llama-3.2-Instruct's template exactly, with date_string or today's date", () => {
  const t = real("Llama-3.2-Instruct");
  const head = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  const system = (date: string, message: string) =>
    "<|begin_of_text|>" + head("system") +
    `Cutting Knowledge Date: December 2023\nToday Date: ${date}\n\n${message}<|eot_id|>`;
  assert.equal(
    t.render(CHAT, { variables: { date_string: "26 Jul 2024" } }),
    system("26 Jul 2024", "Be brief.") + head("user") + "Hi<|eot_id|>" + head("assistant") +
      "Hello there!<|eot_id|>" + head("user") + "2+2?<|eot_id|>" + head("assistant") +
      "4<|eot_id|>",
  );
  // Without date_string the template calls strftime_now("%d %b %Y"): today, e.g. "05 Mar 2026".
  const today = t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
  const date = /Today Date: (\d{2} [A-Z][a-z]{2} \d{4})\n/.exec(today)?.[1];
  assert.ok(date, today);
  assert.equal(today, system(date, "") + head("user") + "Hi<|eot_id|>" + head("assistant"));
});

Deno.test("`ChatTemplate.fromTokenizerConfig()` reads a string or the default of a list, and special tokens", () => {
  assert.equal(ChatTemplate.fromTokenizerConfig({}), undefined);
  assert.equal(ChatTemplate.fromTokenizerConfig({ chat_template: null }), undefined);
  const t = ChatTemplate.fromTokenizerConfig({
    bos_token: { content: "<s>", lstrip: false },
    eos_token: "</s>",
    pad_token: null,
    unk_token: { content: "<unk>" },
    additional_special_tokens: ["<|x|>", { content: "<|y|>" }],
    chat_template: [
      { name: "rag", template: "rag" },
      {
        name: "default",
        template: "{{ bos_token }}{{ messages | length }}{{ eos_token }}{{ unk_token }}" +
          "{% if pad_token is defined %}pad{% endif %}{{ additional_special_tokens | join(',') }}",
      },
    ],
  }, "cfg.json")!;
  assert.equal(t.source, "cfg.json");
  assert.deepEqual(t.specialTokens, {
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    additional_special_tokens: ["<|x|>", "<|y|>"],
  });
  assert.equal(t.render([{ role: "user", content: "a" }]), "<s>1</s><unk><|x|>,<|y|>");
});

Deno.test("`ChatTemplate` passes add_generation_prompt, tools and documents (none) and extra variables", () => {
  const t = new ChatTemplate(
    "{{ add_generation_prompt }}|{{ tools is none }}|{{ documents is none }}|{{ x }}",
  );
  assert.equal(
    t.render([], { addGenerationPrompt: true, variables: { x: 7 } }),
    "true|true|true|7",
  );
  assert.equal(t.render([]), "false|true|true|");
});

Deno.test("`ChatTemplate` errors name the source and the reason", () => {
  assert.throws(
    () =>
      ChatTemplate.fromTokenizerConfig(
        { chat_template: [{ name: "rag", template: "x" }] },
        "c.json",
      ),
    /Cannot read chat template of c\.json: chat_template lists templates named "rag" but none named "default"/,
  );
  assert.throws(
    () => ChatTemplate.fromTokenizerConfig({ chat_template: 3 }, "c.json"),
    /Cannot read chat template of c\.json: chat_template must be a string or a list of \{name, template\}, got number/,
  );
  assert.throws(
    () => ChatTemplate.fromTokenizerConfig([], "c.json"),
    /Cannot read chat template of c\.json: expected a JSON object/,
  );
  assert.throws(
    () => new ChatTemplate("{% for m in messages %}", {}, "t.jinja"),
    /Cannot parse chat template of t\.jinja: /,
  );
  // Mistral-Instruct's check that roles alternate, through raise_exception.
  const mistral = new ChatTemplate(
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != " +
      "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate " +
      "user/assistant/user/assistant/...') }}{% endif %}{{ message['content'] }}{% endfor %}",
    { bos_token: "<s>" },
    "mistral",
  );
  assert.equal(mistral.render([{ role: "user", content: "a" }]), "<s>a");
  assert.throws(
    () => mistral.render([{ role: "assistant", content: "a" }]),
    /Cannot render chat template of mistral: Conversation roles must alternate user\/assistant/,
  );
  assert.throws(
    () => mistral.render([{ role: "user", content: 5 as unknown as string }]),
    /Cannot render chat template of mistral: messages\[0\]\.content must be a string/,
  );
});

Deno.test("`generate()` ends a templated chat's answer at any of the tokenizer's stop ids", async () => {
  const config = (generation: unknown) =>
    HuggingFaceTokenizer.fromJSON(
      byteLevelJson("smollm2"),
      {
        eos_token: "<|im_end|>",
        chat_template: CHAT_TEMPLATES["SmolLM2-Instruct"].chat_template,
      },
      "smollm2",
      generation,
    );
  const tokenizer = config({});
  const prompt = tokenizer.encode(tokenizer.chatTemplate!.render(
    [{ role: "system", content: "S" }, { role: "user", content: "Hi" }],
    { addGenerationPrompt: true },
  ));
  const model = await GPT.create(await gpu(), gptConfig("tiny", { vocab_size: 274 }), {
    seed: 3,
    trainable: false,
  });
  try {
    const free = (await generate(model, [prompt], { maxNewTokens: 8, eosId: null })).ids[0];
    // An untrained model: make its fourth token a stop id through generation_config.json, as
    // Qwen2.5 lists <|endoftext|> beside <|im_end|>.
    const stop = free[3];
    const withStop = config({ eos_token_id: [273, stop] });
    assert.deepEqual(withStop.stopIds, stop === 273 ? [273] : [273, stop]);
    const end = free.findIndex((id) => withStop.stopIds.includes(id));
    const out = await generate(model, [prompt], { maxNewTokens: 8, tokenizer: withStop });
    assert.deepEqual(out.ids[0], free.slice(0, end));
    assert.deepEqual(out.finishReasons, ["eos"]);
    // The same ids passed directly; null turns them off.
    const direct = await generate(model, [prompt], { maxNewTokens: 8, eosId: [273, stop] });
    assert.deepEqual(direct.ids[0], free.slice(0, end));
    const off = await generate(model, [prompt], {
      maxNewTokens: 8,
      tokenizer: withStop,
      eosId: null,
    });
    assert.deepEqual(off.ids[0], free);
    await assert.rejects(
      generate(model, [prompt], { maxNewTokens: 8, eosId: [273, 274] }),
      /Cannot generate: eosId 274 is outside the vocabulary 0\.\.273/,
    );
  } finally {
    model.release();
  }
});
