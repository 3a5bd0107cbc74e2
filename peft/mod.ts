/**
 * Parameter-efficient fine-tuning: methods as gradient masks (full, selective, BitFit) and
 * parameter injections (LoRA, …), one registry, files Python's PEFT can read.
 *
 * @module
 */
export {
  checkConfig,
  freezeBase,
  linearSlots,
  matchesTarget,
  type MergeReport,
  type PeftContext,
  type PeftInstance,
  type PeftMethod,
} from "./method.ts";
export {
  type AppliedLoraConfig,
  type DoraState,
  loadLora,
  lora,
  type LoraAdapter,
  type LoraBias,
  type LoraConfig,
  type LoraInit,
  LoraInstance,
  LoRALinear,
  type LoraLoadOptions,
  readLoraConfig,
  type SavedModule,
} from "./lora.ts";
export { loraPatternKey, validateLoraConfig } from "./lora_config.ts";
export {
  bitfit,
  full,
  namePattern,
  type QkvPart,
  selective,
  type SelectiveConfig,
  selectParameters,
} from "./selective.ts";
export {
  adapters,
  BottleneckAdapter,
  type BottleneckConfig,
  BottleneckInstance,
  readBottleneckConfig,
} from "./adapters.ts";
export { ia3, type IA3Config, IA3Instance, IA3Linear, readIA3Config } from "./ia3.ts";
export { prefix, type PrefixConfig, PrefixInstance, readPrefixConfig } from "./prefix.ts";
export {
  prompt,
  type PromptConfig,
  PromptInstance,
  readPromptConfig,
  textInitIds,
} from "./prompt.ts";
export { promptReport, type PromptReportRow, renderPromptReport, tokenCell } from "./report.ts";
export {
  AdapterConfigFile,
  AdapterWeights,
  readAdapterConfigFile,
  readAdapterWeights,
  sortedJson,
  writeAdapterFiles,
  type WriteAdapterOptions,
} from "./files.ts";
export {
  adapterMethod,
  type AnyPeftMethod,
  loadAdapter,
  PEFT_METHODS,
  peftMethod,
} from "./registry.ts";
export { saveMergedCheckpoint } from "./export.ts";
