// Mocha's spec reporter plus one closing line in the plain "N passed, N failed" form CI tooling reads.
// It also guards the end of the run: mocha waits for the event loop to drain, so one handle a test leaves open
// (a socket, a thread's port, a timer) would hang CI until its time limit. If the process is still alive a while
// after the run, it says what is still open and exits non-zero: a leak is a defect, but a named one.
const Mocha = require('mocha')

const EXIT_GRACE_MS = Number(process.env.HYPER2KVM_TEST_EXIT_GRACE_MS ?? 60_000)

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options)
    runner.once('end', () => {
      const {passes, failures, pending} = runner.stats
      process.stdout.write(`${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`)
      setTimeout(() => {
        const open = process.getActiveResourcesInfo()
        process.stderr.write(`the test process did not exit ${EXIT_GRACE_MS / 1000} s after the run; still open: ${open.join(', ') || 'nothing named'}\n`)
        const code = failures > 0 ? Math.min(failures, 255) : 1
        // Mocha's own exit listener sets the exit code to the failure count (0 here); this one runs after it.
        process.on('exit', () => (process.exitCode = code))
        process.exit(code)
      }, EXIT_GRACE_MS).unref()
    })
  }
}

module.exports = SummaryReporter
