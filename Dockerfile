# syntax=docker/dockerfile:1
# Build: cgo is required (pg_query_go embeds Postgres's own parser in C).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/tenantproxy ./cmd/tenantproxy

# Run: glibc only (the parser is linked statically into the binary), non-root.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/tenantproxy /usr/local/bin/tenantproxy
USER nonroot:nonroot
EXPOSE 6432
ENV TENANTPROXY_LISTEN=0.0.0.0:6432
ENTRYPOINT ["/usr/local/bin/tenantproxy"]
CMD ["serve"]
