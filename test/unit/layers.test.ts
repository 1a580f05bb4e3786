/**
 * Goal: keep the layer rules of DESIGN.md true. src/raft and src/kv stay pure (no I/O, clock, timers
 * or randomness), src/raft imports no other layer, src/kv does not import src/node, and src/client
 * speaks only the wire protocol (no src/node, no Node-only modules, so it runs in a browser).
 * Method: read every source file as text and match its import lines and forbidden calls.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]!);
  return specs;
}

function codeOnly(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

const NODE_IO = /^(node:)?(fs|net|http|https|child_process|worker_threads|timers|dgram|os|crypto|path|stream|process)(\/|$)/;

describe("layer rules", () => {
  for (const layer of ["raft", "kv"]) {
    it(`src/${layer} is pure`, () => {
      const files = sourceFiles(join("src", layer));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        const text = codeOnly(readFileSync(file, "utf8"));
        for (const spec of importsOf(text)) {
          expect(NODE_IO.test(spec), `${file} imports ${spec}`).toBe(false);
          expect(["ws", "level", "classic-level"].includes(spec), `${file} imports ${spec}`).toBe(false);
          expect(/\.\.\/(node|client|cli)\//.test(spec), `${file} imports ${spec}`).toBe(false);
          if (layer === "raft") expect(/\.\.\/kv\//.test(spec), `${file} imports ${spec}`).toBe(false);
        }
        expect(/Date\.now\(|Math\.random\(|setTimeout\(|setInterval\(|new Date\(\)/.test(text), `${file} reads a clock or randomness`).toBe(false);
      }
    });
  }

  it("src/client speaks only the protocol", () => {
    for (const file of sourceFiles(join("src", "client"))) {
      const text = codeOnly(readFileSync(file, "utf8"));
      for (const spec of importsOf(text)) {
        expect(/\.\.\/(node|cli|raft|kv)\//.test(spec), `${file} imports ${spec}`).toBe(false);
        expect(NODE_IO.test(spec), `${file} imports ${spec}`).toBe(false);
      }
    }
  });
});
