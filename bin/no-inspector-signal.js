// Imported first by bin/run.js, before anything slow loads: without a SIGUSR1 listener, Node answers the
// signal by opening its inspector on 127.0.0.1:9229, where any local user could run code as this process.
// logrotate sends SIGUSR1 to the daemon; until the daemon command registers its own listener (log reopen),
// the signal is ignored here, and every other command ignores it too.
process.on('SIGUSR1', () => {})
