package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/backup"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// maxTokenFile bounds a file given to a --*-token-file or secret-key flag.
const maxTokenFile = 4 << 10

func (e *env) settingsCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Show the cluster settings; change them with settings set",
		Long: "Show the cluster settings: domain, regions, droplets, timings, cloud tokens and backups.\n\n" +
			"Tokens and secret keys are never shown, only whether they are set.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (tokens only as \"set\")")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		st, err := c.Settings(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, st)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
		for _, r := range settingsRows(st) {
			if st.Backup.Spaces == nil && strings.HasPrefix(r.label, spacesLabel) {
				continue
			}
			fmt.Fprintf(tw, "%s:\t%s\n", r.label, r.value)
		}
		return tw.Flush()
	}
	cmd.AddCommand(e.settingsSetCmd(cn))
	return cmd
}

// settingsFlags are the flags of `settings set`; only those given change.
type settingsFlags struct {
	domain, uiHost, dropletSize string
	baseSnapshot                string
	regions                     []string
	egressAllow                 []string
	desiredNodes                int
	healthInterval              time.Duration
	deadNodeGrace               time.Duration
	doTokenFile, cfTokenFile    string

	backupEnabled    bool
	backupInterval   time.Duration
	backupKeep       int
	backupDir        string
	spacesEndpoint   string
	spacesRegion     string
	spacesBucket     string
	spacesPrefix     string
	spacesAccessKey  string
	spacesSecretFile string
}

// backupFlags are the flags that change Settings.Backup.
var backupFlags = []string{"backup-enabled", "backup-interval", "backup-keep", "backup-dir",
	"backup-spaces-endpoint", "backup-spaces-region", "backup-spaces-bucket", "backup-spaces-prefix",
	"backup-spaces-access-key", "backup-spaces-secret-key-file"}

