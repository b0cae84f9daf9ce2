/* vcl_perf: throughput and latency over one VCL TCP session. Uses only vppcom.h.
 *   vcl_perf server PORT [N_TESTS=0 (forever)]
 *   vcl_perf stream IP PORT [SECONDS=5] [WRITE_SIZE=65536]   one connection streaming
 *     (with VCL_PERF_INTERVAL_MS=N also the rate of every N ms on stderr, in Gbit/s: on a
 *     shared machine a run can change speed midway, and the total hides it)
 *   vcl_perf pingpong IP PORT [ROUNDS=10000] [SIZE=64]        round trips, latency percentiles
 *     (with VCL_PERF_RTT_FILE=PATH also every round trip's time in us, sorted, one a line)
 *   vcl_perf wcost IP PORT [SIZE=1024] [BURSTS=200]   cost of one write call: bursts of 256
 *     writes that fit the fifo (a pause after each lets the server drain), best and median
 *     burst in ns per write; the best burst is the per-call cost with the least interference
 * The first byte a client sends picks the test: 'S' (server counts what arrives until the client
 * closes, and prints it) or 'P' (server echoes). Closing rather than half-closing, because a
 * cut-through session in VPP has no half-close. */
#include <vcl/vppcom.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char buf[1 << 20];

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_perf: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

static int
write_all (uint32_t sh, const char *p, int n)
{
  int off = 0, rv;
  while (off < n)
    {
      rv = vppcom_session_write (sh, (void *) (p + off), n - off);
      if (rv < 0)
	return rv;
      off += rv;
    }
  return n;
}

static int
read_all (uint32_t sh, char *p, int n)
{
  int off = 0, rv;
  while (off < n)
    {
      rv = vppcom_session_read (sh, p + off, n - off);
      if (rv <= 0)
	return rv < 0 ? rv : -1;
      off += rv;
    }
  return n;
}

static void
serve_one (uint32_t sh)
{
  char mode;
  int n;
  unsigned long long total = 0;

  if (read_all (sh, &mode, 1) != 1)
    return;
  if (mode == 'S')
    {
      double t0 = now ();
      while ((n = vppcom_session_read (sh, buf, sizeof (buf))) > 0)
	total += n;
      printf ("vcl_perf server: stream test, %llu bytes received, %.3f Gbit/s\n", total,
	      total * 8 / (now () - t0) / 1e9);
    }
  else
    {
      while ((n = vppcom_session_read (sh, buf, sizeof (buf))) > 0)
	if (write_all (sh, buf, n) < 0)
	  break;
      printf ("vcl_perf server: ping-pong test done\n");
    }
  fflush (stdout);
}

static int
server (int port, int n_tests)
{
  uint8_t ip[4] = { 0 }, peer[16];
  vppcom_endpt_t e;
  int ls, rv, i;

  if ((ls = vppcom_session_create (VPPCOM_PROTO_TCP, 0)) < 0)
    return die ("session create", ls);
  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  if ((rv = vppcom_session_bind (ls, &e)) || (rv = vppcom_session_listen (ls, 10)))
    return die ("bind/listen", rv);
  printf ("vcl_perf server: listening on port %d\n", port);
  fflush (stdout);
  for (i = 0; !n_tests || i < n_tests; i++)
    {
      e.ip = peer;
      int cs = vppcom_session_accept (ls, &e, 0);
      if (cs < 0)
	return die ("accept", cs);
      serve_one (cs);
      vppcom_session_close (cs);
    }
  vppcom_session_close (ls);
  return 0;
}

static int
connect_to (const char *ipstr, int port)
{
  uint8_t ip[4];
  vppcom_endpt_t e;
  int sh, rv;

  if (inet_pton (AF_INET, ipstr, ip) != 1)
    return die ("bad address", VPPCOM_EINVAL) * 0 - 1;
  if ((sh = vppcom_session_create (VPPCOM_PROTO_TCP, 0)) < 0)
    return sh;
  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  if ((rv = vppcom_session_connect (sh, &e)))
    return rv;
  return sh;
}

