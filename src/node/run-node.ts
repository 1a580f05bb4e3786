/**
 * Process entry for one node: `node --import tsx src/node/run-node.ts --id n1 [--config path]`.
 * `cairn node` and `cairn up` both end here; kept apart from the CLI so a node process loads only
 * what a node needs.
 */
import { runNode } from "./cli-hooks.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const id = arg("id");
if (!id) {
  process.stderr.write("usage: run-node.ts --id <node id> [--config <cluster.config.ts>]\n");
  process.exit(2);
}
const config = arg("config");
runNode({ id, ...(config ? { config } : {}) }).then(
  () => process.exit(0),
  (error: unknown) => {
    const e = error as { code?: string; message?: string };
    process.stderr.write(`error: ${e.code ? `[${e.code}] ` : ""}${e.message ?? String(error)}\n`);
    process.exit(1);
  },
);
