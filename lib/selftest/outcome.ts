/**
 * How a case leaves early: a skip (the environment lacks what the case needs, with the reason) or
 * a failure (the kernel did not do what the case expected, with what it did instead).
 */
export class CaseSkipped extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CaseSkipped';
  }
}

export class CaseFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaseFailed';
  }
}
