/**
 * Plugins whose `hyper2kvm:register` hook was given up on (it did not answer in time): their code may still
 * hold the event loop (a timer, a socket), so the process would not end when the command is done. The CLI's
 * entry (bin/run.js) reads this after the command and ends the process itself. No imports: bin/run.js loads
 * it after every command.
 */
const abandoned = new Set<string>()

export function noteAbandonedHook(plugin: string): void {
  abandoned.add(plugin)
}

export function abandonedHooks(): readonly string[] {
  return [...abandoned]
}
