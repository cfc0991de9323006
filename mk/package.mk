# SPDX-License-Identifier: BSD-2-Clause
# mk/package.mk - packaging targets, included by the Makefile:
#
#   make dist            build/echod-VERSION.tar.gz: the files git tracks,
#                        sorted, stamped SOURCE_DATE_EPOCH (default: the last
#                        commit's time), owner 0: the same bytes every run
#   make deb             Debian packages echod and echobench in build/deb
#                        (tools/mkdeb: dpkg-buildpackage from a clean copy,
#                        hardening flags checked, lintian; as root also
#                        installed, echoed through, purged)
#   make static          echod and echobench linked statically with musl
#                        (musl-gcc) into build-static/rootfs/usr/bin
#   make image           the container image $(IMAGE) from Containerfile (podman)
#   make image-check     the image inspected, exported and run from its root
#                        file system as a non-root user (tools/image-check)
#   make manifests-check deploy/kubernetes validated with kubernetes-models
#   make spdxcheck       every source, script, unit, manifest and makefile
#                        has its SPDX line (tools/spdx-check; tools/spdx-add)
#   make package-check   all of these as tests (tests/package/*.t)

.PHONY: dist deb static image image-check manifests-check npm-deps spdxcheck package-check

ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || stat -c %Y VERSION)
endif
export SOURCE_DATE_EPOCH

DIST := echod-$(VERSION)
DIST_TAR := build/$(DIST).tar.gz

dist:
	@mkdir -p build
	$(call msg,DIST,$(DIST_TAR))
	$(Q)git ls-files -z >/dev/null || { echo "dist: needs a git checkout"; exit 1; }
	$(Q)git ls-files -z | LC_ALL=C sort -z | tar --create --no-recursion --sort=name \
		--format=gnu --transform='s,^,$(DIST)/,' --mtime=@$(SOURCE_DATE_EPOCH) \
		--owner=0 --group=0 --numeric-owner --mode='go-w,a+rX' \
		--null --files-from=- --file=build/$(DIST).tar
	$(Q)gzip -9nf build/$(DIST).tar

deb:
	$(Q)VERSION=$(VERSION) tools/mkdeb

# The image's programs: static, so that the image holds nothing else. musl,
# not glibc: a static glibc cannot resolve names without its NSS modules,
# and echobench's target is a Service name in Kubernetes. liburing.a
# (Debian's) needs only calloc, free and __stack_chk_fail, which musl has,
# so the image keeps io_uring; zlib.a's deflate and inflate likewise.
# mk/musl-compat.c supplies the two glibc extensions the sources call.
# OPENSSL=0: Debian has no libssl built for musl, so the image serves no
# TLS (--tls-port says so) rather than depend on a library it cannot hold.
MUSL_CC ?= musl-gcc
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
STATIC := build-static
STATIC_ROOT := $(STATIC)/rootfs
STATIC_SYS := $(abspath $(STATIC))/sysroot

static:
	@mkdir -p $(STATIC_SYS)/include $(STATIC_SYS)/lib $(STATIC_ROOT)/usr/bin \
		$(STATIC_ROOT)/usr/share/licenses/echod
	$(Q)for h in linux asm-generic liburing liburing.h zlib.h zconf.h; do \
		ln -sfn /usr/include/$$h $(STATIC_SYS)/include/$$h; done; \
	ln -sfn /usr/include/$(MULTIARCH)/asm $(STATIC_SYS)/include/asm; \
	cp /usr/lib/$(MULTIARCH)/liburing.a /usr/lib/$(MULTIARCH)/libz.a $(STATIC_SYS)/lib/
	$(Q)$(MUSL_CC) -std=gnu11 -D_GNU_SOURCE -O2 $(WARNINGS) -c mk/musl-compat.c \
		-o $(STATIC_SYS)/lib/musl-compat.o
	$(Q)$(MAKE) --no-print-directory BUILD=$(STATIC) CC=$(MUSL_CC) LIBURING=1 OPENSSL=0 \
		CPPFLAGS= CFLAGS='-g -isystem $(STATIC_SYS)/include -include $(abspath mk/musl-compat.h)' \
		LDFLAGS= ALL_LDFLAGS='-static -Wl,-z,relro,-z,now -L$(STATIC_SYS)/lib $(STATIC_SYS)/lib/musl-compat.o' \
		$(STATIC)/echod $(STATIC)/echobench
	$(Q)$(INSTALL) -s -m 755 $(STATIC)/echod $(STATIC)/echobench $(STATIC_ROOT)/usr/bin/
	$(Q)$(INSTALL) -m 644 LICENSE $(STATIC_ROOT)/usr/share/licenses/echod/

# The image's source label: a URL operators can follow (set it to the
# public repository).
IMAGE ?= localhost/echod:$(VERSION)
IMAGE_SOURCE ?= https://example.invalid/echod
PODMAN ?= podman

image: static
	$(call msg,IMAGE,$(IMAGE))
	$(Q)$(PODMAN) build --quiet --timestamp $(SOURCE_DATE_EPOCH) -f Containerfile \
		--build-arg VERSION=$(VERSION) --build-arg SOURCE=$(IMAGE_SOURCE) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		-t $(IMAGE) $(STATIC_ROOT)

image-check: image $(BUILD)/tests/helper-noiouring
	$(Q)IMAGE=$(IMAGE) VERSION=$(VERSION) PODMAN=$(PODMAN) \
		HELPER=$(abspath $(BUILD)/tests/helper-noiouring) tools/image-check

# npm packages for the manifest test live outside the tree; .ci/run runs
# make npm-deps, which installs them when missing.
NPM_CACHE ?= $(HOME)/.cache/echod-npm
NPM_PACKAGES := kubernetes-models@4.5.1 @kubernetes-models/prometheus-operator@4.4.4 js-yaml@4.1.0
npm-deps:
	$(Q)cd $(NPM_CACHE) 2>/dev/null && npm ls --depth=0 $(NPM_PACKAGES) >/dev/null 2>&1 || { \
		mkdir -p $(NPM_CACHE) && npm install --prefix $(NPM_CACHE) --no-audit --no-fund \
		--no-save $(NPM_PACKAGES); }
manifests-check:
	$(Q)NODE_PATH=$(NPM_CACHE)/node_modules VERSION=$(VERSION) \
		ECHOBENCH=$(abspath $(BUILD)/echobench) ECHOD=$(abspath $(BUILD)/echod) \
		node tests/package/manifests.js

spdxcheck:
	$(Q)tools/spdx-check

PACKAGE_TESTS ?= $(wildcard tests/package/*.t)
package-check: $(PROGRAMS) $(BUILD)/tests/helper-noiouring
	$(Q)$(TEST_ENV) VERSION=$(VERSION) $(PROVE) --timer $(PACKAGE_TESTS)
