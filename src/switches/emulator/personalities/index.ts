/** Every personality the emulator has, by the driver name it stands in for. */
import type { Personality } from '../personality.js';
import { ciscoIosPersonality, ciscoIosXePersonality } from './cisco.js';
import { comwarePersonality } from './comware.js';
import { dellOs10Personality } from './dellOs10.js';
import { eosPersonality } from './eos.js';
import { junosPersonality } from './junos.js';
import { nxosPersonality } from './nxos.js';

export const PERSONALITIES: Readonly<Record<string, Personality>> = {
  'cisco-ios': ciscoIosPersonality,
  'cisco-ios-xe': ciscoIosXePersonality,
  'cisco-nxos': nxosPersonality,
  'arista-eos': eosPersonality,
  'juniper-junos': junosPersonality,
  comware: comwarePersonality,
  'dell-os10': dellOs10Personality,
};

/** `--platform mixed`: every FTP-capable platform, switch after switch (all of the above can pull over FTP). */
export const MIXED_PLATFORMS: readonly string[] = Object.keys(PERSONALITIES);
