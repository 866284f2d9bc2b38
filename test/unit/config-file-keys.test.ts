import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {configFileKeys} from '../../src/jobs/config-file-keys.js'
import {REDACTED} from '../../src/secrets/redact.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('config show: the configuration file\'s other keys', () => {
  it('stage options are listed with their source, their values never: a plugin\'s option may be a credential under any name', async () => {
    const {cleanup, dir} = makeTempDir('h2k-config-keys-')
    try {
      const file = join(dir, 'config.yaml')
      writeFileSync(file, 'stage_options:\n  fixer:x:\n    apiKey: s3cr3t-value\n    note: hello\n    tags: [a, b]\nwatch_dir: /srv/in\n')
      const keys = await configFileKeys(file)
      assert.deepEqual(keys['stage_options.fixer:x.apiKey'], {source: file, value: REDACTED})
      assert.deepEqual(keys['stage_options.fixer:x.note'], {source: file, value: REDACTED})
      assert.deepEqual(keys['stage_options.fixer:x.tags'], {source: file, value: REDACTED})
      assert.ok(!JSON.stringify(keys).includes('s3cr3t'))
      assert.deepEqual(keys.watch_dir, {source: file, value: '/srv/in'})
    } finally {
      cleanup()
    }
  })
})
