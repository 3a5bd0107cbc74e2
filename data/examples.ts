/**
 * Training examples and their JSONL files. Each line of a file is one JSON object, either
 * a prompt/completion pair `{"prompt": "...", "completion": "...", "task": "..."}` (`task`
 * optional) or a chat `{"messages": [{"role": "user", "content": "..."}, ...], "task": "..."}`.
 * Blank lines are skipped. Malformed lines are collected (up to a limit) and reported together in
 * one {@linkcode DataError}, each with its file and line; so are lines of a file that are not
 * valid UTF-8 (unless the reader is told to replace such bytes).
 *
 * @module
 */

import { DataError, type DataIssue, formatLocation, type SourceLocation } from "./errors.ts";
import { files } from "../io/files.ts";

/** A prompt and the completion the model learns to produce (loss on the completion only). */
export interface PromptCompletion {
  /** The input text; its tokens are masked out of the loss. */
  prompt: string;
  /** The target text; its tokens (and EOS) are trained. */
  completion: string;
  /** The task this example belongs to, for mixing and per-task reports. */
  task?: string;
  /**
   * For multiple-choice examples: every candidate completion, scored by log-likelihood at
   * evaluation time. `completion` is `choices[gold]`.
   */
  choices?: readonly string[];
  /** Index of the correct entry of `choices`. */
  gold?: number;
  /** The file and line it was read from, for error messages. */
  source?: SourceLocation;
}

/** Who speaks a chat message. */
export type ChatRole = "system" | "user" | "assistant";

/** One message of a chat. */
export interface ChatMessage {
  /** The speaker. Only assistant messages are trained. */
  role: ChatRole;
  /** The text of the message. */
  content: string;
}

/** A chat: a list of messages whose last one is from the assistant. */
export interface ChatExample {
  /** The messages in order; the loss covers the assistant messages only. */
  messages: readonly ChatMessage[];
  /** The task this example belongs to. */
  task?: string;
  /** The file and line it was read from, for error messages. */
  source?: SourceLocation;
}

/** Either kind of training example. */
export type TextExample = PromptCompletion | ChatExample;

/**
 * True for a chat example.
 *
 * @example
 * ```ts
 * import { isChat, parseJsonl } from "../mod.ts";
 * const [pc, chat] = parseJsonl(
 *   '{"prompt": "2+2=", "completion": "4"}\n' +
 *     '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
 * );
 * if (isChat(pc) || !isChat(chat) || chat.messages.length !== 2) throw new Error();
 * ```
 */
export function isChat(example: TextExample): example is ChatExample {
  return "messages" in example;
}

/** Options for {@linkcode parseJsonl} and {@linkcode readJsonl}. */
export interface ParseJsonlOptions {
  /** The file name used in error messages. Default `"<string>"` ({@linkcode readJsonl}: the path). */
  file?: string;
  /** How many malformed lines to list in the error before summarising the rest. Default 20. */
  maxErrors?: number;
  /**
   * What {@linkcode readJsonl} does with bytes that are not valid UTF-8: "error" (the default)
   * lists every line that has them; "replace" reads each bad sequence as U+FFFD, as a lenient
   * decoder does (the text then differs from the file without a word).
   */
  invalidUtf8?: "error" | "replace";
}

const ROLES: readonly string[] = ["system", "user", "assistant"];

/**
 * Parses JSONL text into examples. Throws one {@linkcode DataError} listing every malformed line
 * (up to `maxErrors`) with its file and line: invalid JSON, a line that is not an object, missing,
 * unknown or wrongly typed fields, a prompt and completion both empty, a chat with no messages, an
 * unknown role, or a chat whose last message is not from the assistant.
 *
 * @example
 * ```ts
 * import { parseJsonl } from "../mod.ts";
 * const examples = parseJsonl(
 *   '{"prompt": "2+2=", "completion": "4"}\n\n' +
 *     '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n',
 *   { file: "mine.jsonl" },
 * );
 * if (examples.length !== 2 || examples[1].source?.line !== 3) throw new Error("parse failed");
 * ```
 */
export function parseJsonl(text: string, options: ParseJsonlOptions = {}): TextExample[] {
  const file = options.file ?? "<string>";
  const maxErrors = checkMaxErrors(options, file);
  const examples: TextExample[] = [];
  const issues: DataIssue[] = [];
  let total = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === "") continue;
    const source = { file, line: i + 1 };
    const result = parseLine(raw, source);
    if (typeof result === "string") {
      total++;
      if (issues.length < maxErrors) {
        issues.push({ where: formatLocation(source), message: result });
      }
    } else {
      examples.push(result);
    }
  }
  if (total > 0) {
    const noun = total === 1 ? "line" : "lines";
    throw new DataError(`Cannot parse ${file}: ${total} malformed ${noun}`, issues, total);
  }
  return examples;
}

