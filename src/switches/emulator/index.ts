/** The switch emulator: fleets of SSH switches with each platform's CLI, for rollout tests and the benchmark. */
export { EmulatedFleet, type EmulatedSwitchInfo, type FleetOptions } from './fleet.js';
export { parseFaults, FAULT_KINDS, type SwitchFaults } from './faults.js';
export { PERSONALITIES, MIXED_PLATFORMS } from './personalities/index.js';
