// A tiny hand-driven network for scenario tests (in the spirit of etcd's raft_test.go
// `network`): nodes are RawNodes with an in-memory model of durable storage; messages move
// only when the test says so, and can be cut per link.

import { RawNode } from '../../worker/raft/rawnode.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { defaultRaftConfig } from '../../worker/raft/config.ts';
import type { Entry, HardState, Membership, Message, NodeId, RaftConfig, Ready, Snapshot, SnapshotPart } from '../../worker/raft/types.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

export function text(b: Uint8Array): string {
  return dec.decode(b);
}

export function membershipOf(voters: NodeId[], learners: NodeId[] = []): Membership {
  const addresses: Record<string, string> = {};
  for (const id of [...voters, ...learners]) addresses[id] = `addr-${id}`;
  return { voters, learners, addresses };
}

function seedOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}): RaftConfig {
  return { ...defaultRaftConfig(id, new SeededRandom(seedOf(id))), ...overrides };
}

/** What a node has made durable, exactly as the Ready contract says. */
export interface Stored {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
  applied: number;
  /** The toy state machine: the data of applied normal entries, in order. */
  state: string[];
}

export class TestNode {
  readonly id: NodeId;
  readonly config: RaftConfig;
  node: RawNode;
  stored: Stored;
  /** Volatile copy of the state machine (rebuilt from `stored` on restart). */
  state: string[];
  readStates: Array<{ ctx: string; index: number }> = [];
  /** Every Ready handed out, for tests that inspect them. */
  readonly readies: Ready[] = [];

  /** `bootstrapIndex` 1: founders start from a snapshot at index 1 (how hosts bootstrap clusters that grow). */
  constructor(id: NodeId, config: RaftConfig, initial: Membership, bootstrapIndex: 0 | 1 = 0) {
    this.id = id;
    this.config = config;
    const founder = bootstrapIndex === 1 && initial.voters.length > 0;
    this.stored = {
      // Term 0 as the peer does: the core lifts it to the snapshot's term, and a node that
      // never had a term made no lease promise, so it can vote (and campaign) at once.
      hardState: { term: 0, vote: '', commit: founder ? 1 : 0 },
      snapshot: { meta: { index: founder ? 1 : 0, term: founder ? 1 : 0, membership: initial }, data: bytes('[]') },
      entries: [],
      applied: founder ? 1 : 0,
      state: [],
    };
    this.state = [];
    this.node = this.boot();
  }

  private boot(): RawNode {
    const s = this.stored;
    this.state = s.state.slice();
    this.staged = [];
    const node = new RawNode(this.config, {
      hardState: { ...s.hardState },
      snapshot: s.snapshot,
      entries: s.entries.slice(),
      applied: s.applied,
    });
    if (this.streams !== null) node.setSnapshotProvider({ open: () => this.openStream() });
    if (this.staging) node.stageSnapshots();
    return node;
  }

  /** Streams this node opened as a leader (streaming hosts), closed or not. */
  streams: ForwardStream[] | null = null;
  private staging = false;
  /** Bytes of the snapshot being received (staging hosts), volatile as a host's staging is. */
  private staged: Uint8Array[] = [];
  private stagedBytes = 0;

  /**
   * Run as a host that keeps no snapshot bytes: as a leader it streams a snapshot of its applied
   * state per transfer (`streams`), as a follower it stages what it receives (`staging`).
   */
  hostStreams(opts: { streams: boolean; staging: boolean }): void {
    if (opts.streams) this.streams = [];
    this.staging = opts.staging;
    this.restart();
  }

  /** Opens refused before the host streams again (a host whose state is being replaced). */
  refuseStreams = 0;

  private openStream(): { index: number; stream: ForwardStream } | null {
    if (this.refuseStreams > 0) {
      this.refuseStreams--;
      return null;
    }
    const stream = new ForwardStream(bytes(JSON.stringify(this.state)));
    this.streams!.push(stream);
    return { index: this.node.status().applied, stream };
  }