static int
stream (const char *ip, int port, double secs, int size)
{
  int sh = connect_to (ip, port), rv;
  unsigned long long sent = 0, n, sl = 0, every;
  double t0, t1, tl, iv;

  if (sh < 0)
    return die ("connect", sh);
  if (size > (int) sizeof (buf))
    size = sizeof (buf);
  memset (buf, 'x', size);
  write_all (sh, "S", 1);
  /* small writes read the clock every 16 writes: read per write it cost as much as a 1 KiB
     write itself and hid the library's own cost from the figure; from 16 KiB on it is read
     per write, so a slow (loaded) run still ends on time and reports its intervals */
  every = size < 16384 ? 15 : 0;
  t0 = t1 = now ();
  iv = getenv ("VCL_PERF_INTERVAL_MS") ? atof (getenv ("VCL_PERF_INTERVAL_MS")) / 1e3 : 0;
  tl = t0;
  for (n = 0; (n & every) || (t1 = now ()) - t0 < secs; n++)
    {
      if (iv > 0 && !(n & every) && t1 - tl >= iv)
	{
	  fprintf (stderr, "%.1f ", (sent - sl) * 8 / (t1 - tl) / 1e9);
	  tl = t1;
	  sl = sent;
	}
      rv = vppcom_session_write (sh, buf, size);
      if (rv < 0)
	return die ("write", rv);
      sent += rv;
    }
  if (iv > 0 && t1 - tl >= iv / 2) /* the last one, if it ran for half an interval at least */
    fprintf (stderr, "%.1f", (sent - sl) * 8 / (t1 - tl) / 1e9);
  if (iv > 0)
    fprintf (stderr, "\n");
  printf ("vcl_perf stream: %d-byte writes for %.2f s: sent %llu bytes, %.3f Gbit/s\n", size,
	  t1 - t0, sent, sent * 8 / (t1 - t0) / 1e9);
  vppcom_session_close (sh);
  return 0;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static int
wcost (const char *ip, int port, int size, int bursts)
{
  int sh = connect_to (ip, port), rv, b, i;
  double *ns = malloc (sizeof (double) * bursts), t;
  struct timespec pause = { 0, 20 * 1000 * 1000 };

  if (sh < 0)
    return die ("connect", sh);
  if (size > (int) sizeof (buf) / 256)
    size = sizeof (buf) / 256;
  memset (buf, 'x', size);
  write_all (sh, "S", 1);
  for (b = 0; b < bursts; b++)
    {
      nanosleep (&pause, 0);
      t = now ();
      for (i = 0; i < 256; i++)
	if ((rv = vppcom_session_write (sh, buf, size)) != size)
	  return die ("write (a burst must fit the fifo)", rv);
      ns[b] = (now () - t) / 256 * 1e9;
    }
  qsort (ns, bursts, sizeof (double), cmp_double);
  printf ("vcl_perf wcost: %d-byte writes: best %.1f ns, median %.1f ns per write\n", size,
	  ns[0], ns[bursts / 2]);
  vppcom_session_close (sh);
  free (ns);
  return 0;
}

static int
pingpong (const char *ip, int port, int rounds, int size)
{
  int sh = connect_to (ip, port), i, j;
  double *rtt = malloc (sizeof (double) * rounds), t, total = 0;
  static char in[65536];

  if (sh < 0)
    return die ("connect", sh);
  if (size > (int) sizeof (in))
    size = sizeof (in);
  if (size < 1)
    size = 1;
  write_all (sh, "P", 1);
  for (i = 0; i < rounds; i++)
    {
      /* a different payload each round, so a stale or misplaced echo cannot pass */
      buf[0] = (char) i;
      buf[size - 1] = (char) (i >> 8);
      for (j = 1; j < size - 1; j++)
	buf[j] = (char) (i * 31 + j);
      t = now ();
      if (write_all (sh, buf, size) < 0 || read_all (sh, in, size) != size)
	return die ("round trip", -1);
      rtt[i] = (now () - t) * 1e6;
      total += rtt[i];
      if (memcmp (in, buf, size))
	return die ("echo differs from what was sent", i);
    }
  qsort (rtt, rounds, sizeof (double), cmp_double);
  if (getenv ("VCL_PERF_RTT_FILE"))
    {
      FILE *f = fopen (getenv ("VCL_PERF_RTT_FILE"), "w");
      for (i = 0; f && i < rounds; i++)
	fprintf (f, "%.2f\n", rtt[i]);
      if (f)
	fclose (f);
    }
  printf ("vcl_perf pingpong: %d round trips of %d bytes: mean %.1f us, p50 %.1f us, "
	  "p99 %.1f us, max %.1f us\n",
	  rounds, size, total / rounds, rtt[rounds / 2], rtt[rounds * 99 / 100],
	  rtt[rounds - 1]);
  vppcom_session_close (sh);
  free (rtt);
  return 0;
}

int
main (int argc, char **argv)
{
  int rv;

  if (argc < 3)
    {
      fprintf (stderr, "usage: vcl_perf server PORT [N] | stream IP PORT [SECS] [SIZE] | "
		       "pingpong IP PORT [ROUNDS] [SIZE] | wcost IP PORT [SIZE] [BURSTS]\n");
      return 2;
    }
  if ((rv = vppcom_app_create ("vcl_perf")))
    return die ("app create", rv);
  if (!strcmp (argv[1], "server"))
    rv = server (atoi (argv[2]), argc > 3 ? atoi (argv[3]) : 0);
  else if (!strcmp (argv[1], "stream") && argc > 3)
    rv = stream (argv[2], atoi (argv[3]), argc > 4 ? atof (argv[4]) : 5,
		 argc > 5 ? atoi (argv[5]) : 65536);
  else if (!strcmp (argv[1], "wcost") && argc > 3)
    rv = wcost (argv[2], atoi (argv[3]), argc > 4 ? atoi (argv[4]) : 1024,
		argc > 5 ? atoi (argv[5]) : 200);
  else if (!strcmp (argv[1], "pingpong") && argc > 3)
    rv = pingpong (argv[2], atoi (argv[3]), argc > 4 ? atoi (argv[4]) : 10000,
		   argc > 5 ? atoi (argv[5]) : 64);
  else
    rv = 2;
  vppcom_app_destroy ();
  return rv;
}
