# Tokenwarden's Makefile. Every tool is pinned and installed into ./bin from
# the Go module proxy, so a fresh clone needs nothing but Go; CI runs the same
# targets a person does.

# The version built: the nearest tag, else the commit, with -dirty when the
# tree has uncommitted changes. Expanded once here: `?=` alone would run git
# again at every use.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
VERSION := $(VERSION)
# Image built by image and docker-build and referenced by deploy and
# build-installer. Tagged with the version, never latest, so that a cluster
# runs what was built and a rollout changes the image.
IMG ?= tokenwarden:$(VERSION)
# Architecture of the image (linux only): the host's by default.
GOARCH ?= $(shell go env GOARCH)
# The image tarball of `make image`; dist/image.json describes the last one.
IMAGE_TAR ?= dist/tokenwarden-linux-$(GOARCH).tar
# Every timestamp in the image: the commit's time, so that the same commit
# gives the same image digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_SOURCE ?= https://github.com/tokenwarden/tokenwarden

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# Tool versions. Newer controller-gen releases are not served for Go 1.26;
# kustomize v5.8.3 needs Go 1.27.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
KUBE_SCORE_VERSION ?= v1.20.0
HELM_VERSION ?= v4.3.2
# The control plane (kube-apiserver, etcd, kubectl) is built from source by
# hack/controlplane.sh; its version follows client-go's minor.
K8S_VERSION ?= 1.37.1

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBE_SCORE ?= $(LOCALBIN)/kube-score-$(KUBE_SCORE_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CONTROLPLANE_DIR ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
KUBECTL ?= $(CONTROLPLANE_DIR)/kubectl

# Go test flags; `make test TEST_FLAGS=-v` for verbose output.
TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs, RBAC and webhook configuration from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes.
	$(GOLANGCI_LINT) run --fix

.PHONY: verify
verify: manifests generate fmt ## Regenerate everything and fail if anything changed.
	@if [ -n "$$(git status --porcelain -- api config hack go.mod go.sum '*.go')" ]; then \
		echo "verify: generated or formatted files differ from what is committed:"; \
		git status --porcelain -- api config hack go.mod go.sum '*.go'; \
		git --no-pager diff --stat; \
		exit 1; \
	fi
	@echo "verify: generated files are up to date"

.PHONY: controlplane
controlplane: ## Build kube-apiserver, kube-controller-manager, etcd and kubectl from source into bin/k8s (once).
	@K8S_VERSION=$(K8S_VERSION) hack/controlplane.sh >/dev/null

.PHONY: nginx
nginx: ## Install nginx (Debian package) for the end-to-end test, if missing and possible.
	@hack/ensure-nginx.sh

# Fuzz targets: package and function. make test fuzzes each for
# FUZZ_SHORT, make fuzz for FUZZTIME. make test counts executions rather
# than time: go1.26's fuzz coordinator can report its own -fuzztime deadline
# as a failure when a worker is mid-run under load (golang/go#75804, fixed
# in go1.27), and a count has no deadline to race. 100,000 runs take about
# 10 to 30 s a target on 2 cores.
FUZZ_TARGETS = ./internal/token:FuzzParse ./internal/verifyhttp:FuzzExtractToken ./internal/authz:FuzzReviewToken
FUZZ_SHORT ?= 100000x
FUZZTIME ?= 5m

.PHONY: test
test: manifests generate fmt vet controlplane nginx kustomize kube-score image helm ## Run unit, envtest, fault-injection and end-to-end suites against the real control plane, then fuzz briefly.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" KUSTOMIZE="$(KUSTOMIZE)" KUBE_SCORE="$(KUBE_SCORE)" HELM="$(HELM)" TOKENWARDEN_IMAGE="$(abspath $(IMAGE_TAR))" go test ./... $(TEST_FLAGS) -coverprofile cover.out
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SHORT)

