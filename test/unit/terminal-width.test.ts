import assert from 'node:assert/strict'

import {fixZeroTerminalWidth} from '../../src/render/terminal-width.js'

describe('fixZeroTerminalWidth (the width listr2 wraps at)', () => {
  const cases: Array<{name: string; stdout: number | undefined; stderr: number | undefined; width: number | undefined}> = [
    {name: 'a sized terminal is left alone', stderr: 132, stdout: 100, width: 100},
    {name: 'a pty without a size becomes 80', stderr: 0, stdout: 0, width: 80},
    {name: 'a sizeless stdout takes a sized stderr (we render on stderr)', stderr: 120, stdout: 0, width: 120},
    {name: 'stdout that is no terminal stays without a width (listr2 uses 80)', stderr: 0, stdout: undefined, width: undefined},
  ]
  for (const c of cases) {
    it(c.name, () => {
      const stdout: {columns?: number} = c.stdout === undefined ? {} : {columns: c.stdout}
      fixZeroTerminalWidth(stdout, c.stderr === undefined ? {} : {columns: c.stderr})
      assert.equal(stdout.columns, c.width)
    })
  }
})
