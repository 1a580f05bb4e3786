/**
 * Waiting for an operation with a deadline, as the request paths of node.ts and membership.ts do.
 */
import type { CairnError } from "../shared/errors.ts";

/**
 * `promise`, or `timeoutError()` once `deadline` (epoch ms) has passed. When the deadline has already
 * passed, the operation's own later rejection is swallowed: nobody awaits it any more, and an unhandled
 * rejection ends the process (a thawed leader working off stale client frames did; jepsen-lite seed 2).
 */
export function withDeadline<T>(promise: Promise<T>, deadline: number, timeoutError: () => CairnError): Promise<T> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) {
    promise.catch(() => undefined);
    return Promise.reject(timeoutError());
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), remaining);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
