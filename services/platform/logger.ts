import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.ts';

/** Structured logs go to a file (the terminal shows progress), or to standard output in a container. */
export function makeLogger(config: Config): Logger {
  const dest = config.logFile === null ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: config.logFile, sync: false, mkdir: true });
  return pino({ level: config.logLevel, base: { pid: process.pid } }, dest);
}
