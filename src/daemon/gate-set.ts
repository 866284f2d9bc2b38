import type {DispatchGate, GateDecision} from './dispatch-gate.js'
import {definitionOf} from './job-definition.js'
import type {JobRow} from './store.js'

/**
 * The dispatch gates the pump asks, in order (the built-in ones first, then those pieces add), and the one
 * timer that wakes the pump at the earliest time a held job may become due.
 */
export class GateSet {
  private readonly gates: DispatchGate[]
  private timer?: NodeJS.Timeout
  private timerAt = Number.POSITIVE_INFINITY

  constructor(gates: readonly DispatchGate[], private readonly pump: () => void) {
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

  /** Pump again at `at` (ms epoch); the earliest requested time wins. */
  wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return
    clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Number.POSITIVE_INFINITY
      this.pump()
    }, Math.max(0, at - Date.now()) + 10)
    this.timer.unref()
  }

  close(): void {
    clearTimeout(this.timer)
  }
}