func (e *env) settingsSetCmd(cn *conn) *cobra.Command {
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "set [flags]",
		Short: "Change cluster settings: only the flags given change",
		Long: "Change cluster settings: only the flags given change, all at once or none.\n\n" +
			"Backup flags change the current backup settings field by field, so\n" +
			"`settings set --backup-keep 48` keeps the directory or bucket. Tokens and the\n" +
			"Spaces secret key are read from files (never from the command line, where ps\n" +
			"shows them); the leader seals them before they are stored.",
		Example: "  dropmesh settings set --backup-enabled --backup-interval 1h --backup-keep 24 --backup-dir /var/lib/dropmesh/backups\n" +
			"  dropmesh settings set --desired-nodes 5 --regions nyc3,fra1\n" +
			"  dropmesh settings set --do-token-file ~/.do-token",
		Args: args(cobra.NoArgs),
	}
	fs := cmd.Flags()
	fs.StringVar(&f.domain, "domain", "", "the Cloudflare zone the UI host lives in")
	fs.StringVar(&f.uiHost, "ui-host", "", "public name of the web UI (mesh.DOMAIN)")
	fs.StringSliceVar(&f.regions, "regions", nil, "DigitalOcean regions, comma-separated; the first is the default")
	fs.StringSliceVar(&f.egressAllow, "egress-allow", nil, "private ranges (CIDR, comma-separated) webhooks may reach; \"\" for none (loopback and link-local never)")
	fs.StringVar(&f.dropletSize, "droplet-size", "", "size slug of new droplets")
	fs.StringVar(&f.baseSnapshot, "base-snapshot", "", "snapshot new droplets start from")
	fs.IntVar(&f.desiredNodes, "desired-nodes", 0, "how many nodes the leader keeps the cluster at (0: do not grow)")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "how often instances are health-checked (0: each agent's own)")
	fs.DurationVar(&f.deadNodeGrace, "dead-node-grace", 0, "how long a rebooted node may stay dead before it is replaced (0: the default)")
	fs.StringVar(&f.doTokenFile, "do-token-file", "", "file holding a new DigitalOcean API token")
	fs.StringVar(&f.cfTokenFile, "cf-token-file", "", "file holding a new Cloudflare API token")
	fs.BoolVar(&f.backupEnabled, "backup-enabled", false, "take scheduled backups (--backup-enabled=false stops them)")
	fs.DurationVar(&f.backupInterval, "backup-interval", 0, fmt.Sprintf("time between backups (0: %s)", backup.DefaultConfig().DefaultInterval))
	fs.IntVar(&f.backupKeep, "backup-keep", 0, fmt.Sprintf("how many backups to keep (0: %d)", backup.DefaultConfig().DefaultKeep))
	fs.StringVar(&f.backupDir, "backup-dir", "", "absolute directory on the leader for the backups (\"\" for none)")
	fs.StringVar(&f.spacesEndpoint, "backup-spaces-endpoint", "", "Spaces endpoint URL, such as https://fra1.digitaloceanspaces.com")
	fs.StringVar(&f.spacesRegion, "backup-spaces-region", "", "Spaces region, such as fra1")
	fs.StringVar(&f.spacesBucket, "backup-spaces-bucket", "", "Spaces bucket for the backups")
	fs.StringVar(&f.spacesPrefix, "backup-spaces-prefix", "", "key prefix inside the bucket")
	fs.StringVar(&f.spacesAccessKey, "backup-spaces-access-key", "", "Spaces access key id")
	fs.StringVar(&f.spacesSecretFile, "backup-spaces-secret-key-file", "", "file holding the Spaces secret key")

	// Every flag so far is a setting (--help and the connection flags come later).
	var settingNames []string
	fs.VisitAll(func(fl *pflag.Flag) { settingNames = append(settingNames, fl.Name) })

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !changedAny(cmd.Flags(), settingNames) {
			return usagef("give at least one setting to change (see %s --help)", cmd.CommandPath())
		}
		req, err := f.request(cmd.Flags())
		if err != nil {
			return err
		}
		var spacesSecret *string
		if cmd.Flags().Changed("backup-spaces-secret-key-file") {
			s, err := readTokenFile(f.spacesSecretFile, "--backup-spaces-secret-key-file")
			if err != nil {
				return err
			}
			spacesSecret = &s
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		// Consistent reads: the backup settings are merged into the current
		// ones, and the answer afterwards must show this change.
		before, err := c.Settings(ctx, apiclient.Consistent())
		if err != nil {
			return err
		}
		if changedAny(cmd.Flags(), backupFlags) {
			if req.Backup, err = f.backup(cmd.Flags(), before.Backup, spacesSecret != nil); err != nil {
				return err
			}
			req.SpacesSecret = spacesSecret
		}
		return updateSettings(ctx, c, cmd.OutOrStdout(), before, req)
	}
	return cmd
}

// request builds the change of every setting but the backups, reading the
// token files.
func (f *settingsFlags) request(fs *pflag.FlagSet) (control.SettingsRequest, error) {
	var req control.SettingsRequest
	str := func(name, v string, dst **string) {
		if fs.Changed(name) {
			v = strings.TrimSpace(v)
			*dst = &v
		}
	}
	str("domain", f.domain, &req.Domain)
	str("ui-host", f.uiHost, &req.UIHost)
	str("droplet-size", f.dropletSize, &req.DropletSize)
	str("base-snapshot", f.baseSnapshot, &req.BaseSnapshot)
	if fs.Changed("regions") {
		for _, r := range f.regions {
			if r = strings.TrimSpace(r); r != "" {
				req.Regions = append(req.Regions, r)
			}
		}
		if len(req.Regions) == 0 {
			return req, usagef("--regions: give at least one region")
		}
		for _, r := range req.Regions {
			if err := raftfsm.ValidateRegion(r); err != nil {
				return req, &UsageError{Err: fmt.Errorf("--regions: %w", err)}
			}
		}
	}
	if fs.Changed("desired-nodes") {
		req.DesiredNodes = &f.desiredNodes
	}
	if fs.Changed("egress-allow") {
		ranges := slices.DeleteFunc(slices.Clone(f.egressAllow), func(r string) bool { return strings.TrimSpace(r) == "" })
		if _, err := egress.ParseAllowed(ranges); err != nil {
			return req, &UsageError{Err: fmt.Errorf("--egress-allow: %w", err)}
		}
		if ranges == nil {
			ranges = []string{}
		}
		req.EgressAllow = &ranges
	}
	if fs.Changed("health-interval") {
		d := raftfsm.Duration(f.healthInterval)
		req.HealthInterval = &d
	}
	if fs.Changed("dead-node-grace") {
		d := raftfsm.Duration(f.deadNodeGrace)
		req.DeadNodeGrace = &d
	}
	for _, t := range []struct {
		flag, path string
		dst        **string
	}{{"do-token-file", f.doTokenFile, &req.DOToken}, {"cf-token-file", f.cfTokenFile, &req.CFToken}} {
		if !fs.Changed(t.flag) {
			continue
		}
		tok, err := readTokenFile(t.path, "--"+t.flag)
		if err != nil {
			return req, err
		}
		*t.dst = &tok
	}
	return req, nil
}

