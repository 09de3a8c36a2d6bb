// Package runtime is dropmesh's Docker driver: how an agent converges its own
// Docker engine once the reconciler (package node) has decided what should run.
//
// A Runtime wraps the Docker Engine API client (negotiating the API version,
// so older daemons work) and speaks in dropmesh's own small types:
// ContainerSpec in, ContainerInfo and ContainerEvent out, ImageInfo for
// images. Docker's own error text is kept in the errors it returns, and the
// conditions callers branch on are sentinel errors (ErrContainerNotFound,
// ErrImageNotFound, ErrNameInUse, ...).
//
// ValidateBuildContextFor checks an uploaded build context (a tar, optionally
// gzip-compressed, at most the size its caller allows) before anything is stored or
// sent to Docker: sizes, paths, links, device files and the Dockerfile. BuildFromBinary makes an image FROM scratch out of
// one static binary; local mode uses it to run the sample app without a
// registry.
//
// testing.go is a test kit for this and other packages' tests: static test
// binaries, test images, an in-memory registry and uniquely named,
// self-cleaning test containers.
package runtime
