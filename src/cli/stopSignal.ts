/**
 * Waits for the first SIGINT or SIGTERM, then runs `stop` and resolves once it has finished. The
 * handlers are removed first, so a second signal gets Node's default (the process ends at once).
 * For the long-running commands that only need a graceful stop (`emulate`, `check-ports --listen`);
 * `serve` keeps its own, which also answers a second signal.
 */
export function untilStopSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const onSignal = () => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      void stop().then(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
