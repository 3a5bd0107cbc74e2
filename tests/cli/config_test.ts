import assert from "node:assert/strict";
import { withFile } from "./_config_file.ts";
import {
  ConfigError,
  DEFAULT_CONFIG,
  loadConfig,
  MAX_YAML_ALIASES,
  MAX_YAML_VALUES,
  parseOverride,
  RUN_LIMITS,
  yamlLine,
} from "../../cli/config.ts";

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
    /"schedule\.steps" \(--steps=0\): must be an integer in \[1, 100000000\], got 0/,
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

/** The alias bomb: `depth` anchors, each a mapping of two aliases of the one before. */
function aliasBomb(depth: number, indent = "  "): string {
  let yaml = `${indent}l0: &a0 {x: 1, y: 1}\n`;
  for (let i = 1; i < depth; i++) yaml += `${indent}l${i}: &a${i} {x: *a${i - 1}, y: *a${i - 1}}\n`;
  return yaml;
}

Deno.test("loadConfig() refuses a YAML alias bomb at once, naming the file", async () => {
  // Issue 14: 40 lines under peft (an open section) hung config loading; depth 20 took 44 s.
  for (const depth of [20, 40]) {
    await withFile(`peft:\n  method: lora\n${aliasBomb(depth)}`, async (f) => {
      const started = performance.now();
      await assert.rejects(loadConfig(f), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.ok(e.message.startsWith(`Cannot parse config file ${f}: `), e.message);
        assert.match(e.message, /expands to more than 10000 values through its aliases/);
        return true;
      });
      assert.ok(performance.now() - started < 1000, `depth ${depth} took too long`);
    });
  }
  // Many aliases, each small: refused by count, with the line of the first one over.
  const many = "data:\n  tasks: &t [arithmetic]\n" +
    Array.from({ length: MAX_YAML_ALIASES + 1 }, (_, i) => `x${i}: *t\n`).join("");
  await withFile(many, async (f) => {
    await assert.rejects(
      loadConfig(f),
      new RegExp(`^ConfigError: Cannot parse config file ${f}:\\d+: more than 100 aliases`),
    );
  });
  // Long text repeated through aliases.
  const long = `name: &s ${"a".repeat(20_000)}\npeft:\n  method: lora\n  t: [${
    Array(60).fill("*s").join(", ")
  }]\n`;
  await withFile(long, async (f) => {
    await assert.rejects(loadConfig(f), /expands to more than 1000000 characters/);
  });
  // An alias inside its own anchor is a cycle: refused the same way, not a stack overflow.
  await withFile("peft: &p\n  method: lora\n  again: *p\n", async (f) => {
    await assert.rejects(loadConfig(f), /Cannot parse config file .*: it expands to more than/);
  });
  // Overrides are YAML too.
  const bomb = `[${"&a0 [1, 1]"}, ${
    Array.from({ length: 30 }, (_, i) => `&a${i + 1} [*a${i}, *a${i}]`).join(", ")
  }]`;
  await assert.rejects(
    loadConfig(undefined, [`--peft.x=${bomb}`]),
    /^ConfigError: Cannot parse override "--peft\.x=.*": it expands to more than 10000 values/,
  );
  // Ordinary reuse of anchors still works.
  await withFile(
    "data:\n  tasks: &t [arithmetic, sentiment]\n  held_out: *t\n",
    async (f) => assert.deepEqual((await loadConfig(f)).data.held_out, ["arithmetic", "sentiment"]),
  );
  assert.ok(MAX_YAML_VALUES >= 1000);
});

Deno.test("loadConfig() bounds every numeric key, naming it, its range and where it was set", async () => {
  // Issue 14: --schedule.min_lr_ratio=5 was accepted (a floor five times the peak rate).
  await assert.rejects(
    loadConfig(undefined, ["--schedule.min_lr_ratio=5"]),
    /^ConfigError: Cannot use config key "schedule\.min_lr_ratio" \(--schedule\.min_lr_ratio=5\): must be a number in \[0, 1\], got 5$/,
  );
  const numeric: string[] = [];
  const walk = (o: Record<string, unknown>, path: string[]) => {
    for (const [k, v] of Object.entries(o)) {
      if (path.length === 0 && k === "peft") continue; // checked by the method
      // Shares of the mixture, checked by name and range (tests/cli/mixing_weights_test.ts).
      if (path.join(".") === "data" && k === "mixing_weights") continue;
      if (typeof v === "number") numeric.push([...path, k].join("."));
      else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        walk(v as Record<string, unknown>, [...path, k]);
      }
    }
  };
  walk(DEFAULT_CONFIG as unknown as Record<string, unknown>, []);
  assert.deepEqual(numeric.toSorted(), Object.keys(RUN_LIMITS).toSorted(), "every key has a range");
  for (const key of numeric) {
    const r = RUN_LIMITS[key];
    const bad = [
      r.maxOpen ? r.max : r.integer ? r.max + 1 : r.max * 2,
      r.minOpen ? r.min : r.min - 1,
      ...(r.integer ? [r.min + 0.5] : []),
      ".nan",
      ".inf",
    ];
    for (const v of bad) {
      await assert.rejects(loadConfig(undefined, [`--${key}=${v}`]), (e: Error) => {
        assert.ok(
          e.message.startsWith(`Cannot use config key "${key}" (--${key}=${v}): must be `),
          e.message,
        );
        return true;
      });
    }
  }
  await withFile("optimizer:\n  beta2: 1\n", async (f) => {
    await assert.rejects(
      loadConfig(f),
      /"optimizer\.beta2" \(.*run\.yaml:2\): must be a number in \[0, 1\), got 1/,
    );
  });
  // The bounds themselves are accepted.
  const edge = await loadConfig(undefined, [
    "--schedule.min_lr_ratio=1",
    "--seed=4294967295",
    "--optimizer.grad_clip=0",
    "--steps=4", // below the default warmup (20): a short run that stops while warming up
  ]);
  assert.equal(edge.schedule.min_lr_ratio, 1);
});

