/* Helpers for session_check.c: which vppcom.h (libvcl's, or upstream's with
 * -DVCL_CHECK_UPSTREAM), pass/fail/difference counting, and small session helpers. */
#ifndef VCL_CHECK_UTIL_H
#define VCL_CHECK_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#ifdef VCL_CHECK_UPSTREAM
#include <stdint.h>
typedef uint32_t u32; /* upstream's INVALID_SESSION_ID is written with vppinfra's u32 */
#include <vppcom.h>
#include <fcntl.h>
#include <poll.h>
#define UPSTREAM 1
#else
#include <vcl/vppcom.h>
#define UPSTREAM 0
#endif

#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int n_pass, n_fail, n_diff;

static void
check (const char *what, long got, long want)
{
  if (got == want)
    n_pass++;
  else
    {
      n_fail++;
      fprintf (stderr, "FAIL %s: got %ld (%s), want %ld (%s)\n", what, got,
	       vppcom_retval_str ((int) got), want, vppcom_retval_str ((int) want));
    }
}

/* A documented difference from upstream (README, "differs on purpose"): `got` must be ours, or
 * upstream's value when built with VCL_CHECK_UPSTREAM; labelled in the output either way. */
static void
differs (const char *what, long got, long ours, long upstream)
{
  n_diff++;
  printf ("DIFFERS ON PURPOSE %s: libvcl %ld (%s), upstream %ld (%s)\n", what, ours,
	  vppcom_retval_str ((int) ours), upstream, vppcom_retval_str ((int) upstream));
  check (what, got, UPSTREAM ? upstream : ours);
}

/* `got` must be true */
static void
check_true (const char *what, int got)
{
  check (what, !!got, 1);
}

static void
make_ep (vppcom_endpt_t *ep, uint8_t *ip4, int port)
{
  memset (ep, 0, sizeof (*ep));
  ep->is_ip4 = 1;
  ep->ip = ip4;
  ep->port = htons ((uint16_t) port);
}

static int
set_nonblocking (uint32_t sh, int on)
{
  uint32_t flags = on ? O_NONBLOCK : 0, len = sizeof (flags);
  return vppcom_session_attr (sh, VPPCOM_ATTR_SET_FLAGS, &flags, &len);
}

/* Wait (up to 5 s) until sh has n bytes to read. */
static int
wait_nread (uint32_t sh, int n)
{
  int i, rv = 0;
  for (i = 0; i < 5000; i++)
    {
      rv = vppcom_session_attr (sh, VPPCOM_ATTR_GET_NREAD, NULL, NULL);
      if (rv >= n || rv < 0)
	return rv;
      usleep (1000);
    }
  return rv;
}

/* Read exactly n bytes (blocking session). */
static int
read_n (uint32_t sh, char *buf, int n)
{
  int got = 0, rv;
  while (got < n)
    {
      rv = vppcom_session_read (sh, buf + got, n - got);
      if (rv <= 0)
	return rv;
      got += rv;
    }
  return got;
}

/* Which library this run is on: the file vppcom_app_create comes from, and whether it is libvcl
 * (it exports vcl_version) or upstream's libvppcom. */
static void
print_library (void)
{
  Dl_info info;
  const char *(*version) (void);

  *(void **) &version = dlsym (RTLD_DEFAULT, "vcl_version");
  memset (&info, 0, sizeof (info));
  if (!dladdr ((void *) (uintptr_t) &vppcom_app_create, &info) || !info.dli_fname)
    info.dli_fname = "?";
  if (version)
    printf ("library: libvcl %s (%s)%s\n", version (), info.dli_fname,
	    UPSTREAM ? " BUT built with VCL_CHECK_UPSTREAM" : "");
  else
    printf ("library: upstream libvppcom (%s)%s\n", info.dli_fname,
	    UPSTREAM ? "" : " BUT built without VCL_CHECK_UPSTREAM");
}

#endif
