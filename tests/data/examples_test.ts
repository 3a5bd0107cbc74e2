import assert from "node:assert/strict";
import { DataError, isChat, parseJsonl, readJsonl } from "../../data/mod.ts";
import { invalidUtf8At } from "../../data/examples.ts";
import { Rng } from "../../runtime/rng.ts";

/** The DataError thrown by `fn`, failing if it throws anything else or nothing. */
function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    return e;
  }
  assert.fail("expected a DataError, but nothing was thrown");
}

Deno.test("`parseJsonl()` reads prompt/completion and chat lines, skipping blank lines", () => {
  const text = [
    '{"prompt": "2+2=", "completion": "4", "task": "add"}',
    "",
    "   ",
    '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, ' +
    '{"role": "assistant", "content": "hello"}]}',
    '{"prompt": "", "completion": "x"}\r',
  ].join("\n");
  const examples = parseJsonl(text, { file: "mine.jsonl" });
  assert.deepEqual(examples, [
    { prompt: "2+2=", completion: "4", task: "add", source: { file: "mine.jsonl", line: 1 } },
    {
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
      source: { file: "mine.jsonl", line: 4 },
    },
    { prompt: "", completion: "x", source: { file: "mine.jsonl", line: 5 } },
  ]);
  assert.deepEqual(examples.map(isChat), [false, true, false]);
});

Deno.test("`parseJsonl()` reports the file and line of each malformed line, in one error", () => {
  const lines = [
    '{"prompt": "ok", "completion": "fine"}', // 1
    '{"prompt": "a", "completion": ', // 2: bad JSON
    '["prompt", "completion"]', // 3: not an object
    '{"prompt": "a"}', // 4: missing completion
    '{"prompt": "a", "completion": "b", "answer": "c"}', // 5: extra field
    '{"prompt": 3, "completion": "b"}', // 6: wrong type
    '{"prompt": "", "completion": ""}', // 7: both empty
    '{"messages": [{"role": "robot", "content": "x"}]}', // 8: unknown role
    '{"messages": []}', // 9: no messages
    '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}', // 10
    '{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}', // 11
    '{"prompt": "a", "completion": "b", "task": 7}', // 12
  ];
  const e = dataError(() => parseJsonl(lines.join("\n"), { file: "data/train.jsonl" }));
  assert.equal(e.total, 11);
  assert.deepEqual(
    e.issues.map((i) => i.where),
    [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => `data/train.jsonl:${n}`),
  );
  const message = (line: number) => e.issues.find((i) => i.where.endsWith(`:${line}`))!.message;
  assert.match(message(2), /^invalid JSON/);
  assert.match(message(3), /expected a JSON object, got an array/);
  assert.match(message(4), /missing field "completion"/);
  assert.match(message(5), /unknown field "answer"/);
  assert.match(message(6), /field "prompt" must be a string, got number 3/);
  assert.match(message(7), /prompt and completion are both empty/);
  assert.match(message(8), /messages\[0\]: unknown role "robot"/);
  assert.match(message(9), /"messages" is empty/);
  assert.match(message(10), /last message must be from the assistant/);
  assert.match(message(11), /messages\[0\]: missing field "content"/);
  assert.match(message(12), /field "task" must be a string/);
  assert.match(e.message, /^Cannot parse data\/train\.jsonl: 11 malformed lines\n/);
  assert.match(e.message, /\n {2}data\/train\.jsonl:4: missing field "completion"\n/);
});

Deno.test("`parseJsonl()` lists at most maxErrors lines and counts the rest", () => {
  const text = Array.from(
    { length: 30 },
    (_, i) => (i % 2 ? "{" : '{"prompt": "a", "completion": "b"}'),
  )
    .join("\n");
  const e = dataError(() => parseJsonl(text, { maxErrors: 4 }));
  assert.equal(e.total, 15);
  assert.deepEqual(e.issues.map((i) => i.where), [
    "<string>:2",
    "<string>:4",
    "<string>:6",
    "<string>:8",
  ]);
  assert.match(e.message, /\.\.\. and 11 more$/);
  assert.throws(() => parseJsonl("", { maxErrors: 0 }), /maxErrors must be a positive integer/);
});