  private stage(parts: SnapshotPart[]): void {
    for (const p of parts) {
      if (p.offset === 0) {
        this.staged = [];
        this.stagedBytes = 0;
      }
      if (p.offset !== this.stagedBytes) throw new Error(`staged part at ${p.offset}, ${this.stagedBytes} staged`);
      this.staged.push(p.data);
      this.stagedBytes += p.data.length;
    }
  }

  private stagedState(): Uint8Array {
    const out = new Uint8Array(this.stagedBytes);
    let at = 0;
    for (const d of this.staged) {
      out.set(d, at);
      at += d.length;
    }
    return out;
  }

  /**
   * Replace the durable state with a log of the given terms (entry i+1 has terms[i]) and
   * restart: how the paper's figures set up nodes with divergent logs.
   */
  setLog(terms: number[], hardTerm = Math.max(0, ...terms), commit = 0): void {
    this.stored.entries = terms.map((term, i) => ({ term, index: i + 1, type: 'normal' as const, data: bytes(`${term}@${i + 1}`) }));
    this.stored.hardState = { term: hardTerm, vote: '', commit };
    this.stored.applied = 0;
    this.stored.state = [];
    this.restart();
  }

  /** Terms of the entries in the node's persisted log. */
  logTerms(): number[] {
    return this.stored.entries.map((e) => e.term);
  }

  /** Crash and restart from what was persisted. */
  restart(): void {
    this.node = this.boot();
    this.readStates = [];
  }

  /** Carry out one Ready: persist, collect messages, apply, advance. */
  handleReady(): Message[] {
    const rd = this.node.ready();
    this.readies.push(rd);
    const s = this.stored;
    if (rd.snapshotParts !== undefined) this.stage(rd.snapshotParts);
    if (rd.snapshot !== undefined) {
      if (rd.snapshot.staged === true && !this.staging) throw new Error('a staged snapshot reached a host that does not stage');
      const data = rd.snapshot.staged === true ? this.stagedState() : rd.snapshot.data;
      s.snapshot = { meta: rd.snapshot.meta, data };
      s.entries = [];
      s.applied = rd.snapshot.meta.index;
      s.state = JSON.parse(text(data)) as string[];
      this.state = s.state.slice();
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      s.entries = s.entries.filter((e) => e.index < first).concat(rd.entries);
    }
    if (rd.hardState !== undefined) s.hardState = { ...rd.hardState };
    for (const e of rd.committedEntries) {
      if (e.type === 'normal' && e.data.length > 0) this.state.push(text(e.data));
      s.applied = e.index;
    }
    s.state = this.state.slice();
    for (const rs of rd.readStates) this.readStates.push(rs);
    this.node.advance(rd);
    return rd.messages;
  }

  /** Host-side snapshot of the applied state at the applied index. */
  compact(): void {
    const st = this.node.status();
    // A streaming host gives the core no bytes: it never sends the compaction's snapshot.
    this.node.compact(st.applied, this.streams !== null ? new Uint8Array(0) : bytes(JSON.stringify(this.state)));
    const snapIndex = this.node.status().snapshotIndex;
    const base = this.stored.snapshot.meta.index;
    if (snapIndex > base) {
      const term = this.stored.entries.find((e) => e.index === snapIndex)!.term;
      this.stored.snapshot = {
        meta: { index: snapIndex, term, membership: this.node.status().membership },
        data: bytes(JSON.stringify(this.state.slice())),
      };
      this.stored.entries = this.stored.entries.filter((e) => e.index > snapIndex);
    }
  }
}

/** A snapshot stream as a host's view gives one: forward only, and it knows when it was closed. */
export class ForwardStream {
  private readonly data: Uint8Array;
  private lastStart = -1;
  private lastEnd = 0;
  closed = false;
  reads = 0;

  constructor(data: Uint8Array) {
    this.data = data;
  }

