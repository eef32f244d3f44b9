import { operatorName } from '../../daemon/ops.js';
import { API_ROLES, createToken, isApiRole } from '../../http/tokens.js';
import { parse, table } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { fmtTime, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] token create --role viewer|operator|admin [--name NAME] [--json]
tide [--config FILE] token list [--json]
tide [--config FILE] token revoke ID

  API tokens for the daemon's HTTP API (docs/api.md). \`create\` prints the new token ONCE: the
  store keeps only its sha-256 hash. Roles: viewer reads; operator also approves and rejects
  plans and sets maintenance; admin may do everything. \`revoke\` makes a token invalid at once.

  --role ROLE    viewer, operator or admin (create)
  --name NAME    a label shown in token list and in the plans it approves (create)
  --json         machine-readable output`;

export const tokenCommand: Command = {
  summary: 'HTTP API tokens: create --role viewer|operator|admin (printed once, stored hashed), list, revoke ID',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { role: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } }, true);
    const [sub, arg, extra] = positionals;
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    if (sub === 'create') {
      if (arg !== undefined) throw new UsageError(`unexpected argument '${arg}'`);
      const role = values.role as string | undefined;
      if (role === undefined || !isApiRole(role)) throw new UsageError(`--role is one of ${API_ROLES.join(', ')}`);
      const name = values.name as string | undefined;
      if (name !== undefined && (name.length === 0 || name.length > 100)) throw new UsageError('--name is 1 to 100 characters');
      return withConfigStore(values, io, (store) => {
        const { id, token } = createToken(store, { role, ...(name ? { name } : {}), by: operatorName(io.env) });
        if (values.json) io.out(`${JSON.stringify({ id, role, name: name ?? `${role} token`, token })}\n`);
        else {
          io.out(`${token}\n`);
          io.err(`token #${id} (${role}) created; it is shown only now — keep it (Authorization: Bearer <token>)\n`);
        }
        return 0;
      });
    }
    if (sub === 'list') {
      if (arg !== undefined) throw new UsageError(`unexpected argument '${arg}'`);
      return withConfigStore(values, io, (store) => {
        const rows = store.apiTokens().map(({ hash: _hash, ...r }) => r);
        if (values.json) io.out(`${JSON.stringify(rows, null, 2)}\n`);
        else if (rows.length === 0) io.out('no API token (tide token create --role viewer|operator|admin)\n');
        else io.out(table(['ID', 'NAME', 'ROLE', 'CREATED', 'BY', 'LAST USED', 'REVOKED'],
          rows.map((r) => [r.id, r.name, r.role, fmtTime(r.createdMs), r.createdBy, fmtTime(r.lastUsedMs), fmtTime(r.revokedMs)])));
        return 0;
      });
    }
    if (sub === 'revoke') {
      if (arg === undefined || !/^[1-9]\d{0,9}$/.test(arg)) throw new UsageError('tide token revoke ID (a token id from tide token list)');
      return withConfigStore(values, io, (store) => {
        const id = Number(arg);
        const rec = store.apiTokens().find((t) => t.id === id);
        if (!rec) throw new UsageError(`no API token with id ${id} (tide token list)`);
        if (!store.revokeApiToken(id, Date.now())) {
          io.out(`token #${id} was already revoked\n`);
          return 0;
        }
        io.out(`token #${id} (${rec.name}, ${rec.role}) revoked\n`);
        return 0;
      });
    }
    throw new UsageError(sub === undefined ? 'tide token create|list|revoke' : `unknown subcommand '${sub}' (create, list, revoke)`);
  },
};
