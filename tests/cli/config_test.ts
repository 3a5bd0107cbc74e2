import assert from "node:assert/strict";
import {
  ConfigError,
  DEFAULT_CONFIG,
  loadConfig,
  parseOverride,
  yamlLine,
} from "../../cli/config.ts";

async function withFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/run.yaml`, text);
    await fn(`${dir}/run.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadConfig() with nothing gives the defaults (LoRA on the embedded base)", async () => {
  const c = await loadConfig(undefined, []);
  assert.deepEqual(c, DEFAULT_CONFIG);
  assert.equal(c.peft.method, "lora");
});

Deno.test("loadConfig() applies a YAML file, then --key=value overrides and aliases", async () => {
  await withFile(
    "name: mine\npeft:\n  method: lora\n  r: 8\nschedule:\n  steps: 50\n",
    async (f) => {
      const c = await loadConfig(f, [
        "--peft.r=4",
        "--steps=20",
        "--lr=0.001",
        "--data.tasks=[arithmetic]",
      ]);
      assert.equal(c.name, "mine");
      assert.equal(c.peft.r, 4);
      assert.equal(c.schedule.steps, 20);
      assert.equal(c.optimizer.lr, 0.001);
      assert.deepEqual(c.data.tasks, ["arithmetic"]);
    },
  );
});

Deno.test("switching peft.method drops the previous method's settings", async () => {
  const c = await loadConfig(undefined, ["--peft.method=bitfit"]);
  assert.deepEqual(c.peft, { method: "bitfit" });
});

Deno.test("loadConfig() names the unknown key with its file and line", async () => {
  await withFile("name: x\nschedule:\n  steps: 5\n  stepz: 6\n", async (f) => {
    await assert.rejects(loadConfig(f), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /config key "schedule\.stepz" \(.*run\.yaml:4\): unknown key/);
      return true;
    });
  });
});

Deno.test("loadConfig() names wrong types, bad method settings and YAML syntax errors", async () => {
  await withFile("optimizer:\n  lr: fast\n", async (f) => {
    await assert.rejects(
      loadConfig(f),
      /"optimizer\.lr" \(.*run\.yaml:2\): expected a number, got a string "fast"/,
    );
  });
  await withFile("peft:\n  method: lora\n  rank: 4\n", async (f) => {
    await assert.rejects(loadConfig(f), /"peft\.rank" \(.*run\.yaml:3\).*unknown key "rank"/);
  });
  await withFile("peft: [1\n", async (f) => {
    await assert.rejects(loadConfig(f), /Cannot parse config file .*run\.yaml:2/);
  });
  await assert.rejects(
    loadConfig(undefined, ["--peft.method=nope"]),
    /"peft\.method" \(--peft\.method=nope\).*Cannot find PEFT method "nope"/,
  );
  await assert.rejects(
    loadConfig(undefined, ["--steps=0"]),
    /"schedule\.steps" \(--steps=0\): must be a positive integer/,
  );
  await assert.rejects(
    loadConfig("/nonexistent/run.yaml"),
    /Cannot read config file \/nonexistent\/run\.yaml/,
  );
  await assert.rejects(loadConfig(undefined, ["steps=3"]), /expected --key=value/);
});

Deno.test("loadConfig() reads schedule.gradient_checkpointing (default false) and rejects a non-boolean", async () => {
  assert.equal((await loadConfig(undefined, [])).schedule.gradient_checkpointing, false);
  const on = await loadConfig(undefined, ["--schedule.gradient_checkpointing=true"]);
  assert.equal(on.schedule.gradient_checkpointing, true);
  await withFile("schedule:\n  steps: 5\n  gradient_checkpointing: yes please\n", async (f) => {
    await assert.rejects(
      loadConfig(f),
      /"schedule\.gradient_checkpointing" \(.*run\.yaml:3\): expected a boolean, got a string/,
    );
  });
});

Deno.test("parseOverride() types values as YAML and yamlLine() finds nested keys", () => {
  assert.deepEqual(parseOverride("--peft.r=16"), { path: ["peft", "r"], value: 16 });
  assert.deepEqual(parseOverride("--name=run-1"), { path: ["name"], value: "run-1" });
  assert.deepEqual(parseOverride("--model=dir/x"), { path: ["model", "path"], value: "dir/x" });
  const src = "a: 1\nb:\n  c: 2\n  d:\n    e: 3\nf: 4\n";
  assert.equal(yamlLine(src, ["b", "d", "e"]), 5);
  assert.equal(yamlLine(src, ["f"]), 6);
  assert.equal(yamlLine(src, ["b", "f"]), undefined);
});
