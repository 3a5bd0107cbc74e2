/**
 * `deno task test` runs WebGPU without the OpenGL backend wherever another backend has an adapter
 * (tests/webgpu_backends.ts says why: libEGL's teardown at exit races the test thread's and glibc
 * aborts). Checked where it matters, under `deno test`: a test file that opens a device must not
 * have loaded libEGL.
 *
 * Needs `--allow-read`, `--allow-write=/tmp` (the probe test file) and `--allow-run` (child `deno`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ALL_BACKENDS, WITHOUT_GL } from "./webgpu_backends.ts";

const SCRIPT = fileURLToPath(new URL("webgpu_backends.ts", import.meta.url));

/** A test file that opens a WebGPU device and prints whether libEGL is mapped into the process. */
const PROBE_TEST = `Deno.test("device", async () => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter");
  const device = await adapter.requestDevice();
  const maps = await Deno.readTextFile("/proc/self/maps");
  console.log("libEGL mapped:", maps.includes("/libEGL"));
  device.destroy();
});
`;

/** Runs `deno <args>` with `env` added; returns stdout, failing with stderr on a non-zero exit. */
async function deno(args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.ok(
    out.success,
    `deno ${args.join(" ")}: ${stdout}\n${new TextDecoder().decode(out.stderr)}`,
  );
  return stdout;
}

/** What tests/webgpu_backends.ts prints with `env` added. */
async function chosenBackends(env: Record<string, string> = {}): Promise<string> {
  const args = ["run", "--no-config", "--allow-env=DENO_WEBGPU_BACKEND", SCRIPT];
  return (await deno(args, env)).trim();
}

/** Whether a `deno` child with DENO_WEBGPU_BACKEND = `backends` finds an adapter. */
async function hasAdapter(backends: string): Promise<boolean> {
  const code = "console.log(!!(await navigator.gpu.requestAdapter()))";
  return (await deno(["eval", "--no-config", code], { DENO_WEBGPU_BACKEND: backends })).trim() ===
    "true";
}

Deno.test("tests/webgpu_backends.ts chooses backends that have an adapter, OpenGL only if needed", async () => {
  const chosen = await chosenBackends();
  assert.ok([WITHOUT_GL, ALL_BACKENDS].includes(chosen), chosen);
  assert.ok(await hasAdapter(chosen), `no adapter with DENO_WEBGPU_BACKEND=${chosen}`);
  assert.equal(chosen === WITHOUT_GL, await hasAdapter(WITHOUT_GL));
});

Deno.test({
  name: "tests/webgpu_backends.ts falls back to every backend when Vulkan has no driver",
  ignore: Deno.build.os !== "linux", // the Vulkan loader's VK_ICD_FILENAMES hides the drivers
  async fn() {
    const env = { VK_ICD_FILENAMES: "/nonexistent/icd.json" };
    assert.equal(await chosenBackends(env), ALL_BACKENDS);
  },
});

Deno.test({
  name: "under `deno test` with the chosen backends, opening a device loads no libEGL",
  ignore: Deno.build.os !== "linux", // /proc/self/maps; libglvnd is a Linux library
  async fn() {
    const chosen = await chosenBackends();
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "whet_backends_" });
    try {
      const file = join(dir, "device_test.ts");
      await Deno.writeTextFile(file, PROBE_TEST);
      // Deno lets only --allow-all read /proc/self.
      const args = ["test", "--no-config", "--allow-all", file];
      const out = await deno(args, { DENO_WEBGPU_BACKEND: chosen });
      const mapped = /libEGL mapped: (true|false)/.exec(out)?.[1];
      assert.ok(mapped, out);
      // Only where no other backend has an adapter does the OpenGL one (and the abort) remain.
      if (chosen === WITHOUT_GL) assert.equal(mapped, "false", out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
