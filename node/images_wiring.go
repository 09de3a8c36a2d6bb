package node

// The agent's part of node/imagepeer (issue 24): the peer image routes,
// build once (the leader assigns the builder, the others fetch the
// committed image from peers), registry images from peers first, and the
// export cache's housekeeping. The logic lives in node/imagepeer; this file
// only connects it to the agent.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// imageService is the agent's image peer: the server of its engine's
// images, the fetcher from the others.
type imageService struct {
	rt       atomic.Pointer[runtime.Runtime]
	server   *imagepeer.Server
	fetcher  *imagepeer.Fetcher
	receiver *imagepeer.Receiver
	// buildWait bounds how long a node waits for the builder's image.
	buildWait time.Duration
	// buildGrace is how long an image dropmesh put there (built, pulled,
	// fetched, pushed) and no kept revision names stays in the engine
	// before housekeeping removes it (Config.ImageGrace).
	buildGrace time.Duration
	// ledger records the images dropmesh pulled, fetched or received
	// (builds carry the managed label instead): the others are never removed.
	ledger *imagepeer.Ledger
}

// errNoEngine: the Docker engine is not connected (yet, or at all).
var errNoEngine = errors.New("no docker engine on this node")

// lazyEngine is the agent's runtime once startRuntime has connected it.
type lazyEngine struct{ s *imageService }

func (e lazyEngine) get() (*runtime.Runtime, error) {
	if rt := e.s.rt.Load(); rt != nil {
		return rt, nil
	}
	return nil, errNoEngine
}

func (e lazyEngine) ImageLayers(ctx context.Context, ref string) (string, []string, []string, error) {
	rt, err := e.get()
	if err != nil {
		return "", nil, nil, err
	}
	return rt.ImageLayers(ctx, ref)
}

func (e lazyEngine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rt, err := e.get()
	if err != nil {
		return nil, err
	}
	return rt.SaveImage(ctx, ref)
}

func (e lazyEngine) LoadImage(ctx context.Context, r io.Reader) error {
	rt, err := e.get()
	if err != nil {
		return err
	}
	return rt.LoadImage(ctx, r)
}

func (e lazyEngine) LayerChains(ctx context.Context) (map[string]bool, error) {
	rt, err := e.get()
	if err != nil {
		return nil, err
	}
	return rt.LayerChains(ctx)
}

// newImageService prepares the image peer (New: the API's routes need it
// before the engine is connected).
func (a *Agent) newImageService() *imageService {
	s := &imageService{buildWait: 20 * time.Minute, buildGrace: a.cfg.ImageGrace, ledger: imagepeer.NewLedger(a.dataPath("images", "ledger.json"))}
	if s.buildGrace <= 0 {
		s.buildGrace = 24 * time.Hour
	}
	eng := lazyEngine{s}
	s.server = &imagepeer.Server{Store: imagepeer.NewStore(a.dataPath("images", "export"), eng), Allowed: a.imageAllowed,
		Logger: a.logger.With("component", "imagepeer")}
	s.fetcher = &imagepeer.Fetcher{HTTP: a.peerHTTP, APIKey: a.keys.APIKey, Engine: eng, Dir: a.dataPath("images", "partial"),
		Logger: a.logger.With("component", "imagepeer")}
	s.receiver = &imagepeer.Receiver{Engine: eng, Dir: a.dataPath("images", "pushed"), Node: a.cfg.NodeID, Canon: runtime.ParseImageRef,
		Record: func(ctx context.Context, ref, id string) error {
			if err := s.ledger.Record(ref, id, a.now()); err != nil {
				a.logger.Warn("record pushed image", "image", ref, "err", err)
			}
			return a.report(ctx, &raftfsm.PutImage{At: a.now(), Ref: ref, ID: id, Node: a.cfg.NodeID, Replace: true})
		}, Logger: a.logger.With("component", "imagepeer")}
	return s
}

