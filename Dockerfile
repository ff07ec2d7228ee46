# syntax=docker/dockerfile:1

# idbroker: one static binary on a distroless base (CA certificates, no
# shell, runs as uid 65532).
#
#   docker build -t idbroker .
#   docker run -p 8080:8080 -v idbroker-data:/var/lib/idbroker idbroker
#
# The image defaults to the embedded deployment (SQLite and the generated
# master key in the /var/lib/idbroker volume). For production set
# IDBROKER_DATABASE_URL, IDBROKER_REDIS_URL, IDBROKER_MASTER_KEY and
# IDBROKER_ISSUER.

# Base images are pinned by digest, so a rebuild of the same commit uses
# the same bytes and a moved or compromised tag cannot slip in; the comment
# above each FROM names the tag the digest was resolved from. Pin the
# digest of the multi-platform index (what imagetools prints first), so the
# build still picks amd64 or arm64 by itself.
#
# To refresh them (a Go patch release, distroless CVE fixes):
#
#   docker buildx imagetools inspect golang:1.26
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
#
# and paste each "Digest:" with the tag it resolved; or merge the pull
# request Dependabot opens (.github/dependabot.yml watches this file).

# golang:1.26.9 (Debian), the toolchain go.mod asks for or newer.
FROM golang:1.26.9@sha256:f1f0bcc2c524a3ced375fcb4d1ecb7aa371aa7070e112599aaca45cc02d0101b AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
		-ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
		-o /out/idbroker ./cmd/idbroker
# The data directory must exist, owned by the runtime user, before the
# volume is mounted on it: a fresh named volume copies its owner and mode.
RUN mkdir -p /out/data && chmod 0700 /out/data

# gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:f5b485ea962d9bd1186b2f6b3a061191539b905b82ec395de78cbfae51f20e35
COPY --from=build /out/idbroker /usr/local/bin/idbroker
COPY --from=build --chown=65532:65532 /out/data /var/lib/idbroker
ENV IDBROKER_LISTEN=:8080 \
	IDBROKER_DATABASE_URL=sqlite:///var/lib/idbroker/idbroker.db \
	IDBROKER_LOG_FORMAT=json
VOLUME ["/var/lib/idbroker"]
USER 65532:65532
EXPOSE 8080
# The image has no shell or curl: the binary asks /readyz itself.
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
	CMD ["/usr/local/bin/idbroker", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/idbroker"]
CMD ["serve"]
