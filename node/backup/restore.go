package backup

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// MaxDocumentBytes bounds a state document read for a restore: the agent
// API's import limit (api.Limits.MaxStateBytes) is the same.
const MaxDocumentBytes = 32 << 20

// maxSnapshotFile bounds a raft snapshot read for a restore: it also holds
// instances, events and health history, so it may be much larger than the
// document made from it.
const maxSnapshotFile = 512 << 20

// Importer imports a state document into a cluster; *apiclient.Client is one.
type Importer interface {
	ImportState(ctx context.Context, doc []byte) (raftfsm.ImportResult, error)
}

// Load reads the document a Location points at: a backup by name (its
// export, else its snapshot) or a file of either kind.
// A sealed file (N.state.json or N.raft-snapshot of a backup) opens only
// with key; a plain export or raft snapshot file is read as it is (the
// operator names it and vouches for it). A backup by name is always
// authenticated (ReadDocument).
func Load(ctx context.Context, loc Location, key cipher.AEAD) (raftfsm.ExportDocument, []byte, error) {
	if loc.File != "" {
		f, err := os.Open(loc.File)
		if err != nil {
			return raftfsm.ExportDocument{}, nil, fmt.Errorf("read %s: %w", loc.File, err)
		}
		defer f.Close()
		data, err := readAll(f, max(MaxDocumentBytes, maxSnapshotFile), loc.File)
		if err != nil {
			return raftfsm.ExportDocument{}, nil, err
		}
		if isSealed(data) {
			suffix := suffixSnapshot
			if strings.HasSuffix(loc.File, suffixState) {
				suffix = suffixState
			}
			if data, err = openFile(key, suffix, data, loc.File); err != nil {
				return raftfsm.ExportDocument{}, nil, err
			}
		}
		doc, err := DecodeBackupFile(data, MaxDocumentBytes)
		if err != nil {
			return raftfsm.ExportDocument{}, nil, fmt.Errorf("%s: %w", loc.File, err)
		}
		if _, isExport := probeKind(data); !isExport {
			if data, err = json.Marshal(doc); err != nil {
				return raftfsm.ExportDocument{}, nil, err
			}
		}
		return doc, data, nil
	}
	return ReadDocument(ctx, loc.Target, loc.Name, key, MaxDocumentBytes)
}

// probeKind reports whether data looks like JSON and whether it is an export.
func probeKind(data []byte) (ok, export bool) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return false, false
	}
	_, export = probe["kind"]
	return true, export
}

