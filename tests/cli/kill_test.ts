/**
 * The kill test: a training process (tests/cli/_kill_child.ts, runJob on a tiny model with a
 * checkpoint every 2 steps) is killed with SIGKILL again and again, each time resumed with
 * `resume: true`, and must end with exactly the losses and adapter of an uninterrupted run and no
 * temporary folder or file left. The kill moments are seeded: inside every stage of a checkpoint
 * save (the child pauses there and is killed), and at random delays after a logged step.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Rng } from "../../mod.ts";
import { KILL_STEPS as STEPS } from "./_kill_child.ts";

const SEED = 14;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./_kill_child.ts", import.meta.url));
const STAGES = ["created", "partial", "verified", "moved", "renamed"];

/** Where one child is killed: paused inside a save, or `delay` ms after it logs step `after`. */
type Kill = { pause: number; stage: string } | { after: number; delay: number };

/**
 * Kill points with increasing steps, each past the step the previous kill can have left the
 * checkpoint at, so that every one is reached: three save stages (always the swap window "moved",
 * where resume used to start over) and two delays. Every stage of a save is covered without
 * processes by tests/train/checkpoint_test.ts; each process here costs seconds of shader compiles.
 */
function plan(seed: number): Kill[] {
  const rng = new Rng(seed);
  const stages = ["moved", ...rng.shuffle(STAGES.filter((s) => s !== "moved")).slice(0, 2)];
  const kinds = rng.shuffle([...stages.map(() => "pause"), "after", "after"]);
  rng.shuffle(stages);
  const kills: Kill[] = [];
  let step = 0; // no kill below this step can be reached any more
  for (const kind of kinds) {
    const at = step + 2 + 2 * rng.int(2);
    if (kind === "pause") {
      kills.push({ pause: at, stage: stages.pop()! });
      step = at;
    } else {
      // A kill up to 120 ms (about two steps) after step `at` lands before step at + 4 is saved.
      kills.push({ after: at, delay: rng.int(120) });
      step = at + 4;
    }
  }
  if (step >= STEPS) throw new Error(`kill plan needs ${step} steps, the job has ${STEPS}`);
  return kills;
}

interface ChildRun {
  status: Deno.CommandStatus;
  lines: string[];
  stderr: string;
}

/** Runs the child on `out`, calling `onLine` for each stdout line as it comes. */
async function runChild(
  out: string,
  flags: string[],
  onLine: (line: string, child: Deno.ChildProcess) => void = () => {},
): Promise<ChildRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--frozen",
      "--no-prompt",
      "--allow-read",
      `--allow-write=${out}`,
      CHILD,
      out,
      ...flags,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines: string[] = [];
  let rest = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    for (let i = rest.indexOf("\n"); i >= 0; i = rest.indexOf("\n")) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      lines.push(line);
      onLine(line, child);
    }
  }
  return { status: await child.status, lines, stderr: await stderr };
}

function losses(run: ChildRun): number[] {
  const line = run.lines.find((l) => l.startsWith("losses "));
  assert.ok(
    run.status.success && line,
    `child failed (${JSON.stringify(run.status)}):\n${run.lines.join("\n")}\n${run.stderr}`,
  );
  return JSON.parse(line.slice(7));
}

/** Every path under `dir` (relative), sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix + e.name;
    out.push(path);
    if (e.isDirectory) out.push(...await tree(dir, `${path}/`));
  }
  return out.sort();
}

Deno.test("a training process killed with SIGKILL at seeded moments (inside checkpoint saves, the swap window included, and between steps) resumes from its last complete checkpoint to the uninterrupted run's losses and adapter, leaving no temporary folders", async () => {
  const tmp = await Deno.makeTempDir();
  // The uninterrupted run shares the two cores with the killed ones.
  const wholeRun = runChild(`${tmp}/whole`, []);
  try {
    const kills = plan(SEED);
    const transcript: string[] = [];
    // The step the next process must resume at: exact after a kill inside a save (the new
    // checkpoint counts once verified), at least the logged step after a kill between steps.
    let resumeAt = { step: 0, exact: true };
    const checkResumed = (run: ChildRun) => {
      const m = run.lines.map((l) => /^log resumed from .* at step (\d+)/.exec(l)).find((x) => x);
      const step = m ? Number(m[1]) : 0;
      transcript.push(`  resumed at step ${step}`);
      const ok = resumeAt.exact ? step === resumeAt.step : step >= resumeAt.step;
      assert.ok(ok, `expected step ${resumeAt.step}:\n${transcript.join("\n")}`);
    };
    for (const [i, kill] of kills.entries()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const flags = [
        ...(i === 0 ? [] : ["--resume"]),
        ...("pause" in kill ? [`--pause=${kill.pause}:${kill.stage}`] : []),
      ];
      const run = await runChild(`${tmp}/killed`, flags, (line, child) => {
        const killNow = "pause" in kill
          ? line === `pause ${kill.pause} ${kill.stage}`
          : line === `progress ${kill.after}`;
        if (!killNow) return;
        const delay = "delay" in kill ? kill.delay : 0;
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // Already exited by itself: the status check below reports the kill as not reached.
          }
        }, delay);
      });
      clearTimeout(timer);
      checkResumed(run);
      transcript.push(`${JSON.stringify(kill)}: killed after "${run.lines.at(-1)}"`);
      resumeAt = "pause" in kill
        ? {
          step: ["created", "partial"].includes(kill.stage) ? kill.pause - 2 : kill.pause,
          exact: true,
        }
        : { step: kill.after, exact: false };
      assert.equal(
        run.status.signal,
        "SIGKILL",
        `kill ${i} ${JSON.stringify(kill)} was not reached (${JSON.stringify(run.status)}):\n${
          transcript.join("\n")
        }\n${run.lines.join("\n")}\n${run.stderr}`,
      );
    }
    const last = await runChild(`${tmp}/killed`, ["--resume"]);
    checkResumed(last);
    const whole = await wholeRun;
    assert.deepEqual(losses(last), losses(whole), transcript.join("\n"));
    const adapter = "k/adapter/adapter_model.safetensors";
    assert.deepEqual(
      await Deno.readFile(`${tmp}/killed/${adapter}`),
      await Deno.readFile(`${tmp}/whole/${adapter}`),
      "the same adapter bytes",
    );
    const files = await tree(`${tmp}/killed`);
    assert.deepEqual(files, await tree(`${tmp}/whole`), "the same files, no temporary ones");
    assert.deepEqual(
      files.filter((f) => /(^|\/)\.(checkpoint|write-check)\.|\.tmp$/.test(f)),
      [],
    );
    const state = JSON.parse(
      await Deno.readTextFile(`${tmp}/killed/k/checkpoint/trainer_state.json`),
    );
    assert.equal(state.step, STEPS);
  } finally {
    await wholeRun.catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
});