// ImageRoutes are the image routes for the API (api.Options.Extra): the
// peer routes (internal: mutual TLS with a node certificate only) and the
// push routes of `dropmesh push` (a deployer's credential).
func (a *Agent) ImageRoutes() []api.Route {
	s, r := a.images.server, a.images.receiver
	return []api.Route{
		{Method: http.MethodGet, Path: imagepeer.DescriptorPath, Summary: "A peer asks for an image this node holds: its id and layers (exported once)", Kind: api.RouteLocal, Access: api.AccessNode,
			Role: raftfsm.RoleAdmin, Handler: plainHandler(s.ServeDescriptor), Response: imagepeer.Descriptor{},
			Query: []api.Param{{Name: "ref", Type: "string", Description: "image reference or id, as the state names it", Required: true}}},
		{Method: http.MethodGet, Path: imagepeer.BlobPath, Summary: "A config or uncompressed layer blob of an exported image, by digest (byte ranges allowed)", Kind: api.RouteLocal, Access: api.AccessNode,
			Role: raftfsm.RoleAdmin, Handler: plainHandler(s.ServeBlob, "digest"), ResponseType: "application/octet-stream"},
		{Method: http.MethodPost, Path: imagepeer.PushCheckPath, Summary: "dropmesh push: which layers of an image this node lacks", Kind: api.RouteLocal,
			Handler: plainHandler(r.ServeCheck), Request: imagepeer.PushCheck{}, Response: imagepeer.PushMissing{}},
		{Method: http.MethodPut, Path: imagepeer.PushBlobPath, Summary: "dropmesh push: upload one uncompressed layer, checked against its digest", Kind: api.RouteLocal,
			Handler: plainHandler(r.ServeUpload, "digest"), RequestType: "application/octet-stream", MaxBody: imagepeer.MaxPushLayerBytes, Status: http.StatusNoContent},
		{Method: http.MethodPost, Path: imagepeer.PushCommitPath, Summary: "dropmesh push: load the pushed image on this node and record it", Kind: api.RouteLocal,
			Handler: plainHandler(r.ServeCommit), Request: imagepeer.PushCommit{}, Response: imagepeer.PushResult{}, Status: http.StatusCreated},
	}
}

// plainHandler serves a net/http handler of package imagepeer (which
// keeps clear of gin, so the CLI can use it) from the route table, with
// the named path parameters as the request's path values.
func plainHandler(h http.HandlerFunc, params ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range params {
			c.Request.SetPathValue(p, c.Param(p))
		}
		h(c.Writer, c.Request)
	}
}

// newRuntime connects to this node's Docker engine (Config.DockerHost, else
// the environment's) and hands it to the image peer.
func (a *Agent) newRuntime(ctx context.Context) (*runtime.Runtime, error) {
	rc := runtime.DefaultConfig()
	rc.Host = a.cfg.DockerHost
	rt, err := runtime.NewWithConfig(ctx, rc, a.logger)
	if err == nil {
		a.images.rt.Store(rt)
		a.goRun(ctx, "image-housekeeping", a.imageHousekeeping)
	}
	return rt, err
}

func buildRef(spec raftfsm.ServiceSpec) string { return buildTag(spec.Build, spec.Dockerfile) }

func canonImage(ref string) string {
	c, err := runtime.ParseImageRef(ref)
	if err != nil {
		return ""
	}
	return c
}

// imageAllowed: a node serves only images the state references.
func (a *Agent) imageAllowed(ref string) bool {
	ok := false
	a.fsm.View(func(s *raftfsm.State) { ok = imagepeer.Allowed(s, ref, canonImage, buildRef) })
	return ok
}

// runImageBuilds is the leader's duty: every build a generation needs gets
// one builder (imagepeer.Assignments). While some raft server does not know
// put_image, nothing is assigned and every node builds for itself, as
// before.
func (a *Agent) runImageBuilds(ctx context.Context) {
	a.every(ctx, "images", 30*time.Second, true, func(ctx context.Context) error {
		var cmds []raftfsm.PutImage
		a.fsm.View(func(s *raftfsm.State) { cmds = imagepeer.Assignments(s, buildRef) })
		if len(cmds) == 0 || a.checkProto(ctx, raftfsm.CmdPutImage) != nil {
			return nil
		}
		for _, c := range cmds {
			c.At = a.now()
			a.logger.Info("image build assigned", "image", c.Ref, "builder", c.Builder)
			if _, err := a.apply(ctx, &c); err != nil {
				return fmt.Errorf("assign build of %s: %w", c.Ref, err)
			}
		}
		return nil
	})
}

