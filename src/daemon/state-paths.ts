import {join} from 'node:path'

/**
 * Where the daemon keeps its state under output_dir. A leaf module: the control client (ctl commands) needs
 * the socket's path without importing the daemon, its job store (better-sqlite3) and its pieces.
 */

/** The daemon's state directory: `output_dir/.daemon/`. */
export const stateDir = (outputDir: string): string => join(outputDir, '.daemon')

/** The control socket the ctl commands talk to. */
export const controlSocketPath = (outputDir: string): string => join(stateDir(outputDir), 'control.sock')
