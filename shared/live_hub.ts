/**
 * The live feed's entry point under its former name: everything is in
 * ./live/mod.ts (hub, subscriptions, cursors over every partition).
 *
 * @module
 */

export * from "./live/mod.ts";
