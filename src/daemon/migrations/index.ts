import {baseline} from './001-baseline.js'
import {jobService} from './002-job-service.js'
import {schedules} from './003-schedules.js'
import {jobLogMigration} from './004-job-log.js'
import {clusterMigration} from './005-cluster.js'
import {outboxMigration} from './006-outbox.js'
import type {Migration} from './migration.js'

/**
 * Every migration of the job store, in order. Reserved numbers: 1 baseline, 2 job service (dependencies,
 * attempts, new statuses), 3 schedules, 4 job log, 5 cluster (nodes, leases, intake claims), 6 notification
 * outbox. A part that needs its own table adds its file and one line here.
 */
export const MIGRATIONS: readonly Migration[] = [baseline, jobService, schedules, jobLogMigration, clusterMigration, outboxMigration]

export type {Migration} from './migration.js'