// imagePeers are the nodes to ask for an image: its holders and the nodes
// running it (likely), then the other live nodes; never this one. ref is
// canonical (runtime.ParseImageRef) for registry images.
func (a *Agent) imagePeers(s *raftfsm.State, ref, id string) []imagepeer.Peer {
	var order []string
	likely := map[string]bool{}
	seen := map[string]bool{a.cfg.NodeID: true}
	add := func(n string, hint bool) {
		if !seen[n] {
			seen[n], likely[n] = true, hint
			order = append(order, n)
		}
	}
	if img, ok := s.Images[ref]; ok {
		for _, h := range img.Holders {
			add(h, true)
		}
	}
	for _, id2 := range raftfsm.SortedKeys(s.Instances) {
		in := s.Instances[id2]
		switch svc := s.Services[in.Service]; {
		case id != "" && in.ImageDigest == id:
			add(in.Node, true)
		case id == "" && svc != nil && in.ImageDigest != "" && svc.Spec.Image != "" && canonImage(svc.Spec.Image) == ref:
			add(in.Node, true) // runs the registry image
		}
	}
	for _, n := range raftfsm.SortedKeys(s.Nodes) {
		add(n, false)
	}
	var out []imagepeer.Peer
	for _, n := range order {
		if node, ok := s.Nodes[n]; ok && node.API != "" && node.Status != raftfsm.NodeDead {
			out = append(out, imagepeer.Peer{Name: n, Addr: node.API, Likely: likely[n]})
		}
	}
	return out
}

// buildOnce makes a build's image present: the assigned builder builds it
// and commits its id; every other node waits for that id and fetches the
// image from a peer. A committed id is always fetched, never rebuilt. While
// no builder is assigned and some raft server may not know put_image (an
// old or a dead one), this node builds for itself, as before.
func (a *Agent) buildOnce(ctx context.Context, d desiredInstance, progress func(string)) (runtime.ImageInfo, error) {
	ref := buildRef(d.spec)
	deadline := time.NewTimer(a.images.buildWait)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	fetchFailures := 0
	for {
		changed := a.fsm.Changed()
		var img raftfsm.Image
		var peers []imagepeer.Peer
		gen := int64(-1)
		a.fsm.View(func(s *raftfsm.State) {
			if i, ok := s.Images[ref]; ok {
				img = *i
				img.Holders = append([]string(nil), i.Holders...)
			}
			if in, ok := s.Instances[d.in.ID]; ok {
				gen = in.DesiredGeneration
			}
			peers = a.imagePeers(s, ref, img.ID)
		})
		if d.in.ID != "" && gen != d.in.DesiredGeneration {
			return runtime.ImageInfo{}, fmt.Errorf("image %s: generation %d is no longer wanted here", ref, d.in.DesiredGeneration)
		}
		switch {
		case img.ID != "":
			info, err := a.rt.InspectImage(ctx, ref)
			if err != nil || info.ID != img.ID {
				_, err = a.images.fetcher.Fetch(ctx, ref, img.ID, []string{ref}, peers, progress)
				if err == nil {
					info, err = a.rt.InspectImage(ctx, ref)
				}
			}
			if err == nil && info.ID == img.ID {
				a.holdImage(ctx, ref, img)
				return info, nil
			}
			if fetchFailures++; fetchFailures >= 3 || ctx.Err() != nil {
				return runtime.ImageInfo{}, fmt.Errorf("image %s (%s) from the peers: %w", ref, img.ID, err)
			}
			a.logger.Warn("image fetch from peers failed; trying again", "image", ref, "err", err)
		case img.Builder == a.cfg.NodeID:
			info, err := a.buildImage(ctx, d, progress)
			if err != nil {
				return info, err
			}
			err = a.report(ctx, &raftfsm.PutImage{At: a.now(), Ref: ref, ID: info.ID, Node: a.cfg.NodeID})
			if err == nil {
				return info, nil
			}
			// Not recorded (no leader, or another id won): look again.
			a.logger.Warn("record built image", "image", ref, "err", err)
		case img.Builder == "" && a.checkProto(ctx, raftfsm.CmdPutImage) != nil:
			// Some raft server may not know put_image: the leader assigns
			// no builder, so this node builds for itself, as before.
			return a.buildImage(ctx, d, progress)
		default:
			progress("waiting for " + ref + " from its builder " + img.Builder)
		}
		select {
		case <-ctx.Done():
			return runtime.ImageInfo{}, ctx.Err()
		case <-deadline.C:
			return runtime.ImageInfo{}, fmt.Errorf("image %s: not built within %s (builder %q)", ref, a.images.buildWait, img.Builder)
		case <-changed:
		case <-tick.C:
		}
	}
}

