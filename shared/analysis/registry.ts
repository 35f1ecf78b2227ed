/**
 * The analyses the engine runs, one consumer group each.
 *
 * @module
 */

import { marketEvents } from "./market_events.ts";
import { priceAlerts } from "./price_alerts.ts";
import { technicalAnalysis } from "./technical_analysis.ts";
import type { Analysis } from "./types.ts";
import { volumeAnalysis } from "./volume_analysis.ts";

/** All analyses, in the order the engine runs them. */
export const ANALYSES: readonly Analysis[] = [
  priceAlerts,
  volumeAnalysis,
  technicalAnalysis,
  marketEvents,
];

/** Finds an analysis by its consumer group name. */
export function findAnalysis(group: string): Analysis | undefined {
  return ANALYSES.find((analysis) => analysis.group === group);
}
