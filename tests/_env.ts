/**
 * Test helper: settings that satisfy start-up checks for the short idle
 * times tests use.
 *
 * @module
 */

/**
 * `env` with a DRAIN_BUDGET_MS below its CLAIM_IDLE_MS, as loadConfig
 * requires, when a test shortens CLAIM_IDLE_MS and sets no budget itself.
 */
export function withShortBudget(env: Record<string, string>): Record<string, string> {
  const claim = env.CLAIM_IDLE_MS;
  if (claim === undefined || env.DRAIN_BUDGET_MS !== undefined) return env;
  return { ...env, DRAIN_BUDGET_MS: String(Math.max(1, Math.floor(Number(claim) / 2))) };
}
