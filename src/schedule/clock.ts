/** The daemon's one clock (src/time/clock.ts), as the schedule code has always imported it. */
export {type Clock, type Timer, systemClock} from '../time/clock.js'
