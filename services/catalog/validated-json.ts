import { readFileSync } from 'node:fs';
import type { TSchema, Static } from 'typebox';
import { Value } from 'typebox/value';
import { PatchbayError, errorMessage } from '../domain/errors.ts';

/** Reads a JSON data file and checks it against a schema; every problem names the file and field. */
export function readValidatedJson<S extends TSchema>(path: string, schema: S, code: string): Static<S> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new PatchbayError(code, `${path}: ${errorMessage(e)}`, { cause: e });
  }
  return checkValue(path, schema, data, code);
}

export function checkValue<S extends TSchema>(where: string, schema: S, data: unknown, code: string): Static<S> {
  if (Value.Check(schema, data)) return data;
  const problems = Value.Errors(schema, data)
    .filter((e) => e.keyword !== 'anyOf')
    .slice(0, 6)
    .map((e) => `${e.instancePath || '/'}: ${e.message}`);
  throw new PatchbayError(code, `${where}: invalid: ${problems.join('; ')}`);
}
