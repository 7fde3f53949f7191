/** Running a host command with its output as lines, for the runner's host-side work (git, debootstrap). */
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  /** stdout and stderr, merged, at most the last 64 KiB. */
  output: string;
}

export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: (line: string) => void } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let partial = '';
    const forward = (buf: Buffer): void => {
      const text = buf.toString('utf8');
      output = (output + text).slice(-65536);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') opts.onLine?.(line);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('close', (code) => {
      if (partial.trim() !== '') opts.onLine?.(partial);
      resolve({ code: code ?? 1, output });
    });
  });
}