Deno.test("`readJsonl()` parses a file and names its path in errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "whet_data_" });
  try {
    const good = `${dir}/good.jsonl`, bad = `${dir}/bad.jsonl`;
    await Deno.writeTextFile(
      good,
      '{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": "d"}\n',
    );
    await Deno.writeTextFile(bad, '{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n');
    const examples = await readJsonl(good);
    assert.deepEqual(examples.map((e) => "prompt" in e && e.prompt), ["a", "c"]);
    assert.deepEqual(examples[1].source, { file: good, line: 3 });
    await assert.rejects(() => readJsonl(bad), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.issues[0].where, `${bad}:2`);
      return true;
    });
    await assert.rejects(() => readJsonl(`${dir}/missing.jsonl`), /Cannot read .*missing\.jsonl/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`readJsonl()` refuses bytes that are not UTF-8, naming each line, unless told to replace them", async () => {
  // Issue 14: they became U+FFFD without a word.
  const dir = await Deno.makeTempDir({ prefix: "whet_data_" });
  try {
    const path = `${dir}/latin1.jsonl`;
    const enc = new TextEncoder();
    const line = (text: string) => enc.encode(`{"prompt": "${text}", "completion": "x"}\n`);
    const bytes = new Uint8Array([
      ...line("fine é"), // line 1: valid two-byte UTF-8
      ...enc.encode('{"prompt": "caf'), // line 2: Latin-1 é (0xe9), then a valid ending
      0xe9,
      ...enc.encode('", "completion": "x"}\n'),
      ...line("ok"), // line 3
      ...enc.encode('{"prompt": "'), // line 4: a lone 0xff
      0xff,
      ...enc.encode('", "completion": "x"}\n'),
    ]);
    await Deno.writeFile(path, bytes);
    await assert.rejects(readJsonl(path), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.message.split("\n")[0], `Cannot read ${path}: 2 lines are not valid UTF-8`);
      assert.deepEqual(e.issues.map((i) => i.where), [`${path}:2`, `${path}:4`]);
      assert.match(
        e.issues[0].message,
        /^invalid UTF-8 at byte 16 of the line \(0xe9\); read with invalidUtf8: "replace"/,
      );
      assert.match(e.issues[1].message, /byte 13 of the line \(0xff\)/);
      return true;
    });
    await assert.rejects(readJsonl(path, { maxErrors: 1 }), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.issues.length, 1);
      assert.equal(e.total, 2);
      return true;
    });
    const replaced = await readJsonl(path, { invalidUtf8: "replace" });
    assert.deepEqual(replaced.map((e) => "prompt" in e && e.prompt), [
      "fine é",
      "caf\ufffd",
      "ok",
      "\ufffd",
    ]);
    // A byte-order mark is still skipped, as before.
    await Deno.writeFile(path, new Uint8Array([0xef, 0xbb, 0xbf, ...line("bom")]));
    assert.equal((await readJsonl(path)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`invalidUtf8At()` agrees with TextDecoder's fatal mode on seeded random bytes", () => {
  const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const rng = new Rng(14);
  // Bytes drawn mostly from the interesting ranges: ASCII, continuation, lead bytes, invalid.
  const pool = [
    0x41,
    0x80,
    0x8f,
    0x90,
    0x9f,
    0xa0,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xed,
    0xef,
    0xf0,
    0xf4,
    0xf5,
    0xff,
  ];
  for (let n = 0; n < 20_000; n++) {
    const bytes = Uint8Array.from(
      { length: 1 + rng.int(6) },
      () => rng.float() < 0.7 ? pool[rng.int(pool.length)] : rng.int(256),
    );
    let valid = true;
    try {
      fatal.decode(bytes);
    } catch {
      valid = false;
    }
    assert.equal(invalidUtf8At(bytes) === -1, valid, `[${[...bytes].map((b) => b.toString(16))}]`);
  }
  assert.equal(invalidUtf8At(new Uint8Array([0x61, 0xed, 0xa0, 0x80])), 1); // a surrogate
  assert.equal(invalidUtf8At(new Uint8Array([0xf4, 0x90, 0x80, 0x80])), 0); // above U+10FFFF
  assert.equal(invalidUtf8At(new Uint8Array([0xe0, 0x80, 0x80])), 0); // overlong
  assert.equal(invalidUtf8At(new Uint8Array([0xf0, 0x9f, 0x98, 0x80])), -1); // 😀
});
