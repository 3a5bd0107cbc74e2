/**
 * Where a job writes: the run folder `<output.dir>/<name>` must stay inside the output folder
 * (real symbolic links in a temporary output folder), its name must be one folder name, and an
 * unwritable output fails before anything is loaded. None of these reach the GPU. The links are
 * made with `ln -s` (needs --allow-run, as the test task grants).
 */
import assert from "node:assert/strict";
import { DEFAULT_CONFIG, loadConfig, type RunConfig } from "../../cli/config.ts";
import { ensureWritableFolder, prepareRunFolder, runJob } from "../../cli/job.ts";

function config(root: string, name: string): RunConfig {
  return { ...structuredClone(DEFAULT_CONFIG), name, output: { dir: root, checkpoint_every: 0 } };
}

/**
 * `ln -s target link`: Deno.symlink needs unscoped write permission, which the test command does
 * not grant.
 */
async function symlink(target: string, link: string): Promise<void> {
  const { success, stderr } = await new Deno.Command("ln", { args: ["-s", target, link] }).output();
  if (!success) throw new Error(`ln -s ${target} ${link}: ${new TextDecoder().decode(stderr)}`);
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** A temporary output folder and a folder outside it, removed after `fn`. */
async function withFolders(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/runs`);
    await Deno.mkdir(`${tmp}/elsewhere`);
    await fn(`${tmp}/runs`, `${tmp}/elsewhere`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("runJob() refuses a run folder that is a symbolic link out of the output folder, writing nothing there", async () => {
  await withFolders(async (root, outside) => {
    await symlink(outside, `${root}/linked`);
    const c = await loadConfig(undefined, [`--out=${root}`, "--name=linked"]);
    const [realOutside, realRoot] = [await Deno.realPath(outside), await Deno.realPath(root)];
    await assert.rejects(runJob(c, { log: () => {}, progress: false }), {
      message:
        `Cannot use run folder ${root}/linked: it resolves to ${realOutside}, outside the output folder ${realRoot}`,
    });
    // --resume takes the same path first.
    await assert.rejects(runJob(c, { resume: true, log: () => {} }), /outside the output folder/);
    assert.deepEqual(await entries(outside), []);
  });
});

Deno.test("prepareRunFolder() refuses symbolic links out of the output folder where the job writes inside the run folder", async () => {
  await withFolders(async (root, outside) => {
    for (const sub of ["adapter", "checkpoint", ".checkpoint.old"]) {
      const dir = `${root}/r-${sub}`;
      await Deno.mkdir(dir);
      await symlink(outside, `${dir}/${sub}`);
      await assert.rejects(
        prepareRunFolder(config(root, `r-${sub}`)),
        new RegExp(
          `^Error: Cannot use run folder ${dir}/${sub.replace(".", "\\.")}: it resolves to`,
        ),
      );
    }
    // A link that cannot be resolved is refused too: mkdir would follow it.
    await symlink(`${outside}/missing`, `${root}/dangling`);
    await assert.rejects(
      prepareRunFolder(config(root, "dangling")),
      new RegExp(
        `^Error: Cannot use run folder ${root}/dangling: it is a symbolic link to ${outside}/missing, which cannot be resolved`,
      ),
    );
    assert.deepEqual(await entries(outside), []);
  });
});

Deno.test("prepareRunFolder() accepts links that stay inside the output folder, including a linked output folder", async () => {
  await withFolders(async (root, outside) => {
    await Deno.mkdir(`${root}/real`);
    await symlink(`${root}/real`, `${root}/alias`);
    assert.equal(await prepareRunFolder(config(root, "alias")), `${root}/alias`);
    // The output folder itself may be a link: the run folder is compared with where it leads.
    await symlink(outside, `${root}/../runs-link`);
    assert.equal(
      await prepareRunFolder(config(`${root}/../runs-link`, "r")),
      `${root}/../runs-link/r`,
    );
    assert.deepEqual(await entries(outside), ["r"]);
  });
});

Deno.test("prepareRunFolder() refuses run names that are not one folder name", async () => {
  await withFolders(async (root) => {
    for (const name of ["..", ".", "", "a/b", "../x", "a\\b"]) {
      await assert.rejects(
        prepareRunFolder(config(root, name)),
        (e: Error) =>
          e.message.startsWith(`Cannot use run name "${name}": it must name one folder`),
        name,
      );
    }
    // The config accepts "..": the job itself must refuse it.
    const c = await loadConfig(undefined, [`--out=${root}/sub`, "--name=.."]);
    await assert.rejects(runJob(c, { log: () => {} }), /Cannot use run name "\.\."/);
    assert.deepEqual(await entries(root), []);
  });
});

Deno.test("runJob() and ensureWritableFolder() fail before loading anything when the output cannot be written", async () => {
  await withFolders(async (root) => {
    // A file where a folder should be: no permission flag or user can write below it.
    await Deno.writeTextFile(`${root}/file`, "");
    const blocked = await loadConfig(undefined, [`--out=${root}/file/runs`, "--name=r"]);
    await assert.rejects(
      runJob(blocked, { log: () => {} }),
      new RegExp(`^Error: Cannot write to the output folder ${root}/file/runs: `),
    );
    await Deno.writeTextFile(`${root}/taken`, "");
    const taken = await loadConfig(undefined, [`--out=${root}`, "--name=taken"]);
    await assert.rejects(
      runJob(taken, { log: () => {} }),
      new RegExp(`^Error: Cannot write to the run folder ${root}/taken: `),
    );
    // Outside the test's --allow-write=/tmp: Deno's permission error, naming the folder and the
    // flag that grants it (with every permission, the operating system's error).
    await assert.rejects(
      ensureWritableFolder("/proc/whet-run", "--out"),
      /^(AccessError: Cannot write \/proc\/whet-run \(--out\): no write permission; run with --allow-write=\/proc\/whet-run$|Error: Cannot write to --out \/proc\/whet-run: )/,
    );
    assert.deepEqual(await entries(root), ["file", "taken"], "no probe file left");
  });
});