/**
 * Reads and parses a JSONL file (see {@linkcode parseJsonl}); errors name the path and line.
 * Bytes that are not valid UTF-8 are an error listing each line that has them, unless
 * `options.invalidUtf8` is "replace". Needs `--allow-read` for the path.
 *
 * @example
 * ```ts
 * import { DataError, readJsonl } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.jsonl`, '{"prompt": "Q:", "completion": " A"}\n{"prompt": 1}\n');
 * try {
 *   await readJsonl(`${dir}/train.jsonl`);
 *   throw new Error("line 2 is malformed");
 * } catch (e) {
 *   // The error names the file and the line.
 *   if (!(e instanceof DataError) || !e.issues[0].where.endsWith("train.jsonl:2")) throw e;
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJsonl(
  path: string | URL,
  options: ParseJsonlOptions = {},
): Promise<TextExample[]> {
  const file = options.file ?? (path instanceof URL ? path.pathname : path);
  const maxErrors = checkMaxErrors(options, file);
  let bytes: Uint8Array;
  try {
    bytes = await files().readBytes(path);
  } catch (e) {
    throw new DataError(`Cannot read ${file}: ${(e as Error).message}`, []);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: options.invalidUtf8 !== "replace" }).decode(bytes);
  } catch {
    throw invalidUtf8Error(bytes, file, maxErrors);
  }
  return parseJsonl(text, { ...options, file });
}

function checkMaxErrors(options: ParseJsonlOptions, file: string): number {
  const maxErrors = options.maxErrors ?? 20;
  if (!Number.isInteger(maxErrors) || maxErrors < 1) {
    throw new RangeError(
      `Cannot parse ${file}: maxErrors must be a positive integer, got ${maxErrors}`,
    );
  }
  return maxErrors;
}

/** The error listing each line of `bytes` that is not valid UTF-8, with the first bad byte. */
function invalidUtf8Error(bytes: Uint8Array, file: string, maxErrors: number): DataError {
  const issues: DataIssue[] = [];
  let total = 0, line = 1, start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start); // never inside a multi-byte sequence
    if (end < 0) end = bytes.length;
    const at = invalidUtf8At(bytes, start, end);
    if (at >= 0) {
      total++;
      if (issues.length < maxErrors) {
        const hex = bytes[at].toString(16).padStart(2, "0");
        issues.push({
          where: formatLocation({ file, line }),
          message: `invalid UTF-8 at byte ${at - start + 1} of the line (0x${hex}); ` +
            `read with invalidUtf8: "replace" to take such bytes as U+FFFD`,
        });
      }
    }
    start = end + 1;
    line++;
  }
  const noun = total === 1 ? "line is" : "lines are";
  return new DataError(`Cannot read ${file}: ${total} ${noun} not valid UTF-8`, issues, total);
}

/**
 * The index of the first byte in `bytes[start, end)` that does not begin a valid UTF-8 sequence
 * (or begins one that is cut short, overlong, a surrogate or above U+10FFFF), or -1: the rules
 * of the WHATWG UTF-8 decoder that `TextDecoder` with `fatal: true` applies.
 *
 * @example
 * ```ts
 * import { invalidUtf8At } from "./examples.ts";
 * const text = new TextEncoder().encode("né");
 * if (invalidUtf8At(text) !== -1) throw new Error("valid");
 * if (invalidUtf8At(new Uint8Array([0x61, 0xc3])) !== 1) throw new Error("cut short at byte 1");
 * ```
 */
export function invalidUtf8At(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let i = start;
  while (i < end) {
    const c = bytes[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    // Continuation bytes after lead byte c, and the allowed range of the first one.
    let n: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= n; k++) {
      const x = bytes[i + k];
      if (i + k >= end || x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

/** One line to an example, or a message saying what is wrong with it. */
function parseLine(raw: string, source: SourceLocation): TextExample | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return `invalid JSON (${(e as Error).message})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `expected a JSON object, got ${describe(value)}`;
  }
  const obj = value as Record<string, unknown>;
  return "messages" in obj ? parseChat(obj, source) : parsePromptCompletion(obj, source);
}

function parsePromptCompletion(
  obj: Record<string, unknown>,
  source: SourceLocation,
): PromptCompletion | string {
  const problem = checkFields(obj, ["prompt", "completion"], ["task"]);
  if (problem) return problem;
  const { prompt, completion, task } = obj as Record<string, string>;
  if (prompt === "" && completion === "") return "prompt and completion are both empty";
  return task === undefined ? { prompt, completion, source } : { prompt, completion, task, source };
}

function parseChat(obj: Record<string, unknown>, source: SourceLocation): ChatExample | string {
  const extra = Object.keys(obj).filter((k) => k !== "messages" && k !== "task");
  if (extra.length > 0) return `unknown field ${quote(extra[0])} in a chat line`;
  if ("task" in obj && typeof obj.task !== "string") {
    return `field "task" must be a string, got ${describe(obj.task)}`;
  }
  const list = obj.messages;
  if (!Array.isArray(list)) return `field "messages" must be an array, got ${describe(list)}`;
  if (list.length === 0) return `field "messages" is empty`;
  const messages: ChatMessage[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      return `messages[${i}] must be an object, got ${describe(m)}`;
    }
    const problem = checkFields(m as Record<string, unknown>, ["role", "content"], []);
    if (problem) return `messages[${i}]: ${problem}`;
    const { role, content } = m as Record<string, string>;
    if (!ROLES.includes(role)) {
      return `messages[${i}]: unknown role ${
        quote(role)
      } (expected "system", "user" or "assistant")`;
    }
    messages.push({ role: role as ChatRole, content });
  }
  if (messages[messages.length - 1].role !== "assistant") {
    return "the last message must be from the assistant (only assistant messages are trained)";
  }
  const task = obj.task as string | undefined;
  return task === undefined ? { messages, source } : { messages, task, source };
}

/** A message about the first missing, unknown or non-string field, or undefined if all is well. */
function checkFields(
  obj: Record<string, unknown>,
  required: readonly string[],
  optional: readonly string[],
): string | undefined {
  for (const key of required) {
    if (!(key in obj)) return `missing field ${quote(key)}`;
  }
  for (const key of Object.keys(obj)) {
    if (!required.includes(key) && !optional.includes(key)) {
      const allowed = [...required, ...optional].map(quote).join(", ");
      return `unknown field ${quote(key)} (allowed: ${allowed})`;
    }
    if (typeof obj[key] !== "string") {
      return `field ${quote(key)} must be a string, got ${describe(obj[key])}`;
    }
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

function quote(key: string): string {
  return JSON.stringify(key);
}
