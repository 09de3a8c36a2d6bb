// Package backup writes scheduled backups of the control plane and reads
// them back for a restore.
//
// The leader runs Run as a duty: every Settings.Backup.Interval while
// backups are enabled it writes one backup, and keeps the newest Keep. A
// backup named dropmesh-<UTC time> is three files: NAME.state.json (the
// state export of raftfsm.Export, secrets sealed), NAME.raft-snapshot (the
// latest raft snapshot's payload, which raftfsm.ReadSnapshot reads) and
// NAME.manifest.json (Info: cluster, raft index and term, sizes and
// SHA-256 of both), written last, so a backup without a manifest is
// incomplete and never listed or restored.
//
// Backups go to a Target: a directory on the leader (DirTarget, local mode)
// or a prefix of an S3-compatible bucket such as DigitalOcean Spaces
// (S3Target). S3Client is a small S3 client (PUT, GET, DELETE,
// ListObjectsV2) signed with AWS Signature Version 4 (Signer); no SDK.
//
// RestoreCommand (`dropmesh state restore --from DIR/NAME |
// s3://BUCKET/PREFIX/NAME`) reads a backup, or any export or raft snapshot
// file, validates it and imports it through the agent API;
// BackupsCommand lists the backups of a place.
package backup
