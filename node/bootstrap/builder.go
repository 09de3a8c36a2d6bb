package bootstrap

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/scripts"
)

// Cloud is what a bootstrap does with DigitalOcean; *cloudops.DigitalOcean
// is one.
type Cloud interface {
	cloudops.Droplets
	cloudops.Snapshots
	cloudops.Firewalls
	cloudops.SSHKeys
	cloudops.VPCs
}

// Builder makes the base snapshot: a temporary droplet, reached over SSH
// (the only time a dropmesh droplet has SSH open), installs Docker, nginx,
// the binary and the agent's unit with scripts/install-agent.sh, is powered
// off and snapshotted, then deleted with its SSH key and its firewall.
type Builder struct {
	// Cloud is the DigitalOcean account.
	Cloud Cloud
	// Hosts pins the builder's host key on first use (the state dir's
	// known_hosts); a later connection presenting another key is refused.
	Hosts *HostKeys
	// KeyPath holds the builder's private key while a build runs (mode
	// 0600), so a build cut short resumes with the same droplet; it is
	// deleted with the builder.
	KeyPath string
	// Target says where a builder droplet's SSH server is and who logs in;
	// nil is its public IPv4, port 22, as root.
	Target func(cloudops.Droplet) SSHTarget
	// Binary is the path of the dropmesh binary to install (Linux amd64).
	Binary string
	// Config holds the timings.
	Config Config
	// Logger gets details the progress lines leave out; nil discards.
	Logger *slog.Logger

	out *progress
}

// SnapshotSpec says which snapshot to make and where it must be.
type SnapshotSpec struct {
	// Name is the snapshot's name; an existing snapshot of that name is used.
	Name string
	// Regions are where droplets will start from it; the first builds it.
	Regions []string
	// Cluster names the builder's droplet, tag, key and firewall.
	Cluster string
}

// builderNames are the names of a cluster's builder resources.
type builderNames struct{ droplet, tag, firewall, keyPrefix string }

func namesFor(cluster string) builderNames {
	return builderNames{droplet: cluster + "-builder", tag: "dropmesh-builder-" + cluster,
		firewall: cluster + "-builder-ssh", keyPrefix: "dropmesh-builder-" + cluster + "-"}
}

// remoteDir is where the binary and the script are uploaded, in the
// login's home; it is removed before the snapshot.
const remoteDir = "dropmesh-install"

func (b *Builder) progress() *progress {
	if b.out == nil {
		b.out = newProgress(nil)
	}
	return b.out
}

func (b *Builder) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// Ensure returns the snapshot spec names, building it if there is none, and
// copies it to every region of spec that lacks it. Builder leftovers of an
// earlier run are reused (same key) or deleted.
func (b *Builder) Ensure(ctx context.Context, spec SnapshotSpec) (cloudops.Snapshot, error) {
	b.Config = b.Config.withDefaults()
	if len(spec.Regions) == 0 {
		return cloudops.Snapshot{}, fmt.Errorf("snapshot %s: no region", spec.Name)
	}
	snap, err := b.Cloud.FindSnapshot(ctx, spec.Name)
	switch {
	case err == nil:
		if err := b.sweep(ctx, spec); err != nil {
			return snap, err
		}
	case errors.Is(err, cloudops.ErrNotFound):
		if snap, err = b.build(ctx, spec); err != nil {
			return snap, err
		}
	default:
		return snap, err
	}
	return b.transfer(ctx, snap, spec.Regions)
}

