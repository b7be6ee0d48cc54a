/** check-ports prober and probe listener, rule generators, and open/close on Linux. */
export * from './classify.js';
export * from './checkPorts.js';
export * from './report.js';
export * from './rules.js';
export * from './linuxFirewall.js';
export { FirewallHelper } from './helper.js';
export * from './probeListener.js';
