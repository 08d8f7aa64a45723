// The edge vars: defaults, validation with messages that name the variable, bootstrap membership.

import { describe, expect, it } from 'vitest';
import { ConfigError, QUOTA_BYTES_MIN, initialMembership, parsePeerObjectName, readConfig } from '../../worker/edge/config.ts';
import { EDGE_CACHE_BYTES, EDGE_CACHE_BYTES_MAX, EDGE_QUOTA_BYTES_MAX } from '../../worker/edge/memory.ts';
import { DEFAULT_PEER_LIMITS, DEFAULT_TICK_MS } from '../../worker/peer/options.ts';
import { DERIVED_FLUSH_MS } from '../../worker/edge/storage.ts';
import { digestOf } from '../../worker/api/authorize.ts';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';

describe('edge config', () => {
  it('defaults to a 3-peer cluster named metcd that redirects', () => {
    expect(readConfig({})).toEqual({
      cluster: 'metcd',
      bootstrapPeers: ['p1', 'p2', 'p3'],
      mode: 'redirect',
      locationHints: {},
      tickMs: DEFAULT_TICK_MS,
      snapshotEveryEntries: DEFAULT_PEER_LIMITS.snapshotEveryEntries,
      derivedFlushMs: DERIVED_FLUSH_MS,
      historyRetention: DEFAULT_KV_LIMITS.historyRetention,
      quotaBytes: 2 * 1024 ** 3, // etcd's default: a disk quota (memory.ts)
      cacheBytes: EDGE_CACHE_BYTES,
      quiesce: true,
      auth: { mode: 'locked' },
      regionRttMs: {},
    });
  });

  it('takes simulated region round trips (TEST_REGION_RTT_MS) only in open mode, and only well-formed', () => {
    const open = { METCD_AUTH: 'open', TEST_REGION_RTT_MS: 'wnam-enam=40, apac-wnam=3000' };
    expect(readConfig(open).regionRttMs).toEqual({ 'enam-wnam': 40, 'apac-wnam': 3000 });
    expect(() => readConfig({ TEST_REGION_RTT_MS: 'wnam-enam=40' })).toThrow(
      /TEST_REGION_RTT_MS is for tests: it is refused unless METCD_AUTH=open/,
    );
    const root = 'a-root-token-of-some-length';
    expect(() => readConfig({ METCD_ROOT_TOKEN: root, TEST_REGION_RTT_MS: 'wnam-enam=40' })).toThrow(/refused unless METCD_AUTH=open/);
    for (const bad of ['wnam-mars=40', 'wnam-enam', 'wnam-enam=-1', 'wnam-enam=4001']) {
      expect(() => readConfig({ METCD_AUTH: 'open', TEST_REGION_RTT_MS: bad }), bad).toThrow(/TEST_REGION_RTT_MS item/);
    }
  });

  it('is locked without a root token, open only when asked, and keeps only the root token’s digest', () => {
    expect(readConfig({ METCD_AUTH: 'open' }).auth).toEqual({ mode: 'open' });
    expect(readConfig({ METCD_AUTH: 'token' }).auth).toEqual({ mode: 'locked' });
    const tokens = readConfig({ METCD_ROOT_TOKEN: ' a-root-token-of-some-length\n' }).auth;
    expect(tokens).toEqual({ mode: 'tokens', rootDigest: digestOf('a-root-token-of-some-length') });
    expect(JSON.stringify(tokens)).not.toContain('a-root-token');
    expect(() => readConfig({ METCD_AUTH: 'none' })).toThrow(/METCD_AUTH "none"/);
    expect(() => readConfig({ METCD_ROOT_TOKEN: 'hunter2' })).toThrow(/METCD_ROOT_TOKEN: expected at least 16 characters/);
    expect(() => readConfig({ METCD_ROOT_TOKEN: 'hunter2' })).not.toThrow(/hunter2/);
  });

  it('reads every var, numbers given as TOML integers or strings', () => {
    const config = readConfig({
      CLUSTER_NAME: 'prod-1',
      CLUSTER_SIZE: 5,
      FORWARD_MODE: 'proxy',
      LOCATION_HINTS: 'p1=wnam, p2=weur,p3=apac',
      TICK_MS: '50',
      SNAPSHOT_EVERY_ENTRIES: '20',
      DERIVED_FLUSH_MS: '0',
      QUIESCE: 'false',
      QUOTA_BYTES: '8589934592',
      CACHE_BYTES: '0',
    });
    expect(config.cluster).toBe('prod-1');
    expect(config.bootstrapPeers).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(config.mode).toBe('proxy');
    expect(config.locationHints).toEqual({ p1: 'wnam', p2: 'weur', p3: 'apac' });
    expect(config.tickMs).toBe(50);
    expect(config.snapshotEveryEntries).toBe(20);
    expect(config.derivedFlushMs).toBe(0);
    expect(config.quiesce).toBe(false);
    expect(config.quotaBytes).toBe(8 * 1024 ** 3);
    expect(config.cacheBytes).toBe(0);
  });

  it.each([
    [{ CLUSTER_NAME: 'a/b' }, /CLUSTER_NAME/],
    [{ CLUSTER_SIZE: '0' }, /CLUSTER_SIZE/],
    [{ CLUSTER_SIZE: '10' }, /CLUSTER_SIZE/],
    [{ CLUSTER_SIZE: '3.5' }, /CLUSTER_SIZE/],
    [{ FORWARD_MODE: 'bounce' }, /FORWARD_MODE/],
    [{ LOCATION_HINTS: 'p1=mars' }, /LOCATION_HINTS p1=mars/],
    [{ LOCATION_HINTS: 'p1' }, /LOCATION_HINTS/],
    [{ TICK_MS: '1' }, /TICK_MS/],
    [{ SNAPSHOT_EVERY_ENTRIES: '0' }, /SNAPSHOT_EVERY_ENTRIES/],
    [{ DERIVED_FLUSH_MS: '-1' }, /DERIVED_FLUSH_MS/],
    [{ DERIVED_FLUSH_MS: '600001' }, /DERIVED_FLUSH_MS/],
    [{ CLUSTER_NAME: { nested: true } }, /CLUSTER_NAME/],
    [{ QUIESCE: 'no' }, /QUIESCE "no"/],
    [{ QUOTA_BYTES: String(QUOTA_BYTES_MIN - 1) }, /QUOTA_BYTES/],
    [{ QUOTA_BYTES: String(EDGE_QUOTA_BYTES_MAX + 1) }, /QUOTA_BYTES.*10000000000/],
    [{ CACHE_BYTES: String(EDGE_CACHE_BYTES_MAX + 1) }, /CACHE_BYTES/],
    [{ CACHE_BYTES: '-1' }, /CACHE_BYTES/],
  ])('rejects %j with a message naming the variable', (env, message) => {
    expect(() => readConfig(env)).toThrow(ConfigError);
    expect(() => readConfig(env)).toThrow(message);
  });

  it('gives bootstrap peers the same default membership and other peers none', () => {
    const config = readConfig({ CLUSTER_NAME: 'c' });
    const expected = {
      voters: ['p1', 'p2', 'p3'],
      learners: [],
      addresses: { p1: 'c/p1', p2: 'c/p2', p3: 'c/p3' },
    };
    expect(initialMembership(config, 'p1')).toEqual(expected);
    expect(initialMembership(config, 'p3')).toEqual(expected);
    expect(initialMembership(config, 'p4')).toEqual({ voters: [], learners: [], addresses: {} });
  });

  it('parses peer object names', () => {
    expect(parsePeerObjectName('metcd/p2')).toEqual({ cluster: 'metcd', id: 'p2' });
    expect(parsePeerObjectName('metcd')).toBeNull();
    expect(parsePeerObjectName('metcd/p2/x')).toBeNull();
    expect(parsePeerObjectName('/p2')).toBeNull();
  });
});
