import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'

import {parseWindow, type WindowSpec} from '../../src/schedule/time-window.js'

/** Fixed instants only: no test here reads the wall clock. */
const at = (iso: string): number => Date.parse(iso)
const iso = (ms: number): string => new Date(ms).toISOString()

describe('parseWindow: hours crossing midnight (UTC)', () => {
  const window = parseWindow({hours: '22:00-06:00', timezone: 'UTC'})

  it('is open from 22:00 to 06:00 the next morning, closed by day', () => {
    assert.equal(window.contains(at('2026-12-02T21:59:59Z')), false)
    assert.equal(window.contains(at('2026-12-02T22:00:00Z')), true)
    assert.equal(window.contains(at('2026-12-02T23:59:59Z')), true)
    assert.equal(window.contains(at('2026-12-03T00:00:00Z')), true)
    assert.equal(window.contains(at('2026-12-03T05:59:59Z')), true)
    assert.equal(window.contains(at('2026-12-03T06:00:00Z')), false)
    assert.equal(window.contains(at('2026-12-03T12:00:00Z')), false)
  })

  it('opens next at 22:00 and closes at 06:00 the day after', () => {
    assert.equal(iso(window.nextOpen(at('2026-12-03T12:00:00Z'))), '2026-12-03T22:00:00.000Z')
    assert.equal(iso(window.nextOpen(at('2026-12-03T02:00:00Z'))), '2026-12-03T02:00:00.000Z', 'open now: now')
    assert.equal(iso(window.closesAt(at('2026-12-03T02:00:00Z'))), '2026-12-03T06:00:00.000Z')
    assert.equal(iso(window.closesAt(at('2026-12-02T23:00:00Z'))), '2026-12-03T06:00:00.000Z')
    assert.equal(iso(window.closesAt(at('2026-12-03T12:00:00Z'))), '2026-12-04T06:00:00.000Z', 'closed: the end of the next period')
  })

  it('describes itself with its zone', () => {
    assert.equal(window.describe(), '22:00-06:00 UTC')
  })

  it('takes the string form as hours only, in the default zone given', () => {
    const plain = parseWindow('08:00-17:30', 'Asia/Tokyo')
    assert.equal(plain.describe(), '08:00-17:30 Asia/Tokyo')
    assert.equal(plain.contains(at('2026-12-02T23:00:00Z')), true, '08:00 in Tokyo')
    assert.equal(plain.contains(at('2026-12-02T08:30:00Z')), false, '17:30 in Tokyo: closed')
  })

  it('reads 24:00 as the end of the day, and 00:00-24:00 every day as never closing', () => {
    const evening = parseWindow({hours: '18:00-24:00', timezone: 'UTC'})
    assert.equal(evening.contains(at('2026-12-02T23:59:59Z')), true)
    assert.equal(evening.contains(at('2026-12-03T00:00:00Z')), false)
    const always = parseWindow({hours: '00:00-24:00', timezone: 'UTC'})
    assert.equal(always.contains(at('2026-12-02T10:00:00Z')), true)
    assert.equal(always.closesAt(at('2026-12-02T10:00:00Z')), Number.POSITIVE_INFINITY)
  })
})

describe('parseWindow: days of the week', () => {
  it('mon-fri: closed on the weekend, opens Monday', () => {
    const window = parseWindow({hours: '09:00-17:00', days: ['mon-fri'], timezone: 'UTC'})
    assert.equal(window.contains(at('2026-12-04T10:00:00Z')), true, 'Friday')
    assert.equal(window.contains(at('2026-12-05T10:00:00Z')), false, 'Saturday')
    assert.equal(window.contains(at('2026-12-06T10:00:00Z')), false, 'Sunday')
    assert.equal(iso(window.nextOpen(at('2026-12-04T18:00:00Z'))), '2026-12-07T09:00:00.000Z', 'Friday evening → Monday')
    assert.equal(window.describe(), '09:00-17:00 mon-fri UTC')
  })

  it('a Friday-night window belongs to Friday: it runs into Saturday but does not open on Saturday night', () => {
    const window = parseWindow({hours: '22:00-06:00', days: ['mon-fri'], timezone: 'UTC'})
    assert.equal(window.contains(at('2026-12-04T23:00:00Z')), true, 'Friday 23:00')
    assert.equal(window.contains(at('2026-12-05T05:00:00Z')), true, 'Saturday 05:00, still Friday night')
    assert.equal(iso(window.closesAt(at('2026-12-05T05:00:00Z'))), '2026-12-05T06:00:00.000Z')
    assert.equal(window.contains(at('2026-12-05T23:00:00Z')), false, 'Saturday night')
    assert.equal(window.contains(at('2026-12-06T23:00:00Z')), false, 'Sunday night')
    assert.equal(window.contains(at('2026-12-07T03:00:00Z')), false, 'early Monday: Sunday night did not open')
    assert.equal(iso(window.nextOpen(at('2026-12-05T06:00:00Z'))), '2026-12-07T22:00:00.000Z', 'Saturday morning → Monday night')
  })

  it('takes lists, commas, wrapping ranges and any case', () => {
    const window = parseWindow({hours: '09:00-10:00', days: ['SAT,sun', 'wed'], timezone: 'UTC'})
    assert.equal(window.describe(), '09:00-10:00 wed,sat,sun UTC')
    assert.equal(parseWindow({hours: '09:00-10:00', days: ['fri-mon'], timezone: 'UTC'}).describe(), '09:00-10:00 mon,fri-sun UTC')
    assert.equal(parseWindow({hours: '09:00-10:00', days: ['mon-sun'], timezone: 'UTC'}).describe(), '09:00-10:00 UTC')
  })
})

