/**
 * Byte budgets for what a job emits (its build output, its guest's console,
 * its log stream). A budget passes text until its limit, then one marker
 * line saying where it was cut, then nothing: whatever a job prints, what
 * patchbay keeps of it is bounded.
 */

export interface BudgetTake {
  /** What to keep of this chunk (possibly cut, possibly with the marker). */
  text: string;
  /** True on the chunk that crossed the limit (the marker is in `text`). */
  cutNow: boolean;
}

/** The line appended where a budget cut its stream. */
export function cutMarker(what: string, limitBytes: number): string {
  return `\npatchbay: ${what} cut at ${formatBytes(limitBytes)} (the limit for it); the rest was discarded\n`;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024 && n % (1024 * 1024 * 1024) === 0) return `${n / (1024 * 1024 * 1024)} GiB`;
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

export class ByteBudget {
  private used = 0;
  private cut = false;

  constructor(
    readonly limitBytes: number,
    /** Names the stream in the marker: "build output", "the log stream". */
    private readonly what: string,
  ) {
    if (!Number.isInteger(limitBytes) || limitBytes < 0) throw new RangeError(`byte budget must be a non-negative integer, got ${limitBytes}`);
  }

  get exhausted(): boolean {
    return this.cut;
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Counts UTF-8 bytes; a cut never splits a character. */
  take(text: string): BudgetTake {
    if (this.cut) return { text: '', cutNow: false };
    const bytes = Buffer.byteLength(text, 'utf8');
    if (this.used + bytes <= this.limitBytes) {
      this.used += bytes;
      return { text, cutNow: false };
    }
    const room = this.limitBytes - this.used;
    const kept = utf8Prefix(text, room);
    this.used = this.limitBytes;
    this.cut = true;
    return { text: kept + cutMarker(this.what, this.limitBytes), cutNow: true };
  }
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`. */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
