import {splitLines} from './text-lines.js'

/**
 * What a UEFI grub.cfg stub on the ESP chains to: the file system it finds with `search` (by UUID or label)
 * and the config it then `configfile`s from it. Debian/Ubuntu's grub-install writes
 *
 *   search.fs_uuid 0e6b1b9f-... root hd0,gpt2
 *   set prefix=($root)'/grub'
 *   configfile $prefix/grub.cfg
 *
 * and RHEL 9 / Fedora write `search --no-floppy --fs-uuid --set=dev <uuid>`, `set prefix=($dev)/grub2`,
 * `export $prefix`, `configfile $prefix/grub.cfg`. The real GRUB reads the chained config, so that is the
 * one whose root= must work on virtio, and the searched file system must exist.
 */
export interface EspStubTarget {
  /** How the stub finds the file system: by fs UUID or by fs label. */
  by: 'uuid' | 'label'
  value: string
  /** The chained config's path on that file system (e.g. /grub/grub.cfg when it is a separate /boot). */
  config: string
}

function unquote(word: string): string {
  // GRUB script words: 'single' and "double" quoted pieces concatenate with bare ones ('($root)'/grub' style).
  return word.replace(/'([^']*)'|"([^"]*)"/g, (_, single: string | undefined, double: string | undefined) => single ?? double ?? '')
}

function words(line: string): string[] {
  return (line.match(/(?:'[^']*'|"[^"]*"|[^\s'"])+/g) ?? []).map(unquote)
}

interface Search {
  by: 'uuid' | 'label'
  value: string
  variable: string
}

/** `search.fs_uuid UUID [VAR [HINT]]`, `search.fs_label ...`, `search [--no-floppy] --fs-uuid|--label [--set[=VAR]] VALUE [HINT...]`. */
function parseSearch(argv: string[]): Search | undefined {
  const [command, ...rest] = argv
  if (command === 'search.fs_uuid' || command === 'search.fs_label') {
    const [value, variable] = rest
    if (!value) return undefined
    return {by: command === 'search.fs_uuid' ? 'uuid' : 'label', value, variable: variable ?? 'root'}
  }
  if (command !== 'search') return undefined
  let by: Search['by'] | undefined
  let variable = 'root'
  const positional: string[] = []
  for (let index = 0; index < rest.length; index++) {
    const arg = rest[index] ?? ''
    if (arg === '--fs-uuid' || arg === '-u') by = 'uuid'
    else if (arg === '--label' || arg === '-l') by = 'label'
    else if (arg === '--file' || arg === '-f') return undefined
    else if (arg.startsWith('--set=')) variable = arg.slice('--set='.length)
    else if (arg === '--set' || arg === '-s') {
      // `--set VAR` takes the next word only when more than the value follows; `--set` alone means root.
      const next = rest[index + 1]
      if (next !== undefined && !next.startsWith('-') && rest.slice(index + 2).some((a) => !a.startsWith('-'))) {
        variable = next
        index++
      }
    } else if (!arg.startsWith('-')) positional.push(arg)
  }
  const value = positional[0]
  return by && value ? {by, value, variable} : undefined
}

/**
 * The file system and config a stub chains to; undefined when the text is not such a stub (no search by
 * UUID/label, or a configfile that does not resolve to a path on the searched file system).
 */
export function espStubTarget(text: string): EspStubTarget | undefined {
  const vars = new Map<string, string>()
  let search: Search | undefined
  for (const line of splitLines(text)) {
    const body = line.body.replace(/(^|\s)#.*$/, '').trim()
    if (body === '') continue
    const argv = words(body)
    const found = parseSearch(argv)
    if (found) {
      search = found
      vars.set(found.variable, `\u0000${found.variable}`)
      continue
    }
    if (argv[0] === 'set' && argv.length === 2) {
      const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(argv[1] ?? '')
      if (assignment) {
        const value = expand(assignment[2]!, vars)
        if (value === undefined) return undefined
        vars.set(assignment[1]!, value)
      }
      continue
    }
    if (argv[0] === 'configfile' && argv.length === 2 && search) {
      const target = expand(argv[1]!, vars)
      if (target === undefined) return undefined
      // "(<the searched device>)/path", or a bare /path when the search set GRUB's root: a path on the searched file system.
      const device = `(\u0000${search.variable})`
      const path = target.startsWith(device) ? target.slice(device.length) : search.variable === 'root' ? target : ''
      if (!path.startsWith('/')) return undefined
      const config = path.replace(/\/{2,}/g, '/')
      return {by: search.by, config, value: search.value}
    }
  }
  return undefined
}

/** Longer than this, an expanded value is no path a stub means (`set a=$a$a` repeated would double it each line). */
export const MAX_EXPANDED_CHARS = 4096

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g

/** $var and ${var} from the variables set so far; unknown ones stay as written. Undefined once longer than MAX_EXPANDED_CHARS. */
function expand(word: string, vars: Map<string, string>): string | undefined {
  let out = ''
  let from = 0
  for (const match of word.matchAll(VARIABLE)) {
    out += word.slice(from, match.index) + (vars.get(match[1] ?? match[2] ?? '') ?? match[0])
    from = match.index + match[0].length
    if (out.length > MAX_EXPANDED_CHARS) return undefined
  }
  out += word.slice(from)
  return out.length > MAX_EXPANDED_CHARS ? undefined : out
}
