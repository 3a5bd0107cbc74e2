/**
 * The npm packages whet uses, pinned exactly. Library code imports npm only through this file, so
 * that importing `mod.ts` by URL (which ignores the library's `deno.json`) resolves the same
 * versions that `deno.lock` records.
 *
 * @module
 */

export { Template as JinjaTemplate } from "npm:@huggingface/jinja@0.5.13";
export { Tokenizer as HFTokenizer } from "npm:@huggingface/tokenizers@0.2.0";
export { Tiktoken } from "npm:js-tiktoken@1.0.21/lite";
export { default as gpt2Ranks } from "npm:js-tiktoken@1.0.21/ranks/gpt2";
export { load as parseYaml, YAMLException } from "npm:js-yaml@5.5.0";
