/** Runs the CLI's main() in this process: its exit status and what it wrote to stderr, with environment variables set meanwhile. */
import { main } from '../main.ts';

export async function runMain(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  const saved = new Map(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = (chunk: string | Uint8Array): boolean => { stderr += String(chunk); return true; };
  try {
    return { code: await main(argv), stderr };
  } finally {
    process.stderr.write = write;
    for (const [k, v] of saved) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  }
}
