import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

// The metrics barrel promises that scoring texts loads no model or GPU code. Its import graph is
// read from `deno info --json` (a subprocess: needs --allow-run), not from what happens to be
// imported at run time, so a type-only or lazily used import counts too.
Deno.test("eval/metrics.ts imports no harness, model, kernel, runtime, data or training module", async () => {
  const barrel = fileURLToPath(new URL("../../eval/metrics.ts", import.meta.url));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", barrel],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  const root = new URL("../../", import.meta.url).href;
  const local = graph.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith(root))
    .map((s) => s.slice(root.length));
  // The graph was read: the table and a metric behind it are in it.
  assert.ok(local.includes("eval/metrics/table.ts"), local.join("\n"));
  assert.ok(local.includes("eval/bleu_statistics.ts"), local.join("\n"));
  const forbidden = local.filter((path) =>
    !path.startsWith("eval/") || /^eval\/(harness|helm|readers|forgetting)/.test(path)
  );
  assert.deepEqual(forbidden, [], `eval/metrics.ts reaches ${forbidden.join(", ")}`);
});
