// Package imagepeer moves Docker images between the agents without a
// registry: every agent serves the images of its own engine that the state
// references, and an agent that needs an image fetches it from the peers
// that have it, layer by layer, verified by digest.
//
// The transfer is docker save / docker load, not an OCI distribution
// endpoint over the local images. The engines here keep layers unpacked
// (overlay2, vfs): a registry endpoint would have to export them anyway, and
// Docker's own puller would have to reach every peer as a registry with the
// node certificates configured in the daemon. Instead the agent exports an
// image once into a Store (docker save, unpacked: one file per layer, named
// by its uncompressed digest), serves those files over the agents' mutual
// TLS API (AccessNode routes: GET /v1/internal/images/descriptor and
// /v1/internal/images/blobs/{digest}, byte ranges allowed), and the Fetcher
// on the other side:
//   - trusts one digest, the image id: the config blob must hash to it, and
//     the config's rootfs.diff_ids name every layer, so each downloaded
//     layer is checked against its diff id before it is used;
//   - skips the layers whose chain its engine already holds (docker load
//     registers only missing chains, so they are not even sent);
//   - fetches different layers from different peers at once, resumes a
//     broken download with a byte range, and refuses a corrupted layer by
//     digest and fetches it again (from the next peer);
//   - assembles a docker-save stream of the config and the missing layers
//     and loads it into its engine.
//
// Main types: Store (the exported images of this engine), Server (the HTTP
// handlers over a Store), Fetcher (the client), Engine (what they need of
// Docker: node/runtime.Runtime).
package imagepeer
