/**
 * Training: AdamW with clipping, schedules, and the trainer loop with checkpoints and resume.
 *
 * @module
 */
export { ADAMW_DEFAULTS, type AdamWConfig, Optimizer } from "./optimizer.ts";
export { learningRate, type ScheduleConfig } from "./schedule.ts";
export {
  type BatchSource,
  type Progress,
  type TrainBatch,
  Trainer,
  type TrainOptions,
  type TrainResult,
} from "./trainer.ts";
export {
  type MemoryReport,
  memoryReport,
  type ParameterReport,
  parameterReport,
} from "./report.ts";
export {
  type Available,
  availableMemory,
  describePlan,
  fitMemory,
  type FitResult,
  type MemoryPlan,
  MemoryPlanError,
  type MemoryPlanInput,
  type PlanDtype,
  planInputFromModel,
  type PlanLimits,
  planMemory,
  type PlanParam,
  type PlanSection,
  type PlanTensor,
  type Remedy,
  type RemedyNames,
} from "./memory_plan.ts";
