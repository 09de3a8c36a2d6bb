package raftfsm

// The cluster aggregate: its identity (InitCluster) and settings; and the
// helpers every apply_*.go shares. The other aggregates have a file each
// (apply_users, apply_nodes, apply_workspaces, apply_services,
// apply_health, apply_events, apply_images, apply_cloud).

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

func requireTime(at time.Time) error {
	if at.IsZero() {
		return invalidf("command has no time stamp")
	}
	return nil
}

func (s *State) event(at time.Time, kind, severity, message string, set func(e *Event)) {
	e := Event{At: at, Kind: kind, Severity: severity, Message: message}
	if set != nil {
		set(&e)
	}
	s.Events.add(e)
}

func applyInitCluster(s *State, c *InitCluster) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if s.Settings.Initialized {
		return nil, fmt.Errorf("%w: cluster %s is already initialised", ErrConflict, s.Settings.ClusterID)
	}
	if c.ClusterID == "" || len(c.ClusterID) > 64 {
		return nil, invalidf("cluster id %q", c.ClusterID)
	}
	if err := ValidateSlug("cluster name", c.ClusterName); err != nil {
		return nil, err
	}
	if err := ValidateUserName(c.AdminName); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.AdminPasswordHash, "$2") {
		return nil, invalidf("admin password hash: want a bcrypt hash")
	}
	if err := ValidateWorkspaceID(c.DefaultWorkspaceID); err != nil {
		return nil, err
	}
	settings := s.Settings
	if c.Settings != nil {
		settings = *c.Settings
		if err := validateSettings(settings); err != nil {
			return nil, err
		}
	}
	settings.Initialized = true
	settings.ClusterID = c.ClusterID
	settings.ClusterName = c.ClusterName
	settings.CreatedAt = c.At
	settings.LocalMode = c.LocalMode
	s.Settings = settings
	s.Users[c.AdminName] = &User{Name: c.AdminName, PasswordHash: c.AdminPasswordHash, Role: RoleAdmin, CreatedAt: c.At, UpdatedAt: c.At}
	if _, ok := s.Workspaces[c.DefaultWorkspaceID]; !ok {
		s.Workspaces[c.DefaultWorkspaceID] = &Workspace{ID: c.DefaultWorkspaceID, Name: DefaultWorkspaceName, CreatedAt: c.At, Projects: map[string]*Project{}}
	}
	s.event(c.At, EventCluster, SeverityInfo, "cluster "+c.ClusterName+" initialised", nil)
	return nil, nil
}

func validateSettings(st Settings) error {
	if st.Domain != "" {
		if err := ValidateHostname(st.Domain, false); err != nil {
			return err
		}
	}
	if st.UIHost != "" {
		if err := ValidateHostname(st.UIHost, false); err != nil {
			return err
		}
	}
	for _, r := range st.Regions {
		if err := ValidateRegion(r); err != nil {
			return err
		}
	}
	for name, v := range map[string]Sealed{"do_token": st.DOToken, "cf_token": st.CFToken} {
		if v != "" && !v.Valid() {
			return invalidf("%s: not a sealed value", name)
		}
	}
	for name, u := range map[string]string{"do_base_url": st.DOBaseURL, "cf_base_url": st.CFBaseURL} {
		if u != "" {
			if err := validateURL(name, u); err != nil {
				return err
			}
		}
	}
	if st.DesiredNodes < 0 || st.DesiredNodes > 1000 {
		return invalidf("desired_nodes %d: want 0 to 1000", st.DesiredNodes)
	}
	if st.HealthInterval != 0 && (st.HealthInterval.D() < 100*time.Millisecond || st.HealthInterval.D() > time.Hour) {
		return invalidf("health_interval %s: want 100ms to 1h", st.HealthInterval)
	}
	if st.DeadNodeGrace < 0 {
		return invalidf("dead_node_grace %s: negative", st.DeadNodeGrace)
	}
	return validateBackup(st.Backup)
}

func validateBackup(b BackupSettings) error {
	if b.Keep < 0 || b.Keep > 1000 {
		return invalidf("backup.keep %d: want 0 to 1000", b.Keep)
	}
	if b.Interval != 0 && b.Interval.D() < time.Minute {
		return invalidf("backup.interval %s: at least 1m", b.Interval)
	}
	if b.Dir != "" && (!strings.HasPrefix(b.Dir, "/") || strings.Contains(b.Dir, "..")) {
		return invalidf("backup.dir %q: want an absolute path", b.Dir)
	}
	if sp := b.Spaces; sp != nil {
		if err := validateURL("backup.spaces.endpoint", sp.Endpoint); err != nil {
			return err
		}
		if sp.Bucket == "" || strings.ContainsAny(sp.Bucket, "/ \t\n") {
			return invalidf("backup.spaces.bucket %q", sp.Bucket)
		}
		if sp.SecretKey != "" && !sp.SecretKey.Valid() {
			return invalidf("backup.spaces.secret_key: not a sealed value")
		}
	}
	if b.Enabled && b.Dir == "" && b.Spaces == nil {
		return invalidf("backup: enabled without a dir or a Spaces bucket")
	}
	return nil
}

func validateURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidf("%s %q: want an http or https URL", field, raw)
	}
	return nil
}

func applyUpdateSettings(s *State, c *UpdateSettings) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if !s.Settings.Initialized {
		// InitCluster sets the settings whole: a change before it would be
		// lost (the caller retries once the seed has initialised).
		return nil, fmt.Errorf("%w: the cluster is not initialised yet; retry shortly", ErrConflict)
	}
	next := s.Settings
	next.Regions = slices.Clone(s.Settings.Regions)
	setIf(&next.Domain, c.Domain)
	setIf(&next.UIHost, c.UIHost)
	setIf(&next.DropletSize, c.DropletSize)
	setIf(&next.BaseSnapshot, c.BaseSnapshot)
	setIf(&next.DOToken, c.DOToken)
	setIf(&next.CFToken, c.CFToken)
	setIf(&next.DOBaseURL, c.DOBaseURL)
	setIf(&next.CFBaseURL, c.CFBaseURL)
	setIf(&next.DesiredNodes, c.DesiredNodes)
	setIf(&next.HealthInterval, c.HealthInterval)
	setIf(&next.DeadNodeGrace, c.DeadNodeGrace)
	setIf(&next.Backup, c.Backup)
	if c.Regions != nil {
		next.Regions = slices.Clone(c.Regions)
	}
	if err := validateSettings(next); err != nil {
		return nil, err
	}
	s.Settings = next
	return nil, nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// cloneStrings is maps.Clone for the string maps of commands, kept here so
// handlers never alias a command's maps into the state.
func cloneStrings(m map[string]string) map[string]string { return maps.Clone(m) }

// applySetEgressAllow replaces the allowed egress ranges; each must parse
// as a CIDR prefix (the agent also refuses non-private ones, node/egress).
func applySetEgressAllow(s *State, c *SetEgressAllow) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if !s.Settings.Initialized {
		return nil, invalidf("egress ranges: the cluster is not initialized")
	}
	if len(c.Ranges) > 64 {
		return nil, invalidf("egress ranges: %d given, at most 64", len(c.Ranges))
	}
	for _, r := range c.Ranges {
		if _, err := netip.ParsePrefix(r); err != nil {
			return nil, invalidf("egress range %q: %v", r, err)
		}
	}
	s.Settings.EgressAllow = slices.Clone(c.Ranges)
	if len(s.Settings.EgressAllow) == 0 {
		s.Settings.EgressAllow = nil
	}
	return nil, nil
}
