import { InvalidArgument } from '@gef/common';

/** A progress value: a finite number 0–100 (floats kept). */
export function checkProgress(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw new InvalidArgument('progress must be a number from 0 to 100', 'invalid_argument');
  }
  return value;
}
