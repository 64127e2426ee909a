# syntax=docker/dockerfile:1
#
# talentledger as a container image: one static binary running
# `talentledger serve` as an unprivileged user.
#
#   docker build -t talentledger .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/secrets/principals.json:/run/secrets/principals:ro" \
#     talentledger --principals /run/secrets/principals \
#       --store 'esdb://node1:2113,node2:2114,node3:2115?tls=false'
#
# Nothing secret is in the image: the principals file (token hashes) and the
# audit signing key are mounted at run time (docker-compose.yml mounts them
# as secrets), and .dockerignore keeps key files, principals files and data
# directories out of the build context altogether.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Pebble, the EventStoreDB client and everything else are pure Go, so the
# binary is built without cgo: it is static and needs no libc at run time.
# go.mod names a patch release; an older cached image of this minor version
# fetches that toolchain instead of failing (the image's default is local).
ENV CGO_ENABLED=0 \
    GOTOOLCHAIN=auto
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# -mod=readonly: the build fails rather than change go.mod; -trimpath and
# -buildvcs=false: the binary depends on the sources only, not on where
# they were checked out.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -mod=readonly -trimpath -buildvcs=false -ldflags='-s -w' \
      -o /out/talentledger ./cmd/talentledger

# Alpine rather than an empty or distroless base: its busybox wget is what
# the compose health checks call to probe /readyz. The binary itself uses
# nothing from it but the CA certificates (for tls=true connections to a
# secured cluster).
FROM alpine:3.22
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 10001 talentledger \
 && adduser -S -D -H -u 10001 -G talentledger -h /var/lib/talentledger -s /sbin/nologin talentledger \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/talentledger /var/lib/talentledger/keys
COPY --from=build /out/talentledger /usr/local/bin/talentledger

# Numeric, so that runtimes that refuse root (runAsNonRoot) can check it.
# The working directory stays /, so that the image also runs under another
# unprivileged uid (docker-compose.yml lets it run as the owner of the
# mounted secrets).
USER 10001:10001
# Listen on every interface of the container (the binary's default is
# loopback only). The embedded store, when no --store is given, lives in
# /var/lib/talentledger/data: mount a volume there to keep it. serve also
# needs TALENTLEDGER_WITNESS, a file on another volume (see the README's
# "Integrity at rest"), or TALENTLEDGER_NO_WITNESS=true.
ENV TALENTLEDGER_ADDR=0.0.0.0:8080 \
    TALENTLEDGER_DATA=/var/lib/talentledger/data
EXPOSE 8080

# serve shuts down gracefully on SIGTERM: in-flight requests finish (up to
# 30 s), then the store is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/talentledger", "serve"]
