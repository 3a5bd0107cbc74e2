/**
 * whet: fine-tune small decoder language models on WebGPU, in TypeScript.
 *
 * @module
 */
export * from "./runtime/mod.ts";
export * from "./io/mod.ts";
export * from "./kernels/mod.ts";
export * from "./models/mod.ts";
export * from "./train/mod.ts";
export * from "./data/mod.ts";
export * from "./eval/mod.ts";
export * from "./peft/mod.ts";
