import assert from 'node:assert/strict'

import {runCli} from '../helpers/run-cli.js'

/** `-h` is --help on every command (it used to be "Nonexistent flag: -h"), topics included. */
describe('-h shows the help of a command', function () {
  this.timeout(60_000)
  for (const argv of [['convert'], ['daemon'], ['ctl', 'stats'], ['notify', 'test'], ['secrets', 'list'], ['dedup', 'list']]) {
    it(`${argv.join(' ')} -h`, async () => {
      const short = await runCli([...argv, '-h'])
      assert.equal(short.code, 0, short.stderr)
      assert.match(short.stdout, new RegExp(`USAGE\\n  \\$ hyper2kvm ${argv.join(' ')}`))
      assert.match(short.stdout, /-h, --help/)
      const long = await runCli([...argv, '--help'])
      assert.equal(short.stdout, long.stdout)
    })
  }
})
