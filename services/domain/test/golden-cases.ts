import { readdirSync } from 'node:fs';

/**
 * The inputs of a golden folder (NAME.ext), checked so that a golden test
 * cannot pass by finding nothing: there must be inputs, and every expected
 * NAME.json must have its NAME.ext.
 */
export function goldenInputs(dir: string, ext: string): string[] {
  const files = readdirSync(dir);
  const inputs = files.filter((f) => f.endsWith(ext)).sort();
  if (inputs.length === 0) throw new Error(`${dir}: no *${ext} golden inputs`);
  const orphans = files.filter((f) => f.endsWith('.json') && !files.includes(f.replace(/\.json$/, ext)));
  if (orphans.length > 0) throw new Error(`${dir}: expected outputs without their input: ${orphans.join(', ')}`);
  return inputs;
}
