# syntax=docker/dockerfile:1
# The operator image, for people with Docker (BuildKit): `make docker-build`.
# `make image` builds the same image without a container engine
# (hack/image): the binary at /manager, mode 0555, owned by 65532:65532,
# alone in one layer on scratch, run as 65532:65532, with the same labels.
# Keep the two in step.

# Go as in go.mod. The builder runs on the build machine's platform and
# cross-compiles for the target's, without emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
# Set by BuildKit from --platform (make docker-build passes linux/$GOARCH).
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
# Modules first: their layer is reused while only the sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no libc in the final image), without the builder's paths, symbols
# or VCS stamping, as `make image` builds it; the commit is in the labels.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/manager . \
    && chmod 0555 /out/manager

# No shell, no package manager, nothing but the binary.
FROM scratch
ARG VERSION=unknown
ARG REVISION=
ARG SOURCE=https://github.com/tokenwarden/tokenwarden
LABEL org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.source=$SOURCE
COPY --from=builder --chown=65532:65532 /out/manager /manager
# Numeric, so the pod's runAsNonRoot can check it without an /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/manager"]