// sweep deletes what an interrupted build left behind once its snapshot
// exists.
func (b *Builder) sweep(ctx context.Context, spec SnapshotSpec) error {
	n := namesFor(spec.Cluster)
	ds, err := b.Cloud.ListDroplets(ctx, n.tag)
	if err != nil {
		return err
	}
	fw, err := b.Cloud.GetFirewallByName(ctx, n.firewall)
	if err != nil && !errors.Is(err, cloudops.ErrNotFound) {
		return err
	}
	_, keyErr := os.Stat(b.KeyPath)
	if len(ds) == 0 && fw.ID == "" && errors.Is(keyErr, os.ErrNotExist) {
		return nil
	}
	return b.progress().step("removing a builder left from an earlier run", func() (string, error) {
		var l leftovers
		for _, d := range ds {
			l.droplets = append(l.droplets, d.ID)
		}
		l.firewall = fw.ID
		// The interrupted build's key, if it registered one: looked up, never
		// registered here, and deleted only under the builder's own name.
		if signer, _, err := loadKey(b.KeyPath); err == nil {
			k, err := b.Cloud.FindSSHKey(ctx, authorizedKey(signer))
			switch {
			case err == nil && k.Name == keyName(n, signer):
				l.key = k.ID
			case err != nil && !errors.Is(err, cloudops.ErrNotFound):
				return "", err
			}
		}
		return l.String(), b.remove(ctx, l)
	})
}

// leftovers are the builder resources to delete.
type leftovers struct {
	droplets []int
	key      int
	firewall string
}

func (l leftovers) String() string {
	var parts []string
	for _, id := range l.droplets {
		parts = append(parts, fmt.Sprintf("droplet %d", id))
	}
	if l.key != 0 {
		parts = append(parts, fmt.Sprintf("ssh key %d", l.key))
	}
	if l.firewall != "" {
		parts = append(parts, "firewall "+l.firewall)
	}
	return strings.Join(parts, ", ")
}

// remove deletes l and the local private key, even when ctx has ended: a
// builder left behind costs money and keeps SSH open.
func (b *Builder) remove(ctx context.Context, l leftovers) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.Config.CleanupTimeout)
	defer cancel()
	var errs []error
	for _, id := range l.droplets {
		errs = append(errs, b.Cloud.DeleteDroplet(ctx, id))
	}
	if l.firewall != "" {
		errs = append(errs, b.Cloud.DeleteFirewall(ctx, l.firewall))
	}
	if l.key != 0 {
		errs = append(errs, b.Cloud.DeleteSSHKey(ctx, l.key))
	}
	if err := os.Remove(b.KeyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove builder key: %w", err))
	}
	return errors.Join(errs...)
}

