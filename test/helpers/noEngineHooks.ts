/**
 * Module hooks that refuse to load the job engine's libraries: a process started with
 * `NODE_OPTIONS=--import …/noEngine.js` fails at once, naming the library, if anything in its
 * module graph imports bullmq or ioredis. It proves single-site rollouts never load them.
 */
export async function resolve(specifier: string, context: unknown, next: (specifier: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  if (/^(bullmq|ioredis)(\/|$)/.test(specifier)) throw new Error(`the job engine library ${specifier} was loaded`);
  return next(specifier, context);
}
