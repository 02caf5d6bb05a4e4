/**
 * `load`, shared by concurrent callers: while one call is under way, others get its
 * promise; the next call after it settles starts afresh. For answers of unauthenticated
 * routes whose every call would otherwise fan out (to each dependency, to each worker).
 */
export function shareInFlight<T>(load: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= load().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
