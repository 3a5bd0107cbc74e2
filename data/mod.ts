/**
 * Training data: JSONL prompt/completion and chat files, tokenising with loss on completions only
 * (chats with the model's own chat template when it has one), truncation, fixed-shape batches,
 * train/dev/test splits, FLAN-style instruction templates, multi-task mixing, and the embedded
 * synthetic task suite.
 *
 * @module
 */
export { chatToPromptCompletion, renderSegments, type Segment } from "./chat.ts";
export { DataError, type DataIssue, formatLocation, type SourceLocation } from "./errors.ts";
export {
  type ChatExample,
  type ChatMessage,
  type ChatRole,
  isChat,
  parseJsonl,
  type ParseJsonlOptions,
  type PromptCompletion,
  readJsonl,
  type TextExample,
} from "./examples.ts";
export { Batcher, type BatcherOptions, type BatchPosition, type TokenBatch } from "./batch.ts";
export {
  formatMixture,
  mixTasks,
  type Mixture,
  type MixtureOptions,
  mixtureRates,
  type MixtureShare,
} from "./mixture.ts";
export {
  DEFAULT_SPLIT_RATIOS,
  hashSplit,
  splitByHash,
  splitItems,
  type SplitName,
  type SplitRatios,
  type Splits,
  validateSplitRatios,
} from "./split.ts";
export {
  buildSuite,
  DEFAULT_SUITE_SIZES,
  HELD_OUT_TASKS,
  SUITE_MAX_CHARS,
  SUITE_TASKS,
  type SuiteOptions,
  suiteTask,
  type SuiteTaskData,
  TRAINED_TASKS,
} from "./suite.ts";
export {
  defineTask,
  drawUnique,
  renderInstance,
  renderInstances,
  type SplitSizes,
  type Task,
  type TaskInstance,
  type TaskMetric,
  type TaskSpec,
  taskSplits,
} from "./task.ts";
export {
  ANSWER_FIELD,
  compileTemplate,
  formatOptions,
  OPTIONS_FIELD,
  type OptionStyle,
  placeholders,
  renderTemplate,
  type Template,
  type TemplateSpec,
} from "./template.ts";
export {
  type ChatTemplateLike,
  type TokenizedExample,
  type TokenizedSet,
  tokenizeExample,
  tokenizeExamples,
  type TokenizeOptions,
  type TokenizerLike,
  type TruncationPolicy,
} from "./tokenize.ts";
export { arithmeticTask } from "./tasks/arithmetic.ts";
export { multipleChoiceTask } from "./tasks/multiple_choice.ts";
export { SENTIMENT_LABELS, sentimentTask } from "./tasks/sentiment.ts";
export { summariseTask } from "./tasks/summarise.ts";
export { toToy, TOY_LEXICON, translateTask } from "./tasks/translate.ts";
export { countWordsTask, reverseWordsTask, uppercaseTask } from "./tasks/word_games.ts";
export { type CorpusOptions, packDocuments, pretrainCorpus } from "./corpus.ts";