// build makes the snapshot; whatever happens, the builder's droplet, key
// and firewall are deleted before it returns.
func (b *Builder) build(ctx context.Context, spec SnapshotSpec) (snap cloudops.Snapshot, err error) {
	n := namesFor(spec.Cluster)
	region := spec.Regions[0]
	p := b.progress()
	var made leftovers
	defer func() {
		rerr := p.step("deleting the builder droplet, its SSH key and its firewall", func() (string, error) {
			return made.String(), b.remove(ctx, made)
		})
		if rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()

	var signer ssh.Signer
	fresh := false
	if err := p.step("making the builder's SSH key", func() (string, error) {
		var err error
		signer, fresh, err = loadOrCreateKey(b.KeyPath)
		if err != nil {
			return "", err
		}
		how := "reused from an interrupted build"
		if fresh {
			how = "new"
		}
		return fmt.Sprintf("%s %s, %s", signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), how), nil
	}); err != nil {
		return snap, err
	}
	var key cloudops.SSHKey
	if err := p.step("registering the SSH key", func() (string, error) {
		var err error
		key, err = b.Cloud.CreateSSHKey(ctx, keyName(n, signer), authorizedKey(signer))
		if err != nil {
			return "", err
		}
		made.key = key.ID
		return fmt.Sprintf("key %d", key.ID), nil
	}); err != nil {
		return snap, err
	}
	if err := p.step("opening SSH to the builder only (firewall "+n.firewall+")", func() (string, error) {
		egress := cloudops.ClusterFirewall(n.firewall, n.tag, cloudops.Ports{}).Outbound
		fw, err := b.Cloud.EnsureFirewall(ctx, cloudops.WithSSH(cloudops.FirewallSpec{Name: n.firewall, Tags: []string{n.tag}, Outbound: egress}, nil))
		if err != nil {
			return "", err
		}
		made.firewall = fw.ID
		return "firewall " + fw.ID, nil
	}); err != nil {
		return snap, err
	}

	var d cloudops.Droplet
	if err := p.step("creating the builder droplet "+n.droplet+" in "+region, func() (string, error) {
		existing, err := b.Cloud.ListDroplets(ctx, n.tag)
		if err != nil {
			return "", err
		}
		for _, e := range existing {
			made.droplets = append(made.droplets, e.ID)
		}
		if fresh && len(existing) > 0 {
			// A builder from a run whose key is lost: nobody can log in.
			for _, e := range existing {
				if err := b.Cloud.DeleteDroplet(ctx, e.ID); err != nil {
					return "", err
				}
			}
			made.droplets = nil
		}
		d, err = b.Cloud.CreateDroplet(ctx, cloudops.DropletSpec{Name: n.droplet, Region: region, Size: b.Config.BuilderSize,
			ImageSlug: b.Config.BuilderImage, Tags: []string{n.tag}, SSHKeyIDs: []int{key.ID}})
		if err != nil {
			return "", err
		}
		if !slices.Contains(made.droplets, d.ID) {
			made.droplets = append(made.droplets, d.ID)
		}
		wctx, cancel := context.WithTimeout(ctx, b.Config.DropletTimeout)
		defer cancel()
		if d.Status == cloudops.StatusOff {
			// Powered off by an interrupted build before its snapshot.
			a, err := b.Cloud.DropletAction(wctx, d.ID, cloudops.ActionPowerOn)
			if err != nil {
				return "", err
			}
			if _, err := b.Cloud.WaitForAction(wctx, a.ID); err != nil {
				return "", err
			}
		}
		if d, err = b.Cloud.WaitForDropletStatus(wctx, d.ID, cloudops.StatusActive); err != nil {
			return "", err
		}
		return fmt.Sprintf("droplet %d, %s", d.ID, d.PublicIP), nil
	}); err != nil {
		return snap, err
	}

	if err := b.install(ctx, d, signer, p); err != nil {
		return snap, err
	}

	if err := p.step("powering the builder off", func() (string, error) {
		return "", b.powerOff(ctx, d.ID)
	}); err != nil {
		return snap, err
	}
	if err := p.step("taking the snapshot "+spec.Name, func() (string, error) {
		actx, cancel := context.WithTimeout(ctx, b.Config.ActionTimeout)
		defer cancel()
		a, err := b.Cloud.SnapshotDroplet(actx, d.ID, spec.Name)
		if err != nil {
			return "", err
		}
		if _, err := b.Cloud.WaitForAction(actx, a.ID); err != nil {
			return "", err
		}
		snap, err = b.Cloud.FindSnapshot(actx, spec.Name)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("snapshot %d in %s", snap.ID, strings.Join(snap.Regions, ", ")), nil
	}); err != nil {
		return snap, err
	}
	return snap, nil
}

