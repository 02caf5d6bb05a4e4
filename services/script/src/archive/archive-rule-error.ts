/** A member breaks the archive rules. */
export class ArchiveRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveRuleError';
  }
}
