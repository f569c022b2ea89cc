# drainit alone, in an image to copy it from: FROM scratch, /drainit only.
#
#   scripts/release.sh VERSION            # target/dist/VERSION/drainit-{amd64,arm64}
#   podman build --platform linux/amd64 -t drainit:VERSION-amd64 target/dist/VERSION -f Dockerfile
#   podman build --platform linux/arm64 -t drainit:VERSION-arm64 target/dist/VERSION -f Dockerfile
#       (docker build, the same; both are built offline: scratch needs no registry)
#
# and in the image of an app:
#
#   COPY --from=drainit:VERSION-amd64 /drainit /drainit
#   ENTRYPOINT ["/drainit", "--"]
#
# The build context is the release directory; TARGETARCH (amd64, arm64) is
# set by the builder from --platform and picks the binary.
FROM scratch
ARG TARGETARCH
COPY drainit-${TARGETARCH} /drainit
ENTRYPOINT ["/drainit"]
CMD ["--help"]
