/**
 * The one module that imports commander: every CLI file takes the program's types and helpers
 * from here, so a commander upgrade (15 needs Node 22) has one place to look.
 */
export { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