// holdImage records that this node holds a committed image, once.
func (a *Agent) holdImage(ctx context.Context, ref string, img raftfsm.Image) {
	for _, h := range img.Holders {
		if h == a.cfg.NodeID {
			return
		}
	}
	if err := a.report(ctx, &raftfsm.PutImage{At: a.now(), Ref: ref, ID: img.ID, Node: a.cfg.NodeID}); err != nil {
		a.logger.Warn("record image holder", "image", ref, "err", err)
	}
}

// pullOrPeers is registryOrPeers, and records in the ledger an image it
// put into the engine (ref named no image, or another one, before): what
// housekeeping may remove once unreferenced. An image already there is
// not recorded: it may be the operator's.
func (a *Agent) pullOrPeers(ctx context.Context, d desiredInstance, ref string, pull bool, progress func(string)) (runtime.ImageInfo, error) {
	before, _ := a.rt.InspectImage(ctx, ref)
	info, err := a.registryOrPeers(ctx, d, ref, pull, progress)
	if err == nil && info.ID != "" && info.ID != before.ID {
		name := canonImage(ref)
		if name == "" {
			name = ref
		}
		if rerr := a.images.ledger.Record(name, info.ID, a.now()); rerr != nil {
			a.logger.Warn("record image put into the engine", "image", ref, "err", rerr)
		}
	}
	return info, err
}

// registryOrPeers gets a registry image: from a peer that has it first when it
// is missing here (the registry may be down), and from a peer when the
// registry refuses a pull (":latest" is always pulled).
func (a *Agent) registryOrPeers(ctx context.Context, d desiredInstance, ref string, pull bool, progress func(string)) (runtime.ImageInfo, error) {
	fromPeers := func() (runtime.ImageInfo, bool) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return runtime.ImageInfo{}, false
		}
		if _, digested := named.(reference.Digested); digested {
			return runtime.ImageInfo{}, false // only the registry can prove a manifest digest
		}
		canon := reference.TagNameOnly(named).String()
		var peers []imagepeer.Peer
		a.fsm.View(func(s *raftfsm.State) { peers = a.imagePeers(s, canon, "") })
		if _, err := a.images.fetcher.Fetch(ctx, canon, "", []string{canon}, peers, progress); err != nil {
			a.logger.Debug("image not from the peers", "image", ref, "err", err)
			return runtime.ImageInfo{}, false
		}
		info, err := a.rt.InspectImage(ctx, ref)
		return info, err == nil
	}
	if pushed, ok := a.pushedImage(ref); ok {
		// Pushed with dropmesh push: that exact image, from the peers.
		if info, err := a.rt.InspectImage(ctx, ref); err == nil && info.ID == pushed.ID {
			return info, nil
		}
		var peers []imagepeer.Peer
		a.fsm.View(func(s *raftfsm.State) { peers = a.imagePeers(s, pushed.Ref, pushed.ID) })
		if _, err := a.images.fetcher.Fetch(ctx, pushed.Ref, pushed.ID, []string{pushed.Ref}, peers, progress); err == nil {
			if info, err := a.rt.InspectImage(ctx, ref); err == nil && info.ID == pushed.ID {
				a.holdImage(ctx, pushed.Ref, pushed)
				return info, nil
			}
		} else {
			a.logger.Warn("pushed image not from the peers; trying the registry", "image", ref, "err", err)
		}
	}
	if !pull && !strings.HasPrefix(ref, LocalImagePrefix) {
		if info, err := a.rt.InspectImage(ctx, ref); err == nil {
			return info, nil
		}
		if info, ok := fromPeers(); ok {
			return info, nil
		}
	}
	info, err := a.rt.EnsureImage(ctx, ref, d.registry, pull, progress)
	if err != nil && pull {
		if pinfo, ok := fromPeers(); ok {
			a.logger.Warn("registry pull failed; image taken from a peer", "image", ref, "err", err)
			return pinfo, nil
		}
	}
	return info, err
}

