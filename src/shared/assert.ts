/**
 * Assertions guard invariants: a failure is a programmer error, so it throws and the node crashes.
 * They stay on in production (TigerBeetle style). Operating errors use CairnError instead.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
