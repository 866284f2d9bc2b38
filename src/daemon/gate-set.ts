import type {DispatchGate, GateDecision} from './dispatch-gate.js'
import type {Clock, Timer} from '../time/clock.js'
import {definitionOf} from './job-definition.js'
import type {JobRow} from './store.js'

/**
 * The longest the wake timer sleeps before the pump looks again: setTimeout fires at once beyond 2^31-1 ms,
 * and a window may open weeks ahead.
 */
const MAX_WAKE_MS = 3_600_000

/**
 * The dispatch gates the pump asks, in order (the built-in ones first, then those pieces add), and the one
 * timer that wakes the pump at the earliest time a held job may become due.
 */
export class GateSet {
  private readonly gates: DispatchGate[]
  private timer?: Timer
  private timerAt = Number.POSITIVE_INFINITY

  constructor(gates: readonly DispatchGate[], private readonly pump: () => void, private readonly clock: Clock) {
    this.gates = [...gates]
  }

  add(gate: DispatchGate): void {
    this.gates.push(gate)
  }

  /** The first gate that holds the job back decides; due when none does. */
  decide(row: JobRow, now: number): GateDecision {
    const definition = definitionOf(row)
    for (const gate of this.gates) {
      const decision = gate(row, definition, now)
      if (!decision.due) return decision
    }
    return {due: true}
  }

  /** Pump again at `at` (ms epoch; at most MAX_WAKE_MS from now, then the pump asks again); the earliest requested time wins. */
  wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return
    this.timer?.cancel()
    this.timerAt = at
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined
      this.timerAt = Number.POSITIVE_INFINITY
      this.pump()
    }, Math.min(Math.max(0, at - this.clock.now()) + 10, MAX_WAKE_MS))
  }

  close(): void {
    this.timer?.cancel()
  }
}
