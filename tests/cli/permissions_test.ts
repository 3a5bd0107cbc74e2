/**
 * Reads and writes Deno refuses are reported as what they are, naming the flag that grants them
 * (issue 13: a file outside the checkout was reported as "does not exist"). Each case runs the
 * command as a user does, a child `deno run` with a read or write allow-list that leaves the file
 * out, and fails before any model is loaded or trained.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { explainAccess } from "../../cli/common.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** `deno run` of a cli/ script with only the checkout readable and only `write` writable. */
async function cli(script: string, write: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--frozen",
      "--no-prompt",
      `--allow-read=${ROOT}`,
      `--allow-write=${write}`,
      `cli/${script}`,
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** The error line of a failed run starting `whet <command>: `; no stack trace, nothing trained. */
function errorLine(run: Awaited<ReturnType<typeof cli>>, command: string): string {
  const all = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
  assert.notEqual(run.code, 0, all);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `no stack trace\n${all}`);
  assert.doesNotMatch(run.stdout, /step|loss/, `nothing trained\n${all}`);
  const line = run.stderr.split("\n").find((l) => l.startsWith(`whet ${command}: `));
  assert.ok(line, all);
  return line;
}

const TINY = ["--model.path=", "--model.preset=tiny", "--steps=1", "--data.train_size=4"];

Deno.test("deno task train names --allow-read for data, a model folder and a config file outside the allow-list", async () => {
  const outside = await Deno.makeTempDir();
  const runs = await Deno.makeTempDir();
  try {
    const data = `${outside}/x.jsonl`;
    await Deno.writeTextFile(data, '{"prompt": "a", "completion": "b"}\n');
    const noData = await cli("train.ts", runs, [...TINY, `--out=${runs}`, `--data=${data}`]);
    assert.equal(
      errorLine(noData, "train"),
      `whet train: Cannot read ${data} (data.train_file): no read permission; run with --allow-read=${outside}`,
    );

    const model = `${outside}/gpt2`;
    await Deno.mkdir(model);
    await Deno.writeTextFile(`${model}/config.json`, "{}");
    const noModel = await cli("train.ts", runs, [`--out=${runs}`, `--model=${model}`]);
    assert.equal(
      errorLine(noModel, "train"),
      `whet train: Cannot read ${model}/config.json (model.path): no read permission; run with --allow-read=${model}`,
    );

    const yaml = `${outside}/run.yaml`;
    await Deno.writeTextFile(yaml, "name: x\n");
    const noConfig = await cli("train.ts", runs, [yaml, ...TINY]);
    assert.equal(
      errorLine(noConfig, "train"),
      `whet train: Cannot read ${yaml} (config file): no read permission; run with --allow-read=${outside}`,
    );
  } finally {
    await Deno.remove(outside, { recursive: true });
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("deno task train names --allow-write for an output folder outside the allow-list", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/allowed`);
    const run = await cli("train.ts", `${tmp}/allowed`, [...TINY, `--out=${tmp}/runs`]);
    assert.equal(
      errorLine(run, "train"),
      `whet train: Cannot write ${tmp}/runs (the output folder): no write permission; run with --allow-write=${tmp}/runs`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task generate and eval name --allow-read for a model folder and a predictions file", async () => {
  const outside = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${outside}/gpt2`);
    await Deno.writeTextFile(`${outside}/gpt2/config.json`, "{}");
    const gen = await cli("generate.ts", "/nonexistent", [
      `--model=${outside}/gpt2`,
      "--prompt=hi",
    ]);
    assert.equal(
      errorLine(gen, "generate"),
      `whet generate: Cannot read ${outside}/gpt2/config.json (--model): no read permission; run with --allow-read=${outside}/gpt2`,
    );
    await Deno.writeTextFile(`${outside}/pred.txt`, "a\n");
    const ev = await cli("eval.ts", "/nonexistent", [
      "--metric=exact_match",
      `--predictions=${outside}/pred.txt`,
      `--references=${ROOT}/deno.json`,
    ]);
    assert.equal(
      errorLine(ev, "eval"),
      `whet eval: Cannot read ${outside}/pred.txt (--predictions): no read permission; run with --allow-read=${outside}`,
    );
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("explainAccess() grants the folder given, or the refused path outside it, and leaves other errors alone", () => {
  const denied = (access: string, path: string) =>
    new Deno.errors.NotCapable(
      `Requires ${access} access to "${path}", run again with the --allow-${access} flag`,
    );
  // A folder given: the flag grants it, whichever file inside was refused.
  const inModel = explainAccess(denied("read", "/m/gpt2/tokenizer.json"), {
    path: "/m/gpt2/",
    folder: true,
  });
  assert.equal(
    inModel?.message,
    "Cannot read /m/gpt2/tokenizer.json: no read permission; run with --allow-read=/m/gpt2",
  );
  // Refused outside the folder given (a link, an absolute path in a file): the refused path.
  const elsewhere = explainAccess(denied("read", "/other/x"), { path: "/m/gpt2", folder: true });
  assert.match(elsewhere!.message, /--allow-read=\/other\/x$/);
  // A relative file in the working folder: `.`; wrapped errors are found through their cause.
  const wrapped = new Error("Cannot load", { cause: denied("read", "data.jsonl") });
  assert.match(explainAccess(wrapped, { path: "data.jsonl" })!.message, /--allow-read=\.$/);
  // A prefix that is not a folder boundary is not inside: /data2 is not in /data.
  const sibling = explainAccess(denied("read", "/data2/x"), { path: "/data/y.jsonl" });
  assert.match(sibling!.message, /--allow-read=\/data2\/x$/);
  // Writes name --allow-write; anything else is not a refusal.
  assert.match(explainAccess(denied("write", "/o/r"))!.message, /^Cannot write \/o\/r: no write/);
  assert.equal(explainAccess(new Deno.errors.NotFound("No such file")), undefined);
  assert.equal(explainAccess("not an error"), undefined);
});

Deno.test("deno task pretrain names --allow-read for an output folder it may write but not read back, before training", async () => {
  // Regression: with --allow-write for --out but no --allow-read, a pretraining run trained for
  // 45 minutes and then failed to verify model.safetensors (every output is read back before it
  // replaces the last good copy).
  const out = await Deno.makeTempDir();
  try {
    const run = await cli("pretrain.ts", out, ["--out", out, "--steps", "1", "--documents", "4"]);
    assert.equal(
      errorLine(run, "pretrain"),
      `whet pretrain: Cannot read ${out}/${
        run.stderr.match(/\.write-check\.\w+/)?.[0]
      } (--out): no read permission; run with --allow-read=${out}`,
    );
    assert.deepEqual([...Deno.readDirSync(out)], [], "no probe file left");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
