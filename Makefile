# loco's Makefile. `make run` and `make test` install what they need (Debian
# packages, the test guest image) and are safe to repeat.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin
PLUGINS := $(notdir $(wildcard plugins/*))
PROTOS := $(sort $(shell find sdk/proto -name '*.proto'))
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TESTGUEST := build/testguest

# Debian packages loco and its tests use: QEMU, the test guest's recipe
# (busybox-static, cpio, kmod tools), protoc for `make proto`; for the
# stream-webrtc plugin libyuv (colour conversion and scaling), libx264 (H.264,
# called directly) and GStreamer 1.22 (headers and pkg-config for its cgo
# build, vp8/opus from -good/-base; -ugly's x264enc and -bad's openh264
# decoder for the gst and x264 packages' tests), and for its tests and
# benchmarks headless Chromium, noVNC and websockify (noVNC also plays
# stream "vnc" in the dashboard); for stream-sunshine an X display per
# guest (xvfb), QEMU's GTK window (qemu-system-gui) and xwd for its
# screenshots (x11-apps); tcpdump reads the LAN test's capture back, vde2's
# vde_switch is the LAN benchmark's reference switch; containerd and runc
# run the containerd runtime's tests (each starts a private containerd);
# iproute2 and iputils-ping build and ping the kernel VTEP in network-vxlan's
# interop test; prometheus scrapes a running cluster in cmd/loco's
# TestPrometheusScrapesTheCluster; containernetworking-plugins gives the
# kubernetes runtime's test kubelet its loopback CNI plugin.
APT_PACKAGES := qemu-system-x86 qemu-utils busybox-static cpio xz-utils zstd kmod \
	protobuf-compiler ca-certificates git \
	gcc libc6-dev pkg-config libyuv-dev libx264-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
	chromium novnc websockify xvfb qemu-system-gui x11-apps \
	tcpdump vde2 containerd runc iproute2 iputils-ping containernetworking-plugins \
	prometheus \
	genisoimage mtools dosfstools fdisk syslinux-common

.PHONY: all build deps testguest k8s test run proto lint clean bench

all: build

# deps installs missing Debian packages; it touches apt only when one is missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/loco ./cmd/loco
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/loco-plugin-$$p ./plugins/$$p"; \
		$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/loco-plugin-$$p ./plugins/$$p || exit 1; done

# testguest builds the tiny Linux test guest from Debian packages (idempotent).
testguest: deps
	images/testguest/build.sh $(TESTGUEST)

# k8s builds the Kubernetes control plane the kubernetes runtime's tests run
# against (etcd, kube-apiserver, kube-controller-manager, kubelet) from the
# Go modules pinned in hack/go.mod, under nice; cached in build/k8s by the
# hash of those pins, so only the first run pays (measured in
# docs/benchmarks.md).
k8s:
	hack/build-k8s.sh build/k8s

# sdk/ is its own module, which ./... does not reach: it is vetted and
# tested from its own directory, with its own go.mod, as a plugin author
# builds it.
test: deps testguest build k8s
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...
	cd sdk && $(GO) test -count=1 -timeout 10m ./...

run: deps testguest build
	$(BIN)/loco run configs/demo.hcl

# proto regenerates the committed gRPC code from sdk/proto with Debian's protoc
# and the generators pinned in go.mod's tool directive (protoc-gen-go is the
# protobuf runtime's own version: cmd/loco's TestSDKModuleVersionsMatchTheTree
# keeps sdk/go.mod on the root's versions).
proto:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BIN)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I sdk/proto \
		--plugin=protoc-gen-go=$(BIN)/protoc-gen-go --go_out=sdk/proto --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc --go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		$(PROTOS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...

clean:
	rm -rf $(BIN)

# bench runs loco's own scenarios against the demo cluster (separately from
# make test: a slow machine never fails a test). BENCH_SCENARIOS and
# BENCH_GUESTS pick what runs; BENCH_FLAGS adds e.g. --threshold or --runs.
# Reports go to build/bench/<scenario>/. boot runs cold and warm (--warm).
BENCH_SCENARIOS ?= boot lan density input-latency glass-to-glass
BENCH_GUESTS ?= 1,3
BENCH_FLAGS ?=
bench: build testguest
	@for s in $(BENCH_SCENARIOS); do \
		w=; if [ $$s = boot ]; then w=--warm; fi; \
		echo "loco bench configs/demo.hcl --scenario $$s $$w --guests $(BENCH_GUESTS) $(BENCH_FLAGS)"; \
		$(BIN)/loco bench configs/demo.hcl --scenario $$s $$w --guests $(BENCH_GUESTS) \
			--state-dir build/bench/state --out build/bench/$$s $(BENCH_FLAGS) || exit 1; \
	done
