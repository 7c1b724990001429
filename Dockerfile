# Gannet MQTT broker: a static binary on a minimal image, run as a non-root
# user, with its state in the /data volume.
#
#   docker build -t gannet .
#   docker run -p 1883:1883 -v gannet-data:/data gannet
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/gannet ./cmd/gannet
# The data directory, owned by the nonroot user: a new named volume takes
# the owner of the directory it is mounted on (root without this).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gannet /usr/local/bin/gannet
COPY gannet.example.yaml /etc/gannet/gannet.yaml
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
VOLUME /data
EXPOSE 1883
ENTRYPOINT ["/usr/local/bin/gannet"]
CMD ["--config", "/etc/gannet/gannet.yaml", "--listen", "0.0.0.0:1883", "--data-dir", "/data"]
