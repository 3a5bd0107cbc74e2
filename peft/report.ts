/**
 * The interpretability report of prompt tuning: for each learned virtual token, its k nearest
 * vocabulary tokens by cosine similarity to the rows of the token table (`wte`, the Llama family's
 * `model.embed_tokens`), and how far it moved from its initialisation (L2 distance and cosine
 * distance 1 − cos), rendered as a Markdown table. Computed on the CPU from one read-back of P and
 * the token table.
 *
 * @module
 */

import type { Tokenizer } from "../models/tokenizer.ts";
import type { PromptInstance } from "./prompt.ts";

/** One virtual token's row of the report. */
export interface PromptReportRow {
  /** Index j of the virtual token. */
  index: number;
  /** The k nearest vocabulary tokens, most similar first (ties: lower id first). */
  nearest: { id: number; text: string | null; cosine: number }[];
  /** ‖P[j]‖. */
  norm: number;
  /** ‖P[j] − P₀[j]‖, P₀ the initialisation. */
  l2FromInit: number;
  /** 1 − cos(P[j], P₀[j]). */
  cosineFromInit: number;
  /** The token P[j] was initialised from (SAMPLE_VOCAB, TEXT), or null (RANDOM). */
  initId: number | null;
}

function cosine(a: Float32Array, ao: number, b: Float32Array, bo: number, C: number): number {
  let dot = 0, na = 0, nb = 0;
  for (let c = 0; c < C; c++) {
    const x = a[ao + c], y = b[bo + c];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * Builds the report of a prompt-tuning instance: reads P and `wte` back (one GPU wait) and, for
 * each virtual token, ranks the whole vocabulary by cosine similarity. `tokenizer` (optional)
 * decodes the neighbours' text.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prompt, promptReport, renderPromptReport } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prompt.apply(
 *   model,
 *   prompt.validate({ num_virtual_tokens: 2, prompt_tuning_init: "TEXT", init_text_ids: [72, 105] }),
 *   0,
 * );
 * const rows = await promptReport(inst, null, 3);
 * if (rows[0].nearest[0].id !== 72) throw new Error("a TEXT init is its own nearest token");
 * console.log(renderPromptReport(rows));
 * model.release();
 * ```
 */
export async function promptReport(
  inst: PromptInstance,
  tokenizer: Tokenizer | null,
  k = 5,
): Promise<PromptReportRow[]> {
  const model = inst.model, { C, V } = model.shape;
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new RangeError(`Cannot build the prompt report: k=${k} must be a positive integer`);
  }
  const [P, wte] = await model.gpu.read([inst.prompt.value, model.wte.value]);
  const n = inst.prompt.shape[0], P0 = inst.initial;
  const norms = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += wte[v * C + c] * wte[v * C + c];
    norms[v] = Math.sqrt(s);
  }
  const rows: PromptReportRow[] = [];
  const sims = new Float64Array(V);
  for (let j = 0; j < n; j++) {
    let pn = 0;
    for (let c = 0; c < C; c++) pn += P[j * C + c] * P[j * C + c];
    pn = Math.sqrt(pn);
    for (let v = 0; v < V; v++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += P[j * C + c] * wte[v * C + c];
      sims[v] = pn > 0 && norms[v] > 0 ? dot / (pn * norms[v]) : 0;
    }
    // Keep the top k with a small insertion list (V can be 50k; k is small).
    const top: number[] = [];
    for (let v = 0; v < V; v++) {
      if (top.length === k && !(sims[v] > sims[top[k - 1]])) continue;
      let at = top.length;
      while (at > 0 && sims[v] > sims[top[at - 1]]) at--;
      top.splice(at, 0, v);
      if (top.length > k) top.pop();
    }
    let d2 = 0;
    for (let c = 0; c < C; c++) d2 += (P[j * C + c] - P0[j * C + c]) ** 2;
    rows.push({
      index: j,
      nearest: top.map((id) => ({
        id,
        text: tokenizer ? tokenizer.decode([id]) : null,
        cosine: sims[id],
      })),
      norm: pn,
      l2FromInit: Math.sqrt(d2),
      cosineFromInit: 1 - cosine(P, j * C, P0, j * C, C),
      initId: inst.initIds ? inst.initIds[j] : null,
    });
  }
  return rows;
}

/**
 * A token's text as a Markdown table cell: JSON-quoted (so spaces, newlines, tabs and control
 * characters show as `" "`, `\n`, `\t`, `\u0000`) inside a code span, with `|` escaped for the
 * table. Without text, the id alone.
 *
 * @example
 * ```ts
 * import { tokenCell } from "../mod.ts";
 * if (tokenCell(32, " ") !== '`" "` (#32)' || tokenCell(10, "\n") !== '`"\\n"` (#10)') throw new Error();
 * if (tokenCell(1, "a|b") !== '`"a\\|b"` (#1)' || tokenCell(5, null) !== "#5") throw new Error();
 * ```
 */
export function tokenCell(id: number, text: string | null): string {
  if (text === null) return `#${id}`;
  const quoted = JSON.stringify(text).replaceAll("|", "\\|");
  const longest = Math.max(0, ...(quoted.match(/`+/g) ?? []).map((s) => s.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${longest > 0 ? " " : ""}${quoted}${longest > 0 ? " " : ""}${fence} (#${id})`;
}

/**
 * Renders {@linkcode promptReport} rows as a Markdown table.
 *
 * @example
 * ```ts
 * import { renderPromptReport } from "../mod.ts";
 * const table = renderPromptReport([{
 *   index: 0,
 *   nearest: [{ id: 72, text: "H", cosine: 0.995 }],
 *   norm: 1.5,
 *   l2FromInit: 0.25,
 *   cosineFromInit: 0.01,
 *   initId: 72,
 * }]);
 * if (!table.includes('| 0 | `"H"` (#72) 0.995 | 1.500 | 0.2500 | 0.0100 |')) throw new Error(table);
 * ```
 */
export function renderPromptReport(rows: readonly PromptReportRow[]): string {
  const k = rows[0]?.nearest.length ?? 0;
  const head = [
    "virtual token",
    ...Array.from({ length: k }, (_, i) => `nearest ${i + 1} (cos)`),
    "‖P‖",
    "L2 from init",
    "cos dist from init",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => i === 0 ? "---" : "---:").join(" | ")} |`,
  ];
  for (const r of rows) {
    const cells = [
      String(r.index),
      ...r.nearest.map((t) => `${tokenCell(t.id, t.text)} ${t.cosine.toFixed(3)}`),
      r.norm.toFixed(3),
      r.l2FromInit.toFixed(4),
      r.cosineFromInit.toFixed(4),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}
