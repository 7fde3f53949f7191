/**
 * Kernel config fragments: the lines a guest or suite needs, merged into one
 * fragment for the base build. Conflicting values are an error, not a
 * silent last-one-wins.
 */
import { PatchbayError } from './errors.ts';

/** One fragment line: CONFIG_X=y|m|n|number|"string", or "# CONFIG_X is not set". */
export const KCONFIG_LINE = /^(?:CONFIG_[A-Z0-9_]+=(?:[ymn]|-?[0-9]+|0x[0-9a-fA-F]+|"[^"]*")|# CONFIG_[A-Z0-9_]+ is not set)$/;

interface Option {
  name: string;
  value: string;
  from: string;
}

function parseLine(line: string): { name: string; value: string } | null {
  const set = /^(CONFIG_[A-Z0-9_]+)=(.*)$/.exec(line);
  if (set?.[1] !== undefined && set[2] !== undefined) return { name: set[1], value: set[2] };
  const unset = /^# (CONFIG_[A-Z0-9_]+) is not set$/.exec(line);
  if (unset?.[1] !== undefined) return { name: unset[1], value: 'n' };
  return null;
}

/**
 * Merges named fragments (text with comments and blank lines allowed) into
 * one canonical fragment, sorted by option name.
 */
export function mergeFragments(fragments: ReadonlyArray<{ from: string; text: string }>): string {
  const options = new Map<string, Option>();
  for (const { from, text } of fragments) {
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '') continue;
      const opt = parseLine(line);
      if (!opt) {
        if (line.startsWith('#')) continue;
        throw new PatchbayError('KCONFIG_INVALID', `${from}:${i + 1}: not a kernel config line: ${line}`);
      }
      const prev = options.get(opt.name);
      if (prev && prev.value !== opt.value) {
        throw new PatchbayError(
          'KCONFIG_CONFLICT',
          `${opt.name} is ${prev.value} in ${prev.from} but ${opt.value} in ${from}`,
        );
      }
      options.set(opt.name, { ...opt, from });
    }
  }
  return [...options.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((o) => (o.value === 'n' ? `# ${o.name} is not set` : `${o.name}=${o.value}`))
    .join('\n')
    .concat('\n');
}
