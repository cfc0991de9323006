# SPDX-License-Identifier: BSD-2-Clause
# mk/echobench-tls.mk - OpenSSL for echobench --tls, included by the Makefile.
#
# OPENSSL=1 when OpenSSL 3's headers and libraries link (OPENSSL=0 on the
# command line builds without them: --tls is then a usage error). echod's
# own detection may define OPENSSL first; the guard keeps that one, and both
# probe for the same thing. Only echobench/btls.c reads HAVE_OPENSSL, and it
# is rebuilt when OPENSSL changes.
ifndef OPENSSL
OPENSSL ?= $(shell printf '\043include <openssl/ssl.h>\nint main(void){return !SSL_CTX_set_options(SSL_CTX_new(TLS_client_method()), SSL_OP_IGNORE_UNEXPECTED_EOF);}\n' | \
	$(CC) -x c - -o /dev/null -lssl -lcrypto >/dev/null 2>&1 && echo 1 || echo 0)
endif
OPENSSL := $(OPENSSL)

BENCH_TLS_LIBS := $(if $(filter 1,$(OPENSSL)),-lssl -lcrypto)
BENCH_TLS_STAMP := $(BUILD)/echobench-obj/.openssl
ifneq ($(OPENSSL),$(file <$(BENCH_TLS_STAMP)))
$(shell mkdir -p $(BUILD)/echobench-obj)
$(file >$(BENCH_TLS_STAMP),$(OPENSSL))
endif

$(BUILD)/echobench-obj/btls.o: $(BENCH_TLS_STAMP)
ifeq ($(OPENSSL),1)
$(BUILD)/echobench-obj/btls.o: ALL_CFLAGS += -DHAVE_OPENSSL=1
endif
