import { Injectable, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { ApiError, describeValue } from './api-error';

/** Validates input against a contract schema; the 400 names the first bad field and what was wrong. */
@Injectable()
export class ZodValidationPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown): z.output<S> {
    return parseOrThrow(this.schema, value);
  }
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  if (value === undefined) throw new ApiError(400, 'invalid_request', 'a JSON object is required');
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = innermost(result.error.issues[0]!);
  if (issue.path.length === 0 && issue.code === 'invalid_type' && issue.expected === 'object') {
    throw new ApiError(400, 'invalid_request', `expected a JSON object, got ${describeValue(value)}`);
  }
  const param = issue.path.map(String).join('.');
  const where = param ? `${param}: ` : '';
  const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more problem(s))` : '';
  throw new ApiError(400, 'invalid_request', `${where}${issue.message}${more}`, param || undefined);
}

/**
 * For a value that fits no member of a union: when exactly one member accepted its type and
 * failed deeper (an array of parts with one bad part), that member's first problem is the
 * useful one (`messages.0.content.1.text: expected string`); otherwise the union's own
 * message, which names the accepted shapes.
 */
function innermost(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || !issue.errors.length) return issue;
  const deeper = issue.errors.filter((issues) => issues.length > 0 && issues.every((i) => i.path.length > 0));
  if (deeper.length !== 1) return issue;
  const inner = innermost(deeper[0]![0]!);
  return { ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue;
}
