/**
 * Runs a fuzz target's inputs in a worker under a per-input time bound and sums up what
 * happened. A hang (an input past the bound) terminates the worker; the run goes on in a fresh
 * one from the next input, so one hang does not hide later findings.
 *
 * @module
 */

import type { Target } from "./_targets.ts";
import type { Job } from "./_worker.ts";

/** What one target's run found. */
export interface FuzzReport {
  /** The target's name. */
  target: string;
  /** Inputs run. */
  inputs: number;
  /** Loader calls that returned (a valid load). */
  loads: number;
  /** Loader calls that threw whet's own error. */
  errors: number;
  /** Inputs that crashed a loader (see _criterion.ts), with what was thrown. */
  crashes: { i: number; what: string }[];
  /** Inputs that ran past the bound. */
  hangs: number[];
  /** Longest time one input took, in milliseconds. */
  slowestMs: number;
  /** The input that took it. */
  slowest: number;
  /** Wall time of the run, in seconds. */
  seconds: number;
}

/** Stop after this many hangs: each costs the bound and a fresh worker. */
const MAX_HANGS = 3;

/**
 * Runs inputs `0 … target.count − 1` of `target` (and `extra` ones, regression cases kept from
 * earlier findings), each bounded by `boundMs`.
 */
export async function runTarget(
  target: Target,
  boundMs: number,
  extra: readonly number[] = [],
): Promise<FuzzReport> {
  const started = performance.now();
  const report: FuzzReport = {
    target: target.name,
    inputs: 0,
    loads: 0,
    errors: 0,
    crashes: [],
    hangs: [],
    slowestMs: 0,
    slowest: -1,
    seconds: 0,
  };
  let todo = [...extra, ...Array.from({ length: target.count }, (_, i) => i)];
  while (todo.length > 0 && report.hangs.length < MAX_HANGS) {
    const stopped = await runWorker(target, todo, boundMs, report);
    if (stopped === undefined || stopped < 0) break; // all ran, or the worker died before any input
    todo = todo.slice(todo.indexOf(stopped) + 1);
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/**
 * Runs `indices` in one worker; resolves undefined when all ran, or the index at which the
 * worker was stopped (a hang) or died (an error that escaped the loaders).
 */
function runWorker(
  target: Target,
  indices: number[],
  boundMs: number,
  report: FuzzReport,
): Promise<number | undefined> {
  const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
  let dir: string | undefined;
  let current = -1, since = 0;
  return new Promise<number | undefined>((resolve) => {
    const finish = (stoppedAt: number | undefined) => {
      clearInterval(watchdog);
      worker.terminate();
      // A stopped worker cannot remove its own folder.
      if (stoppedAt !== undefined && dir !== undefined) {
        Deno.removeSync(dir, { recursive: true });
      }
      resolve(stoppedAt);
    };
    const watchdog = setInterval(() => {
      if (current >= 0 && performance.now() - since > boundMs) {
        report.hangs.push(current);
        report.inputs++;
        finish(current);
      }
    }, 20);
    worker.onmessage = (ev) => {
      const m = ev.data;
      if (m.t === "dir") dir = m.dir;
      else if (m.t === "start") [current, since] = [m.i, performance.now()];
      else if (m.t === "done") {
        current = -1;
        report.inputs++;
        report.loads += m.loads;
        report.errors += m.errors;
        for (const what of m.crashes) report.crashes.push({ i: m.i, what });
        if (m.ms > report.slowestMs) [report.slowestMs, report.slowest] = [m.ms, m.i];
      } else if (m.t === "end") finish(undefined);
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      report.crashes.push({ i: current, what: `the worker died: ${ev.message}` });
      report.inputs++;
      finish(current);
    };
    worker.postMessage({ target: target.name, indices } satisfies Job);
  });
}
