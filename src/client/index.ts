/**
 * The cairn client: `connect()` → Connection, `new Kvm(nc)` → bucket manager, `KV` bucket handles.
 * Free of Node-only imports (a browser uses it through the global WebSocket). See docs/protocol.md.
 */
import { Connection } from "./connection.ts";
import type { ConnectOptions } from "./types.ts";

export { Connection } from "./connection.ts";
export { Kvm } from "./kvm.ts";
export type { Bucket } from "./kv.ts";
export type * from "./types.ts";

/**
 * Connects to one of `servers` (shuffled unless noRandomize) and completes the `hello` handshake.
 * Rejects with UNAVAILABLE when no server answers within timeoutMs, UNAUTHORIZED when the token is
 * refused, INVALID_OPTION for bad options.
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const connection = new Connection(options);
  await connection.start();
  return connection;
}
