import {constants} from 'node:fs'
import {type FileHandle, open, readdir, realpath} from 'node:fs/promises'
import {resolve} from 'node:path'

import {H2KError, readUpTo} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {realOrSelf} from '../fs/real-or-self.js'
import {MAX_DOCUMENT_BYTES, SourceDocument} from '../jobs/document.js'

/**
 * A schedule's job_file, manifest or sweep_dir is opened first (O_NOFOLLOW: a symlink at the path is
 * refused, not followed) and checked after: the real path of what was opened (/proc/self/fd/N) must lie
 * under allowed_input_dirs (templates made over the API). A directory on the way swapped for a symlink
 * between check and use changes nothing, because there is no gap: what is read is what was checked.
 */
export interface TemplateReadContext {
  allowedInputDirs: readonly string[]
  /** Only API-made templates are held to allowed_input_dirs (the configuration's own are the operator's). */
  confined: boolean
}

const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/** Open `path` without following a final symlink; H2K_UNSAFE_PATH for a link (where it points is not said). */
async function openNoFollow(path: string, flags: number, what: string): Promise<FileHandle> {
  try {
    return await open(path, flags)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP' || (code === 'ENOTDIR' && flags === DIR_FLAGS)) {
      throw new H2KError('H2K_UNSAFE_PATH', `${path} is a symbolic link or not a ${what === 'sweep_dir' ? 'directory' : 'file'}; a schedule's ${what} must be the ${what === 'sweep_dir' ? 'directory' : 'file'} itself.`, {details: {path}})
    }
    throw mapForeignError(error, {path})
  }
}

/** The opened file's real path lies under allowed_input_dirs, or H2K_UNSAFE_PATH naming only what the schedule named. */
async function mustBeInside(handle: FileHandle, path: string, ctx: TemplateReadContext, what: string): Promise<string> {
  const real = await realpath(`/proc/self/fd/${handle.fd}`)
  if (!ctx.confined) return real
  const roots = await Promise.all(ctx.allowedInputDirs.map(realOrSelf))
  if (roots.some((root) => relativeInside(root, real) !== undefined)) return real
  throw new H2KError('H2K_UNSAFE_PATH', `${what} ${path} is outside allowed_input_dirs${ctx.allowedInputDirs.length > 0 ? ` (${ctx.allowedInputDirs.join(', ')})` : ' (none configured)'}.`, {
    details: {allowedInputDirs: ctx.allowedInputDirs, path},
    suggestions: ['Put the files under a directory listed in allowed_input_dirs of the daemon configuration.'],
  })
}

/**
 * Read and parse a template file (size-capped), opened as above. A parse or validation failure is said by
 * file, line, column and key path only: values the file holds (and yaml's quoted source line) never reach
 * the API answer, the log or a schedule.missed reason.
 */
export async function readTemplateDocument(path: string, ctx: TemplateReadContext, validate: (doc: SourceDocument) => void): Promise<SourceDocument> {
  const handle = await openNoFollow(path, FILE_FLAGS, 'job_file or manifest')
  let text: string
  try {
    await mustBeInside(handle, path, ctx, 'the template file')
    const info = await handle.stat()
    if (!info.isFile()) throw new H2KError('H2K_JOB_INVALID', `${path} is not a regular file.`, {details: {file: path}})
    const bytes = await readUpTo(handle, 0, MAX_DOCUMENT_BYTES + 1)
    if (bytes.length > MAX_DOCUMENT_BYTES) throw new H2KError('H2K_JOB_INVALID', `${path} is larger than ${MAX_DOCUMENT_BYTES} bytes; refusing to parse it.`, {details: {file: path}})
    text = bytes.toString('utf8')
  } finally {
    await handle.close()
  }
  try {
    const doc = SourceDocument.parse(text, resolve(path))
    validate(doc)
    return doc
  } catch (error) {
    throw withoutValues(mapForeignError(error), resolve(path))
  }
}

/**
 * A swept directory's entry names, listed through the opened directory; `dir` is its real path (where the
 * entries are, whatever the named path points at later).
 */
export async function listSweepDir(path: string, ctx: TemplateReadContext): Promise<{dir: string; names: string[]}> {
  const handle = await openNoFollow(path, DIR_FLAGS, 'sweep_dir')
  try {
    const dir = await mustBeInside(handle, path, ctx, 'sweep_dir')
    return {dir, names: await readdir(`/proc/self/fd/${handle.fd}`)}
  } finally {
    await handle.close()
  }
}

/** An H2K_JOB_INVALID of a template, told by positions and key paths only. */
function withoutValues(error: H2KError, file: string): H2KError {
  if (error.code !== 'H2K_JOB_INVALID') return error
  const list = (error.details as {violations?: unknown} | undefined)?.violations
  const violations = (Array.isArray(list) ? (list as Array<{line?: number; column?: number; path?: string; message?: string}>) : []).map((v) => ({
    column: v.column ?? 1,
    line: v.line ?? 1,
    message: String(v.message ?? '').replace(/\s*\(got [^]*\)\s*$/, ''),
    path: v.path ?? '',
  }))
  // A syntax error's message quotes the offending source line after its first line: only that first line is kept.
  const message = violations.length > 0 ? `${file} is not a valid schedule template:\n${violations.map((v) => `${file}:${v.line}:${v.column}: ${v.path ? `${v.path}: ` : ''}${v.message}`).join('\n')}` : error.message.split('\n')[0]!
  return new H2KError('H2K_JOB_INVALID', message, {details: {file, ...(violations.length > 0 ? {violations} : {})}})
}
