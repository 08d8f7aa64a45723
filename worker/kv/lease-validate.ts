// What makes a lease command, or a put's lease, acceptable (see validate.ts: checked before
// proposing and again when applying, with the same code).

import { LEASE_OWNER_PATTERN, LEASE_TTL_MAX_SECONDS, LEASE_TTL_MIN_SECONDS, isLeaseId, isLeaseTtl } from './leases.ts';
import { varuintBytes } from './bytes.ts';
import { invalid, type CommandProblem } from './checks.ts';

/** lease-grant {ttl, owner?} and lease-revoke {id}: no stamp, no compare, nothing else. */
export function leaseCommandProblem(cmd: Record<string, unknown>): CommandProblem | null {
  const grant = cmd['op'] === 'lease-grant';
  const fields = grant ? ['ttl', 'owner'] : ['id'];
  for (const name of Object.keys(cmd)) if (name !== 'op' && !fields.includes(name)) return invalid(`${String(cmd['op'])} takes no ${name}`);
  if (grant) {
    if (cmd['owner'] !== undefined && !(typeof cmd['owner'] === 'string' && LEASE_OWNER_PATTERN.test(cmd['owner']))) {
      return invalid("a lease's owner must be an API token id (16 hex digits)");
    }
    return isLeaseTtl(cmd['ttl'])
      ? null
      : invalid(`lease ttl must be an integer of ${LEASE_TTL_MIN_SECONDS}..${LEASE_TTL_MAX_SECONDS} seconds`);
  }
  return isLeaseId(cmd['id']) ? null : invalid('lease id must be a positive safe integer');
}

/** A put's `lease` field: absent, 0 (none) or a lease id. The bytes it adds, or the problem. */
export function leaseFieldProblem(lease: unknown): CommandProblem | number {
  if (lease === undefined || lease === 0) return 0;
  return isLeaseId(lease) ? varuintBytes(lease) : invalid("a put's lease must be a positive safe integer (0 or absent for none)");
}
