import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * How `npm start` runs the compiled service, read from package.json's start script: the environment
 * assignments before `node` (e.g. MALLOC_ARENA_MAX=2) and the node flags before `dist/main.js`. The
 * benchmarks start the service with exactly these, so their figures are the ones `npm start` gives;
 * BENCH_SERVER_NODE_ARGS adds flags after them (a later flag wins in node).
 */
export function startCommand(): { nodeArgs: string[]; env: Record<string, string> } {
  const script = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const run = script.split('&&').map((s) => s.trim()).find((s) => /\bdist\/main\.js\b/.test(s));
  if (run === undefined) throw new Error(`package.json's start script does not run dist/main.js: ${script}`);
  const words = run.split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i]!); i++) {
    const [name, ...value] = words[i]!.split('=');
    env[name!] = value.join('=');
  }
  if (words[i] !== 'node') throw new Error(`package.json's start script does not run node: ${run}`);
  const nodeArgs = words.slice(i + 1, words.indexOf('dist/main.js'));
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return { nodeArgs: [...nodeArgs, ...extra], env };
}
