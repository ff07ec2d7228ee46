# idbroker — build and test. `make test` is what CI runs (through .ci/run).

GO ?= go
PKGS ?= ./...

# Services the tests use; tests needing one skip when it is unreachable,
# and fail instead when CI is set (to anything but "false" or "0").
IDBROKER_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
IDBROKER_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export IDBROKER_TEST_DATABASE_URL IDBROKER_TEST_REDIS_URL

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Per-target fuzzing time for fuzz-short and fuzz-ci; extra flags for bench.
FUZZTIME ?= 10s
# Sized for a loaded 2-core machine: below ~10s the fuzzer's own start-up
# (baseline coverage of the corpus) can outlast the budget and fail with
# "context deadline exceeded" although nothing was found.
FUZZCI_TIME ?= 12s
BENCHFLAGS ?=

.PHONY: all build run test test-upgrade fmt-check vet bench fuzz-short fuzz-ci mutate clean

all: build

## build: the idbroker binary, in ./bin
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/idbroker ./cmd/idbroker

## run: the broker on the embedded default, in development mode
run:
	$(GO) run ./cmd/idbroker serve --dev

## test: formatting, vet, then every test with the race detector, ending
## with one line of counts (gotestsum, a tool dependency in go.mod).
## Four packages at once, not one per core: most of the suite waits on
## child brokers, databases and Chromium (on 2 cores, 866 s at -p 2, 651 s
## at -p 4).
TEST_P ?= 4
test: fmt-check vet
	$(GO) tool gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg \
		--post-run-command '$(TEST_SUMMARY)' \
		-- -race -count=1 -p $(TEST_P) -timeout 30m $(PKGS)

# Run by gotestsum after the tests, with the counts in its environment.
TEST_SUMMARY = sh -c "echo test summary: \$$((TESTS_TOTAL - TESTS_FAILED - TESTS_SKIPPED)) passed, \$$TESTS_FAILED failed, \$$TESTS_SKIPPED skipped"

## test-upgrade: the upgrade tests of cmd/idbroker (an old build serving
## beside, before and after this one) against idbroker built from OLD, a
## commit, branch or tag: make test-upgrade OLD=8ce0a17. Not part of test:
## they take minutes, and OLD is a choice (the last release deployed).
## The old tree is exported with git archive, so no worktree is left behind.
OLD ?=
UPGRADE_RUN ?= ^(TestUpgrade|TestRolling|TestNodesStartTogether)
UPGRADE_DIR ?= $(CURDIR)/.upgrade
test-upgrade:
	@test -n "$(OLD)" || { echo "test-upgrade: set OLD to the commit or tag of the old build (make test-upgrade OLD=v1.2.0)"; exit 2; }
	@set -e; rev=$$(git rev-parse --verify --short '$(OLD)^{commit}'); \
	rm -rf $(UPGRADE_DIR)/src-$$rev; mkdir -p $(UPGRADE_DIR)/src-$$rev; \
	git archive $$rev | tar -x -C $(UPGRADE_DIR)/src-$$rev; \
	echo "== building idbroker $$rev into $(UPGRADE_DIR)/idbroker-$$rev"; \
	(cd $(UPGRADE_DIR)/src-$$rev && $(GO) build -o $(UPGRADE_DIR)/idbroker-$$rev ./cmd/idbroker); \
	rm -rf $(UPGRADE_DIR)/src-$$rev; \
	CI=true IDBROKER_TEST_OLD_BINARY=$(UPGRADE_DIR)/idbroker-$$rev \
		$(GO) test -race -count=1 -timeout 30m -run '$(UPGRADE_RUN)' -v ./cmd/idbroker

fmt-check:
	@files=$$(gofmt -l .); \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$files"; \
		exit 1; \
	fi

vet:
	$(GO) vet $(PKGS)

## bench: every benchmark, no tests (BENCHFLAGS=-benchtime=1x for a smoke run)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(BENCHFLAGS) $(PKGS)

## fuzz-short: each fuzz target for FUZZTIME, one at a time (go test allows
## one -fuzz target per package per run)
fuzz-short:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$fn"; \
			$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

## fuzz-ci: each fuzz target for FUZZCI_TIME, as CI runs them after test.
## Targets are found in the sources, so that nothing is compiled only to
## list them. Every target runs even when one fails; the failures are
## listed at the end and make the target fail.
fuzz-ci:
	@failed=""; for f in $$(grep -rlE --include='*_test.go' '^func Fuzz' . | sort); do \
		for fn in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([a-z]+ \*testing\.F\).*/\1/p' $$f); do \
			echo "== $$(dirname $$f) $$fn"; \
			$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZCI_TIME) $$(dirname $$f) \
				|| failed="$$failed $$(dirname $$f):$$fn"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-ci: failed:$$failed"; exit 1; fi; \
	echo "fuzz-ci: every target passed"

