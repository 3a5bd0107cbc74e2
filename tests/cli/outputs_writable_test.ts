/**
 * `deno task train` and `deno task pretrain` as a user runs them (child processes with a write
 * allow-list, as the tasks have): an output they cannot write is reported in one line, before any
 * model is loaded or trained, and no stack trace is printed.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs `deno run` of a cli/ script with read access and write access to `allowed` only. */
async function cli(script: string, allowed: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--frozen",
      "--no-prompt",
      "--allow-read",
      `--allow-write=${allowed}`,
      `cli/${script}`,
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
  };
}

/** The one `whet …:` error line of a failed run; asserts exit code 1 and no stack trace. */
function errorLine(run: Awaited<ReturnType<typeof cli>>, command: string): string {
  const all = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
  assert.equal(run.code, 1, all);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `no stack trace\n${all}`);
  const lines = run.stderr.split("\n").filter((l) => l.startsWith(`whet ${command}: `));
  assert.equal(lines.length, 1, all);
  return lines[0];
}

Deno.test("deno task pretrain --out DIR that cannot be written fails at once, before the corpus or the model", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/allowed`);
    await Deno.writeTextFile(`${tmp}/allowed/file`, "");
    const args = ["--preset=tiny", "--steps=1", "--documents=10", "--held-out=1"];
    // Outside the write allow-list (what happened with the task's --allow-write=models/base).
    const denied = await cli("pretrain.ts", `${tmp}/allowed`, [`--out=${tmp}/denied`, ...args]);
    assert.match(
      errorLine(denied, "pretrain"),
      new RegExp(
        `^whet pretrain: Cannot write ${tmp}/denied \\(--out\\): no write permission; run with --allow-write=${tmp}/denied$`,
      ),
    );
    assert.equal(denied.stdout, "", "nothing was generated or trained");
    // Below a file: no permission can help.
    const blocked = await cli("pretrain.ts", `${tmp}/allowed`, [
      `--out=${tmp}/allowed/file/base`,
      ...args,
    ]);
    assert.match(
      errorLine(blocked, "pretrain"),
      new RegExp(`^whet pretrain: Cannot write to --out ${tmp}/allowed/file/base: `),
    );
    assert.equal(blocked.stdout, "");
    // Bad arguments are one line too.
    const bad = await cli("pretrain.ts", `${tmp}/allowed`, ["--steps=0"]);
    assert.equal(
      errorLine(bad, "pretrain"),
      `whet pretrain: Cannot pretrain: --steps must be a positive integer, got "0"`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task train with an output or run folder it cannot write fails before loading the model", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/allowed`);
    await Deno.writeTextFile(`${tmp}/allowed/taken`, "");
    const tiny = ["--model.path=", "--model.preset=tiny", "--steps=1"];
    const denied = await cli("train.ts", `${tmp}/allowed`, [...tiny, `--out=${tmp}/runs`]);
    assert.match(
      errorLine(denied, "train"),
      new RegExp(
        `^whet train: Cannot write ${tmp}/runs \\(the output folder\\): no write permission; run with --allow-write=${tmp}/runs$`,
      ),
    );
    assert.equal(denied.stdout, "", "no model was loaded");
    const taken = await cli("train.ts", `${tmp}/allowed`, [
      ...tiny,
      `--out=${tmp}/allowed`,
      "--name=taken",
    ]);
    assert.match(
      errorLine(taken, "train"),
      new RegExp(`^whet train: Cannot write to the run folder ${tmp}/allowed/taken: `),
    );
    assert.equal(taken.stdout, "");
    const allow = await cli("train.ts", `${tmp}/allowed`, ["--resume-allow=lr"]);
    assert.equal(
      errorLine(allow, "train"),
      "whet train: Cannot use --resume-allow without --resume",
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
