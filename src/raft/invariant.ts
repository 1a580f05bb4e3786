/**
 * `if (!cond) violated(message)`: an assertion whose message is built only when it fails, for hot
 * paths where `assert(cond, \`...${x}\`)` would format a string on every call.
 */
import { AssertionError } from "../shared/assert.ts";

export function violated(message: string): never {
  throw new AssertionError(message);
}
