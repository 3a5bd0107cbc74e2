import assert from "node:assert/strict";
import {
  buildSuite,
  defineTask,
  drawUnique,
  HELD_OUT_TASKS,
  renderInstance,
  renderInstances,
  SUITE_MAX_CHARS,
  SUITE_TASKS,
  suiteTask,
  type Task,
  taskSplits,
  tokenizeExamples,
  type TokenizerLike,
  toToy,
  TRAINED_TASKS,
} from "../../data/mod.ts";
import { ByteTokenizer } from "../../models/tokenizer.ts";
import { workedAnswer } from "../../data/tasks/arithmetic.ts";

const SMALL = { train: 60, dev: 20, test: 20 };

Deno.test("the suite has the required tasks, metrics and at least five templates each", () => {
  assert.deepEqual(
    TRAINED_TASKS.map((t) => [t.name, t.metric]),
    [
      ["summarise", "rouge"],
      ["translate", "bleu"],
      ["sentiment", "accuracy"],
      ["arithmetic", "exact_match"],
      ["multiple_choice", "mc_accuracy"],
    ],
  );
  assert.ok(HELD_OUT_TASKS.length >= 2);
  for (const task of SUITE_TASKS) {
    assert.ok(task.templates.length >= 5, `${task.name} has ${task.templates.length} templates`);
    assert.equal(new Set(task.templates.map((t) => t.prompt)).size, task.templates.length);
    if (task.hasOptions) {
      const styles = new Set(task.templates.map((t) => t.optionStyle).filter(Boolean));
      assert.ok(styles.size >= 3, `${task.name} uses option styles ${[...styles]}`);
    }
  }
  assert.equal(suiteTask("translate").metric, "bleu");
  assert.throws(() => suiteTask("poetry"), /Cannot find task "poetry": the suite has summarise, /);
});

Deno.test("every suite task's examples fit the length budget under every template", () => {
  for (const task of SUITE_TASKS) {
    let longest = "";
    for (const inst of task.generate(1, 400)) {
      for (let k = 0; k < task.templates.length; k++) {
        const ex = renderInstance(task, inst, k);
        for (const completion of ex.choices ?? [ex.completion]) {
          const text = ex.prompt + completion;
          if (text.length > longest.length) longest = text;
        }
      }
    }
    assert.ok(
      longest.length <= SUITE_MAX_CHARS,
      `${task.name}: ${longest.length} characters: ${JSON.stringify(longest)}`,
    );
  }
  // So with the byte tokenizer and EOS they fit SUITE_MAX_CHARS + 1 ≤ 128 tokens ("error" policy).
  const bytes: TokenizerLike = new ByteTokenizer({ eosId: 0 });
  for (const s of buildSuite({ seed: 2, sizes: SMALL })) {
    const examples = [...s.train, ...s.dev, ...s.test];
    const set = tokenizeExamples(examples, bytes, { maxLength: SUITE_MAX_CHARS + 1 });
    assert.equal(set.examples.length, examples.length);
  }
});

Deno.test("`buildSuite()` is deterministic for a seed and differs for another seed", () => {
  const a = buildSuite({ seed: 4, sizes: SMALL });
  assert.deepEqual(buildSuite({ seed: 4, sizes: SMALL }), a);
  const b = buildSuite({ seed: 5, sizes: SMALL });
  a.forEach((s, i) => {
    assert.equal(s.train.length, 60);
    assert.equal(s.dev.length, 20);
    assert.equal(s.test.length, 20);
    assert.notDeepEqual(b[i].test, s.test, s.task.name);
  });
  // A task's data does not depend on which other tasks are built, and its test split not on the
  // train size.
  const alone = buildSuite({ seed: 4, sizes: { ...SMALL, train: 5 }, tasks: ["arithmetic"] });
  const full = a.find((s) => s.task.name === "arithmetic")!;
  assert.deepEqual(alone[0].test, full.test);
  assert.deepEqual(alone[0].dev, full.dev);
  assert.equal(alone[0].train.length, 5);
  assert.deepEqual(a.map((s) => s.heldOut), SUITE_TASKS.map((t) => HELD_OUT_TASKS.includes(t)));
  assert.throws(() => buildSuite({ tasks: ["arithmetic", "arithmetic"] }), /a task is named twice/);
});

