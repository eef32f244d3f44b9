import { configJsonSchema, loadConfig } from '../../config/load.js';
import { parse } from '../args.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide config schema            print the JSON Schema of the configuration file
tide [--config FILE] config check    validate FILE and print it with every default filled in`;

export const configCommand: Command = {
  summary: 'the configuration file: its JSON Schema, or check one',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {}, true);
    const what = positionals[0];
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    if (what === 'schema') {
      io.out(JSON.stringify(configJsonSchema(), null, 2) + '\n');
      return 0;
    }
    if (what === 'check') {
      if (typeof values.config !== 'string') throw new UsageError('config check needs --config FILE');
      io.out(JSON.stringify(loadConfig(values.config), null, 2) + '\n');
      return 0;
    }
    throw new UsageError(`expected 'schema' or 'check' (got ${what === undefined ? 'nothing' : `'${what}'`})`);
  },
};
