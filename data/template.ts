/**
 * FLAN-style instruction templates. A template is a prompt and a completion with named
 * placeholders, `{input}`, `{options}`, `{answer}`; `{{` and `}}` stand for literal braces.
 * `{options}` is replaced by the example's options in the template's {@linkcode OptionStyle}, so
 * templates of one task can show the same choices in different formats.
 *
 * @module
 */

/**
 * How `{options}` is written, for options `["red", "blue"]`:
 * - `"dash"`: `"- red\n- blue"`
 * - `"letters"`: `"(A) red (B) blue"`
 * - `"numbered"`: `"1. red\n2. blue"`
 * - `"inline"`: `"red or blue"` (`"red, blue or green"` for three)
 */
export type OptionStyle = "dash" | "letters" | "numbered" | "inline";

const OPTION_STYLES: readonly OptionStyle[] = ["dash", "letters", "numbered", "inline"];

/** A template as written by a task author. */
export interface TemplateSpec {
  /** The prompt, e.g. `"Translate to Toy: {input}\nToy:"`. Must not use `{answer}`. */
  prompt: string;
  /** The completion, e.g. `" {answer}"`. Must use `{answer}`. */
  completion: string;
  /** How `{options}` is written; required when the template uses `{options}`. */
  optionStyle?: OptionStyle;
}

/** A validated template (see {@linkcode compileTemplate}). */
export interface Template extends Readonly<TemplateSpec> {
  /** The placeholders the prompt uses, in order of first use. */
  readonly promptFields: readonly string[];
}

/** The placeholder that the options fill. */
export const OPTIONS_FIELD = "options";
/** The placeholder that the answer fills; every completion has it and no prompt may. */
export const ANSWER_FIELD = "answer";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The placeholder names in `text`, in order of first use. Throws on a brace that is neither part
 * of `{name}` nor doubled.
 *
 * @example
 * ```ts
 * import { placeholders } from "../mod.ts";
 * if (placeholders("Q: {input} {{x}} {input}").join() !== "input") throw new Error();
 * ```
 */
export function placeholders(text: string): string[] {
  try {
    return fieldNames(text);
  } catch (e) {
    throw new Error(`Cannot parse template: ${(e as Error).message}`);
  }
}

/** The placeholder names in `text`; throws a bare reason on a bad brace. */
function fieldNames(text: string): string[] {
  const names: string[] = [];
  for (const part of scan(text)) {
    if (part.field !== undefined && !names.includes(part.field)) names.push(part.field);
  }
  return names;
}

/**
 * Validates a template against the fields its task provides and returns it compiled. `where`
 * names it in errors, e.g. `task "arithmetic" template 3`. Errors: a malformed brace, an unknown
 * placeholder, `{answer}` in the prompt or missing from the completion, `{options}` without an
 * option style (or a style without `{options}`), and `{options}` in a task without options.
 *
 * @example
 * ```ts
 * import { compileTemplate } from "../mod.ts";
 * const t = compileTemplate(
 *   { prompt: "{question}\nOptions: {options}\nAnswer:", completion: " {answer}", optionStyle: "inline" },
 *   { inputs: ["question"], hasOptions: true },
 *   "task \"quiz\" template 0",
 * );
 * if (t.promptFields.join() !== "question,options") throw new Error();
 * ```
 */