// backup applies the backup flags given to the current backup settings.
// newSecret is whether a Spaces secret key comes with them.
func (f *settingsFlags) backup(fs *pflag.FlagSet, cur raftfsm.BackupSettings, newSecret bool) (*raftfsm.BackupSettings, error) {
	b := cur
	if cur.Spaces != nil {
		sp := *cur.Spaces
		b.Spaces = &sp
	}
	if fs.Changed("backup-enabled") {
		b.Enabled = f.backupEnabled
	}
	if fs.Changed("backup-interval") {
		b.Interval = raftfsm.Duration(f.backupInterval)
	}
	if fs.Changed("backup-keep") {
		b.Keep = f.backupKeep
	}
	if fs.Changed("backup-dir") {
		b.Dir = strings.TrimSpace(f.backupDir)
	}
	for _, s := range []struct {
		flag, v string
		dst     func(*raftfsm.SpacesTarget) *string
	}{
		{"backup-spaces-endpoint", f.spacesEndpoint, func(sp *raftfsm.SpacesTarget) *string { return &sp.Endpoint }},
		{"backup-spaces-region", f.spacesRegion, func(sp *raftfsm.SpacesTarget) *string { return &sp.Region }},
		{"backup-spaces-bucket", f.spacesBucket, func(sp *raftfsm.SpacesTarget) *string { return &sp.Bucket }},
		{"backup-spaces-prefix", f.spacesPrefix, func(sp *raftfsm.SpacesTarget) *string { return &sp.Prefix }},
		{"backup-spaces-access-key", f.spacesAccessKey, func(sp *raftfsm.SpacesTarget) *string { return &sp.AccessKey }},
	} {
		if !fs.Changed(s.flag) {
			continue
		}
		if b.Spaces == nil {
			b.Spaces = &raftfsm.SpacesTarget{}
		}
		*s.dst(b.Spaces) = strings.TrimSpace(s.v)
	}
	switch {
	case newSecret && b.Spaces == nil:
		return nil, usagef("--backup-spaces-secret-key-file: no Spaces bucket to use it for; give --backup-spaces-endpoint, --backup-spaces-region, --backup-spaces-bucket and --backup-spaces-access-key with it")
	case newSecret:
		// The leader seals the new key into the target (SettingsRequest.SpacesSecret).
		b.Spaces.SecretKey = ""
	case b.Spaces != nil && b.Spaces.SecretKey != "":
		// The API shows the stored key only as "set" and takes back only a
		// sealed one, so the backup settings cannot be rewritten without it.
		return nil, usagef("the backups go to the Spaces bucket %q, whose secret key the API does not give back: "+
			"give it again with --backup-spaces-secret-key-file F to change the backup settings", b.Spaces.Bucket)
	}
	return &b, nil
}

