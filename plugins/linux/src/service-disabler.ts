import type {GuestSession, StageContext} from '@hyper2kvm/plugin-api'

import {globPaths, isSymlink, unsafeAncestor} from './guest-queries.js'

const SYSTEMD_DIR = '/etc/systemd/system'
/** `<unit>.wants` / `<unit>.requires` as systemd names them (templates, escapes): printable, no spaces. */
const UNIT_DIR_NAME = /^[A-Za-z0-9@._:+\\-]{1,200}\.(wants|requires)$/

/** What disabling one set of services did, in counts for the summary line. */
export interface DisableTally {
  masked: string[]
  disabledLinks: number
  refused: number
}

/**
 * Turns services off the way systemctl and update-rc.d/chkconfig do, with the guest's files only (no guest
 * program runs): a systemd unit is masked by a symbolic link /etc/systemd/system/<unit> → /dev/null; a
 * SysV service's start links S<nn><name> in the rc directories become K<nn><name>. Every change is
 * recorded; nothing is written through a link, and a link's target is never repeated (only compared with
 * /dev/null).
 */
export class ServiceDisabler {
  private systemdDir: 'ok' | 'absent' | 'refused' | undefined
  /** unsafeAncestor() of each rc directory, asked once. */
  private readonly rcDirs = new Map<string, string | undefined>()

  constructor(
    private readonly ctx: StageContext,
    private readonly session: GuestSession,
    private readonly stage: string,
  ) {}

  private async systemdUsable(): Promise<boolean> {
    if (this.systemdDir === undefined) {
      if (!(await this.session.exists(SYSTEMD_DIR)) && !(await isSymlink(this.session, SYSTEMD_DIR))) this.systemdDir = 'absent'
      else {
        const bad = await unsafeAncestor(this.session, SYSTEMD_DIR)
        this.systemdDir = bad === undefined ? 'ok' : 'refused'
        if (bad !== undefined) this.ctx.warn('FIX_WARNING', `${bad} is a symbolic link or not a directory: no systemd unit was masked.`)
      }
    }
    return this.systemdDir === 'ok'
  }

  /** Mask `<service>.service`; where the unit is itself defined in /etc/systemd/system, disable it instead. */
  async mask(service: string, why: string, tally: DisableTally): Promise<void> {
    if (!(await this.systemdUsable())) return
    const unit = `${service}.service`
    const path = `${SYSTEMD_DIR}/${unit}`
    const record = (reason: string) => this.ctx.changes.record({after: null, before: null, path, reason: `${reason} (${why})`, stage: this.stage})
    if (await isSymlink(this.session, path)) {
      if ((await this.session.call('readlink', path)).trim() === '/dev/null') return
      // An alias or a link to a unit file elsewhere: removing a link never touches what it points at.
      await this.session.call('rm', path)
      await this.session.call('ln-sf', '/dev/null', path)
      record('masked: the symbolic link that was here (an alias or a linked unit) replaced by a link to /dev/null, as systemctl mask does')
      tally.masked.push(unit)
    } else if (await this.session.exists(path)) {
      if ((await this.session.call('is-file', path)).trim() !== 'true') {
        this.ctx.warn('FIX_WARNING', `${path} is neither a unit file nor a link; it was left as it is.`)
        tally.refused++
        return
      }
      // The unit is defined here: masking would have to delete it. Disable it: remove what pulls it in.
      for (const link of [...(await globPaths(this.session, `${SYSTEMD_DIR}/*.wants/${unit}`)), ...(await globPaths(this.session, `${SYSTEMD_DIR}/*.requires/${unit}`))]) {
        // The directory's name is the guest's: a path we record or print must not carry its bytes.
        if (!UNIT_DIR_NAME.test(link.slice(SYSTEMD_DIR.length + 1, -unit.length - 1))) {
          this.ctx.warn('FIX_WARNING', `An enablement link of ${unit} in a directory with an unusual name was left as it is.`)
          tally.refused++
          continue
        }
        if (!(await isSymlink(this.session, link))) continue
        await this.session.call('rm', link)
        this.ctx.changes.record({after: null, before: null, path: link, reason: `disabled: enablement link removed, as systemctl disable does (${why})`, stage: this.stage})
        tally.disabledLinks++
      }
    } else {
      await this.session.call('ln-sf', '/dev/null', path)
      record('masked: a link to /dev/null, as systemctl mask does')
      tally.masked.push(unit)
    }
  }

  /** SysV: S<nn><service> start links → K<nn><service> (update-rc.d disable, chkconfig off); a K link already there wins. */
  async disableSysv(service: string, why: string, tally: DisableTally): Promise<void> {
    // RHEL keeps the rc directories in /etc/rc.d (with /etc/rc<N>.d links to them): look there first, once.
    let links = await globPaths(this.session, `/etc/rc.d/rc[0-6].d/S[0-9][0-9]${service}`)
    if (links.length === 0) links = await globPaths(this.session, `/etc/rc[0-6S].d/S[0-9][0-9]${service}`)
    for (const link of links) {
      const dir = link.slice(0, link.lastIndexOf('/'))
      if (!this.rcDirs.has(dir)) this.rcDirs.set(dir, await unsafeAncestor(this.session, dir))
      if (this.rcDirs.get(dir) !== undefined || !(await isSymlink(this.session, link))) {
        this.ctx.warn('FIX_WARNING', `${link} is not a start link in a plain rc directory; it was left as it is.`)
        tally.refused++
        continue
      }
      const stop = `${dir}/K${link.slice(dir.length + 2)}`
      if ((await globPaths(this.session, `${dir}/K[0-9][0-9]${service}`)).length > 0) {
        await this.session.call('rm', link)
        this.ctx.changes.record({after: null, before: null, path: link, reason: `disabled: start link removed, a stop link is already there (${why})`, stage: this.stage})
      } else {
        await this.session.call('mv', link, stop)
        this.ctx.changes.record({after: null, before: null, path: link, reason: `disabled: start link renamed to ${stop}, as update-rc.d disable and chkconfig off do (${why})`, stage: this.stage})
      }
      tally.disabledLinks++
    }
  }
}
