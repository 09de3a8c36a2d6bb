# The dropmesh agent image: one static binary on an empty base.
#
# Two ways to build it, same result:
#
#   scripts/build-image.sh [--tag dropmesh:dev]
#       No image is pulled at all: the binary is built on this machine
#       (CGO_ENABLED=0) and copied into `FROM scratch` with this machine's CA
#       certificates (target runtime-prebuilt, a context the script makes).
#
#   DOCKER_BUILDKIT=1 docker build -t dropmesh --build-arg VERSION=v1.2.3 .
#       From source, in the golang build stage (pulls golang). Needs BuildKit,
#       which builds only the stages the target needs; Docker's legacy builder
#       would also build runtime-prebuilt, whose files are not in the repo.
#
# runtime-prebuilt is the first stage so that even the legacy builder, which
# builds every stage up to the target, builds nothing else for it.
#
# Run: docker run IMAGE version; docker run IMAGE agent --help. An agent needs
# the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) unless it
# runs with --no-runtime. The image has no nginx, so its edge is the built-in
# Go proxy (--edge auto falls back to it).

# --- runtime-prebuilt: the context holds dropmesh, ca-certificates.crt and
# rootfs/ (an empty /tmp and /var/lib/dropmesh), see scripts/build-image.sh.
FROM scratch AS runtime-prebuilt
ARG VERSION=dev
COPY rootfs/ /
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dropmesh /usr/local/bin/dropmesh
ENV DROPMESH_DATA_DIR=/var/lib/dropmesh
VOLUME ["/var/lib/dropmesh"]
# API (VPC only), gossip tcp+udp, raft, UI, edge.
EXPOSE 9999 7946/tcp 7946/udp 7947 8080 80
LABEL org.opencontainers.image.title="dropmesh" \
      org.opencontainers.image.description="dropmesh agent" \
      org.opencontainers.image.source="https://github.com/dropmesh/dropmesh" \
      org.opencontainers.image.version="${VERSION}"
ENTRYPOINT ["/usr/local/bin/dropmesh"]
CMD ["agent"]

# --- build: the static binary from source.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dropmesh . \
 && mkdir -p /out/rootfs/tmp /out/rootfs/var/lib/dropmesh \
 && chmod 1777 /out/rootfs/tmp \
 && chmod 0700 /out/rootfs/var/lib/dropmesh

# --- runtime: the default target, the same layout as runtime-prebuilt.
FROM scratch AS runtime
ARG VERSION=dev
COPY --from=build /out/rootfs/ /
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/dropmesh /usr/local/bin/dropmesh
ENV DROPMESH_DATA_DIR=/var/lib/dropmesh
VOLUME ["/var/lib/dropmesh"]
EXPOSE 9999 7946/tcp 7946/udp 7947 8080 80
LABEL org.opencontainers.image.title="dropmesh" \
      org.opencontainers.image.description="dropmesh agent" \
      org.opencontainers.image.source="https://github.com/dropmesh/dropmesh" \
      org.opencontainers.image.version="${VERSION}"
ENTRYPOINT ["/usr/local/bin/dropmesh"]
CMD ["agent"]
