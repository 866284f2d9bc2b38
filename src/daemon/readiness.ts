import {existsSync} from 'node:fs'

import {mapForeignError} from '../errors/map-foreign-error.js'
import type {DaemonState} from './daemon-events.js'
import type {ReadinessCheck} from './daemon-pieces.js'

/** What readiness looks at: the store, the bookkeeping directories' verdict, the inbox, the state. */
export interface ReadinessInputs {
  /** Throws when the store does not answer or take writes (JobStore.ping). */
  pingStore: () => void
  bookkeepingProblems: () => Array<{dir: string; problem: string}>
  inbox: string
  state: DaemonState
}

/** `/api/v1/ready`: the store takes writes, the directories are there and usable, the daemon takes new work. */
export function readinessChecks(inputs: ReadinessInputs): ReadinessCheck[] {
  const checks: ReadinessCheck[] = []
  try {
    inputs.pingStore()
    checks.push({name: 'store', ok: true})
  } catch (error) {
    checks.push({detail: mapForeignError(error).message, name: 'store', ok: false})
  }
  const problems = inputs.bookkeepingProblems().map((c) => `${c.dir}: ${c.problem}`)
  if (!existsSync(inputs.inbox)) problems.push('the inbox is missing')
  checks.push({name: 'directories', ok: problems.length === 0, ...(problems.length > 0 ? {detail: problems.join('; ')} : {})})
  const accepting = inputs.state === 'RUNNING'
  checks.push({name: 'accepting', ok: accepting, ...(accepting ? {} : {detail: inputs.state.toLowerCase()})})
  return checks
}
