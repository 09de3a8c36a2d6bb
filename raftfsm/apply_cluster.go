package raftfsm

import (
	"fmt"
	"maps"
	"net"
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

func applyPutUser(s *State, c *PutUser) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateUserName(c.Name); err != nil {
		return nil, err
	}
	if !c.Role.Valid() {
		return nil, invalidf("role %q: want admin, deployer or viewer", c.Role)
	}
	if c.PasswordHash != "" && !strings.HasPrefix(c.PasswordHash, "$2") {
		return nil, invalidf("password hash: want a bcrypt hash")
	}
	u, exists := s.Users[c.Name]
	if !exists && c.PasswordHash == "" {
		return nil, invalidf("user %s: a new user needs a password", c.Name)
	}
	if exists && u.Role == RoleAdmin && c.Role != RoleAdmin && s.countAdmins() == 1 {
		return nil, fmt.Errorf("%w: %s is the last admin", ErrConflict, c.Name)
	}
	if !exists {
		u = &User{Name: c.Name, CreatedAt: c.At}
		s.Users[c.Name] = u
	}
	u.Role = c.Role
	u.UpdatedAt = c.At
	if c.PasswordHash != "" {
		u.PasswordHash = c.PasswordHash
	}
	s.event(c.At, EventUser, SeverityInfo, "user "+c.Name+" saved with role "+string(c.Role), nil)
	return nil, nil
}

func (s *State) countAdmins() int {
	n := 0
	for _, u := range s.Users {
		if u.Role == RoleAdmin {
			n++
		}
	}
	return n
}

func applyDeleteUser(s *State, c *DeleteUser) (any, error) {
	u, ok := s.Users[c.Name]
	if !ok {
		return nil, fmt.Errorf("user %s: %w", c.Name, ErrNotFound)
	}
	if u.Role == RoleAdmin && s.countAdmins() == 1 {
		return nil, fmt.Errorf("%w: %s is the last admin", ErrConflict, c.Name)
	}
	delete(s.Users, c.Name)
	s.event(c.At, EventUser, SeverityInfo, "user "+c.Name+" removed", nil)
	s.revokeTokensOf(c.At, c.Name)
	return nil, nil
}

func validateHostPort(field, hp string) error {
	if hp == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil || port == "" || host == "" || strings.ContainsAny(hp, " ;{}\"'`$\\\n") {
		return invalidf("%s %q: want host:port", field, hp)
	}
	return nil
}

func validateIP(field, ip string) error {
	if ip != "" && net.ParseIP(ip) == nil {
		return invalidf("%s %q: not an IP address", field, ip)
	}
	return nil
}

func applyUpsertNode(s *State, c *UpsertNode) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	n := c.Node
	if err := ValidateNodeID(n.ID); err != nil {
		return nil, err
	}
	if n.Region != "" {
		if err := ValidateRegion(n.Region); err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"public_ip": n.PublicIP, "private_ip": n.PrivateIP} {
		if err := validateIP(field, v); err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"api": n.API, "ui": n.UI, "edge": n.Edge, "gossip": n.Gossip, "raft": n.Raft} {
		if err := validateHostPort(field, v); err != nil {
			return nil, err
		}
	}
	if len(n.Version) > 64 {
		return nil, invalidf("version: longer than 64 characters")
	}
	cur, ok := s.Nodes[n.ID]
	if !ok {
		cur = &Node{ID: n.ID, Status: NodeActive, StatusSince: c.At, JoinedAt: c.At}
		s.Nodes[n.ID] = cur
		s.event(c.At, EventNodeJoined, SeverityInfo, "node "+n.ID+" joined", func(e *Event) { e.Node = n.ID })
	}
	cur.DropletID, cur.Region = n.DropletID, n.Region
	cur.PublicIP, cur.PrivateIP = n.PublicIP, n.PrivateIP
	cur.API, cur.UI, cur.Edge, cur.Gossip, cur.Raft = n.API, n.UI, n.Edge, n.Gossip, n.Raft
	cur.Version = n.Version
	cur.LastSeen = c.At
	return nil, nil
}

func applySetNodeStatus(s *State, c *SetNodeStatus) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if !c.Status.Valid() {
		return nil, invalidf("node status %q: want active, draining, rebooting or dead", c.Status)
	}
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	if n.Status == c.Status && !c.Reboot {
		return nil, nil
	}
	prev := n.Status
	n.Status, n.StatusReason, n.StatusSince = c.Status, c.Reason, c.At
	kind, sev := EventNodeStatus, SeverityInfo
	msg := fmt.Sprintf("node %s: %s -> %s", c.Node, prev, c.Status)
	switch {
	case c.Reboot:
		n.Reboots++
		n.RebootedAt = c.At
		n.ConsecutiveFailedPings = 0
		kind, sev = EventHealReboot, SeverityWarn
		msg = "power-cycling node " + c.Node
	case c.Status == NodeDead:
		kind, sev = EventNodeLost, SeverityError
	case c.Status == NodeActive && (prev == NodeDead || prev == NodeRebooting):
		kind = EventNodeFound
	}
	if c.Reason != "" {
		msg += ": " + c.Reason
	}
	s.event(c.At, kind, sev, msg, func(e *Event) { e.Node = c.Node })
	return nil, nil
}

