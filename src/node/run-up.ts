/**
 * Process entry for `npm start`: every node of cluster.config.ts (or --config) as its own process.
 * `cairn up` runs the same function.
 */
import { runUp } from "./cli-hooks.ts";

const i = process.argv.indexOf("--config");
const config = i >= 0 ? process.argv[i + 1] : undefined;
runUp(config ? { config } : {}).then(
  () => process.exit(0),
  (error: unknown) => {
    const e = error as { code?: string; message?: string };
    process.stderr.write(`error: ${e.code ? `[${e.code}] ` : ""}${e.message ?? String(error)}\n`);
    process.exit(1);
  },
);
