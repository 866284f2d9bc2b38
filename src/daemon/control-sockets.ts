import {mkdir, rm} from 'node:fs/promises'

import {type ControlHandler, ControlServer} from './control-server.js'
import {controlSocketIn, controlSocketPath, stateDir} from './state-paths.js'

/**
 * The daemon's control sockets: `state_dir/control.sock`, and for a SQLite daemon with a state_dir of its
 * own also `output_dir/.daemon/control.sock` — held so that a second SQLite daemon on the same output_dir
 * is refused (H2K_DAEMON_RUNNING) whatever its state_dir, and answering `ctl --output-dir` as well. Daemons
 * sharing a PostgreSQL store share output_dir and hold only their own.
 */
export class ControlSockets {
  private constructor(
    private readonly servers: ReadonlyArray<{server: ControlServer; path: string}>,
  ) {}

  static async listen(where: {stateDir: string; outputDir: string; sqlite: boolean}, handler: ControlHandler): Promise<ControlSockets> {
    const own = controlSocketIn(where.stateDir)
    const servers = [{path: own, server: await ControlServer.listen(own, handler)}]
    if (where.sqlite && where.stateDir !== stateDir(where.outputDir)) {
      const shared = controlSocketPath(where.outputDir)
      try {
        await mkdir(stateDir(where.outputDir), {mode: 0o700, recursive: true})
        servers.push({path: shared, server: await ControlServer.listen(shared, handler)})
      } catch (error) {
        await new ControlSockets(servers).close()
        throw error
      }
    }
    return new ControlSockets(servers)
  }

  /** Stop listening and remove the sockets. */
  async close(): Promise<void> {
    for (const {path, server} of this.servers) {
      await server.close()
      await rm(path, {force: true})
    }
  }
}
