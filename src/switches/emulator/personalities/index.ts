/** Every personality the emulator has, by the driver name it stands in for. */
import type { Personality } from '../personality.js';
import { ciscoIosPersonality, ciscoIosXePersonality } from './cisco.js';
import { comwarePersonality } from './comware.js';
import { dellOs10Personality } from './dellOs10.js';
import { eosPersonality } from './eos.js';
import { junosPersonality } from './junos.js';
import { nxosPersonality } from './nxos.js';
import { aosCxPersonality } from './aoscx.js';

export const PERSONALITIES: Readonly<Record<string, Personality>> = {
  'cisco-ios': ciscoIosPersonality,
  'cisco-ios-xe': ciscoIosXePersonality,
  'cisco-nxos': nxosPersonality,
  'arista-eos': eosPersonality,
  'juniper-junos': junosPersonality,
  comware: comwarePersonality,
  'dell-os10': dellOs10Personality,
  'aruba-aoscx': aosCxPersonality,
};

/** `--platform mixed`: every FTP-capable platform, switch after switch (AOS-CX downloads over HTTP(S) only). */
export const MIXED_PLATFORMS: readonly string[] = Object.keys(PERSONALITIES).filter((name) => !PERSONALITIES[name]!.restApi);
