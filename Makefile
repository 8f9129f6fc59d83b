# Tokenwarden's Makefile. Every tool is pinned and installed into ./bin from
# the Go module proxy, so a fresh clone needs nothing but Go; CI runs the same
# targets a person does.

# Image built by docker-build and referenced by deploy/build-installer.
IMG ?= tokenwarden:latest

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# Tool versions. Newer controller-gen releases are not served for Go 1.26;
# kustomize v5.8.3 needs Go 1.27.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
# The control plane (kube-apiserver, etcd, kubectl) is built from source by
# hack/controlplane.sh; its version follows client-go's minor.
K8S_VERSION ?= 1.37.1

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
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
controlplane: ## Build kube-apiserver, etcd and kubectl from source into bin/k8s (once).
	@K8S_VERSION=$(K8S_VERSION) hack/controlplane.sh >/dev/null

.PHONY: nginx
nginx: ## Install nginx (Debian package) for the end-to-end test, if missing and possible.
	@hack/ensure-nginx.sh

# Fuzz targets: package and function. make test fuzzes each for
# FUZZ_SHORT, make fuzz for FUZZTIME.
FUZZ_TARGETS = ./internal/token:FuzzParse ./internal/verify:FuzzExtractToken ./internal/authz:FuzzReviewToken
FUZZ_SHORT ?= 20s
FUZZTIME ?= 5m

.PHONY: test
test: manifests generate fmt vet controlplane nginx kustomize ## Run unit, envtest, fault-injection and end-to-end suites against the real control plane, then fuzz briefly.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" KUSTOMIZE="$(KUSTOMIZE)" go test ./... $(TEST_FLAGS) -coverprofile cover.out
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SHORT)

.PHONY: fuzz
fuzz: ## Fuzz the token parser, the header parser and the admission decision, FUZZTIME each (default 5m).
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; fn=$${target##*:}; \
		echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		go test "$$pkg" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

.PHONY: bench
bench: ## Run the benchmarks; writes docs/benchmarks.md and bin/bench/results.json.
	hack/bench.sh

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

.PHONY: docker-build
docker-build: ## Build the operator image (needs a container engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs (and so every Team and ApiToken) from the cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator to the cluster of the current kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render one installable manifest into dist/install.yaml.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

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
