/**
 * Red-team regressions (issue #10): places a secret or a privilege could leak that the feature tests did
 * not look at. Each case runs the real thing (a real child process, a real CLI, a real receiver).
 */
import assert from 'node:assert/strict'

import {runTool} from '../../src/exec/run-tool.js'

describe('secret exposure: children started by hyper2kvm', () => {
  const PRIVATE = {
    CREDENTIALS_DIRECTORY: '/run/credentials/hyper2kvm.service',
    HYPER2KVM_METRICS_TOKEN: 'metrics-token-value-123456',
    HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD: 'smtp-password-value',
    HYPER2KVM_NOTIFICATIONS_WEBHOOKS_0_SECRET: 'webhook-secret-value',
    NOTIFY_SOCKET: '/run/systemd/notify',
  }
  let saved: Record<string, string | undefined>
  beforeEach(() => {
    saved = Object.fromEntries(Object.keys(PRIVATE).map((k) => [k, process.env[k]]))
    Object.assign(process.env, PRIVATE, {HYPER2KVM_OUTPUT_FORMAT: 'qcow2'})
  })
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
    else process.env[k] = v
    delete process.env.HYPER2KVM_OUTPUT_FORMAT
  })

  it('an unsandboxed tool (qemu-img, guestfish, supermin) inherits no secret variable, CREDENTIALS_DIRECTORY or NOTIFY_SOCKET', async () => {
    const {stdout} = await runTool('env', [], {env: {LIBGUESTFS_BACKEND: 'direct'}})
    for (const [name, value] of Object.entries(PRIVATE)) {
      assert.ok(!stdout.includes(`${name}=`), `${name} reached the child`)
      assert.ok(!stdout.includes(value), `the value of ${name} reached the child`)
    }
    // What the tool needs is still there: PATH, the caller's variables, harmless settings.
    assert.match(stdout, /^PATH=/m)
    assert.match(stdout, /^LIBGUESTFS_BACKEND=direct$/m)
    assert.match(stdout, /^HYPER2KVM_OUTPUT_FORMAT=qcow2$/m)
  })
})
