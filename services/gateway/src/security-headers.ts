import type { NextFunction, Request, Response } from 'express';

/** The Content-Security-Policy of API answers: nothing may be loaded or framed. */
export const apiContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Basic hardening headers on every answer. Pages that render HTML set their own CSP. */
export function securityHeaders() {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Content-Security-Policy', apiContentSecurityPolicy);
    // API answers are per caller and change; routes that may be cached say so.
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
}
