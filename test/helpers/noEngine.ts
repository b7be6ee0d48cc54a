/** `--import` this (NODE_OPTIONS) to make any load of bullmq or ioredis fail (noEngineHooks.ts). */
import { register } from 'node:module';

register('./noEngineHooks.js', import.meta.url);
