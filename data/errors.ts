/**
 * The error the data layer throws: one message listing every problem found (up to a limit), each
 * naming where it is (`file:line`, or the example's index).
 *
 * @module
 */

/** Where an example came from: a file name and a 1-based line number. */
export interface SourceLocation {
  /** The file name as given to the parser (a path, or a label such as `"<string>"`). */
  file: string;
  /** 1-based line number within the file. */
  line: number;
}

/** One problem found in the data. */
export interface DataIssue {
  /** Where: `file:line` or `example #i`. */
  where: string;
  /** What is wrong, e.g. `missing field "completion"`. */
  message: string;
}

/**
 * A problem with training data. `issues` holds the problems listed in the message (at most the
 * limit the caller set); `total` counts all of them.
 *
 * @example
 * ```ts
 * import { DataError, parseJsonl } from "../mod.ts";
 * try {
 *   parseJsonl('{"prompt": 1}', { file: "bad.jsonl" });
 * } catch (e) {
 *   if (!(e instanceof DataError) || e.issues[0].where !== "bad.jsonl:1") throw e;
 * }
 * ```
 */
export class DataError extends Error {
  /** The problems listed in the message. */
  readonly issues: readonly DataIssue[];
  /** How many problems there were in all (may exceed `issues.length`). */
  readonly total: number;

  /** An error whose message is `summary` followed by one line per issue. */
  constructor(summary: string, issues: readonly DataIssue[], total = issues.length) {
    const lines = issues.map((i) => `  ${i.where}: ${i.message}`);
    if (total > issues.length) lines.push(`  ... and ${total - issues.length} more`);
    super(lines.length > 0 ? `${summary}\n${lines.join("\n")}` : summary);
    this.name = "DataError";
    this.issues = issues;
    this.total = total;
  }
}

/**
 * `file:line` for a location.
 *
 * @example
 * ```ts
 * import { formatLocation } from "../mod.ts";
 * if (formatLocation({ file: "train.jsonl", line: 3 }) !== "train.jsonl:3") throw new Error();
 * ```
 */
export function formatLocation(source: SourceLocation): string {
  return `${source.file}:${source.line}`;
}
