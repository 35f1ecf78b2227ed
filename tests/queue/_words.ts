/**
 * Test helper: a tiny group for the engine tests, with no stock in it: it
 * counts words per first letter, writes an output per word, and fails on
 * the words it is told to.
 *
 * @module
 */

import { PoisonError, type StepHandler } from "../../shared/queue/mod.ts";

/** A word entry. */
export interface Word {
  /** The word. */
  word: string;
}

/** Options of {@linkcode wordCounter}. */
export interface WordCounterOptions {
  /**
   * Stream the outputs go to.
   * @default {"words:out"}
   */
  output?: string;
  /**
   * Words whose step throws.
   * @default {new Set()}
   */
  failing?: Set<string>;
  /**
   * Where the group starts; passing undefined leaves the engine's default ("$").
   * @default {"0"}
   */
  start?: string;
  /**
   * Group name.
   * @default {"word-count"}
   */
  name?: string;
}

/** Counts words per first letter; each word is one output of kind "word". */
export function wordCounter(options: WordCounterOptions = {}): StepHandler<Word, string[]> {
  const { output = "words:out", failing = new Set(), name = "word-count" } = options;
  const start = "start" in options ? options.start : "0";
  return {
    name,
    start,
    output: { key: output, maxLen: 1000 },
    decode(fields) {
      if (fields[0] !== "word" || fields[1] === undefined) {
        throw new PoisonError(`Entry has no word: ${JSON.stringify(fields)}`);
      }
      return { word: fields[1] };
    },
    key: (item) => item.word[0],
    step(state, item, context) {
      if (failing.has(item.word)) throw new Error(`Cannot count "${item.word}"`);
      return {
        state: [...(state ?? []), item.word],
        outputs: [{ fields: ["word", item.word, "source", context.id], kind: "word" }],
      };
    },
  };
}
