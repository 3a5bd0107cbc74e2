/**
 * A small progress bar: redrawn in place on a terminal, plain lines otherwise (CI logs).
 *
 * @module
 */

/** Formats seconds as `1m02s` / `45s`. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60), r = Math.round(s - 60 * m);
  return m > 0 ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

/** Prints `label [#####.....] 12/100 | extra`, in place on a TTY, as lines elsewhere. */
export class ProgressBar {
  readonly #total: number;
  readonly #label: string;
  readonly #tty: boolean;
  readonly #width = 24;

  /** A bar counting to `total`. */
  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
    this.#tty = Deno.stdout.isTerminal();
  }

  /** Shows progress `done` with an extra text (loss, speed, ETA). */
  update(done: number, extra: string): void {
    const filled = Math.round((this.#width * done) / this.#total);
    const bar = "#".repeat(filled) + ".".repeat(this.#width - filled);
    const line = `${this.#label} [${bar}] ${done}/${this.#total} | ${extra}`;
    if (this.#tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
    else console.log(line);
  }

  /** Ends the bar's line on a terminal. */
  done(): void {
    if (this.#tty) Deno.stdout.writeSync(new TextEncoder().encode("\n"));
  }
}
