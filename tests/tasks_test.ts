/**
 * What `deno task train` and `deno task test` cost a new machine: Deno installs every npm package in
 * the lockfile before running anything, so deno.lock must hold only what the library imports
 * (deps.ts); benchmark-only packages (TF.js) live in bench/deno.json's own lockfile. The tasks
 * that open a WebGPU adapter set XDG_RUNTIME_DIR when it is unset, so Mesa prints no
 * "XDG_RUNTIME_DIR is invalid" line, and the `deno test` tasks leave out the OpenGL backend where
 * another one has an adapter, so glibc does not abort at exit.
 *
 * Needs `--allow-read`, `--allow-write=/tmp` (an empty DENO_DIR, a probe config), `--allow-run`
 * (child `deno` processes) and, for the empty-cache test, the npm registry.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The prefix each GPU task starts with: Deno's task shell has no `${VAR:-default}`. */
const XDG_PREFIX = 'test -n "$XDG_RUNTIME_DIR" || export XDG_RUNTIME_DIR=/tmp && ';

/** What follows it in each `deno test` task (tests/webgpu_backends.ts says why). */
const BACKEND_PREFIX = 'test -n "$DENO_WEBGPU_BACKEND" || export DENO_WEBGPU_BACKEND=$(deno run ' +
  "--no-config --allow-env=DENO_WEBGPU_BACKEND tests/webgpu_backends.ts) && ";

/** A `deno.lock` (version 5) as far as these tests read it. */
interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, { integrity: string; dependencies?: string[] }>;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(join(ROOT, path)));
}

/** The `npm:name@version` specifiers of deps.ts, without subpaths (`npm:js-tiktoken@1.0.21`). */
async function depsSpecifiers(): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, "deps.ts"));
  const found = [...text.matchAll(/"npm:(@?[^@"]+)@([^/"]+)[^"]*"/g)].map((m) =>
    `npm:${m[1]}@${m[2]}`
  );
  return [...new Set(found)].sort();
}

/** Every lock key (`name@version[_peers]`) reachable from `specifiers` through `dependencies`. */
function closure(lock: Lock, specifiers: string[]): Set<string> {
  const keyOf = (dep: string): string => {
    if (dep in lock.npm) return dep;
    // A dependency listed by bare name has one version in the lock.
    const keys = Object.keys(lock.npm).filter((k) => k.slice(0, k.lastIndexOf("@")) === dep);
    assert.equal(keys.length, 1, `deno.lock: dependency "${dep}" matches ${keys.length} entries`);
    return keys[0];
  };
  const seen = new Set<string>();
  const stack = specifiers.map((s) => {
    const resolved = lock.specifiers[s];
    assert.ok(resolved, `deno.lock has no entry for ${s}`);
    return keyOf(`${s.slice(4, s.lastIndexOf("@"))}@${resolved}`);
  });
  while (stack.length > 0) {
    const key = stack.pop()!;
    if (seen.has(key)) continue;
    seen.add(key);
    for (const dep of lock.npm[key].dependencies ?? []) stack.push(keyOf(dep));
  }
  return seen;
}

/** The package name of a lock key: `@scope/name@1.0.0_peer@2` → `@scope/name`. */
function packageName(key: string): string {
  return key.slice(0, key.indexOf("@", 1));
}

Deno.test("deno.lock pins exactly what deps.ts imports; TF.js is only in bench/deno.lock", async () => {
  const lock = await readJson<Lock>("deno.lock");
  const deps = await depsSpecifiers();
  assert.deepEqual(Object.keys(lock.specifiers).sort(), deps);
  assert.deepEqual(Object.keys(lock.npm).sort(), [...closure(lock, deps)].sort());

  // The benchmark's lock holds the library's packages at the same versions, plus TF.js.
  const bench = await readJson<Lock>("bench/deno.lock");
  for (const [key, entry] of Object.entries(lock.npm)) {
    assert.deepEqual(bench.npm[key], entry, `bench/deno.lock: ${key} as in deno.lock`);
  }
  assert.ok("npm:@tensorflow/tfjs@4.22.0" in bench.specifiers);
  assert.ok(!Object.keys(lock.npm).some((k) => k.startsWith("@tensorflow/")));
});

