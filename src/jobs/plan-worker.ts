/**
 * Worker-thread entry of loadJobPlanInWorker(): plans one job file or manifest and posts back the plan
 * or the error as JSON. Runs nothing else; the parent terminates it when it overruns its budget.
 */
import {parentPort, workerData} from 'node:worker_threads'

import {mapForeignError} from '../errors/map-foreign-error.js'
import {loadJobPlan, type PlanOptions} from './job-plan.js'

const {options, path} = workerData as {path: string; options: PlanOptions}
try {
  const plan = await loadJobPlan(path, options)
  parentPort!.postMessage({plan})
} catch (error) {
  parentPort!.postMessage({error: mapForeignError(error).toJSON()})
}
