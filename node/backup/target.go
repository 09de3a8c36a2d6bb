package backup

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Target is where backups are kept: a local directory (DirTarget) or a
// prefix of an S3-compatible bucket (S3Target). Its methods are the four
// object operations the backups need; names are flat (no slashes).
type Target interface {
	put(ctx context.Context, name string, data []byte) error
	get(ctx context.Context, name string) (io.ReadCloser, error)
	list(ctx context.Context) ([]string, error)
	remove(ctx context.Context, name string) error
	// String names the target for logs and messages, without secrets.
	String() string
}

// DirTarget keeps backups as files in dir (created 0700; files 0600, as
// they hold password hashes and sealed secrets).
func DirTarget(dir string) Target { return dirTarget{dir: dir} }

type dirTarget struct{ dir string }

func (d dirTarget) String() string { return d.dir }

// put writes name through a temporary file and a rename, so a crash never
// leaves a half-written file under the final name.
func (d dirTarget) put(ctx context.Context, name string, data []byte) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("backup dir %s: %w", d.dir, err)
	}
	f, err := os.CreateTemp(d.dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(d.dir, name), err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(d.dir, name), err)
	}
	return nil
}

func (d dirTarget) get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.dir, name), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(d.dir, name), err)
	}
	return f, nil
}

func (d dirTarget) list(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", d.dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d dirTarget) remove(ctx context.Context, name string) error {
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.dir, name), err)
	}
	return nil
}

// S3Target keeps backups in c's bucket under prefix (a "folder": "backups"
// and "backups/" are the same; "" is the bucket's root).
func S3Target(c *S3Client, prefix string) Target {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return s3Target{c: c, prefix: prefix}
}

type s3Target struct {
	c      *S3Client
	prefix string
}

func (s s3Target) String() string { return "s3://" + s.c.bucket + "/" + s.prefix }

func (s s3Target) put(ctx context.Context, name string, data []byte) error {
	ct := "application/octet-stream"
	if strings.HasSuffix(name, ".json") {
		ct = "application/json"
	}
	return s.c.PutObject(ctx, s.prefix+name, data, ct)
}

func (s s3Target) get(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.c.GetObject(ctx, s.prefix+name)
}

func (s s3Target) list(ctx context.Context) ([]string, error) {
	objs, err := s.c.ListObjects(ctx, s.prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, s.prefix)
		if name != "" && !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	return out, nil
}

func (s s3Target) remove(ctx context.Context, name string) error {
	return s.c.DeleteObject(ctx, s.prefix+name)
}

// TargetFromSettings builds the target the cluster's backup settings name:
// the Spaces bucket when set (its secret key opened with sealer), else the
// directory. ErrNoTarget when neither is set.
func TargetFromSettings(b raftfsm.BackupSettings, sealer cipher.AEAD, client *http.Client, now func() time.Time) (Target, error) {
	if sp := b.Spaces; sp != nil {
		if sealer == nil {
			return nil, fmt.Errorf("backup to %s: no key to open the Spaces secret", sp.Bucket)
		}
		secret, err := raftfsm.Open(sealer, raftfsm.LabelSpacesSecret, sp.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("backup to %s: Spaces secret key: %w", sp.Bucket, err)
		}
		region := sp.Region
		if region == "" {
			region = "us-east-1"
		}
		c, err := NewS3Client(S3Config{Endpoint: sp.Endpoint, Region: region, Bucket: sp.Bucket, AccessKey: sp.AccessKey,
			SecretKey: string(secret), HTTPClient: client, Now: now})
		if err != nil {
			return nil, err
		}
		return S3Target(c, sp.Prefix), nil
	}
	if b.Dir != "" {
		return DirTarget(b.Dir), nil
	}
	return nil, ErrNoTarget
}

// targetKey identifies a target's settings, so Run notices a change.
func targetKey(b raftfsm.BackupSettings) string {
	if sp := b.Spaces; sp != nil {
		return strings.Join([]string{"s3", sp.Endpoint, sp.Region, sp.Bucket, sp.Prefix, sp.AccessKey, string(sp.SecretKey)}, "\x00")
	}
	return "dir\x00" + b.Dir
}

// S3Credentials are what a command line needs to read a bucket: the
// cluster's sealed copy cannot be opened there.
type S3Credentials struct {
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	// HTTPClient is optional.
	HTTPClient *http.Client
}

// Location is a parsed --from argument.
type Location struct {
	// Target and Name: a backup by name in a directory or bucket.
	Target Target
	Name   string
	// File is set instead when the argument is a file (an export document or
	// a raft snapshot, told apart by their content).
	File string
}

// ParseLocation reads a backup location as the CLI takes it:
//
//	s3://BUCKET/PREFIX/NAME   a backup in a bucket (creds say how to reach it)
//	DIR/NAME                  a backup in a directory
//	FILE                      an export document or a raft snapshot file
//
// NAME may carry one of the backup's file suffixes; it is dropped.
func ParseLocation(loc string, creds S3Credentials) (Location, error) {
	if loc == "" {
		return Location{}, fmt.Errorf("%w: no backup location", ErrInvalid)
	}
	if rest, ok := strings.CutPrefix(loc, "s3://"); ok {
		bucket, key, _ := strings.Cut(rest, "/")
		dir, name := path.Split(key)
		name = trimSuffixes(name)
		if err := validName(name); err != nil {
			return Location{}, fmt.Errorf("%s: %w", loc, err)
		}
		if creds.Endpoint == "" {
			return Location{}, fmt.Errorf("%w: %s: give the Spaces endpoint (--spaces-endpoint or DROPMESH_SPACES_ENDPOINT)", ErrInvalid, loc)
		}
		region := creds.Region
		if region == "" {
			region = "us-east-1"
		}
		c, err := NewS3Client(S3Config{Endpoint: creds.Endpoint, Region: region, Bucket: bucket, AccessKey: creds.AccessKey,
			SecretKey: creds.SecretKey, HTTPClient: creds.HTTPClient})
		if err != nil {
			return Location{}, fmt.Errorf("%s: %w", loc, err)
		}
		return Location{Target: S3Target(c, dir), Name: name}, nil
	}
	if st, err := os.Stat(loc); err == nil && st.Mode().IsRegular() {
		if name := trimSuffixes(filepath.Base(loc)); validName(name) == nil && strings.HasSuffix(filepath.Base(loc), suffixManifest) {
			// The manifest names the backup; restore the backup it describes.
			return Location{Target: DirTarget(filepath.Dir(loc)), Name: name}, nil
		}
		return Location{File: loc}, nil
	}
	name := trimSuffixes(filepath.Base(loc))
	if err := validName(name); err != nil {
		return Location{}, fmt.Errorf("%s: %w", loc, err)
	}
	return Location{Target: DirTarget(filepath.Dir(loc)), Name: name}, nil
}

// trimSuffixes drops a backup file suffix from a name.
func trimSuffixes(name string) string {
	for _, s := range []string{suffixState, suffixSnapshot, suffixManifest} {
		if n, ok := strings.CutSuffix(name, s); ok {
			return n
		}
	}
	return name
}

// validName checks a backup name: it becomes a file name and an object key.
func validName(name string) error {
	if name == "" || len(name) > 128 || name[0] == '.' || strings.Contains(name, "..") ||
		slices.ContainsFunc([]byte(name), func(c byte) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
		}) {
		return fmt.Errorf("%w: backup name %q: letters, digits, '-', '_' and '.' only", ErrInvalid, name)
	}
	return nil
}

// readAll reads at most limit bytes of r.
func readAll(r io.Reader, limit int64, what string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, what, limit)
	}
	return buf.Bytes(), nil
}
