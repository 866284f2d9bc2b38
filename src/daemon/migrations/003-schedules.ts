import type {SqlDb} from '../../store/sql-db.js'

import {columnTypes} from './column-types.js'
import type {Migration} from './migration.js'

/**
 * Migration 3: schedules (src/schedule/). `schedules` holds each schedule (from the configuration file, or
 * created over the API) with its persisted next_run / last_run / run_count (ms epoch); `schedule_runs` one
 * row per due time: fired, skipped because the previous run was still going, missed (downtime, a template
 * that could not be expanded), or queued beside a running one (overlap: queue).
 */
export const schedules: Migration = {
  name: 'schedules',
  up(db: SqlDb): void {
    const {bigint, serialKey} = columnTypes(db)
    db.exec(`
CREATE TABLE schedules (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  cron TEXT NOT NULL,
  timezone TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  template_json TEXT NOT NULL,
  window_json TEXT,
  window_end TEXT CHECK (window_end IN ('cancel','finish')),
  overlap TEXT NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip','queue')),
  catch_up TEXT NOT NULL DEFAULT 'one' CHECK (catch_up IN ('none','one','all')),
  retry_json TEXT,
  source TEXT NOT NULL CHECK (source IN ('config','api')),
  next_run ${bigint},
  last_run ${bigint},
  run_count INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE schedule_runs (
  id ${serialKey},
  schedule_id TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  scheduled_for ${bigint} NOT NULL,
  fired_at ${bigint} NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('fired','skipped-overlap','missed','queued')),
  job_ids_json TEXT NOT NULL DEFAULT '[]',
  override_window INTEGER NOT NULL DEFAULT 0,
  detail TEXT
);
CREATE INDEX schedule_runs_schedule ON schedule_runs(schedule_id, id);
`)
  },
  version: 3,
}
