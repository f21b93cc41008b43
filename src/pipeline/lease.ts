import { readlinkSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import type { Store } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { JOBS_DIR } from '../manifests/jobs.js';
import { exportLeaseKey, isLeaseKey, LEASE_FILE, LEASE_VERSION, readLease, type LeaseRecord } from '../manifests/lease.js';
import type { Emit } from './events.js';

/** A heartbeat every 30 s: two small requests per half minute cost nothing next to the data. */
export const LEASE_HEARTBEAT_MS = 30_000;
/**
 * No heartbeat for 2 minutes (4 missed beats) and the holder is taken for dead: long enough that a slow or
 * retried write does not make a live run look dead, short enough that a crashed run blocks --resume briefly.
 * On the holder's own host a holder whose process is gone is dead at once.
 */
export const LEASE_STALE_MS = 120_000;
/** A failed heartbeat is tried again this soon. */
export const LEASE_RETRY_MS = 5_000;
/**
 * A holder that could not renew its lease for this long stops the run: half the stale time, so it gives up
 * well before another run may take the lease over and write beside it.
 */
export const LEASE_GIVE_UP_MS = LEASE_STALE_MS / 2;

export interface LeaseTiming {
  heartbeatMs: number;
  staleAfterMs: number;
  retryMs: number;
  giveUpMs: number;
}

const DEFAULT_TIMING: LeaseTiming = { heartbeatMs: LEASE_HEARTBEAT_MS, staleAfterMs: LEASE_STALE_MS, retryMs: LEASE_RETRY_MS, giveUpMs: LEASE_GIVE_UP_MS };

type LeaseStore = Pick<Store, 'description' | 'head' | 'get' | 'put' | 'delete' | 'list'>;

/**
 * A holder whose heartbeat only looks stale (by this machine's clock, which may run ahead of the holder's) is
 * watched for its heartbeat interval × this before it is taken over: one beat plus a fifth for its write (30 s → 36 s).
 */
export const LEASE_WATCH_FACTOR = 1.2;
/** The watch never lasts longer than this, whatever heartbeat interval a lease file claims. */
const MAX_WATCH_MS = 2 * LEASE_HEARTBEAT_MS;

/**
 * Whether a lease's holder still runs, and if not, why it is taken for dead. `dead`: its process is gone
 * (same host and process namespace: certain); `silent`: no heartbeat for its stale time (by this machine's clock).
 */
export function leaseLiveness(lease: LeaseRecord, now = Date.now()): { live: true } | { live: false; dead: boolean; why: string } {
  if (sameMachine(lease) && lease.pid !== process.pid && !processAlive(lease.pid)) return { live: false, dead: true, why: `its process ${lease.pid} on ${shown(lease.host)} is gone` };
  const silent = now - Date.parse(lease.heartbeatAt);
  if (silent > lease.staleAfterMs) return { live: false, dead: false, why: `no heartbeat for ${seconds(silent)}` };
  return { live: true };
}

/**
 * Pids are only comparable on one host and in one pid namespace: containers sharing a host name (host
 * networking) each have their own. Linux names the namespace in /proc/self/ns/pid (namespaces(7)).
 */
const PID_NAMESPACE = ((): string | undefined => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

function sameMachine(lease: LeaseRecord): boolean {
  return lease.host === hostname() && (lease.pidNamespace ?? undefined) === PID_NAMESPACE;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const seconds = (ms: number): string => `${Math.max(0, Math.round(ms / 1000))} s`;

/** `run 20261204T071500-1a2b3c4d (takeout run) on host db-1, pid 4242, user ana, started …, last heartbeat 12 s ago` */
export function describeHolder(lease: LeaseRecord, now = Date.now()): string {
  const { runId, command, host, user, startedAt } = Object.fromEntries(
    (['runId', 'command', 'host', 'user', 'startedAt'] as const).map((k) => [k, shown(lease[k])]),
  ) as Record<'runId' | 'command' | 'host' | 'user' | 'startedAt', string>;
  return `run ${runId} (takeout ${command}) on host ${host}, pid ${lease.pid}, user ${user}, started ${startedAt}, last heartbeat ${seconds(now - Date.parse(lease.heartbeatAt))} ago`;
}

/** Anyone who can write to the destination writes the lease: its strings are quoted when they hold control characters. */
function shown(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f-\u009f]/.test(text) ? JSON.stringify(text) : text;
}

function heldBy(destination: Pick<LeaseStore, 'description'>, lease: LeaseRecord, what: string, takeOverWith = '--resume'): TakeoutError {
  return new TakeoutError('EXISTS', `${destination.description} is in use: ${what}${describeHolder(lease)}`, {
    hint: `wait for it to finish; if it died, ${takeOverWith} takes over once its lease is stale (${seconds(lease.staleAfterMs)} without a heartbeat)`,
    details: { lease: lease.runId, host: lease.host, pid: lease.pid },
  });
}

/**
 * The live leases at a destination other than `except`: the root one and every dataset export's. `folder`
 * (`a/b/`) looks at a destination inside this one instead of its root.
 */
export async function liveLeases(destination: Pick<LeaseStore, 'head' | 'get' | 'list'>, except?: string, folder = ''): Promise<LeaseRecord[]> {
  const keys = [`${folder}${LEASE_FILE}`];
  for await (const object of destination.list(`${folder}${JOBS_DIR}/`)) if (isLeaseKey(object.key.slice(folder.length))) keys.push(object.key);
  const live: LeaseRecord[] = [];
  for (const key of keys) {
    if (key === except) continue;
    const read = await readLease(destination, key);
    if (read.state === 'held' && leaseLiveness(read.lease).live) live.push(read.lease);
  }
  return live;
}

/** A dry run's check: refused, as the run would be, while any lease at the destination is live. */
export async function assertNoLiveLease(destination: Pick<LeaseStore, 'head' | 'get' | 'list' | 'description'>): Promise<string> {
  const [holder] = await liveLeases(destination);
  if (holder) throw heldBy(destination, holder, '');
  return `no run or export holds ${destination.description}`;
}

/**
 * For `cleanup` over a prefix that holds other destinations (`s3://backups/` over `s3://backups/kbc/`): the
 * live lease of a folder between the root and a key, if any, so that a live run's uploads are left alone.
 * Each folder is looked at once.
 */
export function nestedLeases(destination: Pick<LeaseStore, 'head' | 'get' | 'list'>): (key: string) => Promise<{ folder: string; lease: LeaseRecord } | undefined> {
  const seen = new Map<string, Promise<LeaseRecord | undefined>>();
  return async (key) => {
    const parts = key.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const folder = `${parts.slice(0, i).join('/')}/`;
      let found = seen.get(folder);
      if (!found) {
        found = liveLeases(destination, undefined, folder).then((live) => live[0]);
        seen.set(folder, found);
      }
      const lease = await found;
      if (lease) return { folder, lease };
    }
    return undefined;
  };
}

export interface AcquireOptions {
  runId: string;
  /** As the user typed it: `run`, `table export`, `dataset export`, `cleanup`. */
  command: string;
  toolVersion: string;
  /**
   * `run`: the whole destination (the root lease; refused while any dataset export there is live).
   * `export`: one dataset export (its own lease; refused while a run holds the root one).
   */
  scope: { kind: 'run' } | { kind: 'export'; exportId: string };
  /** A stale lease may be replaced (--resume, --overwrite, cleanup, a re-run of the same export). */
  takeOver: boolean;
  /** How a user takes over a dead run's lease with this command, for the hint (default `--resume`). */
  takeOverWith?: string;
  emit: Emit;
  timing?: Partial<LeaseTiming>;
  /** Ctrl-C while watching a stale-looking lease. */
  signal?: AbortSignal;
}

/**
 * Takes the lease or refuses (EXISTS, naming the holder). Created create-only; because some stores ignore
 * the condition (s3rver; MinIO answers 304), it is read back and a run id other than ours means another run
 * won the race. Until `release()`, a heartbeat renews it; a lease that cannot be renewed or that another run
 * took aborts `signal` with the reason in `failure`.
 */
export async function acquireLease(destination: LeaseStore, options: AcquireOptions): Promise<Lease> {
  const timing = { ...DEFAULT_TIMING, ...options.timing };
  const key = options.scope.kind === 'run' ? LEASE_FILE : exportLeaseKey(options.scope.exportId);
  if (options.scope.kind === 'run') {
    const [other] = await liveLeases(destination, LEASE_FILE);
    if (other) throw heldBy(destination, other, 'a dataset export is writing here: ', options.takeOverWith);
  } else {
    const root = await readLease(destination, LEASE_FILE);
    if (root.state === 'held' && leaseLiveness(root.lease).live) throw heldBy(destination, root.lease, '', options.takeOverWith);
  }

  const now = new Date().toISOString();
  const record: LeaseRecord = {
    formatVersion: LEASE_VERSION,
    kind: 'takeout-lease',
    runId: options.runId,
    command: options.command,
    host: hostname(),
    pid: process.pid,
    ...(PID_NAMESPACE !== undefined ? { pidNamespace: PID_NAMESPACE } : {}),
    user: userName(),
    startedAt: now,
    heartbeatAt: now,
    heartbeatMs: timing.heartbeatMs,
    staleAfterMs: timing.staleAfterMs,
    tool: { name: 'takeout', version: options.toolVersion },
  };
  const body = (r: LeaseRecord): string => `${JSON.stringify(r, null, 2)}\n`;
  const found = await readLease(destination, key);
  if (found.state === 'absent') {
    try {
      await destination.put(key, body(record), { contentType: 'application/json', ifNoneMatch: true });
    } catch (error) {
      if (toTakeoutError(error).code !== 'EXISTS') throw toTakeoutError(error, `taking the lease ${key}`);
      // Another run created it in the meantime.
      const winner = await readLease(destination, key);
      if (winner.state === 'held') throw heldBy(destination, winner.lease, '', options.takeOverWith);
      throw new TakeoutError('EXISTS', `${destination.description} is in use: another run created ${key} at the same moment`, { hint: 'make sure only one run writes here, then run again' });
    }
  } else {
    if (found.state === 'held') {
      const liveness = leaseLiveness(found.lease);
      if (liveness.live) throw heldBy(destination, found.lease, '', options.takeOverWith);
      if (!options.takeOver) {
        throw new TakeoutError('EXISTS', `${destination.description} holds the lease of ${describeHolder(found.lease)}, which looks dead (${liveness.why})`, {
          hint: 'if that run is really gone, pass --resume to take over and go on with it (or --overwrite to start over)',
          details: { lease: found.lease.runId },
        });
      }
      if (!liveness.dead) await watchSilence(destination, key, found.lease, options);
      options.emit({ type: 'warning', message: `taking over the lease of ${describeHolder(found.lease)}: ${liveness.dead ? liveness.why : 'nobody renews it'}` });
    } else {
      if (!options.takeOver) {
        throw new TakeoutError('EXISTS', `${destination.description} holds a lease file this version cannot read (${key})`, { hint: 'pass --resume to take it over, or remove it if no run writes here' });
      }
      options.emit({ type: 'warning', message: `taking over the unreadable lease ${key}` });
    }
    await destination.put(key, body(record), { contentType: 'application/json' });
  }
  // Stores that ignore If-None-Match let the later writer win: only the run whose id is read back holds it.
  const back = await readLease(destination, key);
  if (back.state !== 'held' || back.lease.runId !== record.runId) {
    if (back.state === 'held') throw heldBy(destination, back.lease, 'another run took the lease at the same moment: ', options.takeOverWith);
    throw new TakeoutError('EXISTS', `${destination.description}: the lease ${key} was not there when read back; another run may be starting`, { hint: 'make sure only one run writes here, then run again' });
  }
  return new Lease(destination, key, record, timing, body);
}

/**
 * A lease that looks stale by this machine's clock is watched for one heartbeat interval: if it is renewed
 * meanwhile its holder lives (the clocks differ) and the takeover is refused.
 */
async function watchSilence(destination: LeaseStore, key: string, seen: LeaseRecord, options: AcquireOptions): Promise<void> {
  const waitMs = Math.min(Math.round(seen.heartbeatMs * LEASE_WATCH_FACTOR), MAX_WATCH_MS);
  options.emit({ type: 'warning', message: `the lease of run ${shown(seen.runId)} looks stale; watching it for ${seconds(waitMs)} to make sure nobody renews it` });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, waitMs);
    options.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new TakeoutError('INTERRUPTED', 'interrupted while watching the lease'));
    }, { once: true });
  });
  const again = await readLease(destination, key);
  if (again.state === 'held' && (again.lease.runId !== seen.runId || again.lease.heartbeatAt !== seen.heartbeatAt)) {
    throw heldBy(destination, again.lease, 'the lease is being renewed (is a clock off?): ', options.takeOverWith);
  }
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (some containers).
    return process.env.USER ?? String(process.getuid?.() ?? 'unknown');
  }
}

