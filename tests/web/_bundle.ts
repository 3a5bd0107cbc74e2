/**
 * Builds the browser bundle exactly as `deno task web:build` does (its command is read from
 * deno.json), into a folder of the caller's choosing, and finds Deno-only APIs in bundled code.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The checkout's root folder. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** The arguments of `deno task web:build` with the output (and optionally the entry) replaced. */
export async function webBuildArgs(outFile: string, entry?: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const task: string = config.tasks["web:build"];
  // The command after the XDG_RUNTIME_DIR line every task starts with (tests/tasks_test.ts).
  const args = task.split("&&").at(-1)!.trim().split(/\s+/);
  const out = args.indexOf("-o");
  if (args[0] !== "deno" || args[1] !== "bundle" || out < 0 || args.at(-1) !== "web/main.ts") {
    throw new Error(
      `Cannot read the web:build task: expected "deno bundle … -o FILE web/main.ts", got "${task}"`,
    );
  }
  args[out + 1] = outFile;
  if (entry) args[args.length - 1] = entry;
  return args.slice(1);
}

/** Runs the web:build command into `outFile`; throws with deno's output when it fails. */
export async function buildBundle(outFile: string, entry?: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: await webBuildArgs(outFile, entry),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`Cannot build the web bundle (exit ${out.code}):\n${text}`);
  }
  return await Deno.readTextFile(outFile);
}

/**
 * Every Deno-only API in bundled JavaScript, with some context: `Deno.x`, `Deno?.x`, `Deno[…]`
 * and imports or requires of `node:` modules. The bundle is minified (no comments left), so what
 * matches is code.
 */
export function denoOnlyApis(code: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\bDeno\s*(\?\.|\.|\[)\s*[A-Za-z_$]*/g,
    /\b(from|import|require)\s*\(?\s*["']node:[^"']*["']/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      found.push(`${m[0]} in "…${code.slice(Math.max(0, m.index - 60), m.index + 60)}…"`);
    }
  }
  return found;
}
