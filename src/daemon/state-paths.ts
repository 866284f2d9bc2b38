import {join} from 'node:path'

/**
 * Where the daemon keeps its state under output_dir. A leaf module: the control client (ctl commands) needs
 * the socket's path without importing the daemon, its job store (better-sqlite3) and its pieces.
 */

/** The default state directory (state_dir): `output_dir/.daemon/`. */
export const stateDir = (outputDir: string): string => join(outputDir, '.daemon')

/** The control socket the ctl commands talk to, in a state directory (the daemon's state_dir). */
export const controlSocketIn = (stateDirectory: string): string => join(stateDirectory, 'control.sock')

/** The control socket under an output_dir's default state directory (`output_dir/.daemon/control.sock`). */
export const controlSocketPath = (outputDir: string): string => controlSocketIn(stateDir(outputDir))