func applyRecordPings(s *State, c *RecordPings) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	for _, r := range c.Results {
		n, ok := s.Nodes[r.Node]
		if !ok {
			continue
		}
		if r.OK {
			n.ConsecutiveFailedPings = 0
			n.LastSeen = c.At
		} else {
			n.ConsecutiveFailedPings++
		}
	}
	return nil, nil
}

func applyRemoveNode(s *State, c *RemoveNode) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.Nodes[c.Node]; !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	if left := s.InstancesOn(c.Node); len(left) > 0 {
		return nil, fmt.Errorf("%w: node %s still runs %d instances (%s); drain it first", ErrConflict, c.Node, len(left), left[0])
	}
	delete(s.Nodes, c.Node)
	msg := "node " + c.Node + " removed"
	if c.Reason != "" {
		msg += ": " + c.Reason
	}
	s.event(c.At, EventNodeRemoved, SeverityInfo, msg, func(e *Event) { e.Node = c.Node })
	return nil, nil
}

// InstancesOn returns the sorted ids of the instances placed on node.
func (s *State) InstancesOn(node string) []string {
	var ids []string
	for id, in := range s.Instances {
		if in.Node == node {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func applyCreateWorkspace(s *State, c *CreateWorkspace) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateWorkspaceID(c.ID); err != nil {
		return nil, err
	}
	if err := ValidateSlug("workspace", c.Name); err != nil {
		return nil, err
	}
	if _, ok := s.Workspaces[c.ID]; ok {
		return nil, fmt.Errorf("%w: workspace id %s exists", ErrConflict, c.ID)
	}
	if w := s.WorkspaceByName(c.Name); w != nil {
		return nil, fmt.Errorf("%w: workspace %s exists (id %s)", ErrConflict, c.Name, w.ID)
	}
	s.Workspaces[c.ID] = &Workspace{ID: c.ID, Name: c.Name, CreatedAt: c.At, Projects: map[string]*Project{}}
	return c.ID, nil
}

// WorkspaceByName returns the workspace with that name, or nil.
func (s *State) WorkspaceByName(name string) *Workspace {
	for _, w := range s.Workspaces {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// ResolveWorkspace finds a workspace by id or name; "" means the default one.
func (s *State) ResolveWorkspace(ref string) *Workspace {
	if ref == "" {
		ref = DefaultWorkspaceName
	}
	if w, ok := s.Workspaces[ref]; ok {
		return w
	}
	return s.WorkspaceByName(ref)
}

func applyDeleteWorkspace(s *State, c *DeleteWorkspace) (any, error) {
	w, ok := s.Workspaces[c.ID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.ID, ErrNotFound)
	}
	for _, svc := range s.Services {
		if svc.WorkspaceID == c.ID {
			return nil, fmt.Errorf("%w: workspace %s still has service %s", ErrConflict, w.Name, svc.Key)
		}
	}
	if w.Name == DefaultWorkspaceName {
		return nil, fmt.Errorf("%w: the default workspace cannot be deleted", ErrConflict)
	}
	delete(s.Workspaces, c.ID)
	return nil, nil
}

func applyCreateProject(s *State, c *CreateProject) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w, ok := s.Workspaces[c.WorkspaceID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.WorkspaceID, ErrNotFound)
	}
	if err := ValidateSlug("project", c.Name); err != nil {
		return nil, err
	}
	if _, ok := w.Projects[c.Name]; ok {
		return nil, fmt.Errorf("%w: project %s exists in workspace %s", ErrConflict, c.Name, w.Name)
	}
	w.Projects[c.Name] = &Project{Name: c.Name, CreatedAt: c.At, Envs: map[string]*Environment{}}
	return nil, nil
}

func applyCreateEnvironment(s *State, c *CreateEnvironment) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w, ok := s.Workspaces[c.WorkspaceID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.WorkspaceID, ErrNotFound)
	}
	p, ok := w.Projects[c.Project]
	if !ok {
		return nil, fmt.Errorf("project %s: %w", c.Project, ErrNotFound)
	}
	if err := ValidateSlug("environment", c.Name); err != nil {
		return nil, err
	}
	if _, ok := p.Envs[c.Name]; ok {
		return nil, fmt.Errorf("%w: environment %s exists in %s", ErrConflict, c.Name, c.Project)
	}
	p.Envs[c.Name] = &Environment{Name: c.Name, CreatedAt: c.At}
	return nil, nil
}

// ensureScope creates the project and environment of a service if missing.
func (w *Workspace) ensureScope(project, env string, at time.Time) {
	p, ok := w.Projects[project]
	if !ok {
		p = &Project{Name: project, CreatedAt: at, Envs: map[string]*Environment{}}
		w.Projects[project] = p
	}
	if _, ok := p.Envs[env]; !ok {
		p.Envs[env] = &Environment{Name: env, CreatedAt: at}
	}
}