Deno.test("every task that runs Deno on the GPU sets XDG_RUNTIME_DIR when it is unset", async () => {
  const config = await readJson<{ tasks: Record<string, string> }>("deno.json");
  for (const [name, command] of Object.entries(config.tasks)) {
    if (name === "check") continue; // type-checking opens no adapter
    assert.ok(
      command.startsWith(XDG_PREFIX),
      `task "${name}" starts with the XDG_RUNTIME_DIR line`,
    );
  }

  // The prefix as Deno's task shell runs it: a default when unset or empty, the caller's otherwise.
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "whet_tasks_" });
  try {
    const probe = `${XDG_PREFIX}deno eval "console.log(Deno.env.get('XDG_RUNTIME_DIR'))"`;
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ tasks: { probe } }));
    const run = async (xdg: string | undefined) => {
      // No PATH either: the task shell runs `deno` as its own executable and `test` as a builtin.
      const env: Record<string, string> = { NO_COLOR: "1" };
      if (xdg !== undefined) env.XDG_RUNTIME_DIR = xdg;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "probe"],
        cwd: dir,
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).trim();
    };
    assert.equal(await run(undefined), "/tmp");
    assert.equal(await run(""), "/tmp");
    assert.equal(await run("/run/user/1000"), "/run/user/1000");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the `deno test` tasks leave out OpenGL (DENO_WEBGPU_BACKEND) unless it is set", async () => {
  const config = await readJson<{ tasks: Record<string, string> }>("deno.json");
  const testTasks = Object.entries(config.tasks).filter(([, c]) => c.includes("deno test "));
  assert.deepEqual(testTasks.map(([name]) => name).sort(), ["test", "test:bench"]);
  for (const [name, command] of testTasks) {
    assert.ok(command.startsWith(XDG_PREFIX + BACKEND_PREFIX), `task "${name}"`);
  }

  // The prefix as Deno's task shell runs it, with the script's path made absolute for the probe.
  const script = join(ROOT, "tests", "webgpu_backends.ts");
  const expected = new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-env=DENO_WEBGPU_BACKEND", script],
      stdout: "piped",
    }).output()).stdout,
  ).trim();
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "whet_tasks_" });
  try {
    const probe = `${BACKEND_PREFIX.replace("tests/webgpu_backends.ts", script)}deno eval ` +
      `"console.log(Deno.env.get('DENO_WEBGPU_BACKEND'))"`;
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ tasks: { probe } }));
    const run = async (backend: string | undefined) => {
      const env: Record<string, string> = { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" };
      if (backend !== undefined) env.DENO_WEBGPU_BACKEND = backend;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "probe"],
        cwd: dir,
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).trim();
    };
    assert.equal(await run(undefined), expected);
    assert.equal(await run("gl"), "gl");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`deno task train` with an empty DENO_DIR downloads only deps.ts's packages, silently", async () => {
  const denoDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "whet_deno_dir_" });
  try {
    const env: Record<string, string> = { DENO_DIR: denoDir, NO_COLOR: "1" };
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--frozen", "train", "--help"],
      cwd: ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    assert.ok(!stderr.includes("Ignored build scripts"), stderr);

    const lock = await readJson<Lock>("deno.lock");
    const expected = [...closure(lock, await depsSpecifiers())].map(packageName).sort();
    const registry = join(denoDir, "npm", "registry.npmjs.org");
    const downloaded: string[] = [];
    for await (const entry of Deno.readDir(registry)) {
      if (!entry.name.startsWith("@")) downloaded.push(entry.name);
      else {
        for await (const inner of Deno.readDir(join(registry, entry.name))) {
          downloaded.push(`${entry.name}/${inner.name}`);
        }
      }
    }
    assert.deepEqual(downloaded.sort(), expected);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
