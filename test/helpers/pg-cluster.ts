import {type ChildProcess, execFile, execFileSync, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {appendFileSync, chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import type {PostgresSettings} from '../../src/store/store-target.js'

const run = promisify(execFile)

/** The role and database every throwaway cluster creates for the code under test (a password role, not a superuser). */
const ROLE = 'h2k'
const DATABASE = 'h2k'

/**
 * The PostgreSQL binaries of the installed Debian package. Not PATH: Debian keeps initdb/pg_ctl/postgres in
 * /usr/lib/postgresql/<major>/bin and links only the client tools into /usr/bin.
 */
function binDir(): string {
  let majors: string[]
  try {
    majors = readdirSync('/usr/lib/postgresql').filter((name) => /^\d+$/.test(name))
  } catch (error) {
    throw new Error(`PostgreSQL is not installed (no /usr/lib/postgresql): run scripts/setup.sh (${(error as Error).message})`)
  }
  if (majors.length === 0) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/<major>/bin): run scripts/setup.sh')
  const newest = majors.map(Number).sort((a, b) => b - a)[0]
  return `/usr/lib/postgresql/${newest}/bin`
}

/** A free loopback TCP port (the kernel picks it; released before the server binds it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/**
 * A throwaway PostgreSQL cluster for one test file: initdb into a temporary directory, listening on a Unix
 * socket in that directory and on a free loopback port; a database `h2k` owned by a password role `h2k`.
 * The OS user `postgres` owns the files and runs the server (initdb and postgres refuse root). Local socket
 * connections as `postgres` are trusted (for `psql()`, the test's administrator); everyone else — the code
 * under test — must give the role's password (scram-sha-256), on the socket and on TCP.
 */
export class PgCluster {
  private stopped = false
  /** The shell that removes the cluster should this process die without stop() (a killed or timed-out test run). */
  private guardian?: ChildProcess

  private constructor(
    /** The temporary directory holding the data directory, the server log and the Unix socket. */
    readonly dir: string,
    readonly port: number,
    /** The `h2k` role's password. */
    readonly password: string,
    private readonly bin: string,
  ) {}

  /**
   * Create, configure and start a cluster (about a second: initdb dominates). `tls`: the server has a
   * certificate for 127.0.0.1/localhost signed by a throwaway CA (`caFile`), and TCP clients must use TLS.
   */
  static async start(options: {tls?: boolean} = {}): Promise<PgCluster> {
    const bin = binDir()
    const dir = mkdtempSync(join(tmpdir(), 'h2k-pg-'))
    const cluster = new PgCluster(dir, await freePort(), randomBytes(12).toString('hex'), bin)
    try {
      cluster.guard()
      await cluster.create(options.tls === true)
    } catch (error) {
      await cluster.stop().catch(() => undefined)
      throw error
    }
    return cluster
  }

  /**
   * A detached shell polling this process: when it is gone (mocha killed, a timeout) and stop() never ran, it
   * stops the server and removes the directory, so no cluster outlives its test run.
   */
  private guard(): void {
    const script = 'while kill -0 "$0" 2>/dev/null; do sleep 2; done; runuser -u postgres -- "$1" -D "$2" -m immediate stop >/dev/null 2>&1; rm -rf "$3"'
    this.guardian = spawn('sh', ['-c', script, String(process.pid), join(this.bin, 'pg_ctl'), this.dataDir, this.dir], {detached: true, stdio: 'ignore'})
    this.guardian.unref()
  }

  private get dataDir(): string {
    return join(this.dir, 'data')
  }

  /** The directory of the Unix socket (`.s.PGSQL.<port>`); also what `?host=` names in a socket URL. */
  get socketDir(): string {
    return this.dir
  }

  /** `postgres://h2k@127.0.0.1:<port>/h2k` — over TCP, WITHOUT the password (give `password` separately). */
  get url(): string {
    return `postgres://${ROLE}@127.0.0.1:${this.port}/${DATABASE}`
  }

  /** The same over the Unix socket: `postgres://h2k@localhost:<port>/h2k?host=<socketDir>`. */
  get socketUrl(): string {
    return `postgres://${ROLE}@localhost:${this.port}/${DATABASE}?host=${encodeURIComponent(this.socketDir)}`
  }

  /** The TCP URL WITH the password in it (tests that check it never leaks into messages). */
  get urlWithPassword(): string {
    return `postgres://${ROLE}:${this.password}@127.0.0.1:${this.port}/${DATABASE}`
  }

  get role(): string {
    return ROLE
  }

  get database(): string {
    return DATABASE
  }

  private async asPostgres(command: string, args: readonly string[]): Promise<string> {
    const {stdout} = await run('runuser', ['-u', 'postgres', '--', join(this.bin, command), ...args], {
      env: {...process.env, LC_ALL: 'C'},
    })
    return stdout
  }

  /** The CA that signed a `tls` cluster's server certificate (PEM). */
  get caFile(): string {
    return join(this.dir, 'ca.crt')
  }

  /** A CA and a server certificate for 127.0.0.1 and localhost (EC keys: fast), the key owned by postgres, 0600. */
  private async makeCertificates(ids: [number, number]): Promise<string[]> {
    const at = (name: string): string => join(this.dir, name)
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    await run('openssl', ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=h2k-test-ca'])
    await run('openssl', ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost'])
    writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    await run('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.crt'), '-days', '2', '-extfile', at('server.ext')])
    chownSync(at('server.key'), ...ids)
    chmodSync(at('server.key'), 0o600)
    return ['ssl = on', `ssl_cert_file = '${at('server.crt')}'`, `ssl_key_file = '${at('server.key')}'`]
  }

  private async create(tls: boolean): Promise<void> {
    if (userInfo().uid !== 0) throw new Error('pg-cluster needs root (it runs initdb and postgres as the postgres user through runuser)')
    const ids = postgresIds()
    chownSync(this.dir, ...ids)
    await this.asPostgres('initdb', ['-D', this.dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C'])
    const tlsSettings = tls ? await this.makeCertificates(ids) : []
    writeFileSync(
      join(this.dataDir, 'pg_hba.conf'),
      [
        '# TYPE DATABASE USER ADDRESS METHOD',
        'local all postgres trust',
        'local all all scram-sha-256',
        // With TLS, a TCP client without it finds no line that lets it in.
        `${tls ? 'hostssl' : 'host'} all all 127.0.0.1/32 scram-sha-256`,
        '',
      ].join('\n'),
    )
    appendFileSync(
      join(this.dataDir, 'postgresql.conf'),
      [
        '',
        '# pg-cluster (throwaway test cluster)',
        `port = ${this.port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${this.socketDir}'`,
        // A test cluster needs no durability: its directory is deleted afterwards.
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        'max_connections = 100',
        "shared_buffers = '16MB'",
        "log_min_messages = 'warning'",
        ...tlsSettings,
        '',
      ].join('\n'),
    )
    await this.startServer()
    await this.psql(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${this.password}'`, 'postgres')
    await this.psql(`CREATE DATABASE ${DATABASE} OWNER ${ROLE}`, 'postgres')
  }

  /** Start the server (after `stopServer()`); waits until it accepts connections. */
  async startServer(): Promise<void> {
    await this.asPostgres('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start'])
  }

  /**
   * The same, synchronously: for a test stopping the server INSIDE a store transaction (whose function is
   * synchronous, and whose process is blocked while a statement waits).
   */
  stopServerSync(): void {
    execFileSync('runuser', ['-u', 'postgres', '--', join(this.bin, 'pg_ctl'), '-D', this.dataDir, '-w', '-t', '60', '-m', 'fast', 'stop'], {stdio: 'ignore'})
  }

  /** Start the server synchronously (inside a store transaction's function, like stopServerSync). */
  startServerSync(): void {
    execFileSync('runuser', ['-u', 'postgres', '--', join(this.bin, 'pg_ctl'), '-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start'], {stdio: 'ignore'})
  }

  /**
   * Start the server after `ms` from ANOTHER process (a shell sleeping, then pg_ctl start): this process may
   * be blocked meanwhile (a PostgresDb statement waiting for the server). Resolves once pg_ctl is done.
   */
  startServerAfter(ms: number): {child: ChildProcess; done: Promise<number | null>} {
    const pgCtl = join(this.bin, 'pg_ctl')
    const child = spawn('sh', ['-c', `sleep ${ms / 1000}; exec runuser -u postgres -- "$0" -D "$1" -l "$2" -w -t 60 start`, pgCtl, this.dataDir, join(this.dir, 'server.log')], {stdio: 'ignore'})
    return {child, done: new Promise((resolve) => child.on('exit', resolve))}
  }

  /** A new empty database owned by the `h2k` role (a fresh store per test); returns its name. */
  async createDatabase(): Promise<string> {
    const name = `h2k_${randomBytes(6).toString('hex')}`
    await this.psql(`CREATE DATABASE ${name} OWNER ${ROLE}`, 'postgres')
    return name
  }

  /** PostgresSettings for the `h2k` role on `database` (default h2k) over TCP, password given separately. */
  settings(database = DATABASE, overrides: Partial<PostgresSettings> = {}): PostgresSettings {
    return {connectTimeoutMs: 10_000, password: this.password, poolSize: 4, ssl: {mode: 'disable'}, url: `postgres://${ROLE}@127.0.0.1:${this.port}/${database}`, ...overrides}
  }

  /** Stop the server (fast: clients are disconnected, open transactions roll back); the cluster stays. */
  async stopServer(): Promise<void> {
    await this.asPostgres('pg_ctl', ['-D', this.dataDir, '-w', '-t', '60', '-m', 'fast', 'stop'])
  }

  /** `pg_ctl restart -m fast`: every client connection is terminated, the server comes back on the same port and socket. */
  async restart(): Promise<void> {
    await this.asPostgres('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', '-m', 'fast', 'restart'])
  }

  /**
   * Run SQL as the superuser `postgres` over the socket (the test's administrator: inspect rows, terminate
   * backends). Returns psql's unaligned, tuples-only output (`|` between columns, one row a line).
   */
  async psql(sql: string, database = DATABASE): Promise<string> {
    const {stdout} = await run(
      'runuser',
      ['-u', 'postgres', '--', join(this.bin, 'psql'), '-h', this.socketDir, '-p', String(this.port), '-d', database, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql],
      {env: {...process.env, LC_ALL: 'C'}},
    )
    return stdout.trim()
  }

  /** Stop the server (immediately: a test cluster needs no clean shutdown) and remove every file of the cluster. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.guardian?.kill()
    try {
      await this.asPostgres('pg_ctl', ['-D', this.dataDir, '-w', '-t', '60', '-m', 'immediate', 'stop'])
    } catch {
      // Already stopped (a fault test stopped it), or never started: nothing runs; the directory goes anyway.
    } finally {
      rmSync(this.dir, {force: true, recursive: true})
    }
  }
}

/** uid/gid of the `postgres` OS user (the Debian package creates it). */
function postgresIds(): [number, number] {
  const passwd = execFileSync('getent', ['passwd', 'postgres'], {encoding: 'utf8'})
  const fields = passwd.split(':')
  if (fields.length < 4) throw new Error('no postgres user (install the postgresql package: scripts/setup.sh)')
  return [Number(fields[2]), Number(fields[3])]
}

/** One cluster per test file: `const pg = usePgCluster()` in a describe, then `pg().url` inside the tests. */
export function usePgCluster(): () => PgCluster {
  let cluster: PgCluster | undefined
  before(async function () {
    this.timeout(120_000)
    cluster = await PgCluster.start()
  })
  after(async function () {
    this.timeout(60_000)
    await cluster?.stop()
  })
  return () => {
    if (!cluster) throw new Error('the PostgreSQL test cluster is not started (usePgCluster() inside a describe, used in a test)')
    return cluster
  }
}