// imageDiskUsage is the disk this node's images take (control.NodeStats.ImageBytes).
func (a *Agent) imageDiskUsage(ctx context.Context) uint64 {
	n := a.images.server.Store.Usage()
	if rt := a.images.rt.Load(); rt != nil {
		if layers, err := rt.ImagesDiskUsage(ctx); err == nil {
			n += layers
		}
	}
	return uint64(max(n, 0))
}

// pushedImage is the committed image of a reference, if one was pushed.
func (a *Agent) pushedImage(ref string) (raftfsm.Image, bool) {
	canon := canonImage(ref)
	var img raftfsm.Image
	ok := false
	a.fsm.View(func(s *raftfsm.State) {
		if i, found := s.Images[canon]; found && i.ID != "" {
			img, ok = *i, true
			img.Holders = append([]string(nil), i.Holders...)
		}
	})
	return img, ok
}

// imageHousekeeping, every hour: drops the exports of images the state no
// longer references, and removes from the engine the images dropmesh put
// there that no kept revision names (a rollback's stay) once they are
// older than buildGrace: its builds (removeStaleBuilds) and the images in
// its ledger (removeUnusedImages).
func (a *Agent) imageHousekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		freed, err := a.images.server.Store.Prune(a.imageAllowed)
		if err != nil {
			a.logger.Warn("image export housekeeping", "err", err)
		} else if freed > 0 {
			a.logger.Info("image exports removed", "bytes", freed)
		}
		if err := a.removeStaleBuilds(ctx); err != nil {
			a.logger.Warn("image housekeeping", "err", err)
		}
		if err := a.removeUnusedImages(ctx); err != nil {
			a.logger.Warn("image housekeeping", "err", err)
		}
	}
}

func (a *Agent) removeStaleBuilds(ctx context.Context) error {
	rt := a.images.rt.Load()
	if rt == nil {
		return errNoEngine
	}
	imgs, err := rt.ManagedImages(ctx)
	if err != nil {
		return err
	}
	built := map[string]time.Time{}
	for _, im := range imgs {
		for _, tag := range im.Tags {
			if strings.HasPrefix(tag, "dropmesh-build/") {
				built[tag] = im.Created
			}
		}
	}
	var stale []string
	held := map[string]bool{}
	a.fsm.View(func(s *raftfsm.State) {
		stale = imagepeer.StaleBuilds(s, built, buildRef, a.now(), a.images.buildGrace)
		for _, tag := range stale {
			if img, ok := s.Images[tag]; ok && slices.Contains(img.Holders, a.cfg.NodeID) {
				held[tag] = true
			}
		}
	})
	for _, tag := range stale {
		if err := rt.RemoveImage(ctx, tag); err != nil {
			a.logger.Warn("remove unreferenced image", "image", tag, "err", err) // still used by a container
			continue
		}
		a.logger.Info("unreferenced image removed", "image", tag)
		if held[tag] {
			if err := a.report(ctx, &raftfsm.PutImage{At: a.now(), Ref: tag, Node: a.cfg.NodeID, Dropped: true}); err != nil {
				a.logger.Warn("record image dropped", "image", tag, "err", err)
			}
		}
	}
	return nil
}

// removeUnusedImages removes the ledger's images (pulled, fetched from a
// peer, pushed) that no kept generation references, once past the grace
// (imagepeer.UnusedImages, Ledger.Remove), and records that this node no
// longer holds them.
func (a *Agent) removeUnusedImages(ctx context.Context) error {
	rt := a.images.rt.Load()
	if rt == nil {
		return errNoEngine
	}
	entries, err := a.images.ledger.Entries()
	if err != nil {
		return err
	}
	var stale []string
	held := map[string]bool{}
	a.fsm.View(func(s *raftfsm.State) {
		stale = imagepeer.UnusedImages(s, entries, canonImage, a.now(), a.images.buildGrace)
		for _, ref := range stale {
			if img, ok := s.Images[ref]; ok && slices.Contains(img.Holders, a.cfg.NodeID) {
				held[ref] = true
			}
		}
	})
	removed, err := a.images.ledger.Remove(ctx, rt, stale, a.logger.With("component", "imagepeer"))
	for _, ref := range removed {
		if held[ref] {
			if rerr := a.report(ctx, &raftfsm.PutImage{At: a.now(), Ref: ref, Node: a.cfg.NodeID, Dropped: true}); rerr != nil {
				a.logger.Warn("record image dropped", "image", ref, "err", rerr)
			}
		}
	}
	return err
}