Deno.test("suite splits do not share a prompt", () => {
  for (const s of buildSuite({ seed: 0, sizes: { train: 300, dev: 50, test: 50 } })) {
    const train = new Set(s.train.map((e) => e.prompt));
    for (const e of [...s.dev, ...s.test]) {
      assert.ok(!train.has(e.prompt), `${s.task.name}: ${e.prompt}`);
    }
    const dev = new Set(s.dev.map((e) => e.prompt));
    for (const e of s.test) assert.ok(!dev.has(e.prompt), `${s.task.name}: ${e.prompt}`);
  }
});

Deno.test("`taskSplits()` puts each problem in one split only, whatever template renders it", () => {
  // 30 problems exist; all of them are used, so a split overlap would show as a repeat.
  const task = defineTask({
    name: "tiny",
    metric: "exact_match",
    description: "n + 1",
    inputs: ["n"],
    hasOptions: false,
    templates: [
      { prompt: "{n}+1=", completion: "{answer}" },
      { prompt: "one more than {n}:", completion: "{answer}" },
    ],
    generate: (seed, n) =>
      drawUnique("tiny", seed, n, (rng) => {
        const k = rng.int(30);
        return { key: `${k}`, values: { n: `${k}` }, answer: `${k + 1}` };
      }),
  });
  const s = taskSplits(task, { seed: 9, sizes: { train: 20, dev: 5, test: 5 } });
  const problem = (p: string) => Number(p.match(/\d+/)![0]);
  const all = [...s.train, ...s.dev, ...s.test].map((e) => problem(e.prompt));
  assert.deepEqual([...all].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i));
});

/** A regular expression matching the prompts a template renders. */
function promptPattern(prompt: string): RegExp {
  const parts = prompt.split(/\{[a-z_]+\}/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]+?")}$`);
}

Deno.test("`renderInstances()` samples every template of every task", () => {
  for (const task of SUITE_TASKS) {
    const examples = renderInstances(task, task.generate(3, 300), 3);
    task.templates.forEach((t, k) => {
      assert.ok(
        examples.some((e) => promptPattern(t.prompt).test(e.prompt)),
        `${task.name} never used template ${k}`,
      );
    });
    const again = renderInstances(task, task.generate(3, 300), 3);
    assert.deepEqual(again, examples);
    assert.notDeepEqual(renderInstances(task, task.generate(3, 300), 4), examples);
  }
});

/** The instances of a task, checked against `answer(values, options)`. */
function checkAnswers(task: Task, answer: (v: Record<string, string>) => string): void {
  for (const inst of task.generate(8, 300)) {
    assert.equal(inst.answer, answer(inst.values), inst.key);
  }
}

/**
 * Every arithmetic answer is worked in true steps: each "x ± y [± z] = w" holds, the units step
 * starts from the operands' units (ten more after a borrow), the tens step uses the operands'
 * tens and "+ 1" exactly when the units carried ("- 1" when they borrowed), and it ends "so
 * <result>".
 */
