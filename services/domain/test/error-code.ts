import { PatchbayError } from '../errors.ts';

/** The code of the PatchbayError a call throws, or 'no error'; anything else is rethrown. */
export function errorCodeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof PatchbayError) return e.code;
    throw e;
  }
  return 'no error';
}
