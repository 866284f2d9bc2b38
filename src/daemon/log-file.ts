import {closeSync, constants, fstatSync, mkdirSync, openSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {ownedByUsOrRoot} from '../fs/trusted-owner.js'

/** O_APPEND: every line is one write(2) at the end, whoever else appends; O_NOFOLLOW: a symlink at the path is refused, not followed; O_NONBLOCK: a FIFO planted there cannot block the open. */
const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK
/** The umask (the daemon's `umask`, default 0027) can only take bits away from this. */
const MODE = 0o640

/**
 * The daemon's `log_file`: opened once, written line by line with one synchronous write each (a crash
 * loses no line already logged, and nothing sits in a buffer), reopened by path on SIGUSR1/SIGHUP so
 * logrotate can rename it without `copytruncate`. The file sits in a directory others may write to:
 * a symlink, a hard link to another file, or anything but a regular file at the path is refused.
 */
export class LogFile {
  private fd: number

  constructor(readonly path: string) {
    mkdirSync(dirname(path), {mode: 0o750, recursive: true})
    this.fd = LogFile.open(path)
  }

  /** Open `path` for appending, or the H2KError saying why it is refused. */
  static open(path: string): number {
    let fd: number
    try {
      fd = openSync(path, FLAGS, MODE)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ELOOP') {
        throw new H2KError('H2K_UNSAFE_PATH', `log_file ${path} is a symbolic link: refused, never followed (anyone able to write its directory could point the daemon's log at another file).`, {
          details: {log_file: path},
          suggestions: ['Remove the link and let the daemon create the file, or point log_file at a regular file in a directory only the daemon\'s user can write.'],
        })
      }
      // ENXIO: a FIFO nobody reads (O_NONBLOCK made the open fail instead of hang).
      if (code === 'ENXIO') throw refused(path, 'is not a regular file')
      throw new H2KError('H2K_OUTPUT_FAILED', `Cannot open log_file ${path}: ${(error as Error).message}`, {
        cause: error,
        details: {log_file: path},
        suggestions: ['Create its directory writable by the daemon\'s user (the systemd unit\'s LogsDirectory= does), or leave log_file unset to log to stderr (journald).'],
      })
    }
    const info = fstatSync(fd)
    const problem = !info.isFile()
      ? 'is not a regular file'
      : info.nlink > 1
        ? 'has other hard links (it would write into another file)'
        : !ownedByUsOrRoot(info)
          ? "belongs to another user (who could read every line and plant forged ones); it must be the daemon's user's or root's"
          : undefined
    if (problem) {
      closeSync(fd)
      throw refused(path, problem)
    }
    return fd
  }

  /** Append one line (already ending in a newline); throws what write(2) throws (ENOSPC, EIO). */
  write(line: string): void {
    const bytes = Buffer.from(line, 'utf8')
    let done = 0
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done)
  }

  /**
   * Open the path again and write there from now on (after logrotate's rename). The old descriptor is
   * closed only once the new one is open: if the open is refused, logging goes on into the old file and
   * the error is thrown for the caller to log.
   */
  reopen(): void {
    const next = LogFile.open(this.path)
    const previous = this.fd
    this.fd = next
    closeSync(previous)
  }

  close(): void {
    if (this.fd < 0) return
    closeSync(this.fd)
    this.fd = -1
  }
}

function refused(path: string, problem: string): H2KError {
  return new H2KError('H2K_UNSAFE_PATH', `log_file ${path} ${problem}: refused.`, {
    details: {log_file: path},
    suggestions: ["Remove it and let the daemon create the file, or point log_file at a regular file in a directory only the daemon's user can write."],
  })
}