// Restore loads the backup at loc and imports it through imp. The import
// replaces the cluster's deployments (see raftfsm.ImportState); secrets in a
// backup are sealed with the cluster's key, so a backup restores into the
// cluster that made it (or one bootstrapped with the same cluster secret).
func Restore(ctx context.Context, loc Location, key cipher.AEAD, imp Importer) (raftfsm.ImportResult, error) {
	_, data, err := Load(ctx, loc, key)
	if err != nil {
		return raftfsm.ImportResult{}, err
	}
	res, err := imp.ImportState(ctx, data)
	if err != nil {
		return raftfsm.ImportResult{}, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

// locationFlags are the flags that say how to read a backup location.
type locationFlags struct {
	endpoint, region, accessKey string
}

func (f *locationFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoint, "spaces-endpoint", "", "S3/Spaces endpoint for s3:// locations, e.g. https://nyc3.digitaloceanspaces.com (default $DROPMESH_SPACES_ENDPOINT)")
	cmd.Flags().StringVar(&f.region, "spaces-region", "", "signing region (default $DROPMESH_SPACES_REGION, else us-east-1)")
	cmd.Flags().StringVar(&f.accessKey, "spaces-access-key", "", "access key (default $DROPMESH_SPACES_ACCESS_KEY); the secret key is read from $DROPMESH_SPACES_SECRET_KEY only")
}

func (f *locationFlags) credentials() S3Credentials {
	pick := func(flag, env string) string {
		if flag != "" {
			return flag
		}
		return os.Getenv(env)
	}
	return S3Credentials{
		Endpoint:   pick(f.endpoint, "DROPMESH_SPACES_ENDPOINT"),
		Region:     pick(f.region, "DROPMESH_SPACES_REGION"),
		AccessKey:  pick(f.accessKey, "DROPMESH_SPACES_ACCESS_KEY"),
		SecretKey:  os.Getenv("DROPMESH_SPACES_SECRET_KEY"),
		HTTPClient: &http.Client{Timeout: 5 * time.Minute},
	}
}

// RestoreCommand is `dropmesh state restore --from LOCATION`: it reads a
// backup (an export document, or a raft snapshot converted to one),
// validates it, and imports it into the cluster connect returns a client
// for. Add it under the `state` command, whose --addr and --api-key flags
// connect reads.
func RestoreCommand(connect func() (Importer, error)) *cobra.Command {
	var (
		from    string
		dryRun  bool
		jsonOut bool
		lf      locationFlags
		secret  string
	)
	cmd := &cobra.Command{
		Use:   "restore --from DIR/NAME | s3://BUCKET/PREFIX/NAME | FILE",
		Short: "Replace the deployments with those of a backup",
		Long: "Read a backup written by the leader's scheduled backups (or a state export, or a raft snapshot\n" +
			"file), check it, and import it: the cluster's workspaces, services, users, registries and\n" +
			"webhooks become those of the backup, and the services roll out again. Nodes, cloud resources\n" +
			"and settings stay. A backup is encrypted and authenticated with a key derived from the\n" +
			"cluster secret (--cluster-secret-file): a changed or planted backup is refused. Restore into\n" +
			"the cluster that wrote it (or one bootstrapped with the same cluster secret).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return fmt.Errorf("%w: give the backup with --from DIR/NAME or s3://BUCKET/PREFIX/NAME (list them with: dropmesh state backups --from DIR)", ErrInvalid)
			}
			loc, err := ParseLocation(from, lf.credentials())
			if err != nil {
				return err
			}
			if secret == "" {
				secret = os.Getenv("DROPMESH_CLUSTER_SECRET_FILE")
			}
			var key cipher.AEAD
			if secret != "" {
				if key, err = KeyFromSecretFile(secret); err != nil {
					return err
				}
			}
			doc, data, err := Load(cmd.Context(), loc, key)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				if jsonOut {
					return writeJSON(out, doc)
				}
				fmt.Fprintf(out, "%s: a valid backup of cluster %s with %d workspaces and %d services; nothing imported (--dry-run)\n",
					from, doc.ClusterID, len(doc.Workspaces), len(doc.Services))
				return nil
			}
			imp, err := connect()
			if err != nil {
				return err
			}
			res, err := imp.ImportState(cmd.Context(), data)
			if err != nil {
				return fmt.Errorf("restore %s: %w", from, err)
			}
			if jsonOut {
				return writeJSON(out, res)
			}
			fmt.Fprintf(out, "restored %d services from %s; they roll out now (watch: dropmesh services)\n", len(res.Services), from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup: DIR/NAME, s3://BUCKET/PREFIX/NAME, or an export or raft snapshot FILE")
	cmd.Flags().StringVar(&secret, "cluster-secret-file", "", "the cluster secret file (the agent's data dir holds it; default $DROPMESH_CLUSTER_SECRET_FILE): backups are encrypted and authenticated with a key derived from it")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "read and check the backup, import nothing")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (the import result, or with --dry-run the document)")
	lf.add(cmd)
	return cmd
}

// BackupsCommand is `dropmesh state backups --from DIR | s3://BUCKET/PREFIX`:
// it lists the complete backups there, newest first.
func BackupsCommand() *cobra.Command {
	var (
		from    string
		jsonOut bool
		lf      locationFlags
	)
	cmd := &cobra.Command{
		Use:   "backups --from DIR | s3://BUCKET/PREFIX",
		Short: "List the backups in a directory or bucket, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return fmt.Errorf("%w: give the place with --from DIR or s3://BUCKET/PREFIX", ErrInvalid)
			}
			var t Target
			if strings.HasPrefix(from, "s3://") {
				// A placeholder name makes ParseLocation build the bucket target.
				loc, err := ParseLocation(strings.TrimSuffix(from, "/")+"/x", lf.credentials())
				if err != nil {
					return err
				}
				t = loc.Target
			} else {
				if st, err := os.Stat(from); err != nil || !st.IsDir() {
					return fmt.Errorf("%w: %s is not a directory", ErrInvalid, from)
				}
				t = DirTarget(from)
			}
			infos, err := List(cmd.Context(), t)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonOut {
				if infos == nil {
					infos = []Info{}
				}
				return writeJSON(out, infos)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTAKEN\tCLUSTER\tSERVICES\tRAFT INDEX\tSIZE")
			for _, i := range infos {
				var size int64
				for _, f := range i.Files {
					size += f.Size
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d KiB\n", i.Name, i.At.Format(time.RFC3339), i.ClusterName, i.Services, i.SnapshotIndex, (size+1023)>>10)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the directory or s3://BUCKET/PREFIX holding the backups")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	lf.add(cmd)
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