// install connects to the builder, uploads the binary and the install
// script, and runs it.
func (b *Builder) install(ctx context.Context, d cloudops.Droplet, signer ssh.Signer, p *progress) error {
	target := SSHTarget{Addr: d.PublicIP + ":22", User: "root"}
	if b.Target != nil {
		target = b.Target(d)
	}
	pin := fmt.Sprintf("droplet-%d", d.ID)
	var c *sshClient
	if err := p.step(fmt.Sprintf("connecting over SSH to %s@%s", target.User, target.Addr), func() (string, error) {
		sctx, cancel := context.WithTimeout(ctx, b.Config.SSHReadyTimeout)
		defer cancel()
		var err error
		if c, err = dialSSH(sctx, target, signer, b.Hosts, pin, b.Config); err != nil {
			return "", err
		}
		k, _, err := b.Hosts.Pinned(pin)
		if err != nil || k == nil {
			return "host key pinned", err
		}
		return fmt.Sprintf("host key %s pinned as %s", ssh.FingerprintSHA256(k), pin), nil
	}); err != nil {
		return err
	}
	defer c.Close()
	ictx, cancel := context.WithTimeout(ctx, b.Config.InstallTimeout)
	defer cancel()
	if err := p.step("uploading the dropmesh binary", func() (string, error) {
		f, err := os.Open(b.Binary)
		if err != nil {
			return "", fmt.Errorf("binary: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return "", fmt.Errorf("binary: %w", err)
		}
		if err := c.upload(ictx, f, remoteDir+"/dropmesh", 0o755); err != nil {
			return "", err
		}
		return fmt.Sprintf("%.1f MB, checksum verified", float64(st.Size())/1e6), nil
	}); err != nil {
		return err
	}
	if err := p.step("uploading install-agent.sh", func() (string, error) {
		return "", c.upload(ictx, strings.NewReader(scripts.InstallAgentScript()), remoteDir+"/install-agent.sh", 0o755)
	}); err != nil {
		return err
	}
	sub := p.sub()
	return p.step("running install-agent.sh", func() (string, error) {
		cmd := c.sudo(fmt.Sprintf("bash %s/install-agent.sh --binary %s/dropmesh --for-snapshot", remoteDir, remoteDir)) +
			" && rm -rf " + remoteDir + " && sync"
		err := c.run(ictx, cmd, nil, func(l string) {
			sub.line("| %s", l)
			b.logger().Debug("install-agent", "line", l)
		})
		return "", err
	})
}

// powerOff shuts the droplet down gracefully (a clean file system for the
// snapshot), or cuts its power if that fails.
func (b *Builder) powerOff(ctx context.Context, id int) error {
	actx, cancel := context.WithTimeout(ctx, b.Config.ActionTimeout)
	defer cancel()
	a, err := b.Cloud.DropletAction(actx, id, cloudops.ActionShutdown)
	if err == nil {
		_, err = b.Cloud.WaitForAction(actx, a.ID)
	}
	if err != nil {
		b.logger().Warn("shutdown failed, powering off", "droplet", id, "err", err)
		if a, err = b.Cloud.DropletAction(actx, id, cloudops.ActionPowerOff); err != nil {
			return err
		}
		if _, err := b.Cloud.WaitForAction(actx, a.ID); err != nil {
			return err
		}
	}
	_, err = b.Cloud.WaitForDropletStatus(actx, id, cloudops.StatusOff)
	return err
}

// transfer copies snap to every region that lacks it.
func (b *Builder) transfer(ctx context.Context, snap cloudops.Snapshot, regions []string) (cloudops.Snapshot, error) {
	p := b.progress()
	for _, r := range regions {
		if slices.Contains(snap.Regions, r) {
			continue
		}
		err := p.step(fmt.Sprintf("copying snapshot %d to %s", snap.ID, r), func() (string, error) {
			actx, cancel := context.WithTimeout(ctx, b.Config.ActionTimeout)
			defer cancel()
			a, err := b.Cloud.TransferSnapshot(actx, snap.ID, r)
			if err != nil {
				return "", err
			}
			_, err = b.Cloud.WaitForAction(actx, a.ID)
			return "", err
		})
		if err != nil {
			return snap, err
		}
	}
	got, err := b.Cloud.GetSnapshot(ctx, snap.ID)
	if err != nil {
		return snap, err
	}
	for _, r := range regions {
		if !slices.Contains(got.Regions, r) {
			return got, fmt.Errorf("snapshot %d is not in %s after its transfer (it is in %s)", got.ID, r, strings.Join(got.Regions, ", "))
		}
	}
	return got, nil
}

// keyName is the DigitalOcean name of the builder key: the cluster and the
// key's own fingerprint, so a fresh key never collides with a stale one.
func keyName(n builderNames, signer ssh.Signer) string {
	sum := sha256.Sum256(signer.PublicKey().Marshal())
	return n.keyPrefix + hex.EncodeToString(sum[:4])
}

func authorizedKey(signer ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " dropmesh-builder"
}

// loadOrCreateKey reads the builder's private key, or makes a fresh
// ed25519 one (fresh is then true) and writes it with mode 0600.
func loadOrCreateKey(path string) (ssh.Signer, bool, error) {
	if s, ok, err := loadKey(path); ok || err != nil {
		return s, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "dropmesh builder")
	if err != nil {
		return nil, false, fmt.Errorf("encode ssh key: %w", err)
	}
	if err := atomicfile.Write(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, false, fmt.Errorf("save ssh key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	return s, true, nil
}

// loadKey reads the private key at path; ok is false when there is none.
func loadKey(path string) (ssh.Signer, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read ssh key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return s, true, nil
}
