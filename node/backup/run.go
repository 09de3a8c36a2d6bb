package backup

import (
	"context"
	"crypto/cipher"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// changer is implemented by sources that signal state changes (StoreSource).
type changer interface {
	Changed() <-chan struct{}
}

// Run takes a backup every Settings.Backup.Interval while backups are
// enabled, until ctx ends. The leader runs it as a duty while it leads. On
// start, and whenever the target changes, it looks at the target's newest
// backup, so a new leader does not back up again before the interval is
// over. A failed backup is logged and retried after Config.RetryInterval.
func Run(ctx context.Context, src Source, sealer cipher.AEAD, cfg Config) {
	cfg = cfg.withDefaults()
	ch, _ := src.(changer)
	var (
		key     string // the target the schedule below is for
		last    time.Time
		retryAt time.Time
	)
	for {
		var changed <-chan struct{}
		if ch != nil {
			changed = ch.Changed()
		}
		var settings raftfsm.BackupSettings
		src.View(func(s *raftfsm.State) { settings = s.Settings.Backup })
		wait := cfg.Poll
		if settings.Enabled {
			now := cfg.Now()
			if k := targetKey(settings); k != key {
				key, last, retryAt = k, newestBackup(ctx, settings, sealer, cfg), time.Time{}
			}
			interval := settings.Interval.D()
			if interval <= 0 {
				interval = cfg.DefaultInterval
			}
			due := last.Add(interval)
			if retryAt.After(due) {
				due = retryAt
			}
			if !now.Before(due) {
				info, err := BackupNow(ctx, src, sealer, cfg)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					cfg.Logger.Warn("scheduled backup failed", "err", err, "retry_in", cfg.RetryInterval)
					retryAt = cfg.Now().Add(cfg.RetryInterval)
					due = retryAt
				} else {
					cfg.Logger.Info("backup written", "backup", info.Name, "services", info.Services, "snapshot_index", info.SnapshotIndex)
					last, retryAt = info.At, time.Time{}
					due = last.Add(interval)
				}
			}
			wait = min(wait, max(due.Sub(cfg.Now()), time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// newestBackup returns the time of the newest backup at the settings'
// target (zero when there is none or it cannot be listed: then a backup is
// due at once, and its own failure is what gets reported).
func newestBackup(ctx context.Context, settings raftfsm.BackupSettings, sealer cipher.AEAD, cfg Config) time.Time {
	t, err := TargetFromSettings(settings, sealer, cfg.HTTPClient, cfg.Now)
	if err != nil {
		return time.Time{}
	}
	infos, err := List(ctx, t)
	if err != nil || len(infos) == 0 {
		if err != nil {
			cfg.Logger.Warn("list backups", "target", t.String(), "err", err)
		}
		return time.Time{}
	}
	return infos[0].At
}