function checkWorkedAnswers(): void {
  assert.equal(workedAnswer(37, 48, "+"), "units 7 + 8 = 15, tens 3 + 4 + 1 = 8, so 85");
  assert.equal(workedAnswer(66, 35, "+"), "units 6 + 5 = 11, tens 6 + 3 + 1 = 10, so 101");
  assert.equal(workedAnswer(83, 47, "-"), "units 13 - 7 = 6, tens 8 - 1 - 4 = 3, so 36");
  assert.equal(workedAnswer(47, 41, "-"), "units 7 - 1 = 6, tens 4 - 4 = 0, so 6");
  assert.equal(workedAnswer(7, 0, "+"), "units 7 + 0 = 7, tens 0 + 0 = 0, so 7");
  assert.throws(() => workedAnswer(3, 5, "-"), /Cannot work out 3 - 5: it is negative/);
  assert.throws(() => workedAnswer(100, 5, "+"), /operands must be integers 0-99/);
  let carries = 0, borrows = 0;
  for (const inst of suiteTask("arithmetic").generate(8, 300)) {
    const a = +inst.values.a, b = +inst.values.b, add = inst.values.op === "+";
    const m = inst.answer.match(
      /^units (\d+) ([+-]) (\d+) = (\d+), tens (\d+)( - 1)? ([+-]) (\d+)( \+ 1)? = (\d+), so (\d+)$/,
    );
    assert.ok(m, inst.answer);
    const [, u1, op1, u2, u, t1, borrowed, op2, t2, carry, t, result] = m;
    const extra = borrowed ?? carry ?? "";
    assert.equal(op1, inst.values.op, inst.answer);
    assert.equal(op2, inst.values.op, inst.answer);
    assert.equal(+u, add ? +u1 + +u2 : +u1 - +u2, inst.answer);
    assert.equal(+t, +t1 + (add ? 1 : -1) * (+t2 + (extra ? 1 : 0)), inst.answer);
    assert.equal(+u2, b % 10, inst.answer);
    assert.equal(+t1, Math.floor(a / 10), inst.answer);
    assert.equal(+t2, Math.floor(b / 10), inst.answer);
    const carried = add ? a % 10 + b % 10 >= 10 : a % 10 < b % 10;
    assert.equal(+u1, a % 10 + (!add && carried ? 10 : 0), inst.answer);
    assert.equal(extra, carried ? (add ? " + 1" : " - 1") : "", inst.answer);
    assert.equal(+result, add ? a + b : a - b, inst.answer);
    // The written digits make the result: the tens step, then the units step's last digit.
    assert.equal(+result, +t * 10 + +u % 10, inst.answer);
    if (carried) add ? carries++ : borrows++;
  }
  assert.ok(carries > 20 && borrows > 20, `${carries} carries, ${borrows} borrows`);
}

Deno.test("suite tasks compute the right answers", () => {
  assert.equal(toToy("the big cat sees the small dog"), "miso gra rulo pim tak");
  assert.equal(toToy("the king helps the girl"), "vor lin sud");
  assert.throws(() => toToy("the cat sees a dog"), /Cannot translate "the cat sees a dog"/);
  checkAnswers(suiteTask("translate"), (v) => toToy(v.input));
  checkWorkedAnswers();
  checkAnswers(suiteTask("reverse_words"), (v) => v.input.split(" ").reverse().join(" "));
  checkAnswers(suiteTask("uppercase"), (v) => v.input.toUpperCase());
  checkAnswers(suiteTask("count_words"), (v) => `${v.input.split(" ").length}`);
  checkAnswers(suiteTask("summarise"), (v) => {
    // The one sentence with "a" in it, without its adjective.
    const event = v.input.split(/(?<=\.) /).find((s) => / a /.test(s))!;
    return event.replace(/ a \w+ /, " a ");
  });
  checkAnswers(suiteTask("sentiment"), (v) => {
    const positive = /\b(good|great|lovely|fun|nice|superb|loved|liked|enjoyed)\b/.test(v.input);
    return positive !== / not /.test(v.input) ? "positive" : "negative";
  });
  for (const inst of suiteTask("multiple_choice").generate(8, 300)) {
    const { options, gold } = inst;
    assert.ok(options && (options.length === 3 || options.length === 4), inst.key);
    assert.equal(options[gold!], inst.answer);
    if (inst.values.question === "Which number is the largest?") {
      assert.equal(Number(inst.answer), Math.max(...options.map(Number)));
    }
  }
  // Gold positions are spread over the options, not always first.
  const golds = new Set(suiteTask("multiple_choice").generate(0, 100).map((i) => i.gold));
  assert.deepEqual([...golds].sort(), [0, 1, 2, 3]);
});