.PHONY: fuzz
fuzz: ## Fuzz the token parser, the header parser and the admission decision, FUZZTIME each (default 5m).
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; fn=$${target##*:}; \
		echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		go test "$$pkg" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

.PHONY: bench
bench: controlplane ## Run the benchmarks; writes docs/benchmarks.md and bin/bench/results.json.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" hack/bench.sh

# The scale run (issue #14): 100,000 ApiTokens through admission, about 30
# minutes on 2 cores (27 and 34 on 2026-12-04, as busy as the machine was). BENCH_SCALE_ARGS adds flags of test/bench's -scale-run
# mode, e.g. BENCH_SCALE_ARGS="-scale-tokens 20000 -scale-namespaces 200".
.PHONY: bench-scale
bench-scale: controlplane ## Run the scale benchmark (100,000 ApiTokens); writes bin/bench/scale.json and its section of docs/benchmarks.md.
	mkdir -p bin/bench
	go test -c -o bin/bench/verify.test ./internal/verifyhttp/
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" go run ./test/bench -scale-run -scale-verify-test bin/bench/verify.test \
		-scale-results bin/bench/scale.json -scale-doc docs/benchmarks.md $(BENCH_SCALE_ARGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the operator into bin/tokenwarden and the kubectl plugin into bin/kubectl-tokenwarden.
	go build -o bin/tokenwarden .
	go build -o bin/kubectl-tokenwarden ./cmd/kubectl-tokenwarden

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the cluster of the current kubeconfig.
	go run . --enable-webhooks=false $(ARGS)

.PHONY: dev
dev: manifests generate controlplane ## Local mode: own control plane, CRDs, operator in the foreground.
	go build -o bin/tokenwarden .
	exec bin/tokenwarden --dev --control-plane-dir="$(CONTROLPLANE_DIR)" $(ARGS)

# The binary in the image: static, without paths or symbols of the machine
# that built it, and without VCS stamping, which the Dockerfile (whose
# context has no .git) cannot do; the commit is in the image's labels.
IMAGE_BIN = $(LOCALBIN)/image/linux-$(GOARCH)/manager

# The image builder (hack/image, its own module) runs on this machine, so a
# GOOS or GOARCH given to make, meant for the image, is kept from its build.
.PHONY: image
image: manifests generate ## Build the operator image without a container engine into dist/ (see dist/image.json).
	mkdir -p dist "$(dir $(IMAGE_BIN))"
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$(IMAGE_BIN)" .
	env -u GOOS -u GOARCH go -C hack/image build -o "$(LOCALBIN)/image-builder" .
	"$(LOCALBIN)/image-builder" --binary "$(IMAGE_BIN)" --image "$(IMG)" --arch "$(GOARCH)" \
		--output "$(IMAGE_TAR)" --metadata dist/image.json --source-date-epoch "$(SOURCE_DATE_EPOCH)" \
		--version "$(VERSION)" --revision "$(IMAGE_REVISION)" --source "$(IMAGE_SOURCE)"

.PHONY: docker-build
docker-build: ## Build the same image from the Dockerfile (needs Docker with BuildKit).
	docker build --platform "linux/$(GOARCH)" -t "$(IMG)" \
		--build-arg VERSION="$(VERSION)" --build-arg REVISION="$(IMAGE_REVISION)" \
		--build-arg SOURCE="$(IMAGE_SOURCE)" --build-arg SOURCE_DATE_EPOCH="$(SOURCE_DATE_EPOCH)" .

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs (and so every Team and ApiToken) from the cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

# render-default prints config/default with the operator's image set to
# $(IMG). kustomize edit rewrites the kustomization it runs in, so it runs on
# a copy of config/: the committed config/manager/kustomization.yaml keeps its
# placeholder tag, and a build leaves no change under config/ for make verify
# to fail on, nor a tag to commit by mistake.
define render-default
( tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
  cp -R config "$$tmp/config"; \
  cd "$$tmp/config/manager"; "$(KUSTOMIZE)" edit set image controller="$(IMG)"; \
  "$(KUSTOMIZE)" build "$$tmp/config/default" )
endef

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator, with the image IMG, to the cluster of the current kubeconfig.
	$(render-default) | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render one installable manifest, with the image IMG, into dist/install.yaml.
	mkdir -p dist
	$(render-default) > dist/install.yaml

# The chart is derived from dist/install.yaml on demand, like it a build
# output and not committed: the image tag changes with every commit, and a
# chart generated from the one build cannot drift from it (test/helm proves
# the defaults render it exactly).
.PHONY: helm-chart
helm-chart: build-installer ## Generate the Helm chart into dist/chart from dist/install.yaml.
	go run ./hack/helmchart -install dist/install.yaml -out dist/chart -version "$(VERSION)"

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into ./bin.
$(CONTROLLER_GEN):
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize into ./bin.
$(KUSTOMIZE):
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into ./bin.
$(GOLANGCI_LINT):
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: kube-score
kube-score: $(KUBE_SCORE) ## Install kube-score into ./bin; make test scores the rendered install with it.
$(KUBE_SCORE):
	$(call go-install-tool,$(KUBE_SCORE),github.com/zegl/kube-score/cmd/kube-score,$(KUBE_SCORE_VERSION))

.PHONY: helm
helm: $(HELM) ## Install helm into ./bin.
$(HELM):
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

# go-install-tool installs package $(2) at version $(3) as $(1) and links the
# unversioned name to it, so a version bump in this file installs the new one.
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
package=$(2)@$(3) ; \
echo "Installing $${package}" ; \
rm -f "$(1)" ; \
GOBIN="$(LOCALBIN)" go install $${package} ; \
mv "$(LOCALBIN)/$$(basename "$(1)" | sed 's/-$(3)$$//')" "$(1)" ; \
} ; \
ln -sf "$$(basename "$(1)")" "$$(echo "$(1)" | sed "s/-$(3)$$//")"
endef