describe('parseWindow: holidays', () => {
  const window = parseWindow({hours: '22:00-06:00', days: ['mon-fri'], holidays: ['2026-12-25', '2026-12-31'], timezone: 'UTC'})

  it('does not open on a holiday; the night before runs into it as usual', () => {
    assert.equal(window.contains(at('2026-12-24T23:00:00Z')), true, 'Thursday night before Christmas')
    assert.equal(window.contains(at('2026-12-25T05:00:00Z')), true, 'the Thursday night period ends on Christmas morning')
    assert.equal(window.contains(at('2026-12-25T23:00:00Z')), false, 'Christmas (a Friday) night does not open')
    assert.equal(iso(window.nextOpen(at('2026-12-25T12:00:00Z'))), '2026-12-28T22:00:00.000Z', 'next: Monday night')
    assert.equal(iso(window.nextOpen(at('2026-12-31T12:00:00Z'))), '2027-01-01T22:00:00.000Z', 'New Year: Friday night')
    assert.equal(window.describe(), '22:00-06:00 mon-fri UTC, not on 2 holidays')
  })

  it('reads holiday dates in the window zone', () => {
    const chicago = parseWindow({hours: '00:00-24:00', holidays: ['2026-12-25'], timezone: 'America/Chicago'})
    assert.equal(chicago.contains(at('2026-12-25T05:30:00Z')), true, '23:30 on the 24th in Chicago')
    assert.equal(chicago.contains(at('2026-12-25T06:00:00Z')), false, 'midnight of the 25th in Chicago')
    assert.equal(iso(chicago.closesAt(at('2026-12-20T12:00:00Z'))), '2026-12-25T06:00:00.000Z', 'whole days merge up to the holiday')
    assert.equal(iso(chicago.nextOpen(at('2026-12-25T12:00:00Z'))), '2026-12-26T06:00:00.000Z')
  })
})

describe('parseWindow: America/Chicago across DST', () => {
  const window = parseWindow({hours: '01:30-03:00', timezone: 'America/Chicago'})

  it('on an ordinary day 01:30-03:00 CST is 07:30Z-09:00Z', () => {
    assert.equal(iso(window.nextOpen(at('2026-03-07T00:00:00Z'))), '2026-03-07T07:30:00.000Z')
    assert.equal(iso(window.closesAt(at('2026-03-07T00:00:00Z'))), '2026-03-07T09:00:00.000Z')
  })

  it('spring forward 2026-03-08: opens 01:30 CST, closes at the jump to 03:00 CDT (30 real minutes)', () => {
    const open = window.nextOpen(at('2026-03-08T00:00:00Z'))
    assert.equal(iso(open), '2026-03-08T07:30:00.000Z')
    assert.equal(iso(window.closesAt(open)), '2026-03-08T08:00:00.000Z')
    assert.equal(window.contains(at('2026-03-08T07:59:59Z')), true)
    assert.equal(window.contains(at('2026-03-08T08:00:00Z')), false, '03:00 CDT')
    assert.equal(iso(window.nextOpen(at('2026-03-08T08:00:00Z'))), '2026-03-09T06:30:00.000Z', 'next day 01:30 CDT')
  })

  it('spring forward: a window inside the skipped hour does not open; one starting in it opens at the jump', () => {
    const skipped = parseWindow({hours: '02:00-02:30', timezone: 'America/Chicago'})
    assert.equal(iso(skipped.nextOpen(at('2026-03-08T00:00:00Z'))), '2026-03-09T07:00:00.000Z', 'next: 02:00 CDT on the 9th')
    const late = parseWindow({hours: '02:30-04:00', timezone: 'America/Chicago'})
    assert.equal(iso(late.nextOpen(at('2026-03-08T00:00:00Z'))), '2026-03-08T08:00:00.000Z', '03:00 CDT, the jump')
    assert.equal(iso(late.closesAt(at('2026-03-08T08:00:00Z'))), '2026-03-08T09:00:00.000Z', '04:00 CDT')
  })

  it('fall back 2026-11-01: opens at the first 01:30 (CDT), stays open through the repeated hour to 03:00 CST', () => {
    const open = window.nextOpen(at('2026-11-01T00:00:00Z'))
    assert.equal(iso(open), '2026-11-01T06:30:00.000Z')
    assert.equal(iso(window.closesAt(open)), '2026-11-01T09:00:00.000Z')
    assert.equal(window.contains(at('2026-11-01T07:15:00Z')), true, '01:15 CST, the second time round')
    assert.equal(window.contains(at('2026-11-01T09:00:00Z')), false)
    assert.equal(iso(window.nextOpen(at('2026-11-01T09:00:00Z'))), '2026-11-02T07:30:00.000Z', 'next day 01:30 CST')
  })

  it('a night window across each change lasts one hour less or more', () => {
    const night = parseWindow({hours: '22:00-06:00', timezone: 'America/Chicago'})
    const spring = night.nextOpen(at('2026-03-07T12:00:00Z'))
    assert.equal(iso(spring), '2026-03-08T04:00:00.000Z', '22:00 CST')
    assert.equal(night.closesAt(spring) - spring, 7 * 3_600_000)
    const fall = night.nextOpen(at('2026-10-31T12:00:00Z'))
    assert.equal(iso(fall), '2026-11-01T03:00:00.000Z', '22:00 CDT')
    assert.equal(night.closesAt(fall) - fall, 9 * 3_600_000)
  })
})

