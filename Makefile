# Build, install and test libvcl.  `make test` is the project's one test command (CI runs it).
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION    := 26.6.0
SONAME     := libvcl.so.26.06
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
CARGO      ?= cargo

.PHONY: all install uninstall test demo bench clean

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

# The main demo: build, then run the C example against the configuration in the environment.
demo:
	./scripts/demo

clean:
	$(CARGO) clean