// updateSettings sends req and prints what it changed from before.
func updateSettings(ctx context.Context, c *apiclient.Client, out io.Writer, before raftfsm.Settings, req control.SettingsRequest) error {
	if err := c.UpdateSettings(ctx, req); err != nil {
		return err
	}
	after, err := c.Settings(ctx, apiclient.Consistent())
	if err != nil {
		return fmt.Errorf("the settings were changed, but reading them back failed: %w", err)
	}
	replaced := map[string]bool{
		labelDOToken:      req.DOToken != nil,
		labelCFToken:      req.CFToken != nil,
		labelSpacesSecret: req.SpacesSecret != nil,
	}
	old := settingsRows(before)
	n := 0
	for i, r := range settingsRows(after) {
		switch {
		case replaced[r.label]:
			fmt.Fprintf(out, "%s: replaced\n", r.label)
		case r.value != old[i].value:
			fmt.Fprintf(out, "%s: %s → %s\n", r.label, old[i].value, r.value)
		default:
			continue
		}
		n++
	}
	if n == 0 {
		fmt.Fprintln(out, "nothing changed: the settings already had these values")
	}
	return nil
}

// The labels of the secret rows, which `settings set` reports as replaced,
// and the start of the Spaces rows, which `settings` leaves out without a bucket.
const (
	labelDOToken      = "DigitalOcean token"
	labelCFToken      = "Cloudflare token"
	spacesLabel       = "backup Spaces "
	labelSpacesSecret = spacesLabel + "secret key"
)

// settingRow is one setting as the CLI prints it.
type settingRow struct{ label, value string }

// settingsRows renders the settings as the CLI shows them: always the same
// rows in the same order, so two renderings compare row by row, and never a
// secret (the API gives tokens only as "set" anyway).
func settingsRows(st raftfsm.Settings) []settingRow {
	orNone := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	isSet := func(s raftfsm.Sealed) string {
		if s == "" {
			return "not set"
		}
		return "set"
	}
	dur := func(d raftfsm.Duration, dflt string) string {
		if d == 0 {
			return dflt
		}
		return d.String()
	}
	defaults := backup.DefaultConfig()
	enabled := "disabled"
	if st.Backup.Enabled {
		enabled = "enabled"
	}
	keep := fmt.Sprintf("default (%d)", defaults.DefaultKeep)
	if st.Backup.Keep != 0 {
		keep = strconv.Itoa(st.Backup.Keep)
	}
	var sp raftfsm.SpacesTarget
	if st.Backup.Spaces != nil {
		sp = *st.Backup.Spaces
	}
	return []settingRow{
		{"domain", orNone(st.Domain)},
		{"UI host", orNone(st.UIHost)},
		{"regions", orNone(strings.Join(st.Regions, ", "))},
		{"droplet size", orNone(st.DropletSize)},
		{"base snapshot", orNone(st.BaseSnapshot)},
		{"desired nodes", strconv.Itoa(st.DesiredNodes)},
		{"health interval", dur(st.HealthInterval, "default (each agent's own)")},
		{"dead-node grace", dur(st.DeadNodeGrace, "default")},
		{"egress allow", orNone(strings.Join(st.EgressAllow, ", "))},
		{labelDOToken, isSet(st.DOToken)},
		{labelCFToken, isSet(st.CFToken)},
		{"backups", enabled},
		{"backup interval", dur(st.Backup.Interval, "default ("+defaults.DefaultInterval.String()+")")},
		{"backup keep", keep},
		{"backup dir", orNone(st.Backup.Dir)},
		{spacesLabel + "endpoint", orNone(sp.Endpoint)},
		{spacesLabel + "region", orNone(sp.Region)},
		{spacesLabel + "bucket", orNone(sp.Bucket)},
		{spacesLabel + "prefix", orNone(sp.Prefix)},
		{spacesLabel + "access key", orNone(sp.AccessKey)},
		{labelSpacesSecret, isSet(sp.SecretKey)},
	}
}

// changedAny reports whether any of the named flags was given.
func changedAny(fs *pflag.FlagSet, names []string) bool {
	for _, n := range names {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// readTokenFile reads a token or secret key from a file: one word, at most
// 4 KiB, surrounding blanks trimmed.
func readTokenFile(path, flag string) (string, error) {
	if path == "" {
		return "", usagef("%s: give a file name", flag)
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	defer fh.Close()
	data, err := readLimited(fh, maxTokenFile)
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", flag, path, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: %s must hold exactly one token", flag, path)
	}
	return tok, nil
}
