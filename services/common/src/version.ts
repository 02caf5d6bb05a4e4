/** The platform's version, reported by health checks. */
export const platformVersion = '0.1.0';
