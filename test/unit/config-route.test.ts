import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {parseConfigInvocation, routeConfigInvocation} from '../../src/config-route.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('config route: `hyper2kvm --config FILE` without a command', () => {
  describe('which command lines are the bare form', () => {
    it('takes --config FILE and --config=FILE first, keeping every other argument in order', () => {
      assert.deepEqual(parseConfigInvocation(['--config', 'd.yaml']), {file: 'd.yaml', rest: []})
      assert.deepEqual(parseConfigInvocation(['--config=d.yaml', '--json']), {file: 'd.yaml', rest: ['--json']})
      assert.deepEqual(parseConfigInvocation(['--config', 'd.yaml', '--log-level', 'debug', '--max-concurrent-jobs', '3']), {
        file: 'd.yaml',
        rest: ['--log-level', 'debug', '--max-concurrent-jobs', '3'],
      })
    })

    it('takes global flags before --config', () => {
      assert.deepEqual(parseConfigInvocation(['--log-level', 'warn', '--json', '--config', 'd.yaml']), {file: 'd.yaml', rest: ['--log-level', 'warn', '--json']})
      assert.deepEqual(parseConfigInvocation(['--log-level=warn', '--config=d.yaml']), {file: 'd.yaml', rest: ['--log-level=warn']})
    })

    it('leaves commands, help, version and incomplete flags to oclif', () => {
      for (const argv of [
        [],
        ['daemon', '--config', 'd.yaml'],
        ['convert', 'disk.vmdk', '--config', 'd.yaml'],
        ['--help'],
        ['--version'],
        ['--config', 'd.yaml', '--help'],
        ['-h', '--config', 'd.yaml'],
        ['--config'],
        ['--config='],
        ['--config', '--json'],
        ['--json'],
        ['--log-level', 'debug'],
        ['--format', 'raw', '--config', 'd.yaml'],
      ]) {
        assert.equal(parseConfigInvocation(argv), undefined, argv.join(' '))
      }
    })
  })

  describe('what the file decides', () => {
    let dir: string
    let cleanup: () => void
    beforeEach(() => ({cleanup, dir} = makeTempDir()))
    afterEach(() => cleanup())
    const file = (name: string, text: string): string => {
      const path = join(dir, name)
      writeFileSync(path, text)
      return path
    }

    it('`command: daemon` and `daemon: true` run the daemon with the same file and the other flags', async () => {
      const a = file('a.yaml', 'command: daemon\nwatch_dir: q\noutput_dir: o\n')
      assert.deepEqual(await routeConfigInvocation({file: a, rest: ['--json', '--stability-interval', '100']}), {
        args: ['daemon', '--config', a, '--json', '--stability-interval', '100'],
        kind: 'run',
      })
      const b = file('b.json', '{"daemon": true, "watch_dir": "q", "output_dir": "o"}')
      assert.deepEqual(await routeConfigInvocation({file: b, rest: []}), {args: ['daemon', '--config', b], kind: 'run'})
    })

    it('job files, batches, manifests and plain configs are refused with the command that runs them', async () => {
      const cases: Array<[string, string, RegExp, RegExp]> = [
        ['job.yaml', 'input: disk.vmdk\noutput_format: qcow2\n', /is a job file/, /^Run the job: hyper2kvm convert --job .*job\.yaml$/],
        ['batch.yaml', 'jobs:\n  - input: a.vmdk\n  - input: b.vmdk\n', /is a batch job file/, /^Run its jobs: hyper2kvm batch .*batch\.yaml$/],
        ['manifest.json', '{"version": "1.0", "pipeline": {"load": {"source_type": "vmdk", "source_path": "a.vmdk"}}}', /is a manifest/, /^Run it: hyper2kvm batch .*manifest\.json$/],
        ['defaults.yaml', 'compress: true\n', /conversion defaults/, /hyper2kvm convert DISK --config .*defaults\.yaml$/],
        ['nomarker.yaml', 'watch_dir: q\noutput_dir: o\n', /does not say `command: daemon`/, /hyper2kvm daemon --config .*nomarker\.yaml$/],
        ['off.yaml', 'daemon: false\nwatch_dir: q\n', /says `daemon: false`/, /hyper2kvm daemon --config/],
      ]
      for (const [name, text, message, suggestion] of cases) {
        const route = await routeConfigInvocation({file: file(name, text), rest: []})
        assert.equal(route.kind, 'refuse', name)
        if (route.kind !== 'refuse') continue
        assert.equal(route.error.code, 'H2K_USAGE', name)
        assert.equal(route.error.exitCode, 2)
        assert.match(route.error.message, message, name)
        assert.ok(route.error.suggestions.some((s) => suggestion.test(s)), `${name}: ${route.error.suggestions.join(' | ')}`)
      }
    })

    it('a manifest is told apart from a job file by its content', async () => {
      const route = await routeConfigInvocation({file: file('m.yaml', 'version: "1.0"\npipeline:\n  load:\n    source_type: vmdk\n    source_path: a.vmdk\n'), rest: []})
      assert.equal(route.kind, 'refuse')
      if (route.kind === 'refuse') assert.match(route.error.message, /is a manifest/)
    })

    it('a missing file, a syntax error and a non-mapping are clear errors', async () => {
      const missing = await routeConfigInvocation({file: join(dir, 'nope.yaml'), rest: []})
      assert.equal(missing.kind, 'refuse')
      if (missing.kind === 'refuse') {
        assert.equal(missing.error.code, 'H2K_INPUT_NOT_FOUND')
        assert.match(missing.error.message, /The configuration file .*nope\.yaml does not exist\./)
      }
      const broken = await routeConfigInvocation({file: file('broken.yaml', 'command: daemon\nwatch_dir: [\n'), rest: []})
      assert.equal(broken.kind, 'refuse')
      if (broken.kind === 'refuse') {
        assert.equal(broken.error.code, 'H2K_JOB_INVALID')
        assert.match(broken.error.message, /broken\.yaml:\d+:\d+/)
      }
      const list = await routeConfigInvocation({file: file('list.yaml', '- command: daemon\n'), rest: []})
      assert.equal(list.kind, 'refuse')
      if (list.kind === 'refuse') assert.equal(list.error.code, 'H2K_JOB_INVALID')
    })
  })
})