/** A lease held by this run: renewed by a heartbeat until released. */
export class Lease {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lastRenewed = Date.now();
  private released = false;
  private lostWith: TakeoutError | undefined;
  private overtaken = false;

  constructor(
    private readonly destination: LeaseStore,
    readonly key: string,
    private readonly record: LeaseRecord,
    private readonly timing: LeaseTiming,
    private readonly body: (r: LeaseRecord) => string,
  ) {
    this.schedule(timing.heartbeatMs);
  }

  /** Aborted when the lease is lost: the run must stop, since another run may now write here. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get failure(): TakeoutError | undefined {
    return this.lostWith;
  }

  get runId(): string {
    return this.record.runId;
  }

  /** Stops the heartbeat and removes the lease if it is still ours. Never throws: a lease left behind goes stale. */
  async release(emit?: Emit): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    await this.beating;
    // Another run's lease now: never remove it. One that could not be renewed is still ours, if the store lets us.
    if (this.overtaken) return;
    try {
      const read = await readLease(this.destination, this.key);
      if (read.state === 'held' && read.lease.runId === this.record.runId) await this.destination.delete([this.key]);
    } catch (error) {
      emit?.({ type: 'warning', message: `could not remove the lease ${this.key}: ${toTakeoutError(error).message}; it goes stale ${seconds(this.timing.staleAfterMs)} after its last heartbeat` });
    }
  }

  private schedule(ms: number): void {
    if (this.released || this.lostWith) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat().finally(() => (this.beating = undefined));
    }, ms);
    // The heartbeat alone never keeps the process alive.
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    // Each renewal is bounded: a store that hangs counts as one that fails.
    const attempt = AbortSignal.timeout(Math.max(1, this.timing.giveUpMs - (Date.now() - this.lastRenewed)));
    try {
      const read = await readLease(this.destination, this.key);
      if (read.state === 'held' && read.lease.runId !== this.record.runId) {
        this.overtaken = true;
        this.lose(new TakeoutError('EXISTS', `${this.destination.description}: another run took the lease: ${describeHolder(read.lease)}; stopping, so that two runs do not write here`, {
          hint: 'make sure only one run writes here, then run again with --resume',
        }));
        return;
      }
      if (this.released) return;
      this.record.heartbeatAt = new Date().toISOString();
      await this.destination.put(this.key, this.body(this.record), { contentType: 'application/json', signal: attempt });
      this.lastRenewed = Date.now();
      this.schedule(this.timing.heartbeatMs);
    } catch (error) {
      if (this.released) return;
      const silent = Date.now() - this.lastRenewed;
      if (silent >= this.timing.giveUpMs || attempt.aborted) {
        const cause = toTakeoutError(error);
        this.lose(new TakeoutError(cause.code === 'INTERRUPTED' ? 'NETWORK' : cause.code, `could not renew the lease ${this.key} for ${seconds(silent)} (${cause.message}); stopping, since without a lease another run may start writing here`, {
          hint: 'check the destination can be written, then run again with --resume',
          cause: error,
        }));
        return;
      }
      this.schedule(this.timing.retryMs);
    }
  }

  private lose(error: TakeoutError): void {
    this.lostWith = error;
    clearTimeout(this.timer);
    this.controller.abort(error);
  }
}
