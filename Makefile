# Makefile for loco. `make run` and `make test` set up what they need.
SHELL := /bin/bash
GO ?= go
BIN := bin
PLUGINS := $(notdir $(wildcard plugins/*))
PROTOS := $(shell find sdk/proto -name '*.proto')

.PHONY: all build proto lint test run deps testguest clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/loco ./cmd/loco
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/loco-plugin-$$p ./plugins/$$p"; $(GO) build -o $(BIN)/loco-plugin-$$p ./plugins/$$p || exit 1; done

# proto regenerates the committed gRPC code from sdk/proto with Debian's protoc
# and the generators pinned in go.mod's tool directive.
proto:
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BIN)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I sdk/proto \
		--plugin=protoc-gen-go=$(BIN)/protoc-gen-go --go_out=sdk/proto --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc --go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		$(PROTOS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
