// The world of one test file, made before its first test and closed after its last (bun:test hooks; kept
// apart from world.ts, which the benchmarks import too).
import { afterAll, beforeAll } from "bun:test";
import { createWorld, type World } from "./world.ts";

/**
 * A world for the tests of one file: made before its first test, closed after its last. Reading it before
 * it exists (outside a test) throws.
 */
export function useWorld(label: string): World {
  let world: World | undefined;
  beforeAll(async () => {
    world = await createWorld(label);
  }, 60_000);
  afterAll(async () => {
    await world?.close();
  }, 30_000);
  return new Proxy({} as World, {
    get(_, key) {
      if (!world) throw new Error(`the ${label} world is made before the first test`);
      return Reflect.get(world, key);
    },
  });
}
