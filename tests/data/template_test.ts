import assert from "node:assert/strict";
import {
  compileTemplate,
  defineTask,
  drawUnique,
  formatOptions,
  placeholders,
  renderInstance,
  renderTemplate,
  type TaskSpec,
} from "../../data/mod.ts";

const quiz = { inputs: ["question"], hasOptions: true };

Deno.test("`placeholders()` lists names in order and rejects stray braces", () => {
  assert.deepEqual(placeholders("{b} and {a} and {b} {{not}} }}"), ["b", "a"]);
  assert.throws(
    () => placeholders("{bad name}"),
    /Cannot parse template: bad placeholder at offset 0/,
  );
  assert.throws(() => placeholders("x } y"), /unmatched } at offset 2/);
  assert.throws(() => placeholders("{open"), /bad placeholder/);
});

Deno.test("`formatOptions()` writes each option style", () => {
  const o = ["red", "blue", "green"];
  assert.equal(formatOptions(o, "dash"), "- red\n- blue\n- green");
  assert.equal(formatOptions(o, "letters"), "(A) red (B) blue (C) green");
  assert.equal(formatOptions(o, "numbered"), "1. red\n2. blue\n3. green");
  assert.equal(formatOptions(o, "inline"), "red, blue or green");
  assert.equal(formatOptions(["yes", "no"], "inline"), "yes or no");
});

Deno.test("`compileTemplate()` rejects unknown placeholders and misuse of {answer} and {options}, naming the template", () => {
  const where = 'task "quiz" template 2';
  const cases: [Parameters<typeof compileTemplate>[0], RegExp][] = [
    [{ prompt: "{question} {colour}", completion: "{answer}" }, /unknown placeholder \{colour\}/],
    [
      { prompt: "{question}", completion: "{answer} {extra}" },
      /unknown placeholder \{extra\} in the completion/,
    ],
    [{ prompt: "{question} {answer}", completion: "{answer}" }, /the prompt uses \{answer\}/],
    [{ prompt: "{question}", completion: "yes" }, /the completion does not use \{answer\}/],
    [
      { prompt: "{question} {options}", completion: "{answer}" },
      /\{options\} needs an optionStyle/,
    ],
    [
      { prompt: "{question}", completion: "{answer}", optionStyle: "dash" },
      /does not use \{options\}/,
    ],
    [
      { prompt: "{question} {options}", completion: "{answer}", optionStyle: "bullets" as "dash" },
      /unknown option style "bullets"/,
    ],
    [{ prompt: "{question} {", completion: "{answer}" }, /bad placeholder/],
  ];
  for (const [spec, why] of cases) {
    assert.throws(() => compileTemplate(spec, quiz, where), (e: Error) => {
      assert.ok(e.message.startsWith(`Cannot define ${where}: `), e.message);
      assert.match(e.message, why);
      return true;
    });
  }
  assert.throws(
    () =>
      compileTemplate({ prompt: "{options}", completion: "{answer}", optionStyle: "dash" }, {
        inputs: [],
        hasOptions: false,
      }, where),
    /unknown placeholder \{options\}/,
  );
});

Deno.test("`renderTemplate()` fills fields, options and literal braces", () => {
  const t = compileTemplate(
    { prompt: "{{Q}} {question}\n{options}\nA:", completion: " {answer}", optionStyle: "letters" },
    quiz,
    "test",
  );
  assert.deepEqual(t.promptFields, ["question", "options"]);
  assert.deepEqual(renderTemplate(t, { question: "Colour?", answer: "red" }, ["red", "blue"]), {
    prompt: "{Q} Colour?\n(A) red (B) blue\nA:",
    completion: " red",
  });
  assert.throws(() => renderTemplate(t, { answer: "red" }, ["red"]), /no value for \{question\}/);
});

function spec(templates: TaskSpec["templates"]): TaskSpec {
  return {
    name: "pick",
    metric: "mc_accuracy",
    description: "pick one",
    inputs: ["question"],
    hasOptions: true,
    templates,
    generate: (seed, n) =>
      drawUnique("pick", seed, n, (rng) => {
        const gold = rng.int(3), q = `q${rng.int(1000)}`;
        const options = ["x", "y", "z"];
        return { key: q, values: { question: q }, answer: options[gold], options, gold };
      }),
  };
}

Deno.test("`defineTask()` names the task and template of a bad placeholder", () => {
  const good = {
    prompt: "{question} {options}",
    completion: " {answer}",
    optionStyle: "inline" as const,
  };
  assert.throws(
    () =>
      defineTask(spec([good, good, { prompt: "{question} {optoins}", completion: "{answer}" }])),
    /^Error: Cannot define task "pick" template 2: unknown placeholder \{optoins\} \(known: \{question\}, \{options\}\)$/,
  );
  assert.throws(() => defineTask(spec([])), /task "pick": it has no templates/);
  assert.throws(
    () => defineTask({ ...spec([good]), name: "Pick Me" }),
    /the name must be snake_case/,
  );
  assert.throws(
    () => defineTask({ ...spec([good]), inputs: ["answer"] }),
    /\{answer\} is reserved/,
  );
});

Deno.test("`defineTask()` checks what the generator returns", () => {
  const good = {
    prompt: "{question} {options}",
    completion: " {answer}",
    optionStyle: "dash" as const,
  };
  const task = defineTask(spec([good]));
  assert.equal(task.generate(1, 20).length, 20);
  const broken = (inst: object) =>
    defineTask({
      ...spec([good]),
      generate: () => [{ key: "k", values: { question: "q" }, answer: "x", ...inst }],
    });
  assert.throws(
    () => broken({ options: ["x", "y"], gold: 1 }).generate(0, 1),
    /instance 0: answer is not options\[gold\]/,
  );
  assert.throws(
    () => broken({ options: ["x", "y"], gold: 2 }).generate(0, 1),
    /gold index 2 is not an index of its 2 options/,
  );
  assert.throws(() => broken({ options: ["x", "x"], gold: 0 }).generate(0, 1), /repeated options/);
  assert.throws(
    () => broken({ options: ["x", "y"], gold: 0 }).generate(0, 2),
    /asked for 2 instances, got 1/,
  );
  assert.throws(
    () => task.generate(0, 2000),
    /Cannot generate task "pick": asked for 2000 distinct instances/,
  );
});

Deno.test("`renderInstance()` renders the choices with the completion template", () => {
  const task = defineTask(
    spec([{
      prompt: "{question}? {options}",
      completion: " It is {answer}.",
      optionStyle: "inline",
    }]),
  );
  const ex = renderInstance(task, {
    key: "k",
    values: { question: "Which" },
    answer: "y",
    options: ["x", "y"],
    gold: 1,
  }, 0);
  assert.deepEqual(ex, {
    prompt: "Which? x or y",
    completion: " It is y.",
    task: "pick",
    choices: [" It is x.", " It is y."],
    gold: 1,
  });
  assert.throws(
    () => renderInstance(task, { key: "k", values: {}, answer: "y" }, 3),
    /no template 3/,
  );
});