Deno.test("loadConfig() suggests the key a typo meant", async () => {
  await assert.rejects(
    loadConfig(undefined, ["--schedule.min_lr_rato=0.1"]),
    /"schedule\.min_lr_rato" \(--schedule\.min_lr_rato=0\.1\): unknown key \(did you mean "min_lr_ratio"\?\); known keys here: steps,/,
  );
  // A key put in the wrong section: its full name elsewhere.
  await assert.rejects(
    loadConfig(undefined, ["--optimizer.steps=3"]),
    /unknown key \(did you mean "schedule\.steps"\?\)/,
  );
  await assert.rejects(
    loadConfig(undefined, ["--step=3"]),
    /"step" \(--step=3\): unknown key \(did you mean "schedule\.steps"\?\)/,
  );
  await withFile("schedule:\n  batchsize: 4\n", async (f) => {
    await assert.rejects(
      loadConfig(f),
      /"schedule\.batchsize" \(.*run\.yaml:2\): unknown key \(did you mean "batch_size"\?\)/,
    );
  });
  // Method settings are checked by the method, which suggests too.
  await assert.rejects(
    loadConfig(undefined, ["--peft.lora_alpa=8"]),
    /"peft\.lora_alpa" .*unknown key "lora_alpa" \(did you mean "lora_alpha"\?\)/,
  );
  // Nothing close: the list only.
  await assert.rejects(
    loadConfig(undefined, ["--schedule.zzzzzz=1"]),
    /"schedule\.zzzzzz" \(--schedule\.zzzzzz=1\): unknown key; known keys here:/,
  );
});

Deno.test("loadConfig() treats inherited property names as unknown keys", async () => {
  // `key in defaults` saw Object.prototype: "constructor" was "expected a function", and
  // "__proto__" set a prototype instead of a key, dropping the setting silently.
  for (const key of ["constructor", "toString", "__proto__"]) {
    await assert.rejects(
      loadConfig(undefined, [`--schedule.${key}=1`]),
      new RegExp(`"schedule\\.${key}" \\(--schedule\\.${key}=1\\): unknown key`),
    );
    await assert.rejects(
      loadConfig(undefined, [`--peft.${key}=1`]),
      new RegExp(`"peft\\.${key}" .*Cannot configure PEFT method "lora": unknown key "${key}"`),
    );
  }
  await withFile("peft:\n  method: lora\n  __proto__: {r: 3}\n", async (f) => {
    await assert.rejects(
      loadConfig(f),
      /"peft\.__proto__" \(.*run\.yaml:3\).*unknown key "__proto__"/,
    );
  });
});

Deno.test("loadConfig() names where a bad method setting came from, whatever its name", async () => {
  // Found by the fuzz test: a key holding a quote was blamed on "(default)".
  await withFile('peft:\n  method: lora\n  "nu\\"m": 4\n', async (f) => {
    await assert.rejects(loadConfig(f), (e: Error) => {
      assert.ok(e.message.startsWith(`Cannot use config key "peft.nu"m" (${f}:`), e.message);
      return true;
    });
  });
  // An override that makes a section out of an unknown setting: the setting is named with it.
  await assert.rejects(
    loadConfig(undefined, ["--peft.target_.modules=-"]),
    /^ConfigError: Cannot use config key "peft\.target_" \(--peft\.target_\.modules=-\): .*unknown key "target_"/,
  );
  for (const arg of ["--peft.=false", "--.steps=3", "--schedule..steps=3"]) {
    await assert.rejects(
      loadConfig(undefined, [arg]),
      new RegExp(`^ConfigError: Cannot parse override "${arg}": a key part is empty`),
    );
  }
});