export function compileTemplate(
  spec: TemplateSpec,
  task: { inputs: readonly string[]; hasOptions: boolean },
  where: string,
): Template {
  const fail = (why: string) => new Error(`Cannot define ${where}: ${why}`);
  const known = [...task.inputs, ...(task.hasOptions ? [OPTIONS_FIELD] : [])];
  let promptFields: string[], completionFields: string[];
  try {
    promptFields = fieldNames(spec.prompt);
    completionFields = fieldNames(spec.completion);
  } catch (e) {
    throw fail((e as Error).message);
  }
  for (const f of promptFields) {
    if (f === ANSWER_FIELD) {
      throw fail("the prompt uses {answer}, which would give the answer away");
    }
    if (!known.includes(f)) {
      throw fail(`unknown placeholder {${f}} (known: ${known.map((k) => `{${k}}`).join(", ")})`);
    }
  }
  for (const f of completionFields) {
    if (f !== ANSWER_FIELD && !known.includes(f)) {
      throw fail(`unknown placeholder {${f}} in the completion`);
    }
    if (f === OPTIONS_FIELD) throw fail("the completion uses {options}");
  }
  if (!completionFields.includes(ANSWER_FIELD)) throw fail("the completion does not use {answer}");
  const usesOptions = promptFields.includes(OPTIONS_FIELD);
  if (spec.optionStyle !== undefined && !OPTION_STYLES.includes(spec.optionStyle)) {
    throw fail(`unknown option style "${spec.optionStyle}" (known: ${OPTION_STYLES.join(", ")})`);
  }
  if (usesOptions && spec.optionStyle === undefined) throw fail("{options} needs an optionStyle");
  if (!usesOptions && spec.optionStyle !== undefined) {
    throw fail(`optionStyle "${spec.optionStyle}" is set but the prompt does not use {options}`);
  }
  return Object.freeze({ ...spec, promptFields: Object.freeze(promptFields) });
}

/**
 * Options written in a style (see {@linkcode OptionStyle}).
 *
 * @example
 * ```ts
 * import { formatOptions } from "../mod.ts";
 * if (formatOptions(["red", "blue"], "letters") !== "(A) red (B) blue") throw new Error();
 * ```
 */
export function formatOptions(options: readonly string[], style: OptionStyle): string {
  switch (style) {
    case "dash":
      return options.map((o) => `- ${o}`).join("\n");
    case "letters":
      return options.map((o, i) => `(${String.fromCharCode(65 + i)}) ${o}`).join(" ");
    case "numbered":
      return options.map((o, i) => `${i + 1}. ${o}`).join("\n");
    case "inline":
      return options.length < 2
        ? options.join("")
        : `${options.slice(0, -1).join(", ")} or ${options[options.length - 1]}`;
  }
}

/**
 * Fills a template: `values` gives every input field and the answer; `options` fills `{options}`.
 * Throws if a placeholder has no value.
 *
 * @example
 * ```ts
 * import { compileTemplate, renderTemplate } from "../mod.ts";
 * const t = compileTemplate({ prompt: "{a}+{b}=", completion: "{answer}" },
 *   { inputs: ["a", "b"], hasOptions: false }, "example");
 * const r = renderTemplate(t, { a: "2", b: "3", answer: "5" });
 * if (r.prompt !== "2+3=" || r.completion !== "5") throw new Error();
 * ```
 */
export function renderTemplate(
  template: Template,
  values: Readonly<Record<string, string>>,
  options?: readonly string[],
): { prompt: string; completion: string } {
  const lookup = (field: string): string => {
    if (field === OPTIONS_FIELD) {
      if (options === undefined || template.optionStyle === undefined) {
        throw new Error("Cannot render template: {options} needs options and an optionStyle");
      }
      return formatOptions(options, template.optionStyle);
    }
    const v = values[field];
    if (typeof v !== "string") throw new Error(`Cannot render template: no value for {${field}}`);
    return v;
  };
  const fill = (text: string) =>
    scan(text).map((p) => p.field === undefined ? p.text : lookup(p.field)).join("");
  return { prompt: fill(template.prompt), completion: fill(template.completion) };
}

/** Text split into literal pieces and placeholders. */
function scan(text: string): { text: string; field?: string }[] {
  const parts: { text: string; field?: string }[] = [];
  let literal = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if ((c === "{" || c === "}") && text[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === "{") {
      const end = text.indexOf("}", i);
      const name = end < 0 ? "" : text.slice(i + 1, end);
      if (!NAME.test(name)) {
        throw new Error(
          `bad placeholder at offset ${i} of ${JSON.stringify(text)} ` +
            `(write {name}, or {{ for a literal brace)`,
        );
      }
      if (literal) parts.push({ text: literal });
      literal = "";
      parts.push({ text: "", field: name });
      i = end;
    } else if (c === "}") {
      throw new Error(
        `unmatched } at offset ${i} of ${JSON.stringify(text)} (write }} for a literal brace)`,
      );
    } else {
      literal += c;
    }
  }
  if (literal) parts.push({ text: literal });
  return parts;
}
