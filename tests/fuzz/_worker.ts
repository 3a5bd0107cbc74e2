/// <reference lib="deno.window" />
/**
 * The fuzz worker: loads the inputs it is sent, one at a time, and reports each outcome. It runs
 * in a worker so that the test can stop it when one input runs past the time bound (a hang in
 * synchronous code cannot be interrupted from inside).
 *
 * Messages in: `{ target, indices }`. Messages out: `{ t: "dir", dir }` once, then per input
 * `{ t: "start", i }` (after its file is written, before it is loaded) and
 * `{ t: "done", i, ms, loads, errors, crashes }`, and `{ t: "end" }`.
 *
 * @module
 */

import { CANARY } from "./_canary.ts";
import { inputOf } from "./_mutate.ts";
import { classify } from "./_criterion.ts";

/** What the worker is asked to run. */
export interface Job {
  /** A target's name. */
  target: string;
  /** The inputs to run, in order. */
  indices: number[];
}

const self = globalThis as unknown as {
  onmessage: (ev: MessageEvent<Job>) => void;
  postMessage: (message: unknown) => void;
};

// Libraries warn on the console about the broken files they are fed (@huggingface/tokenizers:
// "Unknown pattern type"); thousands of such lines would bury the test report.
for (const level of ["log", "info", "warn", "error", "debug"] as const) console[level] = () => {};

self.onmessage = async (ev) => {
  // The canary imports nothing of whet: its workers start without loading the whole library.
  const target = ev.data.target === CANARY.name
    ? CANARY
    : (await import("./_targets.ts")).TARGETS.find((t) => t.name === ev.data.target)!;
  const dir = await Deno.makeTempDir({ prefix: "whet_fuzz_" });
  self.postMessage({ t: "dir", dir });
  try {
    await target.setup(dir);
    const path = `${dir}/${target.file}`;
    for (const i of ev.data.indices) {
      const bytes = inputOf(target, i);
      await Deno.writeFile(path, bytes);
      self.postMessage({ t: "start", i });
      const started = performance.now();
      let loads = 0, errors = 0;
      const crashes: string[] = [];
      for (const load of target.loads) {
        try {
          await load(path, bytes, i);
          loads++;
        } catch (e) {
          const verdict = classify(e, target.names(path, bytes));
          if (verdict.kind === "error") errors++;
          else crashes.push(verdict.what);
        }
      }
      const ms = performance.now() - started;
      self.postMessage({ t: "done", i, ms, loads, errors, crashes });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  self.postMessage({ t: "end" });
};
