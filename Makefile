# Build, install and test libvcl.  `make test` is the project's one test command (CI runs it).
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION    := 26.6.0
SONAME     := libvcl.so.26.06
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
CARGO      ?= cargo

.PHONY: all install uninstall test demo bench fuzz-api soak clean

all:
	$(CARGO) build --release -p vcl -p vcl-ldpreload

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/vcl
	install -m 0755 $(TARGET_DIR)/release/libvcl.so $(DESTDIR)$(LIBDIR)/$(SONAME).0
	ln -sf $(SONAME).0 $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libvcl.so
	install -m 0644 $(TARGET_DIR)/release/libvcl.a $(DESTDIR)$(LIBDIR)/libvcl.a
	install -m 0755 $(TARGET_DIR)/release/libvcl_ldpreload.so $(DESTDIR)$(LIBDIR)/libvcl_ldpreload.so
	install -m 0644 include/vcl/vppcom.h $(DESTDIR)$(INCLUDEDIR)/vcl/vppcom.h
	sed -e 's#@PREFIX@#$(PREFIX)#' -e 's#@LIBDIR@#$(LIBDIR)#' \
	    -e 's#@INCLUDEDIR@#$(INCLUDEDIR)#' -e 's#@VERSION@#$(VERSION)#' \
	    pkgconfig/vcl.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/vcl.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libvcl.so* $(DESTDIR)$(LIBDIR)/libvcl.a \
	      $(DESTDIR)$(LIBDIR)/libvcl_ldpreload.so \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/vcl.pc $(DESTDIR)$(INCLUDEDIR)/vcl/vppcom.h

# Every test: formatting, lints, the generated header is committed and fresh, unit,
# integration and C ABI tests (debug), then the release-only volume tests.
test:
	./scripts/test

# vcl_perf figures against the test peer (or VCL_CONFIG's VPP; BENCH_UPSTREAM=libvppcom.so too).
bench:
	./scripts/bench

# C-API fuzz (tests/fuzz_api.rs) in release: CALLS random vppcom_* calls against the test peer;
# SEED replays a run (every run prints its seed). `make test` runs a 20 s debug variant.
CALLS ?= 10000000
fuzz-api:
	VCL_FUZZ_API_CALLS=$(CALLS) $(if $(SEED),VCL_FUZZ_API_SEED=$(SEED)) \
	  $(CARGO) test --release -p vcl --test fuzz_api -- --nocapture

# Soak (tests/soak.rs) in release: 8 threads x 1,000 sessions, 10 GiB checked byte for byte,
# RSS and fds sampled; `make test` runs a small variant.
SOAK_THREADS ?= 8
SOAK_SESSIONS ?= 1000
SOAK_BYTES ?= 10737418240
soak:
	VCL_SOAK_THREADS=$(SOAK_THREADS) VCL_SOAK_SESSIONS=$(SOAK_SESSIONS) VCL_SOAK_BYTES=$(SOAK_BYTES) \
	  $(CARGO) test --release -p vcl --test soak -- --nocapture

# The main demo: build, then run the C example against the configuration in the environment.
demo:
	./scripts/demo

clean:
	$(CARGO) clean