func applyAppendEvent(s *State, c *AppendEvent) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	e := c.Event
	if e.Kind == "" || len(e.Kind) > 64 {
		return nil, invalidf("event kind %q", e.Kind)
	}
	if e.Message == "" || len(e.Message) > 2000 {
		return nil, invalidf("event message: want 1 to 2000 characters")
	}
	switch e.Severity {
	case "", SeverityInfo, SeverityWarn, SeverityError:
	default:
		return nil, invalidf("event severity %q", e.Severity)
	}
	e.At = c.At
	s.Events.add(e)
	return s.Events.NextSeq, nil
}

func applyPutWebhook(s *State, c *PutWebhook) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w := c.Webhook
	if w.ID == "" || len(w.ID) > 64 || strings.ContainsAny(w.ID, "/ ") {
		return nil, invalidf("webhook id %q", w.ID)
	}
	if err := validateURL("webhook url", w.URL); err != nil {
		return nil, err
	}
	return putWebhook(s, c.At, w)
}

func applyPutSealedWebhook(s *State, c *PutSealedWebhook) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w := c.Webhook
	if w.ID == "" || len(w.ID) > 64 || strings.ContainsAny(w.ID, "/ ") {
		return nil, invalidf("webhook id %q", w.ID)
	}
	if err := w.validateSealed(); err != nil {
		return nil, err
	}
	return putWebhook(s, c.At, w)
}

func putWebhook(s *State, at time.Time, w Webhook) (any, error) {
	switch w.Format {
	case WebhookGeneric, WebhookSlack, WebhookDiscord:
	default:
		return nil, invalidf("webhook format %q: want generic, slack or discord", w.Format)
	}
	if old, ok := s.Webhooks[w.ID]; ok {
		w.CreatedAt = old.CreatedAt
	} else {
		w.CreatedAt = at
	}
	w.Kinds = slices.Clone(w.Kinds)
	s.Webhooks[w.ID] = &w
	return nil, nil
}

func applyDeleteWebhook(s *State, c *DeleteWebhook) (any, error) {
	if _, ok := s.Webhooks[c.ID]; !ok {
		return nil, fmt.Errorf("webhook %s: %w", c.ID, ErrNotFound)
	}
	delete(s.Webhooks, c.ID)
	return nil, nil
}

func applyAdvanceNotified(s *State, c *AdvanceNotified) (any, error) {
	if c.Seq > s.Events.NextSeq {
		return nil, invalidf("notified seq %d is beyond the last event %d", c.Seq, s.Events.NextSeq)
	}
	if c.Seq > s.Settings.NotifiedSeq {
		s.Settings.NotifiedSeq = c.Seq
	}
	return nil, nil
}

func applyPutRegistry(s *State, c *PutRegistry) (any, error) {
	r := c.Credential
	if err := validateRegistryHost(r.Registry); err != nil {
		return nil, err
	}
	if r.Username == "" || len(r.Username) > 256 || strings.ContainsAny(r.Username, "\n\r\x00") {
		return nil, invalidf("registry %s: username", r.Registry)
	}
	if !r.Password.Valid() {
		return nil, invalidf("registry %s: password is not sealed", r.Registry)
	}
	s.Registries[r.Registry] = &r
	return nil, nil
}

// validateRegistryHost checks a registry host such as ghcr.io or 127.0.0.1:5000.
func validateRegistryHost(h string) error {
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return invalidf("registry %q: bad port", h)
		}
		host = hh
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return nil
	}
	if err := ValidateHostname(host, false); err != nil {
		return invalidf("registry %q: want a host name or IP, with an optional port", h)
	}
	return nil
}

func applyDeleteRegistry(s *State, c *DeleteRegistry) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.Registries[c.Registry]; !ok {
		return nil, fmt.Errorf("registry %s: %w", c.Registry, ErrNotFound)
	}
	delete(s.Registries, c.Registry)
	return nil, nil
}

func applyPutBuildContext(s *State, c *PutBuildContext) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateContextDigest(c.Digest); err != nil {
		return nil, err
	}
	if err := ValidateNodeID(c.Node); err != nil {
		return nil, err
	}
	bc, ok := s.Contexts[c.Digest]
	if c.Dropped {
		if !ok {
			return nil, nil
		}
		bc.Holders = slices.DeleteFunc(bc.Holders, func(n string) bool { return n == c.Node })
		if len(bc.Holders) == 0 {
			delete(s.Contexts, c.Digest)
		}
		return nil, nil
	}
	if c.Size <= 0 {
		return nil, invalidf("build context size %d", c.Size)
	}
	if !ok {
		bc = &BuildContext{Digest: c.Digest, Size: c.Size, UploadedAt: c.At}
		s.Contexts[c.Digest] = bc
	}
	if !slices.Contains(bc.Holders, c.Node) {
		bc.Holders = append(bc.Holders, c.Node)
		slices.Sort(bc.Holders)
	}
	return nil, nil
}

// ValidateContextDigest checks the digest of an uploaded build context.
func ValidateContextDigest(d string) error {
	if !strings.HasPrefix(d, "sha256:") || len(d) != 71 || strings.Trim(d[7:], "0123456789abcdef") != "" {
		return invalidf("build %q: want the sha256:<64 hex> digest of an uploaded context", d)
	}
	return nil
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
