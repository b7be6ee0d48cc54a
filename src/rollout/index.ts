/** Scheduled rollouts: plan (pure data) → runner (journaled) → reports. */
import { resolve } from 'node:path';
import { findImage, loadCatalog } from '../catalog/index.js';
import { loadInventory } from './inventory.js';
import { loadPlan, planRollout } from './plan.js';

export { EmbeddedExecutor, RolloutRunner, type ExecutorRun, type SwitchExecutor, type RunnerEvent, type RunnerOptions, type RunOutcome, type RunSummary } from './runner.js';
export { writeReports, buildReport, toCsv, toHtml } from './report.js';
export { foldJournal, countOutcomes, type RolloutState, type SwitchState } from './state.js';
export { readJournal, Journal } from './journal.js';
export { SiteAgent, type AgentOptions } from './agent.js';
export { EngineExecutor } from './coordinator.js';
export { transferJobId, type TransferJobData, type TransferResult } from './siteJobs.js';
export { JOURNAL_FILE, activeRunner, lockStateDir, readControl, releaseLock, writeControl } from './control.js';
export { nextWindow, runInWindows, waitForWindow, type MaintenanceWindow, type WindowClock } from './window.js';
export { computeWaves, nameSwitches, planRollout, loadPlan, siteWindow, type RolloutPlanConfig } from './plan.js';
export { loadInventory, type InventorySwitch } from './inventory.js';
export { DocumentError } from './document.js';
export { ProgressRenderer, ProgressTracker, renderProgress, transferRate, type ProgressState, type ProgressStream } from './progress.js';
export { HOST_KEY_MISMATCH_VERDICT, NO_PINNED_HOST_KEY, dryRunPrechecks, decide, hostKeyCheckFor, type DryRunRow, type PrecheckDecision } from './precheck.js';

/** Loads plan, inventory and catalog, and computes the plan's waves: what a dry run prints. */
export async function prepareRollout(planPath: string, inventoryPath: string) {
  const { plan, digest } = await loadPlan(planPath);
  const inventory = await loadInventory(inventoryPath);
  const catalog = await loadCatalog(plan.server.images);
  const lookup = (file: string) => findImage(catalog, file) ?? undefined;
  const computed = planRollout(plan, inventory, lookup);
  return { plan, planDigest: digest, planPath: resolve(planPath), inventory, inventoryPath: resolve(inventoryPath), findImage: lookup, ...computed };
}
