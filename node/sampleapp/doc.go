// Package sampleapp is the tiny HTTP service that ships inside the dropmesh
// binary as `dropmesh sample-app`. Local mode builds it into an image FROM
// scratch so a first deploy needs no registry, and the tests of every package
// that runs containers use it (through node/runtime's test kit) as the thing
// they deploy, probe, break and heal.
//
// It listens on :8080 (or $PORT) and answers:
//
//	GET  /                          200, its host name and $VERSION (else the binary's version)
//	GET  /health                    200, or 500 while failing
//	POST /admin/health?fail=1|0     start or stop failing /health
//	POST /admin/log?level=L&msg=M   one log line at level L on stdout
//	POST /admin/exit?code=N         exit the process with code N
//	POST /admin/write?path=P        write the body (or ?body=) to file P
//	GET  /admin/read?path=P         read file P back
//
// Log lines are plain `LEVEL msg`, or JSON objects with a "level" field when
// LOG_FORMAT=json. Files live under $DATA_DIR (default /data), the mount
// point of the volume tests. With the argument `once` (or SAMPLE_ONCE=1) it
// prints one line and exits with $EXIT_CODE, which is what cron tests run.
//
// All state is in memory, so a restarted container comes back healthy.
package sampleapp
