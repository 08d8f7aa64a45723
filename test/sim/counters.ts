// What the simulated hosts count, summed over all nodes and incarnations of a run: the evidence
// that each feature and fault actually ran (the suite floors them; campaigns print them).

/** What the hosts saw, over all nodes and incarnations (evidence that each feature ran). */
export interface NodeCounters {
  /** Default reads served under the lease (the rest waited for a ReadIndex round). */
  leaseReads: number;
  snapshotsInstalled: number;
  /** Of those, installs staged a chunk at a time (tiered peers), and streams leaders opened. */
  snapshotsStaged: number;
  snapshotStreams: number;
  /** Snapshots the peers took (the sliced job of peer.ts finished) and slices they took. */
  compactions: number;
  /** Crashes at each point (a plain crash: crashesNow). */
  crashesNow: number;
  crashesAtSave: number;
  crashesAfterEarlySend: number;
  crashesAfterEarlyApply: number;
  crashesAtDurable: number;
  /** Crashes that lost outstanding writes (deferred derived state aside: derivedLost). */
  crashesDuringWrite: number;
  /** Entries applied (and answered) before a crash lost their results, applied again after it. */
  reappliedEntries: number;
  /** Saves, slow ones (>= 1 tick), derived-state batches deferred and lost by a crash. */
  saves: number;
  /** Records tiered peers read from their disks (cache misses), and runs with tiered peers. */
  tierRecordReads: number;
  /** Of those, read off the loop for a client's read (RecordStore.prefetch). */
  tierPrefetches: number;
  tieredRuns: number;
  slowWrites: number;
  derivedDeferred: number;
  derivedLost: number;
  /** Messages stepped and client requests taken while a write was outstanding; of the
   *  messages, acks a leader received while its own write was out. */
  stepsDuringWrite: number;
  leaderAcksDuringWrite: number;
  requestsDuringWrite: number;
  /** Saves whose own entries had already left in appends (the overlap order's early send). */
  earlySendSaves: number;
  /** Puts refused at the space quota; operations refused because a waiting room was full. */
  noSpace: number;
  tooManyPending: number;
  /** Commit-only appends the transport held for company. */
  heldForCompany: number;
  /** Clean restarts (close, then open) completed. */
  cleanRestarts: number;
  /** Ticks the lease guard took as a stall, and membership changes / transfers the peers took. */
  stalls: number;
  /** Quiescence: peer ticks a resting host skipped, times a peer was woken from it, and wakes by
   *  the lease timer a resting leader set (TickPort.rest). */
  restingTicks: number;
  /** Rests with a lease timer set (a resting leader with leases). */
  leaseTimers: number;
  /** Times a leader put its group to sleep (RawNode.quiesce). */
  quiesces: number;
  quiescentWakes: number;
  leaseWakes: number;
  confChangesApplied: number;
  transfersTaken: number;
  /** Removed nodes kept running a while; peers that learned they were removed (peer.removed),
   *  and client requests such a peer refused. */
  removedLingering: number;
  removedLearned: number;
  removedRefusals: number;
  /** Runs with a session table small enough to drop sessions (1 per such run); sessions dropped
   *  (over every node's writes), sessions begun, writes answered session-expired, and
   *  registrations applied again after their session was dropped. */
  smallSessionRuns: number;
  sessionsDropped: number;
  registrations: number;
  sessionExpired: number;
  registrationsReapplied: number;
  /** The stranger (stranger.ts): runs with one (1 per such run), messages it sent, of those the
   *  peers dropped, its leader traffic to peers in contact with their leader (the checked case)
   *  and what peers out of contact stepped; drops of a retired node's id as a removed member's. */
  strangerRuns: number;
  strangerMessages: number;
  strangerDropped: number;
  strangerInContact: number;
  strangerLetIn: number;
  removedSenderDrops: number;
  /** Token commands the administrator sent (token-admin.ts), and tokens the members held at the end. */
  tokenCommands: number;
  /** The lockers (lockers.ts): acquisitions, holders the fencing resource refused (an older token
   *  after a newer one: a holder whose lease expired unawares), acquisitions checked against the history. */
  lockAcquisitions: number;
  lockFencedOff: number;
  lockChecks: number;
  tokensAtEnd: number;
  /** The lease actor (lease-actor.ts): leases granted, keep-alives a leader acknowledged, checks
   *  of a kept lease on a node that applied it, leases found expired everywhere after healing. */
  leasesGranted: number;
  leaseKeepAlives: number;
  leaseChecks: number;
  leasesExpired: number;
  /** Watchers (watchers.ts): registrations (first and resumed), changes received and checked
   *  against the converged history, progress frames, ends by compaction and by overflow; runs
   *  with a small history retention (compaction under the watchers) and with small buffers. */
  watchRegistrations: number;
  watchEventsReceived: number;
  watchEventsChecked: number;
  watchProgress: number;
  watchCompacted: number;
  watchOverflows: number;
  watchSmallRetentionRuns: number;
  watchSmallBufferRuns: number;
}

export function emptyNodeCounters(): NodeCounters {
  return {
    leaseReads: 0,
    snapshotsInstalled: 0,
    snapshotsStaged: 0,
    snapshotStreams: 0,
    compactions: 0,
    crashesNow: 0,
    crashesAtSave: 0,
    crashesAfterEarlySend: 0,
    crashesAfterEarlyApply: 0,
    crashesAtDurable: 0,
    crashesDuringWrite: 0,
    reappliedEntries: 0,
    saves: 0,
    slowWrites: 0,
    derivedDeferred: 0,
    tierRecordReads: 0,
    tierPrefetches: 0,
    tieredRuns: 0,
    derivedLost: 0,
    stepsDuringWrite: 0,
    leaderAcksDuringWrite: 0,
    requestsDuringWrite: 0,
    earlySendSaves: 0,
    noSpace: 0,
    tooManyPending: 0,
    heldForCompany: 0,
    cleanRestarts: 0,
    stalls: 0,
    restingTicks: 0,
    leaseTimers: 0,
    quiesces: 0,
    quiescentWakes: 0,
    leaseWakes: 0,
    confChangesApplied: 0,
    transfersTaken: 0,
    removedLingering: 0,
    removedLearned: 0,
    removedRefusals: 0,
    smallSessionRuns: 0,
    sessionsDropped: 0,
    registrations: 0,
    sessionExpired: 0,
    registrationsReapplied: 0,
    strangerRuns: 0,
    tokenCommands: 0,
    lockAcquisitions: 0,
    lockFencedOff: 0,
    lockChecks: 0,
    tokensAtEnd: 0,
    leasesGranted: 0,
    leaseKeepAlives: 0,
    leaseChecks: 0,
    leasesExpired: 0,
    strangerMessages: 0,
    strangerDropped: 0,
    strangerInContact: 0,
    strangerLetIn: 0,
    removedSenderDrops: 0,
    watchRegistrations: 0,
    watchEventsReceived: 0,
    watchEventsChecked: 0,
    watchProgress: 0,
    watchCompacted: 0,
    watchOverflows: 0,
    watchSmallRetentionRuns: 0,
    watchSmallBufferRuns: 0,
  };
}

export const NODE_COUNTER_KEYS = Object.keys(emptyNodeCounters()) as Array<keyof NodeCounters>;