## mutate: mutation testing (gremlins, a tool dependency in go.mod) of the
## security-critical code, one package at a time, at the lowest CPU priority.
## Not part of test: it runs each package's tests once per mutant. Each
## package's score goes to $(MUTATE_OUT)/<pkg>.json; TESTING.md says how to
## read it. MUTATE_PKGS=broker runs one package.
MUTATE_PKGS ?= broker connections/saml connections/oidc scim store admin-portal/portal admin-portal/console
MUTATE_OUT ?= $(CURDIR)/.mutate
MUTATE_NICE ?= nice -n 19
# One worker: the machine is shared. The coefficient multiplies the time the
# coverage run took into each mutant's timeout; a loaded machine needs room.
GREMLINS_FLAGS ?= --workers 1 --timeout-coefficient 8
# The files mutated in each package: token and PKCE handling, SAML and OIDC
# validation, SCIM authentication and directory scoping, the store's tenant
# gate, portal and console sessions. Every other file of the package is
# left out (gremlins only knows exclusions), and so are subpackages.
MUTATE_FILES_broker := authorize.go tokens.go verify.go session.go
MUTATE_FILES_connections/saml := saml.go metadata.go
MUTATE_FILES_connections/oidc := oidc.go
MUTATE_FILES_scim := server.go
MUTATE_FILES_store := tenant.go db.go
MUTATE_FILES_admin-portal/portal := links.go
MUTATE_FILES_admin-portal/console := auth.go
# The tests each package's mutants run against (go test -run, through
# GOFLAGS, for the coverage run too): the ones that exercise those files,
# so that a mutant costs seconds rather than the whole package's minutes.
# Empty runs every test of the package. -count=1 keeps the coverage run
# out of the test cache: a cached run takes a few seconds, and the
# mutants' timeout, a multiple of it, would then time every mutant out.
# The console's Chromium walk (TestOperatorInBrowser) is left out: the
# sign-in paths it takes, lockout included, have HTTP tests that cost
# seconds (signin_test.go).
MUTATE_RUN_broker := ^(TestSSOCookieAttributes|TestFullFlow|TestBadClientAndRedirect|TestPKCE|TestPKCERules|TestCodeReuseRevokes|TestCodeRace|TestCodeBoundToClientAndRedirect|TestRefreshRotationAndReuse|TestRefreshRaceEndsTheFamily|TestSequentialReuseEndsTheSession|TestRevocation|TestPromptNoneAndSSO|TestIntrospectClientAuth|TestIntrospectRefreshToken|TestIntrospectCrossTenant|TestOAuthErrors|TestKeyRotationOverlap|TestApplicationLifetimes|TestTokensExpireAtTheirExpSecond|TestCodeReuseRevocationSurvivesSessionStoreOutage|TestSpentCodeUnreadableIsUnavailable|TestResponseModes|TestAuthorizeWithTheStoreDown|TestRefreshMayNarrowTheScope|TestRefreshReuseSendsBackchannelLogout|TestRefreshWithTheSessionStoreDown)$$
MUTATE_RUN_connections/saml := ^(TestSAML.*|TestACS.*|TestHasDTD|TestConnectionSettingsValidation|TestMetadataRefreshAndCertificateExpiry)$$
MUTATE_RUN_scim := ^(TestAuthAndTenantIsolation|TestTenantStatusGatesSCIM|TestDirectoriesOfOneTenantAreApart|TestMembersOfAnotherDirectory|TestRateLimitPerTenant|TestBadInputIsA4xx|TestNewTakesAnHTTPSIssuer|TestConfiguredRevokerAndLoggerAreUsed|TestMaxResultsBounds|TestLocationAndTypeErrors)$$
MUTATE_RUN_store := ^(TestConformance|TestNoTenantRunsNoSQL|TestRedactURL)$$/^(sqlite|postgres)$$/^(NoTenantFailsLoudly|CrossTenantIsNotFound|EveryMethodIsTenantScoped|DirectoryMembers|AuthenticateDirectory)$$
MUTATE_RUN_admin-portal/portal := ^(TestCookieAttributes|TestCreateLinkChecksItsArguments|TestLinkOpensOnceIntoAScopedSession|TestSessionIsBoundToItsIntent|TestPostWithoutCSRFIsRefused|TestSignOutEndsTheSession|TestAnotherTenantsIDsAreNotFound)$$
MUTATE_RUN_admin-portal/console := ^(TestSignedOutRoutes|TestCookiesSecureOnHTTPS|TestSessionRules|TestCookieAttributes|TestPasswordHash|TestMatchTOTP|TestLockFor|TestRecoveryCodes|TestSessionLifetime|TestSignedOutFormKeepsItsToken|TestDisabledOperatorCannotSignIn|TestIsDigits|TestLongestCredentialsSignIn|TestSignInWithRecoveryCode|TestLockout)$$

# mutate_one dir files run: gremlins on dir with everything but files
# excluded, its tests limited to run.
define mutate_one
echo "== mutate $(1): $(2)"; \
ex=$$(cd $(1) && ls *.go | grep -v '_test\.go$$' | grep -vxF $(foreach f,$(2),-e $(f)) | paste -sd'|' -); \
(cd $(1) && GOFLAGS="$$GOFLAGS -count=1"$(if $(3),' -run=$(3)') $(MUTATE_NICE) $(GO) tool gremlins unleash $(GREMLINS_FLAGS) \
	-E / $${ex:+-E "^($$ex)$$"} -o $(MUTATE_OUT)/$(subst /,_,$(1)).json $(CURDIR)/$(1)) \
	|| failed="$$failed $(1)";
endef

mutate:
	@mkdir -p $(MUTATE_OUT); failed=""; \
	$(foreach p,$(MUTATE_PKGS),$(call mutate_one,$(p),$(MUTATE_FILES_$(p)),$(MUTATE_RUN_$(p)))) \
	if [ -n "$$failed" ]; then echo "mutate: failed:$$failed"; exit 1; fi

clean:
	rm -rf bin
