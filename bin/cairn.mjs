#!/usr/bin/env node
// The `cairn` command: runs the TypeScript CLI (src/cli/main.ts) through tsx's ESM loader, no build step.
import { register } from "tsx/esm/api";

register();
const { run } = await import(new URL("../src/cli/main.ts", import.meta.url).href);
await run(process.argv.slice(2));