describe('parseWindow: invalid specs', () => {
  const cases: Array<[string, WindowSpec | unknown, RegExp]> = [
    ['no dash', '22:00', /window: "22:00" is not "HH:MM-HH:MM"/],
    ['hours past 23', '25:00-06:00', /the start must be 00:00\.\.23:59/],
    ['minutes past 59', '22:60-06:00', /the start must be/],
    ['end past 24:00', '22:00-24:30', /the end must be 00:00\.\.24:00/],
    ['single-digit hour', '9:00-17:00', /is not "HH:MM-HH:MM"/],
    ['empty window', '12:00-12:00', /opens and closes at the same time/],
    ['no hours', {days: ['mon']}, /window\.hours: is required/],
    ['unknown key', {hours: '22:00-06:00', day: ['mon']}, /unknown key "day"/],
    ['bad day', {hours: '22:00-06:00', days: ['monday']}, /window\.days: "monday" is not a day/],
    ['empty days', {hours: '22:00-06:00', days: []}, /window\.days: must be a list/],
    ['bad range', {hours: '22:00-06:00', days: ['mon-fri-sun']}, /is not a day/],
    ['bad holiday', {hours: '22:00-06:00', holidays: ['2026-02-30']}, /window\.holidays: "2026-02-30" is not a date/],
    ['holiday not a string', {hours: '22:00-06:00', holidays: [20261225]}, /"number" is not a date/],
    ['unknown zone', {hours: '22:00-06:00', timezone: 'Mars/Olympus_Mons'}, /window\.timezone: "Mars\/Olympus_Mons" is not an IANA time zone/],
    ['zone with odd characters', {hours: '22:00-06:00', timezone: 'UTC; rm -rf'}, /is not an IANA time zone/],
    ['not a mapping', ['22:00-06:00'], /must be "HH:MM-HH:MM" or a mapping/],
  ]
  for (const [name, spec, message] of cases) {
    it(`refuses ${name} with H2K_JOB_INVALID`, () => {
      assert.throws(() => parseWindow(spec as WindowSpec, 'UTC'), (error: unknown) =>
        error instanceof H2KError && error.code === 'H2K_JOB_INVALID' && message.test(error.message))
    })
  }

  it('never echoes more than a short piece of a long bad value', () => {
    const long = `22:00-06:00${'x'.repeat(5000)}`
    assert.throws(() => parseWindow(long, 'UTC'), (error: unknown) =>
      error instanceof H2KError && error.message.length < 200 && !error.message.includes('x'.repeat(40)))
    assert.throws(() => parseWindow({hours: '01:00-02:00', timezone: 'Z'.repeat(5000)}), (error: unknown) =>
      error instanceof H2KError && error.message.length < 200)
  })

  it('names where the window is and takes H2K_USAGE for flags', () => {
    assert.throws(() => parseWindow('nope', 'UTC', {where: 'jobs[2].window'}), /jobs\[2\]\.window: "nope"/)
    assert.throws(() => parseWindow('nope', 'UTC', {where: '--window', code: 'H2K_USAGE'}), (error: unknown) =>
      error instanceof H2KError && error.code === 'H2K_USAGE')
  })

  it('canonicalises zone aliases', () => {
    assert.equal(parseWindow({hours: '01:00-02:00', timezone: 'utc'}).describe(), '01:00-02:00 UTC')
  })
})