  read(offset: number, maxBytes: number): { data: Uint8Array; done: boolean } | null {
    if (this.closed) return null;
    const fresh = offset === 0 && this.lastStart === -1;
    if (!fresh && offset !== this.lastStart && offset !== this.lastEnd) return null;
    if (offset === this.lastEnd && this.lastEnd === this.data.length && this.lastStart !== -1) return null; // past the end
    const end = Math.min(offset + maxBytes, this.data.length);
    this.lastStart = offset;
    this.lastEnd = end;
    this.reads++;
    return { data: this.data.slice(offset, end), done: end === this.data.length };
  }

  close(): void {
    this.closed = true;
  }
}

export type Filter = (m: Message) => boolean;

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered. */
  inFlight: Message[] = [];
  /** Every message ever delivered (after filters), for assertions. */
  delivered: Message[] = [];
  private filters: Filter[] = [];
  private cuts = new Set<string>();

  private readonly bootstrapIndex: 0 | 1;

  constructor(ids: NodeId[], opts: { learners?: NodeId[]; config?: Partial<RaftConfig>; empty?: NodeId[]; bootstrapIndex?: 0 | 1 } = {}) {
    this.bootstrapIndex = opts.bootstrapIndex ?? 0;
    const initial = membershipOf(ids, opts.learners ?? []);
    for (const id of [...ids, ...(opts.learners ?? [])]) this.add(id, initial, opts.config);
    for (const id of opts.empty ?? []) this.add(id, membershipOf([]), opts.config);
  }

  add(id: NodeId, membership: Membership, config: Partial<RaftConfig> = {}): TestNode {
    const n = new TestNode(id, testConfig(id, config), membership, this.bootstrapIndex);
    this.nodes.set(id, n);
    return n;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.get(id).node;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  /** Drop messages from a to b only. */
  cutOneWay(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  heal(): void {
    this.cuts.clear();
    this.filters = [];
  }

  /** Drop every message for which `f` returns true. */
  dropIf(f: Filter): void {
    this.filters.push(f);
  }

  private passes(m: Message): boolean {
    if (this.cuts.has(`${m.from}>${m.to}`)) return false;
    return !this.filters.some((f) => f(m));
  }

  /** Collect Ready output of every node (persisting it) into the in-flight queue. */
  collect(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      while (n.node.hasReady()) {
        any = true;
        this.inFlight.push(...n.handleReady());
      }
    }
    return any;
  }

  /** Deliver everything in flight once (messages produced by delivery wait for the next round). */
  deliverOnce(): number {
    const batch = this.inFlight;
    this.inFlight = [];
    let n = 0;
    for (const m of batch) {
      if (!this.passes(m)) continue;
      const to = this.nodes.get(m.to);
      if (to === undefined) continue;
      this.delivered.push(m);
      to.node.step(m);
      n++;
    }
    return n;
  }

  /** Run until no node has anything to do and nothing is in flight. */
  stabilize(roundsMax = 10_000): void {
    for (let i = 0; i < roundsMax; i++) {
      this.collect();
      if (this.inFlight.length === 0) return;
      this.deliverOnce();
    }
    throw new Error('network did not stabilize');
  }

  /** Tick the given nodes (default: all) `n` times, stabilizing after every tick. */
  tick(n = 1, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.raw(id).tick();
      this.stabilize();
    }
  }

  /** Tick `ids` until one of them leads (at most `ticksMax` ticks); returns the leader. */
  tickUntilLeader(ids: NodeId[], ticksMax = 1000): NodeId {
    for (let i = 0; i < ticksMax; i++) {
      const leader = ids.find((id) => this.raw(id).status().role === 'leader');
      if (leader !== undefined) return leader;
      this.tick(1, ids);
    }
    throw new Error(`no leader among ${ids.join(',')} within ${ticksMax} ticks`);
  }

  /** Elect `id` by campaigning and stabilizing. */
  elect(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.node.status().role === 'leader').map((n) => n.id);
  }

  propose(id: NodeId, ...datas: string[]): ReturnType<RawNode['propose']> {
    const r = this.raw(id).propose(datas.map(bytes));
    this.stabilize();
    return r;
  }
}
