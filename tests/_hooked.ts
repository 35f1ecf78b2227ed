/**
 * Test helper: a view of a real client that awaits `before(command)` ahead of
 * every round trip, so a test can run another drain (or take a lease away)
 * between two of this one's. A pipeline or transaction is one round trip: its
 * `exec` is what waits. Every command still goes to the server.
 *
 * @module
 */

import type { Redis } from "ioredis";

/** Wraps `client`; `before` gets the method name (`call`, `multi`, ...) of each round trip. */
export function hooked(client: Redis, before: (command: string) => Promise<void>): Redis {
  return new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (property === "multi" || property === "pipeline") {
        return (...args: unknown[]) => {
          const batch = value.apply(target, args);
          return new Proxy(batch, {
            get(inner, name) {
              const member = Reflect.get(inner, name, inner);
              if (typeof member !== "function") return member;
              if (name !== "exec") return member.bind(inner);
              return async (...execArgs: unknown[]) => {
                await before(String(property));
                return await member.apply(inner, execArgs);
              };
            },
          });
        };
      }
      return async (...args: unknown[]) => {
        await before(String(property));
        return await value.apply(target, args);
      };
    },
  });
}
