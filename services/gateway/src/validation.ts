import type { z } from 'zod';
import { InvalidArgument } from '@gef/common';

/**
 * Checks a request input (body, query) against a zod schema. Unknown fields are dropped
 * (zod objects strip them); a wrong shape — `null`, an array, a string where an object is
 * required — is a 400 naming the first problem.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what = 'Request body'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue || issue.path.length === 0) {
    const expected = issue && 'expected' in issue ? String(issue.expected) : undefined;
    throw new InvalidArgument(
      value === undefined ? `${what} is required` : expected ? `${what} must be a JSON ${expected}` : `${what} is invalid: ${issue?.message ?? 'invalid'}`,
      'invalid_argument',
    );
  }
  throw new InvalidArgument(`${issue.path.map(String).join('.')}: ${issue.message}`, 'invalid_argument');
}
