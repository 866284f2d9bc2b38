import type {SourceLine} from './text-lines.js'

/** A `key=value` line of an INI-style file (systemd units, NetworkManager keyfiles), with the section it is in. */
export interface IniLine {
  line: SourceLine
  section: string
  key?: string
  value?: string
}

/** Walk an INI-style file: section headers, comments (`#`, `;`) and `key=value` lines (keys are case-sensitive, as systemd and NM read them). */
export function iniLines(lines: readonly SourceLine[]): IniLine[] {
  let section = ''
  return lines.map((line) => {
    const body = line.body.trim()
    const header = /^\[([^\]]{1,100})\]$/.exec(body)
    if (header) section = header[1]!
    if (header || body === '' || body.startsWith('#') || body.startsWith(';')) return {line, section}
    const at = body.indexOf('=')
    if (at <= 0) return {line, section}
    return {key: body.slice(0, at).trim(), line, section, value: body.slice(at + 1).trim()}
  })
}
