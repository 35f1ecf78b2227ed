/**
 * The consumer groups on the quote stream, in drain order: one per analysis,
 * so every analysis sees every quote (fan-out), then the quote store. Adding
 * a group is one file in this folder and one line here (docs/add_a_group.md).
 * Nothing here loads the quote store's drivers: the CLI lists groups cheaply.
 *
 * @module
 */

import type { Analysis } from "../market/analysis.ts";
import { isSinkGroup, type StockGroup } from "./group.ts";
import { marketEvents } from "./market_events.ts";
import { priceAlerts } from "./price_alerts.ts";
import { quoteStore } from "./quote_store.ts";
import { technicalAnalysis } from "./technical_analysis.ts";
import { volumeAnalysis } from "./volume_analysis.ts";
import { vwapDeviation } from "./vwap_deviation.ts";

/** Every group, in drain order; the quote store comes last. */
export const GROUPS: readonly StockGroup[] = [
  priceAlerts,
  volumeAnalysis,
  technicalAnalysis,
  marketEvents,
  vwapDeviation,
  quoteStore,
];

/** Every group name, in drain order. */
export const GROUP_NAMES: readonly string[] = GROUPS.map((g) => g.group);

/** The analyses among the groups. */
export const ANALYSES: readonly Analysis[] = GROUPS.filter((g): g is Analysis => !isSinkGroup(g));

/** The group named `name`, or undefined. */
export function findGroup(name: string): StockGroup | undefined {
  return GROUPS.find((g) => g.group === name);
}

/** The analysis named `name`, or undefined. */
export function findAnalysis(name: string): Analysis | undefined {
  return ANALYSES.find((a) => a.group === name);
}
