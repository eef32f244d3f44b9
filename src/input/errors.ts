/**
 * Errors about what the user gave Tide (command line, config file, trace, policy spec,
 * scenario options, store path). Every one carries a stable code; the CLI exits with status 2
 * for them (see exitStatusOf in src/cli/io.ts) and prints the message, which names the file
 * and line, the JSON path or the flag that is wrong. Never used for bugs or I/O failures.
 */

/** Codes meaning "the input is wrong" (exit status 2), whichever module raised them. */
export const INPUT_ERROR_CODES: ReadonlySet<string> = new Set([
  'TIDE_USAGE', 'TIDE_INPUT', 'TIDE_CONFIG', 'TIDE_TRACE', 'TIDE_POLICY', 'TIDE_SCENARIO', 'TIDE_INVALID_ARGUMENT',
  // src/data: a day the checksum manifest does not list; a malformed manifest (--manifest FILE)
  'TIDE_DATA_UNKNOWN', 'TIDE_DATA_MANIFEST',
]);

export type InputErrorCode = 'TIDE_INPUT' | 'TIDE_SCENARIO' | 'TIDE_TRACE' | 'TIDE_CONFIG' | 'TIDE_USAGE';

/** Bad input that no more specific error class covers (e.g. a scenario that cannot be placed). */
export class InputError extends Error {
  constructor(message: string, readonly code: InputErrorCode = 'TIDE_INPUT') {
    super(message);
    this.name = 'InputError';
  }
}
