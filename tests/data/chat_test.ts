import assert from "node:assert/strict";
import { chatToPromptCompletion, DataError, renderSegments } from "../../data/mod.ts";

Deno.test("`renderSegments()` masks speakers, system and user turns and trains assistant turns", () => {
  const segments = renderSegments({
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "Bye" },
      { role: "assistant", content: "Ciao" },
    ],
  });
  assert.deepEqual(segments, [
    { text: "System: Be brief.\nUser: Hi\nAssistant: ", trained: false },
    { text: "Hello\n", trained: true },
    { text: "User: Bye\nAssistant: ", trained: false },
    { text: "Ciao", trained: true },
  ]);
  assert.deepEqual(renderSegments({ prompt: "Q", completion: "A" }), [
    { text: "Q", trained: false },
    { text: "A", trained: true },
  ]);
});

Deno.test("`chatToPromptCompletion()` ends the prompt at the last assistant turn", () => {
  const pc = chatToPromptCompletion({
    messages: [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "2+2?" },
      { role: "assistant", content: "4" },
    ],
    task: "chat",
  });
  assert.deepEqual(pc, {
    prompt: "User: Hi\nAssistant: Hello\nUser: 2+2?\nAssistant: ",
    completion: "4",
    task: "chat",
  });
});

Deno.test("`renderSegments()` rejects a chat that does not end with the assistant", () => {
  assert.throws(
    () =>
      renderSegments({
        messages: [{ role: "user", content: "Hi" }],
        source: { file: "c.jsonl", line: 9 },
      }),
    (e: Error) =>
      e instanceof DataError && /last message must be from the assistant/.test(e.message) &&
      e.message.includes("c.jsonl:9"),
  );
});
