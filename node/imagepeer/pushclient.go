package imagepeer

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// PushAPI is what Push needs of the agent API (node/apiclient.Client).
type PushAPI interface {
	PushCheck(ctx context.Context, req PushCheck) (PushMissing, error)
	PushBlob(ctx context.Context, digest string, r io.ReadSeeker) error
	PushCommit(ctx context.Context, req PushCommit) (PushResult, error)
}

// ErrNotUploaded is what PushCommit's error wraps when the node lacks a
// layer (another node answered): Push then checks and uploads again, once.
var ErrNotUploaded = errors.New("layer not uploaded")

// Push sends image ref from the engine behind local (the user's Docker) to
// the node behind api: the layers that node lacks, one line of progress per
// layer, then the config. ref is the reference the cluster will know it by.
func Push(ctx context.Context, local *Store, api PushAPI, ref string, progress func(string)) (PushResult, error) {
	progress = serialised(progress)
	d, err := local.Export(ctx, ref)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", ref, err)
	}
	cfgFile, err := local.OpenBlob(d.ID)
	if err != nil {
		return PushResult{}, err
	}
	cfg, err := io.ReadAll(cfgFile)
	cfgFile.Close()
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: config: %w", ref, err)
	}
	for attempt := 0; ; attempt++ {
		miss, err := api.PushCheck(ctx, PushCheck{Ref: ref, ID: d.ID, DiffIDs: d.DiffIDs})
		if err != nil {
			return PushResult{}, fmt.Errorf("push %s: %w", ref, err)
		}
		missing := map[string]bool{}
		for _, m := range miss.Missing {
			missing[m] = true
		}
		for i, diff := range d.DiffIDs {
			if !missing[diff] {
				progress(fmt.Sprintf("layer %s %s: already there", short(diff), humanBytes(d.Sizes[i])))
				continue
			}
			if err := pushLayer(ctx, local, api, diff); err != nil {
				return PushResult{}, fmt.Errorf("push %s: %w", ref, err)
			}
			progress(fmt.Sprintf("layer %s %s: sent", short(diff), humanBytes(d.Sizes[i])))
		}
		res, err := api.PushCommit(ctx, PushCommit{Ref: ref, Config: cfg})
		if errors.Is(err, ErrNotUploaded) && attempt == 0 {
			progress("the node lacks a layer (another node answered?): checking again")
			continue
		}
		if err != nil {
			return PushResult{}, fmt.Errorf("push %s: %w", ref, err)
		}
		return res, nil
	}
}

func pushLayer(ctx context.Context, local *Store, api PushAPI, diff string) error {
	f, err := local.OpenBlob(diff)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := api.PushBlob(ctx, diff, f); err != nil {
		return fmt.Errorf("layer %s: %w", diff, err)
	}
	return nil
}
