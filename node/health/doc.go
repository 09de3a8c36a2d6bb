// Package health holds the container health checks of a dropmesh agent,
// free of Docker so that they are easy to test and to reuse.
//
// The agent's health loop (package node) gathers what it knows of a
// container into a Target — its kind, the address to probe, whether it runs,
// a LogSource for its log, the state of a cron job — and asks a Checker for
// a Result: healthy, degraded, unhealthy or starting, with a reason.
//
// The rules (the handbook, docs/handbook.md, "What each failure looks like"):
//   - a service or stateful container with a port is probed (ProbeHTTP when
//     it has a health path, ProbeTCP otherwise); no answer is unhealthy; an
//     answer leads to a scan of the log written since the previous check,
//     and an error line in it (LogScanner, with the service's own pattern
//     when it has one) makes the container degraded;
//   - a worker (no port) that is not running is unhealthy, else its log is
//     scanned the same way;
//   - a cron job is judged on its last run: a failed run, a missed run (late)
//     or a run that lasts too long is unhealthy (CronState, NextFire);
//   - within the start grace the caller gives, unhealthy reads starting.
//
// The Checker keeps, per container, the time of its previous check, so each
// scan reads only the log lines that are new; CheckOnce answers an
// on-demand question the same way without moving that cursor.
package health
