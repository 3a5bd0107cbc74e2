/**
 * Prints the WebGPU backends that `deno task test` runs on, as a value for DENO_WEBGPU_BACKEND:
 * every backend but OpenGL when one of them has an adapter, otherwise all of them.
 *
 * Why not OpenGL: `deno test` runs each test file on a thread of its own, which ends while the
 * main thread exits. Once wgpu has initialised its OpenGL backend, libEGL (libglvnd) holds
 * per-thread state, and libEGL's destructor at exit (`_dl_fini` → `__glDispatchDestroyTable`) and
 * the ending thread's own TSD destructors free the same heap memory: glibc aborts after the test
 * summary ("corrupted size vs. prev_size", "double free or corruption") in a few percent of runs.
 * Without the OpenGL backend libEGL is never loaded. README "Known issues" has the reproduction
 * and the measurements. (`deno run` runs JavaScript on the main thread and is not affected.)
 *
 * Run as `deno run --no-config --allow-env=DENO_WEBGPU_BACKEND tests/webgpu_backends.ts`.
 *
 * @module
 */

/** Every backend Deno's DENO_WEBGPU_BACKEND names except OpenGL. */
export const WITHOUT_GL = "vulkan,metal,dx12";

/** Every backend, OpenGL included (what Deno uses when DENO_WEBGPU_BACKEND is unset). */
export const ALL_BACKENDS = `${WITHOUT_GL},gl`;

if (import.meta.main) {
  // Deno reads the variable when it creates its WebGPU instance, at the first requestAdapter().
  Deno.env.set("DENO_WEBGPU_BACKEND", WITHOUT_GL);
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  console.log(adapter ? WITHOUT_GL : ALL_BACKENDS);
}
