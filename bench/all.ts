/**
 * `npm run bench`: runs every `bench:*` script of package.json in sequence, each as its own process
 * (exactly as `npm run bench:<name>` runs it alone), streams its output, then prints a summary: exit
 * status, wall time, and the last lines of each bench's output (where each bench prints its figures).
 * Benches run one at a time so they do not compete for the CPUs; the load average is printed before
 * and after each one.
 *
 *   npm run bench
 *   npm run bench -- --only cluster,store      (names without the "bench:" prefix)
 *   npm run bench -- --skip transport
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "..");
/** Lines of each bench's output repeated in the summary. */
const SUMMARY_TAIL_LINES = 12;
/** Output lines kept per bench for the summary (the newest). */
const KEPT_LINES_MAX = 200;

const args = process.argv.slice(2);
function listOption(name: string): Set<string> | null {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? new Set(args[at + 1]!.split(",")) : null;
}
const only = listOption("only");
const skip = listOption("skip") ?? new Set<string>();

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
const benches = Object.keys(pkg.scripts)
  .filter((s) => s.startsWith("bench:"))
  .map((s) => s.slice("bench:".length))
  .filter((name) => (only === null || only.has(name)) && !skip.has(name));
if (only !== null) {
  for (const name of only) if (!benches.includes(name)) console.error(`no script bench:${name} in package.json`);
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

interface Outcome {
  readonly name: string;
  readonly code: number | null;
  readonly seconds: number;
  readonly tail: string[];
}

function run(name: string): Promise<Outcome> {
  return new Promise((done) => {
    const started = performance.now();
    const lines: string[] = [];
    let partial = "";
    const keep = (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const parts = text.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) if (line.trim() !== "" && !line.startsWith("npm warn")) lines.push(line);
      if (lines.length > KEPT_LINES_MAX) lines.splice(0, lines.length - KEPT_LINES_MAX);
    };
    const child = spawn("npm", ["run", "--silent", `bench:${name}`], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (chunk: Buffer) => {
      process.stdout.write(chunk);
      keep(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
    child.on("close", (code) => {
      if (partial.trim() !== "") lines.push(partial);
      done({ name, code, seconds: (performance.now() - started) / 1000, tail: lines.slice(-SUMMARY_TAIL_LINES) });
    });
  });
}

const outcomes: Outcome[] = [];
for (const name of benches) {
  console.log(`\n=== bench:${name}  (load average ${load()})`);
  outcomes.push(await run(name));
}

console.log(`\n=== summary  (${os.cpus().length} CPUs, node ${process.version}, load average now ${load()})`);
for (const o of outcomes) {
  console.log(`\nbench:${o.name}: ${o.code === 0 ? "ok" : `FAILED (exit ${o.code})`} in ${o.seconds.toFixed(0)} s`);
  for (const line of o.tail) console.log(`  ${line}`);
}
if (outcomes.some((o) => o.code !== 0)) process.exitCode = 1;
